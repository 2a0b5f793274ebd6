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
import dataclasses
import functools
import itertools
import logging
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Protocol

from celeris.domain.topics import fill_topic, order_topic
from celeris.domain.breaker import CircuitBreaker, SlidingWindowLimit
from celeris.domain.clock import Clock, utc_day_start_ns
from celeris.domain.exposure import BreachCode, ExposureLedger, ExposureLimits
from celeris.domain.instruments import Instrument, OrderType, check_order
from celeris.domain.modes import Mode
from celeris.domain.orders import InvalidTransition, Order, OrderEvent, OrderStatus, Overfill
from celeris.domain.positions import Position
from celeris.domain.risk import Approved, Denied
from celeris.domain.values import Side
from celeris.execution.model import EVENT_FOR_EXECUTION, ExecutionConfig, order_from_json, order_to_json
from celeris.domain.messages import Execution, Fill, OrderRequest, Outcome, RejectCode, Rejection, VenueOrderEvent, VenueOrderState, client_order_id_for, venue_tag
from celeris.execution.store import HotState, Journal, MemoryHotState, MemoryJournal
from celeris.execution.venue import OrderVenue
from celeris.venues.binance import errors
from celeris.transport.tasks import supervised

log = logging.getLogger(__name__)

FLATTEN_OWNER = "emergency-flatten"
"""The owner of the emergency stop's reduce-only orders (no strategy may use it)."""
RESERVED_OWNERS = frozenset({FLATTEN_OWNER, "external"})
MANUAL_OWNER = "manual"
"""The owner of an order that came without one (a person or a tool on the Execution API)."""


@functools.lru_cache(maxsize=4096)
def owner_tag(owner: str) -> str:
    """An owner as it appears in the venue's client order id (case and punctuation folded)."""
    return re.sub(r"[^a-z0-9]+", "-", owner.lower()).strip("-")


RESERVED_TAGS = frozenset(owner_tag(o) for o in RESERVED_OWNERS)
RESERVED_VENUE_TAGS = frozenset(venue_tag(o) for o in RESERVED_OWNERS)


