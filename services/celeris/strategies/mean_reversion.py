"""Mean reversion: fade deviations of the mid from its moving average.

Keeps a simple moving average of the mid over `window` updates and the mean absolute deviation; when
the mid is more than `entry_z` deviations above the average it sells, below it buys, with strength
growing with the deviation. Passive (it provides liquidity back toward the mean).

It exits: once the mid is back at the mean (the deviation it traded has reverted), when the deviation
flips to the other side, or after `max_hold_updates` book updates, it closes the whole position with a
reduce-only order (never a flip).

A signal-style strategy run on the SDK through celeris.domain.sdk_signals.SignalAdapter: its orders and
position are its own.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Mapping

from celeris.domain.sdk_signals import SignalAdapter
from celeris.domain.signals import BookTop, FillReport, PositionReport, Signal, Urgency, exit_signal
from celeris.domain.values import Side


class MeanReversion(SignalAdapter):
    name = "mean_reversion"

    def __init__(self) -> None:
        self.window = 100
        self.entry_z = 2.0
        self.cooldown = 20
        self._mids: deque[int] = deque(maxlen=self.window)
        self._sum = 0
        self._since = 10**9
        self.signals = 0
        self.position = 0
        self.max_hold_updates = 600
        self._held = 0
        self.exits = 0

    def initialize(self, config: Mapping[str, Any]) -> None:
        super().initialize(config)
        params = config.get("params", {})
        self.window = int(params.get("window", 100))
        self.entry_z = float(params.get("entry_z", 2.0))
        self.cooldown = int(params.get("cooldown", 20))
        self.max_hold_updates = int(params.get("max_hold_updates", 600))
        if self.window < 3 or self.entry_z <= 0 or self.max_hold_updates < 1:
            raise ValueError("mean reversion needs window >= 3 and entry_z > 0")
        self._mids = deque(maxlen=self.window)
        self._sum = 0

    def on_market_data(self, data: BookTop) -> list[Signal]:
        mid2 = data.bid_ticks + data.ask_ticks
        if len(self._mids) == self.window:
            self._sum -= self._mids[0]
        self._mids.append(mid2)
        self._sum += mid2
        self._since += 1
        self._held = self._held + 1 if self.position else 0
        if len(self._mids) < self.window or self._since < self.cooldown:
            return []
        mean = self._sum / len(self._mids)
        mad = sum(abs(m - mean) for m in self._mids) / len(self._mids)
        if mad == 0:
            return []
        z = (mid2 - mean) / mad
        if self.position:
            reverted = (self.position > 0 and z >= 0) or (self.position < 0 and z <= 0)
            if reverted or self._held >= self.max_hold_updates:
                self._since = 0
                return [self._exit(data, "back at the mean" if reverted else f"held {self._held} updates")]
        if abs(z) < self.entry_z:
            return []
        self._since = 0
        self.signals += 1
        side = Side.SELL if z > 0 else Side.BUY
        strength = min(1.0, abs(z) / (2 * self.entry_z))
        hint = data.ask_ticks if side is Side.SELL else data.bid_ticks
        return [Signal(data.symbol, side, strength, self.name, data.ts_event_ns, Urgency.PASSIVE, hint,
                       f"mid {z:+.2f} deviations from its {self.window}-update mean")]

    def _exit(self, data: BookTop, why: str) -> Signal:
        self.exits += 1
        return exit_signal(data, self.position, self.name, why)

    def on_order_fill(self, fill: FillReport) -> None:
        self.position += fill.side.sign * fill.qty_steps

    def on_position_update(self, position: PositionReport) -> None:
        self.position = position.qty_steps

    def get_state(self) -> Mapping[str, Any]:
        return {"window": self.window, "entry_z": self.entry_z, "signals": self.signals, "position_steps": self.position,
                "exits": self.exits}
