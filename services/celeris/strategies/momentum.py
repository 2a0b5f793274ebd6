"""Momentum: follow a move of the mid price over a lookback window (the seed's example strategy).

Buys when the mid has risen by at least `threshold_bps` over the last `lookback` book updates, sells
when it has fallen as much; strength grows with the size of the move (capped at 1). Aggressive when the
move is at least twice the threshold.

It exits: when the move reverses against a position it holds, or once the position has been held for
`max_hold_updates` book updates, it closes the whole position with a reduce-only order (never a flip).

A signal-style strategy run on the SDK through celeris.domain.sdk_signals.SignalAdapter: its orders and
position are its own.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Mapping

from celeris.domain.sdk_signals import SignalAdapter
from celeris.domain.signals import BookTop, FillReport, PositionReport, Signal, Urgency, exit_signal
from celeris.domain.values import Side


class Momentum(SignalAdapter):
    name = "momentum"

    def __init__(self) -> None:
        self.lookback = 50
        self.threshold_bps = 5.0
        self.cooldown = 20
        self._mids: deque[int] = deque(maxlen=self.lookback + 1)
        self._since_signal = 10**9
        self.signals = 0
        self.position = 0
        self.max_hold_updates = 600
        self._held = 0
        self.exits = 0

    def initialize(self, config: Mapping[str, Any]) -> None:
        super().initialize(config)
        params = config.get("params", {})
        self.lookback = int(params.get("lookback", 50))
        self.threshold_bps = float(params.get("threshold_bps", 5.0))
        self.cooldown = int(params.get("cooldown", 20))
        self.max_hold_updates = int(params.get("max_hold_updates", 600))
        if self.lookback < 2 or self.threshold_bps <= 0 or self.cooldown < 0 or self.max_hold_updates < 1:
            raise ValueError("momentum needs lookback >= 2, threshold_bps > 0, cooldown >= 0, max_hold_updates >= 1")
        self._mids = deque(maxlen=self.lookback + 1)

    def on_market_data(self, data: BookTop) -> list[Signal]:
        mid2 = data.bid_ticks + data.ask_ticks  # twice the mid, in ticks: exact
        self._mids.append(mid2)
        self._since_signal += 1
        self._held = self._held + 1 if self.position else 0
        if self.position and self._held >= self.max_hold_updates and self._since_signal >= self.cooldown:
            self._since_signal = 0
            return [self._exit(data, f"held {self._held} updates")]
        if len(self._mids) <= self.lookback or self._since_signal < self.cooldown:
            return []
        first = self._mids[0]
        move_bps = (mid2 - first) * 10_000 / first
        if abs(move_bps) < self.threshold_bps:
            return []
        self._since_signal = 0
        self.signals += 1
        strength = min(1.0, abs(move_bps) / (4 * self.threshold_bps))
        urgency = Urgency.AGGRESSIVE if abs(move_bps) >= 2 * self.threshold_bps else Urgency.NORMAL
        side = Side.BUY if move_bps > 0 else Side.SELL
        if self.position and (self.position > 0) != (side is Side.BUY):
            return [self._exit(data, f"move reversed ({move_bps:+.1f} bps)")]
        return [Signal(data.symbol, side, strength, self.name, data.ts_event_ns, urgency,
                       data.bid_ticks if side is Side.BUY else data.ask_ticks,
                       f"mid moved {move_bps:+.1f} bps over {self.lookback} updates")]

    def _exit(self, data: BookTop, why: str) -> Signal:
        self.exits += 1
        return exit_signal(data, self.position, self.name, why)

    def on_order_fill(self, fill: FillReport) -> None:
        self.position += fill.side.sign * fill.qty_steps

    def on_position_update(self, position: PositionReport) -> None:
        self.position = position.qty_steps

    def get_state(self) -> Mapping[str, Any]:
        return {"lookback": self.lookback, "threshold_bps": self.threshold_bps, "signals": self.signals,
                "position_steps": self.position, "window": len(self._mids), "exits": self.exits}
