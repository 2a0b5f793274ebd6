"""Market data's own derived value: trade flow (net taker volume over rolling windows).

What market data publishes (book updates, trades, marks) is the domain's (celeris.domain.messages).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


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
