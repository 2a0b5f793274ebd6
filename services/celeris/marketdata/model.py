"""What market data publishes: book updates (snapshot or delta), trades, mark prices, trade flow.

Values in ticks and steps, timestamps in ns; the instrument formats them at the edges.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from celeris.domain.book import BookState, Level


@dataclass(slots=True)
class BookUpdate:
    symbol: str
    sequence: int
    """Per-symbol publication sequence (a consumer that sees a jump lost an update)."""
    state: BookState
    snapshot: bool
    bids: list[Level]
    """Snapshot: the top N, best first. Delta: the changed levels, quantity 0 = removed."""
    asks: list[Level]
    update_id: int
    ts_event_ns: int
    ts_recv_ns: int


@dataclass(slots=True)
class TradeUpdate:
    symbol: str
    sequence: int
    trade_id: int
    price_ticks: int
    qty_steps: int
    buyer_is_maker: bool
    ts_event_ns: int
    ts_recv_ns: int


@dataclass(slots=True)
class MarkUpdate:
    symbol: str
    mark_price: str
    index_price: str
    funding_rate: str
    next_funding_ms: int
    ts_event_ns: int


WINDOWS_S = (1, 10, 60)


@dataclass
class TradeFlow:
    """Net taker volume (buys minus sells, in steps) over rolling windows (FR-MD-003)."""

    windows_s: tuple[int, ...] = WINDOWS_S
    _trades: deque[tuple[int, int]] = field(default_factory=deque)
    buy_steps: int = 0
    sell_steps: int = 0

    def add(self, ts_ns: int, qty_steps: int, buyer_is_maker: bool) -> None:
        # buyer is maker -> the taker sold
        signed = -qty_steps if buyer_is_maker else qty_steps
        self._trades.append((ts_ns, signed))
        if signed > 0:
            self.buy_steps += qty_steps
        else:
            self.sell_steps += qty_steps
        horizon = ts_ns - max(self.windows_s) * 1_000_000_000
        while self._trades and self._trades[0][0] < horizon:
            self._trades.popleft()

    def net(self, now_ns: int, window_s: int) -> int:
        start = now_ns - window_s * 1_000_000_000
        return sum(q for ts, q in self._trades if ts >= start)
