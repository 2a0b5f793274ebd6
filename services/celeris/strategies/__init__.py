"""Built-in strategy plugins: momentum, market making with inventory skew, mean reversion.

Each is an SDK strategy (celeris.domain.sdk.Strategy): market making written on the SDK, momentum and
mean reversion signal-style through the SDK's signal adapter. Pure, synchronous, no I/O, so deterministic
on deterministic data.
"""

BUILTIN = {
    "momentum": "celeris.strategies.momentum:Momentum",
    "market_making": "celeris.strategies.market_maker:MarketMaker",
    "mean_reversion": "celeris.strategies.mean_reversion:MeanReversion",
}
