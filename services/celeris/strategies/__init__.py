"""Built-in strategy plugins: momentum, market making with inventory skew, mean reversion.

Each is a plain class implementing celeris.domain.signals.Strategy: pure, synchronous, no I/O, driven
by the BookTop values it is given (so it is deterministic on deterministic data).
"""

BUILTIN = {
    "momentum": "celeris.strategies.momentum:Momentum",
    "market_making": "celeris.strategies.market_maker:MarketMaker",
    "mean_reversion": "celeris.strategies.mean_reversion:MeanReversion",
}
