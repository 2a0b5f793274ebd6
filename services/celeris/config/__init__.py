"""The one configuration model: the TradingSystem spec, as `kubectl apply` and `celeris up -f` take it."""
