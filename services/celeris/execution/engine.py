"""The execution engine: validated, idempotent order entry and the lifecycle of every order.

Owns what must never go wrong with orders:
- validation before anything leaves (mode, halt, breaker, order rate, venue filters, position limit,
  margin, the risk manager's check), each refusal a `Rejection` with a precise code;
- idempotency: a request id answers the same way twice; the client order id is derived from it and the
  order is persisted (PENDING_SUBMIT) before the request is sent; an ambiguous outcome (timeout, the
  503 "unknown") is resolved by asking the venue for that client order id before any retry;
- retries with back-off (max 3), the circuit breaker, a halt on authentication failure;
- the order state table for every order, fills matched by trade id (never counted twice), publication of
  order updates and fills on the bus;
- modes switched at run time (observation: nothing leaves; simulation: the paper venue; live: the venue),
  halt/resume, and the startup reconciliation that adopts or cancels what the venue knows and we do not.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol

from celeris.domain.breaker import CircuitBreaker, SlidingWindowLimit
from celeris.domain.clock import Clock
from celeris.domain.instruments import Instrument, OrderType, check_order
from celeris.domain.modes import Mode
from celeris.domain.orders import InvalidTransition, Order, OrderEvent, OrderStatus, Overfill
from celeris.domain.positions import Position
from celeris.domain.risk import Approved, Denied
from celeris.domain.values import Side
from celeris.execution.model import (
    EVENT_FOR_EXECUTION, Execution, ExecutionConfig, Fill, OrderRequest, Outcome, RejectCode, Rejection,
    VenueOrderEvent, VenueOrderState, client_order_id_for, order_from_json, order_to_json,
)
from celeris.execution.store import HotState, Journal, MemoryHotState, MemoryJournal
from celeris.execution.venue import OrderVenue
from celeris.venues.binance import errors

log = logging.getLogger(__name__)


class RiskCheck(Protocol):
    async def check(self, request: OrderRequest, mark_ticks: int | None) -> Approved | Denied: ...


def order_topic(symbol: str) -> str:
    return f"orders.{symbol}"


def fill_topic(symbol: str) -> str:
    return f"fills.{symbol}"


@dataclass
class ExecutionStats:
    submitted: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates_answered: int = 0
    retries: int = 0
    ambiguous_resolved: int = 0
    fills: int = 0
    duplicate_fills_ignored: int = 0
    illegal_transitions: int = 0
    adopted: int = 0
    canceled_unknown: int = 0
    reject_codes: dict[str, int] = field(default_factory=dict)


class ExecutionEngine:
    def __init__(self, config: ExecutionConfig, instruments: dict[str, Instrument], clock: Clock,
                 venues: dict[Mode, OrderVenue], publish: Callable[[str, Any], None],
                 hot: HotState | None = None, journal: Journal | None = None, risk: RiskCheck | None = None,
                 mode: Mode = Mode.OBSERVATION, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.config = config
        self.instruments = instruments
        self.clock = clock
        self.venues = venues
        self.publish = publish
        self.hot = hot or MemoryHotState()
        self.journal = journal or MemoryJournal()
        self.risk = risk
        self.mode = mode
        self._sleep = sleep
        self.orders: dict[str, Order] = {}
        self.order_mode: dict[str, Mode] = {}
        self.request_of: dict[str, str] = {}
        self._ts_signal: dict[str, int] = {}
        """client order id -> the request id that created it (persisted with the order)."""
        self.by_venue_id: dict[int, str] = {}
        self.positions = {s: Position(ins) for s, ins in instruments.items()}
        self.marks: dict[str, int] = {}
        self.available_balance: int | None = None
        self.breaker = CircuitBreaker(clock)
        self.rate = SlidingWindowLimit(clock, config.limits.max_orders_per_second)
        self.halted = False
        self.halt_reason = ""
        self.draining = False
        self.stats = ExecutionStats()
        self._inflight: dict[str, asyncio.Future[Outcome]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.on_halt: list[Callable[[str], Awaitable[None]]] = []
        self.tick_to_order_ns: deque[int] = deque(maxlen=10_000)
        """Market data receipt (the request's ts_signal_ns) -> signed request handed to the socket."""
        self._events: asyncio.Queue[VenueOrderEvent] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.on_outcome: list[Callable[[Outcome], None]] = []
        """Observers of every submit answer (metrics); called synchronously."""

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load hot state, start the venues' event streams, reconcile with the venue, then accept."""
        for doc in await self.hot.load_orders():
            order = order_from_json(doc)
            self.orders[order.client_order_id] = order
            self.order_mode[order.client_order_id] = Mode(doc.get("mode", "live"))
            self.request_of[order.client_order_id] = doc.get("request_id", "")
            if order.venue_order_id:
                self.by_venue_id[order.venue_order_id] = order.client_order_id
        self.halted, self.halt_reason = await self.hot.get_halt()
        self._worker = asyncio.create_task(self._event_worker(), name="execution-events")
        for venue in self._distinct_venues():
            await venue.start(self.on_venue_event, lambda v=venue: self.reconcile(v))
        for venue in self._distinct_venues():
            await self.reconcile(venue)

    async def stop(self) -> None:
        for venue in self._distinct_venues():
            await venue.stop()
        if self._worker is not None:
            self._worker.cancel()

    def _distinct_venues(self) -> list[OrderVenue]:
        seen: list[OrderVenue] = []
        for venue in self.venues.values():
            if all(venue is not v for v in seen):
                seen.append(venue)
        return seen

    def _venue(self, mode: Mode) -> OrderVenue | None:
        return self.venues.get(mode)

    async def set_mode(self, mode: Mode) -> None:
        log.info("execution mode %s -> %s", self.mode.value, mode.value)
        self.mode = mode

    # -- submission -----------------------------------------------------------------------------
    async def submit(self, request: OrderRequest) -> Outcome:
        """Validate, persist, send; the same request id always gets the same answer."""
        self.stats.submitted += 1
        stored = await self.hot.get_answer(request.request_id)
        if stored is not None:
            self.stats.duplicates_answered += 1
            return self._outcome_from_answer(request.request_id, stored)
        inflight = self._inflight.get(request.request_id)
        if inflight is not None:
            self.stats.duplicates_answered += 1
            return await asyncio.shield(inflight)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._inflight[request.request_id] = future
        try:
            outcome = await self._submit(request)
            await self.hot.put_answer(request.request_id, self._answer(outcome), self.config.idempotency_ttl_s)
            for observer in self.on_outcome:
                observer(outcome)
            future.set_result(outcome)
            return outcome
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a waiting duplicate re-raises it, nobody else must
            raise
        finally:
            self._inflight.pop(request.request_id, None)

    async def _submit(self, request: OrderRequest) -> Outcome:
        rejection = self._validate(request)
        if rejection is None and self.risk is not None:
            verdict = await self.risk.check(request, self.marks.get(request.symbol))
            if isinstance(verdict, Denied):
                rejection = Rejection(RejectCode.RISK_DENIED, verdict.reason)
        if rejection is not None:
            return self._reject(request, rejection)
        client_id = request.client_order_id or client_order_id_for(request.request_id)
        existing = self.orders.get(client_id)
        if existing is not None:
            if self.request_of.get(client_id) == request.request_id:
                # The same request, whose answer was lost (a crash between sending and answering).
                self.stats.duplicates_answered += 1
                if existing.status is OrderStatus.REJECTED:
                    return Outcome(request.request_id, False, existing,
                                   Rejection(RejectCode.SUBMIT_FAILED, existing.reject_reason or "rejected"))
                return Outcome(request.request_id, True, existing)
            return self._reject(request, Rejection(RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                                                   f"client order id {client_id} was already used"))
        now = self.clock.now_ns()
        order = Order(client_id, request.symbol, request.side, request.order_type, request.qty_steps,
                      request.price_ticks, request.time_in_force, request.reduce_only, request.stop_price_ticks,
                      request.strategy_id, ts_created_ns=now, ts_updated_ns=now)
        mode = self.mode
        self.orders[client_id] = order
        self.order_mode[client_id] = mode
        self.request_of[client_id] = request.request_id
        if request.ts_signal_ns:
            self._ts_signal[client_id] = request.ts_signal_ns
        order.apply(OrderEvent.SUBMIT, now)
        await self._persist(order, "submit")  # before the request leaves: a crash now loses nothing
        venue = self._venue(mode)
        assert venue is not None
        async with self._lock(client_id):
            state, rejection = await self._send_with_retries(venue, order)
            if rejection is not None:
                if order.status in (OrderStatus.NEW, OrderStatus.PENDING_SUBMIT):
                    order.reject_reason = rejection.message
                    order.apply(OrderEvent.REJECT, self.clock.now_ns())
                    await self._persist(order, "reject", rejection.message)
                    self._publish_order(order)
                self.stats.rejected += 1
                self._count(rejection.code)
                return Outcome(request.request_id, False, order, rejection)
            assert state is not None
            self._apply_venue_state(order, state)
            await self._persist(order, "ack")
            self._publish_order(order)
        self.stats.accepted += 1
        return Outcome(request.request_id, True, order)

    def _lock(self, client_id: str) -> asyncio.Lock:
        lock = self._locks.get(client_id)
        if lock is None:
            lock = self._locks[client_id] = asyncio.Lock()
        return lock

    async def _send_with_retries(self, venue: OrderVenue, order: Order) -> tuple[VenueOrderState | None,
                                                                                  Rejection | None]:
        last_error = ""
        for attempt in range(self.config.max_submit_attempts):
            if attempt:
                self.stats.retries += 1
                # Before any retry: did the previous attempt reach the venue after all?
                known = await self._query_quietly(venue, order)
                if known is not None:
                    self.stats.ambiguous_resolved += 1
                    return known, None
                await self._sleep(self.config.retry_backoff_s * (2 ** (attempt - 1)))
            if not self.breaker.allow():
                return None, Rejection(RejectCode.CIRCUIT_OPEN, "circuit breaker open: the venue is failing")
            try:
                state = await venue.place(order, self._latency_probe(order))
                self.breaker.success()
                return state, None
            except errors.OrderRejected as exc:
                self.breaker.success()  # the venue works; it refused this order
                return None, Rejection(RejectCode.VENUE_REJECTED, exc.msg, exc.code)
            except errors.AuthenticationFailed as exc:
                await self.halt(f"venue authentication failed ({exc.code}): trading stopped", "execution")
                return None, Rejection(RejectCode.VENUE_REJECTED, exc.msg, exc.code)
            except errors.RateLimited as exc:
                last_error = f"rate limited ({exc.status})"
                if exc.retry_after_s > self.config.max_rate_limit_wait_s:
                    break
                await self._sleep(exc.retry_after_s)
            except (errors.ServiceUnavailable, errors.UnknownExecutionStatus) as exc:
                self.breaker.failure()
                last_error = exc.msg
            except errors.VenueError as exc:
                return None, Rejection(RejectCode.VENUE_REJECTED, exc.msg, exc.code)
        known = await self._query_quietly(venue, order)
        if known is not None:
            self.stats.ambiguous_resolved += 1
            return known, None
        return None, Rejection(RejectCode.SUBMIT_FAILED, f"not accepted after "
                                                         f"{self.config.max_submit_attempts} attempts: {last_error}")

    def _latency_probe(self, order: Order) -> Callable[[int], None] | None:
        ts_signal = self._ts_signal.pop(order.client_order_id, 0)
        if not ts_signal:
            return None
        return lambda written_ns: self.tick_to_order_ns.append(written_ns - ts_signal)

    async def _query_quietly(self, venue: OrderVenue, order: Order) -> VenueOrderState | None:
        for _ in range(3):
            try:
                return await venue.query(order.symbol, order.client_order_id)
            except errors.RateLimited as exc:
                await self._sleep(min(exc.retry_after_s, self.config.max_rate_limit_wait_s))
            except errors.VenueError:
                await self._sleep(self.config.retry_backoff_s)
        return None

    def _apply_venue_state(self, order: Order, state: VenueOrderState) -> None:
        order.venue_order_id = state.venue_order_id
        self.by_venue_id[state.venue_order_id] = order.client_order_id
        now = self.clock.now_ns()
        # Fills are applied from the event stream (trade ids); the answer only moves the lifecycle.
        # An answer that says "expired after filling 0.3" must not close the order before those
        # fills arrive: it is accepted, and the stream's own events finish it in order.
        if order.status is OrderStatus.PENDING_SUBMIT:
            unfilled_terminal = state.status in ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH") and \
                state.executed_steps <= order.filled_steps
            if not unfilled_terminal:
                order.apply(OrderEvent.ACCEPT, now)
            elif state.status == "CANCELED":
                order.apply(OrderEvent.CANCEL, now)
            else:
                order.apply(OrderEvent.EXPIRE, now)

    def _validate(self, request: OrderRequest) -> Rejection | None:
        if self.mode is Mode.OBSERVATION:
            log.info("observation mode: order not sent", extra={"request_id": request.request_id,
                                                                "symbol": request.symbol})
            return Rejection(RejectCode.OBSERVATION_MODE, "observation mode: orders are logged, not sent")
        if self.halted:
            return Rejection(RejectCode.HALTED, f"trading halted: {self.halt_reason}")
        if self.draining:
            return Rejection(RejectCode.DRAINING, "execution is draining for shutdown")
        ins = self.instruments.get(request.symbol)
        if ins is None:
            return Rejection(RejectCode.UNKNOWN_SYMBOL, f"unknown symbol {request.symbol}")
        if not request.request_id:
            return Rejection(RejectCode.INVALID_REQUEST, "request_id is required (it makes retries safe)")
        if request.order_type is OrderType.LIMIT and request.price_ticks is None:
            return Rejection(RejectCode.INVALID_REQUEST, "a LIMIT order needs a price")
        if request.order_type is OrderType.MARKET and request.price_ticks is not None:
            return Rejection(RejectCode.INVALID_REQUEST, "a MARKET order takes no price")
        if request.order_type.is_conditional and request.stop_price_ticks is None:
            return Rejection(RejectCode.INVALID_REQUEST, f"a {request.order_type.value} order needs a stop price")
        if self.breaker.is_open:
            return Rejection(RejectCode.CIRCUIT_OPEN, "circuit breaker open: the venue is failing")
        mark = self.marks.get(request.symbol)
        violation = check_order(ins, side=request.side, order_type=request.order_type, qty_steps=request.qty_steps,
                                price_ticks=request.price_ticks, mark_price_ticks=mark,
                                reduce_only=request.reduce_only)
        if violation is not None:
            return Rejection(RejectCode.FILTER, violation.message, violation.code)
        reference = request.price_ticks or mark
        position = self.positions[request.symbol]
        if request.reduce_only:
            if position.qty_steps == 0 or (position.qty_steps > 0) == (request.side is Side.BUY):
                return Rejection(RejectCode.FILTER, "reduce-only order would not reduce the position", -2022)
        elif reference is not None:
            limit = self.config.limits.max_position_usdt
            after = position.qty_steps + request.side.sign * request.qty_steps
            if limit and ins.notional(reference, abs(after)) > limit and abs(after) > abs(position.qty_steps):
                return Rejection(RejectCode.POSITION_LIMIT, f"position would be {ins.format_qty(abs(after))} "
                                                            f"{request.symbol}, over the limit")
            if self.available_balance is not None:
                margin = ins.notional(reference, request.qty_steps) // max(1, self.config.limits.leverage)
                if margin > self.available_balance:
                    return Rejection(RejectCode.INSUFFICIENT_MARGIN, "available margin is insufficient", -2019)
        if not self.rate.try_acquire():
            return Rejection(RejectCode.RATE_LIMIT, f"more than {self.config.limits.max_orders_per_second} "
                                                    f"orders per second")
        return None

    def _reject(self, request: OrderRequest, rejection: Rejection) -> Outcome:
        self.stats.rejected += 1
        self._count(rejection.code)
        log.info("order refused: %s", rejection.message,
                 extra={"request_id": request.request_id, "code": rejection.code.value})
        return Outcome(request.request_id, False, None, rejection)

    def _count(self, code: RejectCode) -> None:
        self.stats.reject_codes[code.value] = self.stats.reject_codes.get(code.value, 0) + 1

    # -- cancels --------------------------------------------------------------------------------
    async def cancel(self, request_id: str, symbol: str, client_order_id: str = "",
                     venue_order_id: int = 0) -> Outcome:
        if not client_order_id and venue_order_id:
            client_order_id = self.by_venue_id.get(venue_order_id, "")
        order = self.orders.get(client_order_id)
        if order is None or order.symbol != symbol:
            return Outcome(request_id, False, None, Rejection(RejectCode.UNKNOWN_ORDER, "unknown order"))
        async with self._lock(client_order_id):
            if not order.is_open:
                return Outcome(request_id, False, order,
                               Rejection(RejectCode.NOT_CANCELABLE, f"order is {order.status.value}"))
            venue = self._venue(self.order_mode[client_order_id])
            assert venue is not None
            if order.status is not OrderStatus.PENDING_SUBMIT:
                order.apply(OrderEvent.CANCEL_REQUEST, self.clock.now_ns())
            try:
                state = await venue.cancel(symbol, client_order_id)
                self._finish_cancel(order, state.status)
            except errors.UnknownOrder:
                # Gone already: filled or cancelled at the venue. Ask what happened.
                known = await self._query_quietly(venue, order)
                self._finish_cancel(order, known.status if known else "CANCELED")
            except errors.VenueError as exc:
                if order.status is OrderStatus.PENDING_CANCEL:
                    order.apply(OrderEvent.CANCEL_REJECT, self.clock.now_ns())
                await self._persist(order, "cancel_failed", exc.msg)
                return Outcome(request_id, False, order,
                               Rejection(RejectCode.VENUE_REJECTED, exc.msg, getattr(exc, "code", 0)))
            await self._persist(order, "cancel")
            self._publish_order(order)
        return Outcome(request_id, not order.is_open, order)

    def _finish_cancel(self, order: Order, status: str) -> None:
        now = self.clock.now_ns()
        if not order.is_open:
            return
        if status == "CANCELED":
            order.apply(OrderEvent.CANCEL, now)
        elif status in ("EXPIRED", "EXPIRED_IN_MATCH"):
            order.apply(OrderEvent.EXPIRE, now)
        elif status == "FILLED":
            pass  # the fills arrive on the stream (or reconciliation) and complete it
        elif order.status is OrderStatus.PENDING_CANCEL:
            order.apply(OrderEvent.CANCEL_REJECT, now)

    async def cancel_all(self, request_id: str, symbol: str = "") -> tuple[int, list[Rejection]]:
        targets = [o for o in self.orders.values() if o.is_open and (not symbol or o.symbol == symbol)]
        results = await asyncio.gather(*(self.cancel(f"{request_id}:{o.client_order_id}", o.symbol,
                                                     o.client_order_id) for o in targets))
        canceled = sum(1 for r in results if r.accepted)
        errors_ = [r.rejection for r in results if r.rejection is not None]
        return canceled, errors_

    # -- halt -----------------------------------------------------------------------------------
    async def halt(self, reason: str, requested_by: str = "", flatten: bool = False) -> int:
        """Refuse new orders, cancel every open one; persistent and idempotent. Returns orders cancelled."""
        first = not self.halted
        self.halted, self.halt_reason = True, reason
        await self.hot.set_halt(True, reason)
        canceled, _ = await self.cancel_all(f"halt-{self.clock.now_ns()}")
        if flatten:
            await self._flatten()
        if first:
            log.warning("trading halted by %s: %s", requested_by or "?", reason)
            for hook in self.on_halt:
                await hook(reason)
        return canceled

    async def _flatten(self) -> None:
        """Reduce-only market orders closing every position, largest notional first."""
        positions = sorted((p for p in self.positions.values() if p.qty_steps),
                           key=lambda p: -p.notional(self.marks.get(p.symbol) or 0))
        was_halted = self.halted
        self.halted = False  # the flattening orders themselves must pass
        try:
            for pos in positions:
                side = Side.SELL if pos.qty_steps > 0 else Side.BUY
                await self._submit(OrderRequest(f"flatten-{pos.symbol}-{self.clock.now_ns()}", pos.symbol, side,
                                                OrderType.MARKET, abs(pos.qty_steps), reduce_only=True,
                                                strategy_id="emergency-flatten"))
        finally:
            self.halted = was_halted

    async def resume(self, requested_by: str) -> None:
        if not requested_by:
            raise ValueError("resume needs requested_by")
        self.halted, self.halt_reason = False, ""
        await self.hot.set_halt(False, "")
        log.warning("trading resumed by %s", requested_by)

    # -- venue events ---------------------------------------------------------------------------
    def on_venue_event(self, event: VenueOrderEvent) -> None:
        """An event from a venue's stream, queued: events are applied one at a time, in arrival order."""
        self._events.put_nowait(event)

    async def _event_worker(self) -> None:
        while True:
            event = await self._events.get()
            try:
                await self._on_venue_event(event)
            except Exception:  # never lose the worker: log, count, go on
                self.stats.illegal_transitions += 1
                log.exception("venue event failed")
            finally:
                self._events.task_done()

    async def settle(self) -> None:
        """Wait until every venue event received so far has been applied."""
        await self._events.join()

    async def _on_venue_event(self, event: VenueOrderEvent) -> None:
        client_id = event.client_order_id or self.by_venue_id.get(event.venue_order_id, "")
        order = self.orders.get(client_id)
        if order is None:
            if event.execution is Execution.TRADE and client_id:
                order = await self._adopt(event)
            if order is None:
                return
        try:
            if event.venue_order_id and not order.venue_order_id:
                order.venue_order_id = event.venue_order_id
                self.by_venue_id[event.venue_order_id] = order.client_order_id
            if event.execution is Execution.NEW:
                if order.status is OrderStatus.PENDING_SUBMIT:
                    order.apply(OrderEvent.ACCEPT, event.ts_event_ns)
                    await self._persist(order, "accepted")
                    self._publish_order(order)
            elif event.execution is Execution.TRADE:
                await self._apply_fill(order, event)
            else:
                if order.is_open:
                    order.apply(EVENT_FOR_EXECUTION[event.execution], event.ts_event_ns)
                    await self._persist(order, event.execution.value.lower())
                    self._publish_order(order)
        except (InvalidTransition, Overfill) as exc:
            self.stats.illegal_transitions += 1
            log.error("venue event refused by the order table: %s", exc)

    async def _apply_fill(self, order: Order, event: VenueOrderEvent) -> None:
        mode = self.order_mode.get(order.client_order_id, self.mode)
        # Trade ids are unique per venue and symbol; paper and live venues number theirs independently.
        if not await self.hot.add_trade(f"{mode.value}:{event.symbol}", event.trade_id):
            self.stats.duplicate_fills_ignored += 1
            return
        order.fill(event.last_qty_steps, event.last_price_ticks, event.ts_event_ns or self.clock.now_ns())
        result = self.positions[order.symbol].apply_fill(order.side, event.last_qty_steps, event.last_price_ticks,
                                                         event.commission)
        fill = Fill(order.symbol, order.client_order_id, order.venue_order_id or 0, event.trade_id, order.side,
                    event.last_price_ticks, event.last_qty_steps, event.commission, event.is_maker,
                    event.realized_pnl or result.realized_pnl, order.strategy_id, mode.value,
                    event.ts_event_ns or self.clock.now_ns())
        self.stats.fills += 1
        await self.journal.fill(fill, self.instruments[order.symbol])
        await self._persist(order, "fill")
        self.publish(fill_topic(order.symbol), fill)
        self._publish_order(order)

    async def _adopt(self, event: VenueOrderEvent) -> Order | None:
        """An order we did not place (manual, liquidation, lost state): track it from now on."""
        if not event.orig_qty_steps:
            return None
        try:
            order = Order(event.client_order_id, event.symbol, event.side,
                          OrderType(event.order_type or "MARKET"), event.orig_qty_steps,
                          event.price_ticks or None, reduce_only=event.reduce_only, strategy_id="external",
                          ts_created_ns=self.clock.now_ns())
        except ValueError:
            return None
        order.apply(OrderEvent.SUBMIT)
        order.apply(OrderEvent.ACCEPT)
        order.venue_order_id = event.venue_order_id
        self.orders[order.client_order_id] = order
        self.order_mode[order.client_order_id] = self.mode if self.mode is not Mode.OBSERVATION else Mode.LIVE
        self.by_venue_id[event.venue_order_id] = order.client_order_id
        self.stats.adopted += 1
        await self._persist(order, "adopted")
        return order

    # -- reconciliation -------------------------------------------------------------------------
    async def reconcile(self, venue: OrderVenue) -> None:
        """Bring local orders in line with the venue: adopt/cancel unknown open orders, settle ours,
        and apply fills we missed (a restart, a dropped user stream)."""
        try:
            venue_open = await venue.open_orders()
        except errors.VenueError as exc:
            log.warning("reconciliation skipped: %s", exc)
            return
        venue_open_ids = {e.client_order_id for e in venue_open}
        for event in venue_open:
            if event.client_order_id in self.orders:
                order = self.orders[event.client_order_id]
                if order.status is OrderStatus.PENDING_SUBMIT:
                    order.apply(OrderEvent.ACCEPT, self.clock.now_ns())
                    order.venue_order_id = event.venue_order_id
                    self.by_venue_id[event.venue_order_id] = order.client_order_id
                    await self._persist(order, "reconciled")
                continue
            if self.config.unknown_orders_policy == "cancel":
                try:
                    await venue.cancel(event.symbol, event.client_order_id)
                    self.stats.canceled_unknown += 1
                except errors.VenueError as exc:
                    log.warning("could not cancel unknown order %s: %s", event.client_order_id, exc)
            else:
                await self._adopt(event)
        symbols = {o.symbol for o in self.orders.values() if self.venues.get(self.order_mode[o.client_order_id])
                   is venue}
        for symbol in sorted(symbols):
            try:
                trades = await venue.trades(symbol)
            except errors.VenueError as exc:
                log.warning("fills of %s not reconciled: %s", symbol, exc)
                continue
            for trade in trades:
                if trade.venue_order_id in self.by_venue_id:
                    self.on_venue_event(trade)  # through the queue: one writer of order state
        await self.settle()
        for order in list(self.orders.values()):
            if not order.is_open or order.client_order_id in venue_open_ids:
                continue
            if self.venues.get(self.order_mode[order.client_order_id]) is not venue:
                continue
            state = await self._query_quietly(venue, order)
            if state is None:
                if order.status is OrderStatus.PENDING_SUBMIT:
                    # Never reached the venue: it is safe to call it rejected (its id is never reused).
                    order.reject_reason = "not found at the venue after a restart"
                    order.apply(OrderEvent.REJECT, self.clock.now_ns())
                    await self._persist(order, "reconciled", order.reject_reason)
                continue
            self._apply_venue_state(order, state)
            if state.status in ("CANCELED", "EXPIRED") and order.is_open:
                order.apply(OrderEvent.CANCEL if state.status == "CANCELED" else OrderEvent.EXPIRE,
                            self.clock.now_ns())
            await self._persist(order, "reconciled")
            self._publish_order(order)
        if venue is self.venues.get(self.mode) or self.mode is Mode.OBSERVATION:
            try:
                self.available_balance = await venue.available_balance()
                for symbol, (qty, entry) in (await venue.positions()).items():
                    if symbol in self.positions:
                        self.positions[symbol].qty_steps = qty
                        self.positions[symbol].cost = abs(qty) * entry
            except errors.VenueError as exc:
                log.warning("balance/positions not reconciled: %s", exc)

    # -- persistence and publication ------------------------------------------------------------
    async def _persist(self, order: Order, event: str, detail: str = "") -> None:
        mode = self.order_mode.get(order.client_order_id, self.mode)
        doc = order_to_json(order, {"mode": mode.value, "request_id": self.request_of.get(order.client_order_id, "")})
        await self.hot.save_order(doc)
        await self.journal.order_event(self.clock.now_ns(), doc, event, mode.value,
                                       self.instruments[order.symbol], detail)

    def _publish_order(self, order: Order) -> None:
        self.publish(order_topic(order.symbol), order)

    def _answer(self, outcome: Outcome) -> dict[str, Any]:
        rejection = outcome.rejection
        return {"accepted": outcome.accepted,
                "client_order_id": outcome.order.client_order_id if outcome.order else "",
                "rejection": None if rejection is None else {"code": rejection.code.value,
                                                             "message": rejection.message,
                                                             "venue_code": rejection.venue_code}}

    def _outcome_from_answer(self, request_id: str, answer: dict[str, Any]) -> Outcome:
        order = self.orders.get(answer.get("client_order_id", ""))
        rejection = answer.get("rejection")
        return Outcome(request_id, answer["accepted"], order,
                       None if rejection is None else Rejection(RejectCode(rejection["code"]), rejection["message"],
                                                                rejection["venue_code"]))

    # -- reads ----------------------------------------------------------------------------------
    def open_orders(self, symbol: str = "") -> list[Order]:
        return [o for o in self.orders.values() if o.is_open and (not symbol or o.symbol == symbol)]

    def on_mark(self, symbol: str, mark_ticks: int) -> None:
        self.marks[symbol] = mark_ticks
