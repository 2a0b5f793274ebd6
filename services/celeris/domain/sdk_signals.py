"""The signal adapter: a signal-style strategy (`on_market_data(BookTop) -> [Signal]`) run on the SDK.

Owns the translation the strategy engine used to make for such a strategy, now made with the SDK's own
orders: the `BookTop` it is shown (the top of book, the last trade and the net taker flow of the last
10 s, from its own on_book and on_trade), each signal planned into an order as before (`plan_order`:
size from the configured order size times strength or the exact size, post-only at the touch or the
hint, IOC at the far touch when aggressive, raised to the minimum notional), one quote per side for
passive signals (replaced when its price moves, withdrawn when a round that quotes leaves its side out),
directional orders cancelled when the intent reverses or after `order_ttl_ns`, and reduce-only exits.
Its fills reach it as `on_order_fill` and its own position as `on_position_update`.

A subclass keeps the signal interface (`initialize` calling `super().initialize(config)` first, then
reading its params; `on_market_data`; `on_order_fill`; `on_position_update`; `get_state`). Unlike a plain
signal strategy it is not combined with others by the engine's aggregation: its orders are its own.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any, Mapping

from celeris.domain import sdk
from celeris.domain.instruments import TimeInForce
from celeris.domain.sdk_types import BookView, OrderState, OwnFill, TradeTick
from celeris.domain.signals import BookTop, FillReport, PositionReport, Signal, Urgency, plan_order
from celeris.domain.values import Side

FLOW_WINDOW_NS = 10_000_000_000


class SignalAdapter(sdk.Strategy):
    order_ttl_ns = 5_000_000_000
    """A directional order still working after this long is cancelled (the engine's order_ttl_s before)."""

    def initialize(self, config: Mapping[str, Any]) -> None:
        """The configuration as a signal strategy takes it: its params are its own to read (not `Params`)."""
        self.symbol = config.get("symbol", "")
        self.order_size = Decimal(str(config.get("order_size") or "0"))
        self.params = dict(config.get("params", {}))
        self._ctx = None
        self._flows: deque[tuple[int, int]] = deque()
        self._flow_sum = 0
        self._last_trade: int | None = None
        self._quotes: dict[Side, str] = {}
        self._directional: dict[str, int] = {}

    # -- what a signal strategy implements ---------------------------------------------------------
    def on_market_data(self, data: BookTop) -> list[Signal]:
        return []

    def on_order_fill(self, fill: FillReport) -> None: ...

    def on_position_update(self, position: PositionReport) -> None: ...

    # -- the SDK side -----------------------------------------------------------------------------
    def on_start(self) -> None:
        self.set_timer("signal-ttl", 1_000_000_000)
        for order in self.orders(self.symbol):  # after a hot reload: its orders are still its own
            if order.post_only and order.side not in self._quotes:
                self._quotes[order.side] = order.client_order_id
            elif not order.post_only or order.side in self._quotes:
                self._directional[order.client_order_id] = order.ts_created_ns

    def on_trade(self, trade: TradeTick) -> None:
        qty = trade.qty_steps if trade.aggressor is Side.BUY else -trade.qty_steps
        self._flows.append((trade.ts_event_ns, qty))
        self._flow_sum += qty
        horizon = trade.ts_event_ns - FLOW_WINDOW_NS
        while self._flows and self._flows[0][0] < horizon:
            self._flow_sum -= self._flows.popleft()[1]
        self._last_trade = trade.price_ticks

    def on_book(self, book: BookView) -> None:
        top = BookTop(book.symbol, book.ts_event_ns, book.bids[0][0], book.bids[0][1], book.asks[0][0],
                      book.asks[0][1], self._last_trade, self._flow_sum)
        signals = self.on_market_data(top) or []
        passive = {s.side for s in signals if isinstance(s, Signal) and s.urgency is Urgency.PASSIVE}
        if passive:
            for side in (Side.BUY, Side.SELL):  # a round that quotes and leaves a side out withdraws it
                if side not in passive:
                    self._withdraw(side)
        size = self.steps(self.symbol, self.order_size) if self.order_size else 0
        for signal in signals:
            if not isinstance(signal, Signal) or signal.symbol != self.symbol:
                raise TypeError(f"returned {signal!r}, not a Signal for {self.symbol}")
            self._act(signal, top, size)

    def _act(self, signal: Signal, top: BookTop, size: int) -> None:
        plan = plan_order(signal, top, self.instrument(self.symbol), size)
        if plan is None or plan.price_ticks is None:
            return
        post_only = plan.time_in_force is TimeInForce.GTX
        tif = TimeInForce.GTC if post_only else plan.time_in_force
        if signal.urgency is Urgency.PASSIVE:
            cid = self._quotes.get(signal.side)
            quote = self.order(cid) if cid else None
            if quote is not None and quote.state is OrderState.PENDING:
                return  # the previous quote is still on its way
            if quote is not None and quote.price_ticks == plan.price_ticks:
                return  # unchanged
            if quote is not None:
                self.cancel(quote.client_order_id)
            self._quotes[signal.side] = self.place_ticks(self.symbol, signal.side, plan.price_ticks, plan.qty_steps,
                                                         tif=tif, post_only=post_only, reduce_only=signal.reduce_only)
            return
        if not signal.reduce_only:
            for order in self.orders(self.symbol):  # its intent reversed: the other side's orders go
                if order.client_order_id in self._directional and order.side is not signal.side \
                        and not order.reduce_only and order.state is not OrderState.PENDING_CANCEL:
                    self.cancel(order.client_order_id)
        for c in self._directional:
            order = self.order(c)
            if order is not None and order.state is OrderState.PENDING and order.side is signal.side:
                return  # the previous order for this intent is still on its way
        cid = self.place_ticks(self.symbol, signal.side, plan.price_ticks, plan.qty_steps, tif=tif,
                               post_only=post_only, reduce_only=signal.reduce_only)
        self._directional[cid] = self.now_ns

    def _withdraw(self, side: Side) -> None:
        cid = self._quotes.pop(side, None)
        order = self.order(cid) if cid else None
        if order is not None and order.state is not OrderState.PENDING_CANCEL:
            self.cancel(cid)

    def on_order(self, update: Any) -> None:
        if not update.order.is_open:  # a closed directional order leaves the set every decision scans
            self._directional.pop(update.order.client_order_id, None)

    def on_timer(self, name: str) -> None:
        now = self.now_ns
        for cid, sent in list(self._directional.items()):
            order = self.order(cid)
            if order is None:
                del self._directional[cid]
            elif order.state is OrderState.WORKING and now - sent >= self.order_ttl_ns:
                self.cancel(cid)

    def on_fill(self, fill: OwnFill) -> None:
        self.on_order_fill(FillReport(fill.symbol, fill.client_order_id, fill.side, fill.qty_steps, fill.price_ticks,
                                      fill.fee, fill.is_maker, fill.ts_event_ns, self.ctx.name))
        position = self.ctx.position(fill.symbol)
        mark = self.ctx.mark_of(fill.symbol)
        self.on_position_update(PositionReport(fill.symbol, position.qty_steps, str(position.entry_price),
                                               position.unrealized_pnl(mark) if mark and position.qty_steps else 0,
                                               fill.ts_event_ns))
