"""celeris_operator: the kopf operator that reconciles TradingSystem resources (handlers come later)."""
