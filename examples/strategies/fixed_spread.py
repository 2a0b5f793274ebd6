"""Fixed-spread quoting: the worked example of docs/strategies.md (and the Celeris side of the
hftbacktest cross-check, bench/peers/hftbacktest_quote.py, which follows the same rules).

Every `interval_ms` it cancels its quotes and places a post-only bid at best bid - `half_spread_ticks`
and a post-only ask at best ask + `half_spread_ticks`, `qty` each, while its own |position| is below
`max_position`; the side at the limit is not quoted.

Drop this file in a strategy directory (`--strategy-dir`, the TradingSystem's strategyDir) and name
its type in a strategy entry: in the TradingSystem YAML `{name: fs-btc, type: fixed_spread, symbol: BTCUSDT,
orderSize: "0.001", params: {half_spread_ticks: 20}}`; in a `--strategies` JSON list (the engine's own
keys) `{"name": "fs-btc", "type": "fixed_spread", "symbol": "BTCUSDT", "order_size": "0.001",
"params": {"half_spread_ticks": 20}}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from celeris.domain import sdk
from celeris.domain.sdk_types import BookView, OwnFill, param
from celeris.domain.values import Side


class FixedSpread(sdk.Strategy):
    name = "fixed_spread"
    depth = 1  # the top of the book is all it needs

    @dataclass(frozen=True)
    class Params:
        half_spread_ticks: int = param(20, ge=0, doc="ticks outside the touch each quote sits")
        qty: Decimal = param(Decimal("0.001"), gt=0, doc="size of each quote (base asset)")
        max_position: Decimal = param(Decimal("0.01"), gt=0, doc="no quote on a side once |position| reaches it")
        interval_ms: int = param(100, ge=1, doc="requote period on the engine's clock")

    def __init__(self) -> None:
        self.book: BookView | None = None
        self.fills = 0

    def on_start(self) -> None:
        # Off-grid sizes are refused here, once, rather than at every requote.
        self.qty_steps = self.steps(self.symbol, self.params.qty)
        self.max_steps = self.steps(self.symbol, self.params.max_position)
        self.set_timer("requote", self.params.interval_ms * 1_000_000)

    def on_book(self, book: BookView) -> None:
        self.book = book  # act on the timer, with the latest book

    def on_timer(self, name: str) -> None:
        if self.book is None:
            return
        self.cancel_all(self.symbol)
        position = self.position()
        half = self.params.half_spread_ticks
        if position < self.max_steps:
            self.place_ticks(self.symbol, Side.BUY, self.book.best_bid_ticks - half, self.qty_steps, post_only=True)
        if position > -self.max_steps:
            self.place_ticks(self.symbol, Side.SELL, self.book.best_ask_ticks + half, self.qty_steps, post_only=True)

    def on_fill(self, fill: OwnFill) -> None:
        self.fills += 1

    def get_state(self) -> dict[str, int]:
        return {"fills": self.fills, "position_steps": self.position() if self._ctx else 0}
