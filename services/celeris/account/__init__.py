"""celeris.account: balances, positions and PnL kept equal to the venue's, reconciliation, alerts."""
