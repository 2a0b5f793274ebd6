from decimal import Decimal
from celeris.domain import sdk
from celeris.domain.values import Side


class TwapOnce(sdk.Strategy):
    """Buys 0.010 BTC by TWAP over 30 s of capture time, started on the first book."""
    name = "twap_once"
    depth = 1

    def __init__(self) -> None:
        self.started = False

    def on_book(self, book) -> None:
        if not self.started:
            self.started = True
            self.twap(self.symbol, Side.BUY, Decimal("0.010"), duration_ns=30_000_000_000, slices=10)