class RiskCheck(Protocol):
    async def check(self, request: OrderRequest, mark_ticks: int | None) -> Approved | Denied: ...


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
    orphans_canceled: int = 0
    late_fills: int = 0
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
        # The venue's own order-count limits (Binance USD-M: 300 per 10 s, 1,200 per minute), kept at 90 %:
        # a -1015 there refuses every new order for a while, the flatten's included.
        self.venue_rate = (SlidingWindowLimit(clock, config.venue_orders_per_10s, 10.0),
                           SlidingWindowLimit(clock, config.venue_orders_per_minute, 60.0))
        self.halted = False
        self.halt_reason = ""
        self.halted_by = ""
        self.halted_at_ns = 0
        self._halt_lock = asyncio.Lock()
        self._sending: set[asyncio.Future[None]] = set()
        """Sends that passed the gate and have not finished: a halt waits for them, then cancels."""
        self._flatten_round = 0
        self._halt_requests = 0
        self._follow_up_flatten = False
        self.traded_modes: set[Mode] = set()
        """Modes this engine has sent orders in (from its records too): a flatten closes those venues only."""
        self.last_halt_canceled = 0
        self.last_halt_flat = True
        self._closing: dict[str, tuple[OrderEvent, int]] = {}
        """Orders the venue cancelled after filling part: closed once those fills have been applied."""
        self._halt_follow_up: asyncio.Task[None] | None = None
        self.audit_log: list[dict[str, Any]] = []
        self.alerts: list[tuple[int, str, str]] = []
        self.on_alert: list[Callable[[str, str], None]] = []
        self.exposure = ExposureLedger(instruments)
        self._day_start = 0
        self._day_start_pnl = 0
        self.owner_leases: dict[str, int] = {}
        """owner -> lease expiry (ns); 0 = released."""
        self._tasks: list[asyncio.Task[None]] = []
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
            self._sync_exposure(order)
            if order.strategy_id != FLATTEN_OWNER:
                self.traded_modes.add(self.order_mode[order.client_order_id])
        halted, reason = await self.hot.get_halt()
        if halted:  # a halt survives restarts until a person resumes
            self.halted, self.halt_reason, self.halted_by = True, reason, "(before restart)"
            log.warning("starting halted: %s", reason)
        self._worker = supervised("execution-events", self._event_worker)
        for venue in self._distinct_venues():
            await venue.start(self.on_venue_event, lambda v=venue: self.reconcile(v))
        for venue in self._distinct_venues():
            await self.reconcile(venue)
        if self.config.owner_lease_s > 0:
            interval = min(1.0, self.config.owner_lease_s / 2)
            self._tasks.append(supervised("execution-orphan-reaper", lambda: self._reaper(interval)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._halt_follow_up is not None:
            self._halt_follow_up.cancel()
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

    def set_limits(self, exposure: ExposureLimits, max_orders_per_second: int | None = None,
                   leverage: int | None = None) -> None:
        """New limits, used from the next order on (the configuration push; no restart)."""
        self.config.exposure = exposure
        self.config.limits.max_position_usdt = 0  # the exposure limits say it now
        if max_orders_per_second is not None:
            self.config.limits.max_orders_per_second = max_orders_per_second
            self.rate.limit = max_orders_per_second
        if leverage is not None:
            self.config.limits.leverage = leverage

    async def set_mode(self, mode: Mode) -> None:
        log.info("execution mode %s -> %s", self.mode.value, mode.value)
        self.mode = mode

    # -- submission -----------------------------------------------------------------------------
    async def submit(self, request: OrderRequest) -> Outcome:
        """Validate, persist, send; the same request id always gets the same answer."""
        self.stats.submitted += 1
        if not request.strategy_id:  # every order has an owner
            request = dataclasses.replace(request, strategy_id=MANUAL_OWNER)
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

    async def _submit(self, request: OrderRequest, flatten: bool = False, mode: Mode | None = None) -> Outcome:
        """The gate. Everything up to the reservation is synchronous, so two requests cannot both pass
        on the same headroom; the halt is checked again after every wait and just before the send."""
        rejection = self._validate(request, flatten)
        if rejection is not None:
            return self._reject(request, rejection)
        client_id = request.client_order_id or client_order_id_for(request.request_id, request.strategy_id)
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
        try:
            order = Order(client_id, request.symbol, request.side, request.order_type, request.qty_steps,
                          request.price_ticks, request.time_in_force, request.reduce_only, request.stop_price_ticks,
                          request.strategy_id, ts_created_ns=now, ts_updated_ns=now)
        except ValueError as exc:
            return self._reject(request, Rejection(RejectCode.INVALID_REQUEST, str(exc)))
        mode = mode or self.mode
        if not flatten:
            self.traded_modes.add(mode)
        # The reservation: from here this order counts as working in every later check (status NEW).
        self._register(order, mode, request.request_id)
        if request.ts_signal_ns:
            self._ts_signal[client_id] = request.ts_signal_ns
        if self.risk is not None and not flatten:
            try:
                verdict = await self.risk.check(request, self.marks.get(request.symbol))
            except BaseException:
                self._abandon(order, "the risk check failed")
                raise
            if isinstance(verdict, Denied):
                return self._refuse_reserved(request, order, Rejection(RejectCode.RISK_DENIED, verdict.reason))
        late = self._late_gate(order, flatten)
        if late is not None:
            return self._refuse_reserved(request, order, late)
        venue = self._venue(mode)
        assert venue is not None
        sending = asyncio.get_running_loop().create_future()
        self._sending.add(sending)
        try:
            async with self._lock(client_id):  # a cancel of this order waits until it has been sent
                late = self._late_gate(order, flatten)
                if late is not None:
                    return self._refuse_reserved(request, order, late)
                order.apply(OrderEvent.SUBMIT, self.clock.now_ns())
                await self._persist(order, "submit")  # before the request leaves: a crash now loses nothing
                late = self._late_gate(order, flatten)  # the halt may have come while the record was written
                if late is not None:
                    order.reject_reason = late.message
                    order.apply(OrderEvent.REJECT, self.clock.now_ns())
                    await self._persist(order, "reject", late.message)
                    self._publish_order(order)
                    self.stats.rejected += 1
                    self._count(late.code)
                    return Outcome(request.request_id, False, order, late)
                state, rejection = await self._send_with_retries(venue, order, flatten)
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
        finally:
            self._sending.discard(sending)
            sending.set_result(None)
        self.stats.accepted += 1
        return Outcome(request.request_id, True, order)

    def _register(self, order: Order, mode: Mode, request_id: str) -> None:
        cid = order.client_order_id
        self.orders[cid] = order
        self.order_mode[cid] = mode
        self.request_of[cid] = request_id
        self._sync_exposure(order)

    def _abandon(self, order: Order, reason: str) -> None:
        """A reserved order that never left: it stops counting (its id is never reused)."""
        if order.status is OrderStatus.NEW:
            order.reject_reason = reason
            order.apply(OrderEvent.REJECT, self.clock.now_ns())
            self._sync_exposure(order)

    def _refuse_reserved(self, request: OrderRequest, order: Order, rejection: Rejection) -> Outcome:
        self._abandon(order, rejection.message)
        self._ts_signal.pop(order.client_order_id, None)
        return self._reject(request, rejection)

    def _late_gate(self, order: Order, flatten: bool) -> Rejection | None:
        """What may have changed while we waited: a halt, a drain, a switch to observation, a cancel."""
        if order.status not in (OrderStatus.NEW, OrderStatus.PENDING_SUBMIT):
            return Rejection(RejectCode.HALTED if self.halted else RejectCode.NOT_CANCELABLE,
                             order.reject_reason or f"order was {order.status.value} before it was sent")
        if flatten:
            return None
        if self.halted:
            return Rejection(RejectCode.HALTED, f"trading halted: {self.halt_reason}")
        if self.draining:
            return Rejection(RejectCode.DRAINING, "execution is draining for shutdown")
        if self.mode is Mode.OBSERVATION or self.mode is not self.order_mode.get(order.client_order_id):
            return Rejection(RejectCode.OBSERVATION_MODE if self.mode is Mode.OBSERVATION else RejectCode.HALTED,
                             f"mode changed to {self.mode.value} before the order was sent")
        return None

    def _lock(self, client_id: str) -> asyncio.Lock:
        lock = self._locks.get(client_id)
        if lock is None:
            lock = self._locks[client_id] = asyncio.Lock()
        return lock

    async def _send_with_retries(self, venue: OrderVenue, order: Order, flatten: bool = False) -> tuple[
            VenueOrderState | None, Rejection | None]:
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
                if self.halted and not flatten:
                    # No new attempt once halted; one last look below settles whether an earlier one landed.
                    last_error = f"trading halted: {self.halt_reason}"
                    break
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
                # This order's lock is held here and the halt cancels every order (this one included):
                # close the gate now, run the rest of the halt outside the lock.
                self._halt_soon(f"venue authentication failed ({exc.code}): trading stopped", "execution")
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

    def _validate(self, request: OrderRequest, flatten: bool = False) -> Rejection | None:
        """Everything checked before the reservation, synchronously."""
        if self.mode is Mode.OBSERVATION and not flatten:
            log.info("observation mode: order not sent", extra={"request_id": request.request_id,
                                                                "symbol": request.symbol})
            return Rejection(RejectCode.OBSERVATION_MODE, "observation mode: orders are logged, not sent")
        if self.halted and not (flatten and request.reduce_only):
            return Rejection(RejectCode.HALTED, f"trading halted: {self.halt_reason}")
        if self.draining and not flatten:
            return Rejection(RejectCode.DRAINING, "execution is draining for shutdown")
        ins = self.instruments.get(request.symbol)
        if ins is None:
            return Rejection(RejectCode.UNKNOWN_SYMBOL, f"unknown symbol {request.symbol}")
        if not request.request_id:
            return Rejection(RejectCode.INVALID_REQUEST, "request_id is required (it makes retries safe)")
        if not flatten and (owner_tag(request.strategy_id) in RESERVED_TAGS
                            or venue_tag(request.strategy_id) in RESERVED_VENUE_TAGS):
            return Rejection(RejectCode.INVALID_REQUEST, f"owner {request.strategy_id!r} is reserved "
                                                         f"(or reads as a reserved one at the venue)")
        if request.client_order_id and not flatten and \
                request.client_order_id != client_order_id_for(request.request_id, request.strategy_id):
            return Rejection(RejectCode.INVALID_REQUEST, "client_order_id is derived from request_id and the owner "
                                                         "(leave it empty): the venue's order list must say whose "
                                                         "each order is")
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
            if flatten:
                pass  # sized from the venue's own position just now; the venue enforces reduce-only
            elif position.qty_steps == 0 or (position.qty_steps > 0) == (request.side is Side.BUY):
                return Rejection(RejectCode.FILTER, "reduce-only order would not reduce the position", -2022)
        else:
            limits = self.config.exposure_limits()
            breach = self._exposure_view().check(request.symbol, request.side, request.qty_steps,
                                                 request.price_ticks, False, self.marks, limits,
                                                 self._day_pnl() if limits.max_daily_loss else 0)
            if breach is not None:
                code = RejectCode.POSITION_LIMIT if breach.code is BreachCode.POSITION_LIMIT else \
                    RejectCode.EXPOSURE_LIMIT
                return Rejection(code, f"{breach.code.value}: {breach.message}")
            if reference is not None and self.available_balance is not None:
                margin = ins.notional(reference, request.qty_steps) // max(1, self.config.limits.leverage)
                if margin > self.available_balance - self._working_margin():
                    return Rejection(RejectCode.INSUFFICIENT_MARGIN, "available margin is insufficient "
                                     "(working orders included)", -2019)
        if not flatten and not self.rate.try_acquire():
            return Rejection(RejectCode.RATE_LIMIT, f"more than {self.config.limits.max_orders_per_second} "
                                                    f"orders per second")
        if not flatten and not (all(w.has_room() for w in self.venue_rate)
                                and all([w.try_acquire() for w in self.venue_rate])):
            return Rejection(RejectCode.RATE_LIMIT, f"the venue's order limits ({self.config.venue_orders_per_10s} "
                                                    f"per 10 s, {self.config.venue_orders_per_minute} per minute, "
                                                    f"90 % of the venue's) are reached")
        return None

    def _exposure_view(self) -> ExposureLedger:
        """The ledger, kept in step with the order table (`_sync_exposure` at every change) and the
        positions (read now)."""
        for symbol, book in self.exposure.symbols.items():
            book.position_steps = self.positions[symbol].qty_steps
        return self.exposure

    def _sync_exposure(self, order: Order) -> None:
        """One order's place in the ledger after any change: working with what is left, or gone."""
        if order.symbol not in self.exposure.symbols:
            return
        if order.is_open:
            self.exposure.track(order.client_order_id, order.symbol, order.side, order.remaining_steps,
                                order.price_ticks, order.reduce_only)
        else:
            self.exposure.release(order.client_order_id, order.symbol)
            self._closing.pop(order.client_order_id, None)

    def _working_margin(self) -> int:
        """Initial margin the working (not yet filled) orders will need: the venue's balance does not
        show orders it has not seen yet."""
        total = 0
        for symbol, book in self.exposure.symbols.items():
            price = book.highest_price(self.marks.get(symbol))
            if price is None:
                continue
            qty = book.pending(Side.BUY) + book.pending(Side.SELL)
            total += self.instruments[symbol].notional(price, qty) // max(1, self.config.limits.leverage)
        return total

    def _day_pnl(self) -> int:
        """Realized - fees + unrealized since 00:00 UTC (money units), for the daily-loss limit."""
        now = self.clock.now_ns()
        total = 0
        for symbol, pos in self.positions.items():
            total += pos.realized_pnl - pos.fees_paid
            mark = self.marks.get(symbol)
            if mark is not None and pos.qty_steps:
                total += pos.unrealized_pnl(mark)
        day = utc_day_start_ns(now)
        if day != self._day_start:
            self._day_start, self._day_start_pnl = day, total
        return total - self._day_start_pnl

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
            if order.status is OrderStatus.NEW:
                # Reserved, still in its pre-trade checks: it will never be sent.
                self._abandon(order, "cancelled before it was sent")
                return Outcome(request_id, True, order)
            venue = self._venue(self.order_mode[client_order_id])
            assert venue is not None
            if order.status is not OrderStatus.PENDING_SUBMIT:
                order.apply(OrderEvent.CANCEL_REQUEST, self.clock.now_ns())
            try:
                state = await venue.cancel(symbol, client_order_id)
                self._finish_cancel(order, state.status, state.executed_steps)
            except errors.UnknownOrder:
                # Gone already: filled or cancelled at the venue. Ask what happened.
                known = await self._query_quietly(venue, order)
                self._finish_cancel(order, known.status if known else "CANCELED",
                                    known.executed_steps if known else None)
            except errors.VenueError as exc:
                if order.status is OrderStatus.PENDING_CANCEL:
                    order.apply(OrderEvent.CANCEL_REJECT, self.clock.now_ns())
                await self._persist(order, "cancel_failed", exc.msg)
                return Outcome(request_id, False, order,
                               Rejection(RejectCode.VENUE_REJECTED, exc.msg, getattr(exc, "code", 0)))
            await self._persist(order, "cancel")
            self._publish_order(order)
        return Outcome(request_id, not order.is_open or client_order_id in self._closing, order)

    def _finish_cancel(self, order: Order, status: str, executed_steps: int | None = None) -> None:
        now = self.clock.now_ns()
        if not order.is_open:
            return
        if status in ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH") and executed_steps is not None \
                and executed_steps > order.filled_steps:
            # The venue filled part of it before the cancel, and its fill events have not arrived yet (the
            # REST answer overtook the stream): close it when they have, so no fill meets a closed order.
            self._closing[order.client_order_id] = (
                OrderEvent.CANCEL if status == "CANCELED" else OrderEvent.EXPIRE, executed_steps)
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
    def _halt_soon(self, reason: str, requested_by: str) -> None:
        """Close the gate now; cancel and persist in a task (for callers that hold an order's lock)."""
        if not self.halted:
            self.halted, self.halt_reason = True, reason
        task = asyncio.ensure_future(self.halt(reason, requested_by))
        self._tasks.append(task)

    async def halt(self, reason: str, requested_by: str = "", flatten: bool = False) -> int:
        """Halt: from this call on no order that could add exposure is sent. Then wait for the sends that
        passed the gate before it, cancel every open order and, if asked, flatten until flat. Persistent
        (it survives a restart until a person resumes) and idempotent. Returns the orders cancelled."""
        self._halt_requests += 1  # a resume queued before this halt must not undo it
        first = not self.halted or not self.halted_at_ns
        self.halted = True  # synchronously: the gate is closed from this line
        self.halt_reason = self.halt_reason or reason
        now = self.clock.now_ns()
        if first:
            self.halt_reason, self.halted_by, self.halted_at_ns = reason, requested_by or "?", now
            log.warning("trading halted by %s: %s", requested_by or "?", reason)
        async with self._halt_lock:
            # A resume may have run while this halt waited for the lock: this halt stands, and is persisted.
            if not self.halted:
                self.halted, self.halt_reason, self.halted_by, self.halted_at_ns = True, reason, requested_by, now
                first = True
            await self.hot.set_halt(True, self.halt_reason)
            if first:
                self._audit("halt", requested_by, reason)
            await self._wait_sends()
            if flatten:
                self._follow_up_flatten = True  # until flat: a follow-up of an earlier halt flattens too
            canceled, _ = await self.cancel_all(f"halt-{now}")
            self.last_halt_canceled = canceled
            flat = await self._flatten() if flatten else True
            self.last_halt_flat = flat
            still_open = len([o for o in self.open_orders() if o.client_order_id not in self._closing])
            if still_open or not flat:
                # A venue that refuses now (rate limits, a ban, an outage): say so, and keep at it.
                self._alert("critical", f"halt incomplete: {still_open} orders still open"
                                        f"{'' if flat else ', positions not flat'}; retrying until done")
                self._follow_up_halt(flatten and not flat)
        if first:
            for hook in self.on_halt:
                await hook(reason)
        return canceled

    def _follow_up_halt(self, flatten: bool) -> None:
        self._follow_up_flatten = self._follow_up_flatten or flatten  # a later halt may ask for more
        if self._halt_follow_up is not None and not self._halt_follow_up.done():
            return
        self._halt_follow_up = asyncio.ensure_future(self._finish_halt())

    async def _finish_halt(self, first_delay_s: float = 2.0) -> None:
        """While halted: cancel what is still open and flatten what is left, with back-off, until done.
        Each round holds the halt lock and stops at once if trading was resumed meanwhile."""
        delay = first_delay_s
        while self.halted:
            await self._sleep(delay)
            async with self._halt_lock:
                if not self.halted:
                    return
                flatten = self._follow_up_flatten
                try:
                    await self.cancel_all(f"halt-retry-{self.clock.now_ns()}")
                    flat = await self._flatten() if flatten else True
                except Exception:
                    log.exception("halt follow-up failed this round")
                    flat = False
                if flat and not self.open_orders():
                    self.last_halt_flat = True
                    self._follow_up_flatten = False
                    log.warning("halt completed after retries: no open orders%s", ", flat" if flatten else "")
                    return
            delay = min(delay * 2, 30.0)

    async def _wait_sends(self, timeout_s: float = 10.0) -> None:
        """Sends that passed the gate before the halt: let them finish, so the cancel below finds them."""
        pending = [f for f in self._sending if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)

    async def _flatten(self) -> bool:
        """Close every position, on every venue that holds one (the live venue's survives a switch to
        simulation or observation), with reduce-only market orders through this engine's own order path
        (deterministic ids, the state table, user-stream fills), sliced to the symbol's market max
        quantity, largest notional first; re-read the venue's position and repeat until flat or
        `flatten_timeout_s` (then a critical alert). Returns whether every account is flat."""
        deadline = self.clock.now_ns() + int(self.config.flatten_timeout_s * 1e9)
        self._flatten_round += 1
        sequence = itertools.count()
        while True:
            left: list[str] = []
            for mode, venue in self._venues_by_mode():
                positions = await self._positions_at(venue, mode)
                if positions is None:  # not known is not flat
                    left.append(f"positions at the {mode.value} venue (unreadable)")
                    continue
                open_positions = sorted(((s, q) for s, q in positions.items() if q),
                                        key=lambda sq: -self.instruments[sq[0]].notional(
                                            self.marks.get(sq[0]) or 1, abs(sq[1])))
                if not open_positions:
                    continue
                left += [f"{s} {self.instruments[s].format_qty(q)} ({mode.value})" for s, q in open_positions]
                if self.clock.now_ns() >= deadline:
                    continue
                await self.cancel_all(f"flatten-cancel-{self.clock.now_ns()}")
                for symbol, qty in open_positions:
                    await self._close_position(symbol, qty, mode, sequence)
            if not left:
                return True
            if self.clock.now_ns() >= deadline:
                self._alert("critical", f"emergency flatten did not finish in {self.config.flatten_timeout_s:g} s: "
                                        f"still open {', '.join(left)}; manual handling needed")
                return False
            await self.settle()
            await self._sleep(self.config.flatten_poll_s)

    def _venues_by_mode(self) -> list[tuple[Mode, OrderVenue]]:
        """The venues to flatten, each once, live first: the current mode's, and every venue this engine has
        traded (a live position it built survives a switch to simulation or observation). A venue it never
        traded is not touched (in simulation mode the kill switch is the paper account's)."""
        wanted = set(self.traded_modes) | ({self.mode} if self.mode is not Mode.OBSERVATION else set())
        out: list[tuple[Mode, OrderVenue]] = []
        for mode in (Mode.LIVE, Mode.SIMULATION):
            venue = self.venues.get(mode)
            if venue is not None and mode in wanted and all(venue is not v for _, v in out):
                out.append((mode, venue))
        return out

    async def _close_position(self, symbol: str, qty: int, mode: Mode, sequence: Any) -> None:
        ins = self.instruments[symbol]
        side = Side.SELL if qty > 0 else Side.BUY
        remaining = abs(qty)
        while remaining > 0:
            chunk = min(remaining, ins.market_max_qty_steps or remaining)
            request_id = f"flatten-{self._flatten_round}-{mode.value}-{symbol}-{self.clock.now_ns()}-{next(sequence)}"
            outcome = await self._submit(OrderRequest(request_id, symbol, side, OrderType.MARKET, chunk,
                                                      reduce_only=True, strategy_id=FLATTEN_OWNER),
                                         flatten=True, mode=mode)
            if not outcome.accepted:
                log.warning("flatten order for %s (%s) refused: %s", symbol, mode.value,
                            outcome.rejection.message if outcome.rejection else "?")
                return
            remaining -= chunk

    async def _positions_at(self, venue: OrderVenue, mode: Mode) -> dict[str, int] | None:
        """A venue's positions as it reports them; the engine's own view for the traded venue if it cannot
        be read (reconciliation wins: the traded venue's answer also updates the engine's positions)."""
        traded = venue is self.venues.get(self.mode)
        try:
            answer = await venue.positions()
        except errors.VenueError as exc:
            log.warning("positions not read from the %s venue: %s", mode.value, exc)
            return None
        if traded:
            for symbol, (qty, entry) in answer.items():
                if symbol in self.positions:
                    self.positions[symbol].qty_steps = qty
                    self.positions[symbol].cost = abs(qty) * entry
        return {s: q for s, (q, _) in answer.items() if s in self.instruments}

    async def resume(self, requested_by: str, reason: str = "") -> None:
        if not requested_by:
            raise ValueError("resume needs requested_by")
        requested_after = self._halt_requests
        async with self._halt_lock:
            if self._halt_requests != requested_after:
                # A halt was requested after this resume (it waited for a running halt): the halt stands.
                self._audit("resume-superseded", requested_by, reason)
                log.warning("resume by %s superseded by a later halt", requested_by)
                return
            was_halted = self.halted
            await self.hot.set_halt(False, "")  # persisted first; the gate opens only after
            if self._halt_requests != requested_after:
                await self.hot.set_halt(True, self.halt_reason)
                self._audit("resume-superseded", requested_by, reason)
                return
            self.halted, self.halt_reason, self.halted_at_ns = False, "", 0
        if was_halted:
            self._audit("resume", requested_by, reason)
            log.warning("trading resumed by %s", requested_by)

    def _audit(self, action: str, by: str, reason: str) -> None:
        self.audit_log.append({"ts_ns": self.clock.now_ns(), "action": action, "by": by or "?", "reason": reason})

    def _alert(self, severity: str, message: str) -> None:
        (log.critical if severity == "critical" else log.warning)("execution alert: %s", message)
        self.alerts.append((self.clock.now_ns(), severity, message))
        for observer in self.on_alert:
            observer(severity, message)

    # -- owners ---------------------------------------------------------------------------------
    def renew_owners(self, owners: Iterable[str], lease_s: float | None = None) -> None:
        """The owners (strategies) that are alive renew their lease; their orders stay working."""
        until = self.clock.now_ns() + int((lease_s or self.config.owner_lease_s) * 1e9)
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
        now = self.clock.now_ns()
        parts = owner.split("+")
        if not any(p in self.owner_leases for p in parts):
            return True  # an owner this engine never heard of (a client of the gRPC API without leases)
        return all(self.owner_leases.get(p, 0) > now for p in parts)

    async def reap_orphans(self) -> int:
        """Cancel every open order whose owner is gone; returns how many were cancelled."""
        orphans = [o for o in self.orders.values() if o.is_open and o.status is not OrderStatus.NEW
                   and not self.owner_alive(o.strategy_id)]
        if not orphans:
            return 0
        results = await asyncio.gather(*(self.cancel(f"orphan-{o.client_order_id}", o.symbol, o.client_order_id)
                                         for o in orphans))
        reaped = sum(1 for r in results if r.accepted)
        self.stats.orphans_canceled += reaped
        if reaped:
            log.warning("cancelled %d orphan orders (owner gone)", reaped)
        return reaped

    async def _reaper(self, interval_s: float) -> None:
        while True:
            await self._sleep(interval_s)
            try:
                await self.reap_orphans()
            except Exception:
                log.exception("orphan reaper failed this round")

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
                if order.is_open and event.order_status in ("FILLED", "EXPIRED"):
                    # The venue finished it short of its quantity (a reduce-only order clamped to the
                    # position): what was not filled will never be.
                    order.apply(OrderEvent.EXPIRE, event.ts_event_ns)
                    await self._persist(order, "clamped")
                    self._publish_order(order)
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
        if order.is_open and event.last_qty_steps <= order.remaining_steps:
            order.fill(event.last_qty_steps, event.last_price_ticks, event.ts_event_ns or self.clock.now_ns())
            closing = self._closing.get(order.client_order_id)
            if closing is not None and order.is_open and order.filled_steps >= closing[1]:
                del self._closing[order.client_order_id]
                order.apply(closing[0], event.ts_event_ns or self.clock.now_ns())
        else:
            # Money moved at the venue whatever our order table says: the position takes the fill. (An
            # order closed here before its last fill arrived; the table is not moved backwards.)
            self.stats.late_fills += 1
            order.filled_steps += event.last_qty_steps
            order.filled_quote += event.last_qty_steps * event.last_price_ticks
            log.warning("fill %s on %s order %s applied to the position", event.trade_id, order.status.value,
                        order.client_order_id)
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
        self._sync_exposure(order)
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
        self._sync_exposure(order)  # every change of an order is persisted: the ledger follows here
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
