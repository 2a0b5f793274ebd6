"""Market making on the strategy SDK: quote both sides at the touch, skewed against its own inventory.

Every `requote_every` book updates it keeps one post-only bid and one post-only ask at the touch, each
moved away from the market by `skew_ticks_per_unit` ticks per `inventory_unit_steps` of the inventory it
holds (its own position, from its own fills), and it withdraws the side that would take inventory beyond
`max_inventory_steps`. Quotes are half the configured order size, less on the side that adds to
inventory as it fills up (at least the venue's minimum quantity and notional). A quote that moves is
amended in place (the same order, new price or size); one that is refused or fills is placed again,
and one whose amendment is refused is cancelled and placed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from celeris.domain import sdk
from celeris.domain.sdk_types import BookView, OrderState, OrderUpdate, param
from celeris.domain.values import Side


class MarketMaker(sdk.Strategy):
    name = "market_making"
    depth = 1

    @dataclass(frozen=True)
    class Params:
        max_inventory_steps: int = param(100, ge=0, doc="inventory (steps) beyond which a side is withdrawn")
        inventory_unit_steps: int = param(10, ge=1, doc="inventory per skew unit (steps)")
        skew_ticks_per_unit: int = param(1, ge=0, doc="ticks both quotes move per unit of inventory")
        requote_every: int = param(10, ge=1, doc="book updates between requotes")
        min_spread_ticks: int = param(1, ge=0, doc="no requote on a spread tighter than this")

    def __init__(self) -> None:
        self._updates = 0
        self.quotes = 0
        self._quote_ids: dict[Side, str] = {}

    def on_start(self) -> None:
        # After a hot reload the working quotes are still ours: adopt one per side, cancel any extra.
        for order in self.orders(self.symbol):
            if order.side in self._quote_ids:
                self.cancel(order.client_order_id)
            else:
                self._quote_ids[order.side] = order.client_order_id

    def on_book(self, book: BookView) -> None:
        p = self.params
        self._updates += 1
        if self._updates % p.requote_every or book.spread_ticks < p.min_spread_ticks:
            return
        bid_t, ask_t = book.best_bid_ticks, book.best_ask_ticks
        inventory = self.position()
        units = abs(inventory) // p.inventory_unit_steps
        skew = (units if inventory >= 0 else -units) * p.skew_ticks_per_unit
        # Long inventory shifts both quotes down (buy less eagerly, sell more eagerly); short shifts them
        # up. Neither may cross the touch on the other side: they are post-only.
        bid = min(bid_t - skew, ask_t - 1)
        ask = max(ask_t - skew, bid_t + 1)
        self._quote(Side.BUY, bid if inventory < p.max_inventory_steps else None, inventory)
        self._quote(Side.SELL, ask if inventory > -p.max_inventory_steps else None, inventory)

    def on_order(self, update: OrderUpdate) -> None:
        # An amendment refused (it would cross as post-only, or the gateway cannot amend): the quote is
        # cancelled, and placed afresh at the next requote.
        if update.event == "amend_rejected" and update.order.client_order_id in self._quote_ids.values():
            self.cancel(update.order.client_order_id)

    def _size(self, side: Side, price_ticks: int, inventory: int) -> int:
        ins = self.instrument(self.symbol)
        p = self.params
        full = self.steps(self.symbol, self.order_size) if self.order_size else ins.min_qty_steps
        adding = inventory * side.sign > 0
        room = max(0, p.max_inventory_steps - abs(inventory)) if adding else max(1, p.max_inventory_steps)
        qty = max(full * room // (2 * max(1, p.max_inventory_steps)), ins.min_qty_steps)
        while ins.min_notional and ins.notional(price_ticks, qty) < ins.min_notional:
            qty += 1
        return qty

    def _quote(self, side: Side, price_ticks: int | None, inventory: int) -> None:
        cid = self._quote_ids.get(side)
        order = self.order(cid) if cid else None
        if price_ticks is None:
            if order is not None:
                self.cancel(order.client_order_id)
            self._quote_ids.pop(side, None)
            return
        qty = self._size(side, price_ticks, inventory)
        if order is None or order.state is OrderState.PENDING_CANCEL:
            self._quote_ids[side] = self.place_ticks(self.symbol, side, price_ticks, qty, post_only=True)
            self.quotes += 1
        elif order.state is OrderState.WORKING and (order.price_ticks, order.remaining_steps) != (price_ticks, qty):
            self.amend_ticks(order.client_order_id, price_ticks, order.filled_steps + qty)
            self.quotes += 1
        # PENDING or PENDING_AMEND: its answer comes first.

    def get_state(self) -> Mapping[str, Any]:
        inventory = self.position() if self._ctx is not None else 0
        return {"inventory_steps": inventory, "quotes": self.quotes,
                "max_inventory_steps": self.params.max_inventory_steps}
