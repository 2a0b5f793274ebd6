"""Market making: quote both sides at the touch, skewed against inventory.

Every `requote_every` updates it emits a passive BUY and a passive SELL with price hints at the touch
(bid and ask), each moved away from the market by `skew_ticks_per_unit` ticks per `inventory_unit` of
inventory held on that side, and it stops quoting the side that would take inventory beyond
`max_inventory_steps`. Strength shrinks on the side that would add to inventory.
"""

from __future__ import annotations

from typing import Any, Mapping

from celeris.domain.signals import BookTop, FillReport, PositionReport, Signal, Urgency
from celeris.domain.values import Side


class MarketMaker:
    name = "market_making"

    def __init__(self) -> None:
        self.max_inventory_steps = 100
        self.inventory_unit_steps = 10
        self.skew_ticks_per_unit = 1
        self.requote_every = 10
        self.min_spread_ticks = 1
        self.inventory = 0
        self._updates = 0
        self.quotes = 0

    def initialize(self, config: Mapping[str, Any]) -> None:
        params = config.get("params", {})
        self.max_inventory_steps = int(params.get("max_inventory_steps", 100))
        self.inventory_unit_steps = max(1, int(params.get("inventory_unit_steps", 10)))
        self.skew_ticks_per_unit = int(params.get("skew_ticks_per_unit", 1))
        self.requote_every = max(1, int(params.get("requote_every", 10)))
        self.min_spread_ticks = int(params.get("min_spread_ticks", 1))

    def on_market_data(self, data: BookTop) -> list[Signal]:
        self._updates += 1
        if self._updates % self.requote_every:
            return []
        if data.ask_ticks - data.bid_ticks < self.min_spread_ticks:
            return []
        skew = int(self.inventory / self.inventory_unit_steps) * self.skew_ticks_per_unit
        # Long inventory shifts both quotes down (buy less eagerly, sell more eagerly); short shifts them
        # up. Neither quote may cross the touch on the other side: they are post-only.
        bid = min(data.bid_ticks - skew, data.ask_ticks - 1)
        ask = max(data.ask_ticks - skew, data.bid_ticks + 1)
        fullness = min(1.0, abs(self.inventory) / max(1, self.max_inventory_steps))
        signals = []
        if self.inventory < self.max_inventory_steps:
            strength = 0.5 * (1 - fullness) if self.inventory > 0 else 0.5
            if strength > 0:
                signals.append(Signal(data.symbol, Side.BUY, strength, self.name, data.ts_event_ns, Urgency.PASSIVE,
                                      bid, f"quote bid, inventory {self.inventory}"))
        if self.inventory > -self.max_inventory_steps:
            strength = 0.5 * (1 - fullness) if self.inventory < 0 else 0.5
            if strength > 0:
                signals.append(Signal(data.symbol, Side.SELL, strength, self.name, data.ts_event_ns, Urgency.PASSIVE,
                                      ask, f"quote ask, inventory {self.inventory}"))
        self.quotes += len(signals)
        return signals

    def on_order_fill(self, fill: FillReport) -> None:
        self.inventory += fill.side.sign * fill.qty_steps

    def on_position_update(self, position: PositionReport) -> None:
        self.inventory = position.qty_steps

    def get_state(self) -> Mapping[str, Any]:
        return {"inventory_steps": self.inventory, "quotes": self.quotes, "max_inventory_steps": self.max_inventory_steps}
