"""Reconciliation: keeping the order table true to what the venue says happened.

Owns the venue's side of every order: its event stream (applied one at a time, in arrival order, by one
worker: the single writer of order state from the venue), fills matched by trade id (never counted
twice; a late fill still moves the position), orders we did not place (adopted, or cancelled by policy),
the startup and reconnect reconciliation (open orders, missed fills, orders that never reached the
venue, balance and positions), and the owners' leases with the reaper that cancels orphans.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from celeris.domain.instruments import OrderType
from celeris.domain.messages import Execution, Fill, VenueOrderEvent
from celeris.domain.modes import Mode
from celeris.domain.orders import (
    InvalidTransition,
    Order,
    OrderEvent,
    OrderStatus,
    Overfill,
)
from celeris.domain.topics import fill_topic
from celeris.execution.model import EVENT_FOR_EXECUTION
from celeris.execution.validation import EXTERNAL_OWNER, RESERVED_OWNERS
from celeris.execution.venue import OrderVenue
from celeris.venues.binance import errors

if TYPE_CHECKING:
    from celeris.execution.engine import ExecutionEngine

log = logging.getLogger(__name__)

class Reconciliation:
    def __init__(self, engine: ExecutionEngine) -> None:
        self.engine = engine
        self.events: asyncio.Queue[VenueOrderEvent] = asyncio.Queue()
        self.owner_leases: dict[str, int] = {}
        """owner -> lease expiry (ns); 0 = released."""

    # -- venue events ---------------------------------------------------------------------------
    def on_venue_event(self, event: VenueOrderEvent) -> None:
        """An event from a venue's stream, queued: events are applied one at a time, in arrival order."""
        self.events.put_nowait(event)

    async def event_worker(self) -> None:
        while True:
            event = await self.events.get()
            try:
                await self.apply_event(event)
            except Exception:  # never lose the worker: log, count, go on
                self.engine.stats.illegal_transitions += 1
                log.exception("venue event failed")
            finally:
                self.events.task_done()

    async def settle(self) -> None:
        """Wait until every venue event received so far has been applied."""
        await self.events.join()

    async def apply_event(self, event: VenueOrderEvent) -> None:
        engine = self.engine
        client_id = event.client_order_id or engine.by_venue_id.get(event.venue_order_id, "")
        if client_id not in engine.orders and event.venue_order_id in engine.by_venue_id:
            # A triggered conditional order's actual order: the venue may name it with its own id.
            client_id = engine.by_venue_id[event.venue_order_id]
        order = engine.orders.get(client_id)
        if order is not None and order.status is OrderStatus.REJECTED and not order.venue_order_id \
                and event.execution in (Execution.NEW, Execution.TRADE):
            order = await self._landed_late(order, event)
        if order is None and engine.retention.known_closed(client_id):
            return  # a late event of one of our orders, closed and dropped from memory: not an unknown order
        if order is None:
            if event.execution is Execution.TRADE and client_id:
                order = await self.adopt(event)
            if order is None:
                return
        try:
            if event.algo_id and order.algo_id is None:
                order.algo_id = event.algo_id
            if event.venue_order_id and not order.venue_order_id:
                order.venue_order_id = event.venue_order_id
                engine.by_venue_id[event.venue_order_id] = order.client_order_id
            if event.execution is Execution.TRIGGERED:
                await self._triggered(order, event)
            elif event.execution is Execution.AMENDMENT:
                await self._amended(order, event)
            elif event.execution is Execution.NEW:
                if order.status is OrderStatus.PENDING_SUBMIT:
                    order.apply(OrderEvent.ACCEPT, event.ts_event_ns)
                    await engine._persist(order, "accepted")
                    engine._publish_order(order)
            elif event.execution is Execution.TRADE:
                if order.amend_qty_steps is not None and event.order_status == "FILLED" \
                        and order.filled_steps + event.last_qty_steps >= order.qty_steps:
                    # The order filled at its old terms before our amendment reached it: it will be refused.
                    order.amend_rejected(event.ts_event_ns)
                await self._apply_fill(order, event)
                if order.is_open and event.order_status in ("FILLED", "EXPIRED"):
                    # The venue finished it short of its quantity (a reduce-only order clamped to the
                    # position): what was not filled will never be.
                    order.apply(OrderEvent.EXPIRE, event.ts_event_ns)
                    await engine._persist(order, "clamped")
                    engine._publish_order(order)
            else:
                if order.is_open:
                    closing = EVENT_FOR_EXECUTION[event.execution]
                    if closing is OrderEvent.REJECT and order.is_algo and order.status is not OrderStatus.PENDING_SUBMIT:
                        # An accepted algo order whose actual order the venue refused at its trigger: it ended
                        # unfilled, after it was working (the table's REJECT is for orders never accepted).
                        order.reject_reason = order.reject_reason or "refused by the venue when it triggered"
                        closing = OrderEvent.EXPIRE
                    order.apply(closing, event.ts_event_ns)
                    await engine._persist(order, event.execution.value.lower())
                    engine._publish_order(order)
        except (InvalidTransition, Overfill) as exc:
            engine.stats.illegal_transitions += 1
            log.error("venue event refused by the order table: %s", exc)

    async def _triggered(self, order: Order, event: VenueOrderEvent) -> None:
        """A conditional order fired: the venue placed the actual order, whose fills now fill this one."""
        engine = self.engine
        if not order.is_open or order.triggered:
            return
        order.triggered = True
        if event.venue_order_id:
            if order.venue_order_id and order.venue_order_id != event.venue_order_id:
                engine.by_venue_id.pop(order.venue_order_id, None)
            order.venue_order_id = event.venue_order_id
            engine.by_venue_id[event.venue_order_id] = order.client_order_id
        order.apply(OrderEvent.TRIGGER, event.ts_event_ns)
        await engine._persist(order, "triggered")
        engine._publish_order(order)

    async def _amended(self, order: Order, event: VenueOrderEvent) -> None:
        """The venue's AMENDMENT: the new terms are the venue's now (ours, arriving before the REST answer,
        or one made elsewhere)."""
        engine = self.engine
        if not order.is_open or not event.orig_qty_steps:
            return
        order.amended(event.orig_qty_steps, event.price_ticks or order.price_ticks, event.ts_event_ns)
        await engine._persist(order, "amended")
        engine._publish_order(order)

    async def _apply_fill(self, order: Order, event: VenueOrderEvent) -> None:
        engine = self.engine
        mode = engine.order_mode.get(order.client_order_id, engine.mode)
        # Trade ids are unique per venue and symbol; paper and live venues number theirs independently.
        if not await engine.hot.add_trade(f"{mode.value}:{event.symbol}", event.trade_id):
            engine.stats.duplicate_fills_ignored += 1
            return
        if order.is_open and event.last_qty_steps <= order.worst_remaining_steps:
            order.fill(event.last_qty_steps, event.last_price_ticks, event.ts_event_ns or engine.clock.now_ns())
            closing = engine._closing.get(order.client_order_id)
            if closing is not None and order.is_open and order.filled_steps >= closing[1]:
                del engine._closing[order.client_order_id]
                order.apply(closing[0], event.ts_event_ns or engine.clock.now_ns())
        else:
            # Money moved at the venue whatever our order table says: the position takes the fill. (An
            # order closed here before its last fill arrived; the table is not moved backwards.)
            engine.stats.late_fills += 1
            order.filled_steps += event.last_qty_steps
            order.filled_quote += event.last_qty_steps * event.last_price_ticks
            log.warning("fill %s on %s order %s applied to the position", event.trade_id, order.status.value,
                        order.client_order_id)
        result = engine.positions[order.symbol].apply_fill(order.side, event.last_qty_steps, event.last_price_ticks,
                                                           event.margin_commission)  # a BNB fee is not USDT
        fill = Fill(order.symbol, order.client_order_id, order.venue_order_id or 0, event.trade_id, order.side,
                    event.last_price_ticks, event.last_qty_steps, event.commission, event.is_maker,
                    event.realized_pnl or result.realized_pnl, order.strategy_id, mode.value,
                    event.ts_event_ns or engine.clock.now_ns(), event.commission_asset)
        engine.stats.fills += 1
        await engine.journal.fill(fill, engine.instruments[order.symbol])
        await engine._persist(order, "fill")
        engine.publish(fill_topic(order.symbol), fill)
        engine._publish_order(order)

    async def _landed_late(self, given_up: Order, event: VenueOrderEvent) -> Order | None:
        """An order refused here after a send of unknown outcome (nothing found within the venue's receive
        window) that the venue reports open or filled after all: tracked again under its owner, so its fills
        count, its exposure is reserved and a cancel or a halt reaches it; halted, it is cancelled now."""
        engine = self.engine
        log.error("order %s was given up on after an unknown send but the venue has it (%s): tracked again",
                  given_up.client_order_id, event.execution.value)
        del engine.orders[given_up.client_order_id]
        order = await self.adopt(event if event.orig_qty_steps else _with_qty(event, given_up.qty_steps))
        if order is None:
            return None
        order.strategy_id = given_up.strategy_id
        engine.stats.landed_late += 1
        if engine.halt_control.halted:
            asyncio.ensure_future(engine.cancel(f"late-{order.client_order_id}", order.symbol, order.client_order_id))
        return order

    async def adopt(self, event: VenueOrderEvent) -> Order | None:
        """An order we did not place (manual, liquidation, lost state): track it from now on."""
        engine = self.engine
        if not event.orig_qty_steps:
            return None
        try:
            order = Order(event.client_order_id, event.symbol, event.side,
                          OrderType(event.order_type or "MARKET"), event.orig_qty_steps,
                          event.price_ticks or None, reduce_only=event.reduce_only, strategy_id=EXTERNAL_OWNER,
                          ts_created_ns=engine.clock.now_ns(), is_algo=bool(event.algo_id),
                          algo_id=event.algo_id or None)
        except ValueError:
            return None
        order.apply(OrderEvent.SUBMIT)
        order.apply(OrderEvent.ACCEPT)
        engine.orders[order.client_order_id] = order
        engine.order_mode[order.client_order_id] = engine.mode if engine.mode is not Mode.OBSERVATION else Mode.LIVE
        if event.venue_order_id:  # an algo order not yet triggered has none
            order.venue_order_id = event.venue_order_id
            engine.by_venue_id[event.venue_order_id] = order.client_order_id
        engine._sync_exposure(order)
        engine.stats.adopted += 1
        await engine._persist(order, "adopted")
        return order

    # -- reconciliation -------------------------------------------------------------------------
    async def reconcile(self, venue: OrderVenue) -> None:
        """Bring local orders in line with the venue: adopt/cancel unknown open orders, settle ours,
        and apply fills we missed (a restart, a dropped user stream)."""
        engine = self.engine
        try:
            venue_open = await venue.open_orders()
        except errors.VenueError as exc:
            log.warning("reconciliation skipped: %s", exc)
            return
        venue_open_ids = {e.client_order_id for e in venue_open}
        for event in venue_open:
            if event.client_order_id in engine.orders:
                order = engine.orders[event.client_order_id]
                if order.status is OrderStatus.PENDING_SUBMIT:
                    order.apply(OrderEvent.ACCEPT, engine.clock.now_ns())
                    if event.venue_order_id:
                        order.venue_order_id = event.venue_order_id
                        engine.by_venue_id[event.venue_order_id] = order.client_order_id
                    await engine._persist(order, "reconciled")
                if order.amend_qty_steps is not None and event.orig_qty_steps:
                    self._settle_amendment(order, event.orig_qty_steps, event.price_ticks or None)
                    await engine._persist(order, "reconciled")
                continue
            if engine.config.unknown_orders_policy == "cancel":
                try:
                    if event.algo_id:
                        await venue.cancel_algo(event.symbol, event.client_order_id)
                    else:
                        await venue.cancel(event.symbol, event.client_order_id)
                    engine.stats.canceled_unknown += 1
                except errors.VenueError as exc:
                    log.warning("could not cancel unknown order %s: %s", event.client_order_id, exc)
            else:
                await self.adopt(event)
        symbols = {o.symbol for o in engine.orders.values()
                   if engine.venues.get(engine.order_mode[o.client_order_id]) is venue}
        for symbol in sorted(symbols):
            try:
                trades = await venue.trades(symbol)
            except errors.VenueError as exc:
                log.warning("fills of %s not reconciled: %s", symbol, exc)
                continue
            for trade in trades:
                if trade.venue_order_id in engine.by_venue_id:
                    self.on_venue_event(trade)  # through the queue: one writer of order state
        await self.settle()
        for order in list(engine.orders.values()):
            if not order.is_open or order.client_order_id in venue_open_ids:
                continue
            if engine.venues.get(engine.order_mode[order.client_order_id]) is not venue:
                continue
            state = await engine.submission.query_quietly(venue, order)
            if state is None:
                if order.status is OrderStatus.PENDING_SUBMIT:
                    # Never reached the venue: it is safe to call it rejected (its id is never reused).
                    order.reject_reason = "not found at the venue after a restart"
                    order.apply(OrderEvent.REJECT, engine.clock.now_ns())
                    await engine._persist(order, "reconciled", order.reject_reason)
                continue
            engine._apply_venue_state(order, state)
            if order.amend_qty_steps is not None and state.qty_steps is not None:
                self._settle_amendment(order, state.qty_steps, state.price_ticks)
            if state.status in ("CANCELED", "EXPIRED") and order.is_open:
                order.apply(OrderEvent.CANCEL if state.status == "CANCELED" else OrderEvent.EXPIRE,
                            engine.clock.now_ns())
            await engine._persist(order, "reconciled")
            engine._publish_order(order)
        if venue is engine.venues.get(engine.mode) or engine.mode is Mode.OBSERVATION:
            try:
                engine.available_balance = await venue.available_balance()
                for symbol, (qty, entry) in (await venue.positions()).items():
                    if symbol in engine.positions:
                        engine.positions[symbol].qty_steps = qty
                        engine.positions[symbol].cost = abs(qty) * entry
            except errors.VenueError as exc:
                log.warning("balance/positions not reconciled: %s", exc)

    def _settle_amendment(self, order: Order, qty_steps: int, price_ticks: int | None) -> None:
        """An amendment whose answer was lost (a restart, a timeout): the venue's terms say whether it landed."""
        now = self.engine.clock.now_ns()
        if (qty_steps, price_ticks) == (order.amend_qty_steps, order.amend_price_ticks):
            order.amended(qty_steps, price_ticks, now)
        else:
            order.amend_rejected(now)
        self.engine._sync_exposure(order)

    # -- owners ---------------------------------------------------------------------------------
    def renew_owners(self, owners: Iterable[str], lease_s: float | None = None) -> None:
        """The owners (strategies) that are alive renew their lease; their orders stay working."""
        engine = self.engine
        until = engine.clock.now_ns() + int((lease_s or engine.config.owner_lease_s) * 1e9)
        for owner in owners:
            if owner:
                self.owner_leases[owner] = until

    def release_owner(self, owner: str) -> None:
        """The owner is gone (disabled, removed): its orders are orphans from now on."""
        self.owner_leases[owner] = 0

    def owner_alive(self, owner: str) -> bool:
        """Unowned and manual orders are left alone; a strategy's orders need all its owners' leases."""
        if not owner or owner in RESERVED_OWNERS:
            return True
        now = self.engine.clock.now_ns()
        parts = owner.split("+")
        if not any(p in self.owner_leases for p in parts):
            return True  # an owner this engine never heard of (a client of the gRPC API without leases)
        return all(self.owner_leases.get(p, 0) > now for p in parts)

    async def reap_orphans(self) -> int:
        """Cancel every open order whose owner is gone; returns how many were cancelled."""
        engine = self.engine
        orphans = [o for o in engine.orders.values() if o.is_open and o.status is not OrderStatus.NEW
                   and not self.owner_alive(o.strategy_id)]
        if not orphans:
            return 0
        results = await asyncio.gather(*(engine.cancel(f"orphan-{o.client_order_id}", o.symbol, o.client_order_id)
                                         for o in orphans))
        reaped = sum(1 for r in results if r.accepted)
        engine.stats.orphans_canceled += reaped
        if reaped:
            log.warning("cancelled %d orphan orders (owner gone)", reaped)
        return reaped

    async def reaper(self, interval_s: float) -> None:
        while True:
            await self.engine._sleep(interval_s)
            try:
                await self.reap_orphans()
            except Exception:
                log.exception("orphan reaper failed this round")


def _with_qty(event: VenueOrderEvent, qty_steps: int) -> VenueOrderEvent:
    import dataclasses

    return dataclasses.replace(event, orig_qty_steps=qty_steps)
