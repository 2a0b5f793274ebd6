"""celeris.risk: account-wide risk metrics, policies, the pre-trade check and the emergency stop."""
