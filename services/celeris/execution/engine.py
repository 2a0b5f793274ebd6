"""The execution engine: validated, idempotent order entry and the lifecycle of every order.

The facade, and the owner of the shared state: the order state table (orders, their modes and request
ids, the venue id index, the exposure ledger kept in step with it), positions, marks, the balance, the
mode, the statistics, and the persistence and publication of every change of an order. The rules and
the I/O live in their own modules, each with the state only it needs:
- celeris.execution.validation: the pre-trade checks, pure and synchronous;
- celeris.execution.submission: idempotent submission, retries, ambiguous outcomes, cancels;
- celeris.execution.reconciliation: venue events and fills, startup reconciliation, owner leases;
- celeris.execution.halt: the atomic halt gate, cancel-all and flatten, resume.
Modes are switched at run time (observation: nothing leaves; simulation: the paper venue; live: the
venue).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from celeris.domain.breaker import CircuitBreaker, SlidingWindowLimit
from celeris.domain.clock import Clock
from celeris.domain.exposure import ExposureLedger, ExposureLimits
from celeris.domain.instruments import Instrument
from celeris.domain.messages import (
    AmendRequest,
    OrderRequest,
    Outcome,
    Rejection,
    VenueOrderEvent,
    VenueOrderState,
)
from celeris.domain.modes import Mode
from celeris.domain.orders import Order, OrderEvent, OrderStatus
from celeris.domain.positions import Position
from celeris.domain.risk import Approved, Denied
from celeris.domain.topics import order_topic
from celeris.execution.retention import ClosedOrderRetention
from celeris.execution.halt import HaltControl
from celeris.execution.model import ExecutionConfig, order_from_json, order_to_json
from celeris.execution.reconciliation import Reconciliation
from celeris.execution.store import HotState, Journal, MemoryHotState, MemoryJournal
from celeris.execution.submission import Submission
from celeris.execution.surface import OrderSurface
from celeris.execution.validation import (  # noqa: F401
    FLATTEN_OWNER,
    MANUAL_OWNER,
    RESERVED_OWNERS,
    RESERVED_TAGS,
    RESERVED_VENUE_TAGS,
    OrderRates,
    PreTradeChecks,
    owner_tag,
)
from celeris.execution.venue import OrderVenue
from celeris.transport.tasks import supervised

log = logging.getLogger(__name__)

__all__ = [
    "FLATTEN_OWNER",
    "MANUAL_OWNER",
    "RESERVED_OWNERS",
    "ExecutionEngine",
    "ExecutionStats",
    "RiskCheck",
    "owner_tag",
]


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
    landed_late: int = 0
    """Orders given up on after a send of unknown outcome that the venue reported after all (tracked again)."""
    canceled_unknown: int = 0
    orphans_canceled: int = 0
    late_fills: int = 0
    reject_codes: dict[str, int] = field(default_factory=dict)


def _halt_state(name: str, doc: str) -> property:
    """An attribute of the halt gate, read and written through the engine as before the split."""
    return property(lambda self: getattr(self.halt_control, name),
                    lambda self, value: setattr(self.halt_control, name, value), doc=doc)


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
        """Every wait of the engine and its parts goes through this attribute (tests replace it)."""
        self.orders: dict[str, Order] = {}
        self.working: dict[str, Order] = {}
        """The open subset of `orders`, kept on every change (_sync_exposure): reads of open orders happen
        per order and per risk check, and scanning every order of the session there grew without bound."""
        self.order_mode: dict[str, Mode] = {}
        self.request_of: dict[str, str] = {}
        """client order id -> the request id that created it (persisted with the order)."""
        self.by_venue_id: dict[int, str] = {}
        self.positions = {s: Position(ins) for s, ins in instruments.items()}
        self.marks: dict[str, int] = {}
        self.available_balance: int | None = None
        self.breaker = CircuitBreaker(clock)
        self.exposure = ExposureLedger(instruments)
        self._rates = OrderRates(clock, config)
        self.pre_trade = PreTradeChecks(config, instruments, clock, self.positions, self.marks, self.exposure,
                                        self.breaker, self._rates)
        self.traded_modes: set[Mode] = set()
        """Modes this engine has sent orders in (from its records too): a flatten closes those venues only."""
        self._closing: dict[str, tuple[OrderEvent, int]] = {}
        """Orders the venue cancelled after filling part: closed once those fills have been applied."""
        self._locks: dict[str, asyncio.Lock] = {}
        self.retention = ClosedOrderRetention(self, config.closed_order_retention_s, config.idempotency_ttl_s)
        self.audit_log: deque[dict[str, Any]] = deque(maxlen=10_000)
        self.alerts: deque[tuple[int, str, str]] = deque(maxlen=10_000)
        """Both bounded: the most recent; the journal and the alert channel keep the rest."""
        self.on_alert: list[Callable[[str, str], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.draining = False
        self.stats = ExecutionStats()
        self.on_halt: list[Callable[[str], Awaitable[None]]] = []
        self.tick_to_order_ns: deque[int] = deque(maxlen=10_000)
        """Market data receipt (the request's ts_signal_ns) -> signed request handed to the socket."""
        self._worker: asyncio.Task[None] | None = None
        self.on_outcome: list[Callable[[Outcome], None]] = []
        """Observers of every submit answer (metrics); called synchronously."""
        self.halt_control = HaltControl(self)
        self.submission = Submission(self)
        self.surface = OrderSurface(self)
        self.reconciliation = Reconciliation(self)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load hot state, start the venues' event streams, reconcile with the venue, then accept."""
        for doc in await self.hot.load_orders():
            order = order_from_json(doc)
            self.orders[order.client_order_id] = order
            if order.is_open:
                self.working[order.client_order_id] = order
            self.order_mode[order.client_order_id] = Mode(doc.get("mode", "live"))
            self.request_of[order.client_order_id] = doc.get("request_id", "")
            if order.venue_order_id:
                self.by_venue_id[order.venue_order_id] = order.client_order_id
            self._sync_exposure(order)
            if not order.is_open:
                self.retention.closed(order.client_order_id, order.ts_updated_ns)
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
            self._tasks.append(supervised("execution-orphan-reaper",
                                          lambda: self.reconciliation.reaper(interval)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.halt_control.follow_up is not None:
            self.halt_control.follow_up.cancel()
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

    # -- orders (celeris.execution.submission) --------------------------------------------------
    async def submit(self, request: OrderRequest) -> Outcome:
        """Validate, persist, send; the same request id always gets the same answer."""
        return await self.submission.submit(request)

    async def _submit(self, request: OrderRequest, flatten: bool = False, mode: Mode | None = None) -> Outcome:
        return await self.submission.place(request, flatten, mode)

    def _validate(self, request: OrderRequest, flatten: bool = False) -> Rejection | None:
        """Everything checked before the reservation, synchronously (celeris.execution.validation)."""
        halt = self.halt_control
        return self.pre_trade.check(request, flatten, self.mode, halt.halted, halt.halt_reason, self.draining,
                                 self.available_balance)

    async def cancel(self, request_id: str, symbol: str, client_order_id: str = "",
                     venue_order_id: int = 0) -> Outcome:
        return await self.submission.cancel(request_id, symbol, client_order_id, venue_order_id)

    async def cancel_all(self, request_id: str, symbol: str = "") -> tuple[int, list[Rejection]]:
        return await self.submission.cancel_all(request_id, symbol)

    # -- amendments and batches (celeris.execution.surface) ------------------------------------
    async def amend(self, request: AmendRequest) -> Outcome:
        """Change a working LIMIT order's quantity and price: checked like a new order if it can add risk."""
        return await self.surface.amend(request)

    async def amend_batch(self, requests: list[AmendRequest]) -> list[Outcome]:
        return await self.surface.amend_batch(requests)

    async def submit_batch(self, requests: list[OrderRequest]) -> list[Outcome]:
        """Up to five orders in one venue request; one answer each, every order checked as if alone."""
        return await self.surface.place_batch(requests)

    async def cancel_batch(self, request_id: str, symbol: str, client_order_ids: list[str]) -> list[Outcome]:
        return await self.surface.cancel_batch(request_id, symbol, client_order_ids)

    @property
    def rate(self) -> SlidingWindowLimit:
        """Our orders-per-second window (its `limit` is changed at run time)."""
        return self._rates.per_second

    @property
    def venue_rate(self) -> tuple[SlidingWindowLimit, SlidingWindowLimit]:
        """The venue's order-count windows: per 10 s and per minute."""
        return self._rates.venue_windows

    # -- halt (celeris.execution.halt) ----------------------------------------------------------
    halted = _halt_state("halted", "The gate: no order that could add exposure is sent while it is set.")
    halt_reason = _halt_state("halt_reason", "Why trading is halted ('' when it is not).")
    halted_by = _halt_state("halted_by", "Who halted it.")
    halted_at_ns = _halt_state("halted_at_ns", "When it was halted (0 when it is not).")
    last_halt_canceled = _halt_state("last_canceled", "Orders the last halt cancelled.")
    last_halt_flat = _halt_state("last_flat", "Whether the last halt left every account flat.")

    async def halt(self, reason: str, requested_by: str = "", flatten: bool = False) -> int:
        """Close the gate at once, then cancel everything and, if asked, flatten; see HaltControl.halt."""
        return await self.halt_control.halt(reason, requested_by, flatten)

    async def resume(self, requested_by: str, reason: str = "") -> None:
        await self.halt_control.resume(requested_by, reason)

    def _halt_soon(self, reason: str, requested_by: str) -> None:
        self.halt_control.halt_soon(reason, requested_by)

    def _follow_up_halt(self, flatten: bool) -> None:
        self.halt_control.follow_up_halt(flatten)

    async def _flatten(self) -> bool:
        return await self.halt_control.flatten()

    @property
    def _halt_lock(self) -> asyncio.Lock:
        return self.halt_control.lock

    @property
    def _halt_follow_up(self) -> asyncio.Task[None] | None:
        return self.halt_control.follow_up

    def _audit(self, action: str, by: str, reason: str) -> None:
        self.audit_log.append({"ts_ns": self.clock.now_ns(), "action": action, "by": by or "?", "reason": reason})

    def _alert(self, severity: str, message: str) -> None:
        (log.critical if severity == "critical" else log.warning)("execution alert: %s", message)
        self.alerts.append((self.clock.now_ns(), severity, message))
        for observer in self.on_alert:
            observer(severity, message)

    # -- venue events, reconciliation, owners (celeris.execution.reconciliation) ----------------
    def on_venue_event(self, event: VenueOrderEvent) -> None:
        """An event from a venue's stream, queued: events are applied one at a time, in arrival order."""
        self.reconciliation.on_venue_event(event)

    async def _event_worker(self) -> None:
        await self.reconciliation.event_worker()

    async def settle(self) -> None:
        """Wait until every venue event received so far has been applied."""
        await self.reconciliation.settle()

    async def reconcile(self, venue: OrderVenue) -> None:
        """Bring local orders in line with the venue (after a start, a restart, a dropped user stream)."""
        await self.reconciliation.reconcile(venue)

    @property
    def owner_leases(self) -> dict[str, int]:
        """owner -> lease expiry (ns); 0 = released."""
        return self.reconciliation.owner_leases

    def renew_owners(self, owners: Iterable[str], lease_s: float | None = None) -> None:
        """The owners (strategies) that are alive renew their lease; their orders stay working."""
        self.reconciliation.renew_owners(owners, lease_s)

    def release_owner(self, owner: str) -> None:
        """The owner is gone (disabled, removed): its orders are orphans from now on."""
        self.reconciliation.release_owner(owner)

    def owner_alive(self, owner: str) -> bool:
        return self.reconciliation.owner_alive(owner)

    async def reap_orphans(self) -> int:
        """Cancel every open order whose owner is gone; returns how many were cancelled."""
        return await self.reconciliation.reap_orphans()

    # -- the order table ------------------------------------------------------------------------
    def _register(self, order: Order, mode: Mode, request_id: str) -> None:
        cid = order.client_order_id
        self.retention.prune(self.clock.now_ns())
        self.orders[cid] = order
        self.working[cid] = order
        self.order_mode[cid] = mode
        self.request_of[cid] = request_id
        self._sync_exposure(order)

    def _abandon(self, order: Order, reason: str) -> None:
        """A reserved order that never left: it stops counting (its id is never reused)."""
        if order.status is OrderStatus.NEW:
            order.reject_reason = reason
            order.apply(OrderEvent.REJECT, self.clock.now_ns())
            self._sync_exposure(order)

    def _lock(self, client_id: str) -> asyncio.Lock:
        """One order's lock: its send and its cancels never overlap."""
        lock = self._locks.get(client_id)
        if lock is None:
            lock = self._locks[client_id] = asyncio.Lock()
        return lock

    def _apply_venue_state(self, order: Order, state: VenueOrderState) -> None:
        if state.algo_id is not None:
            order.algo_id = state.algo_id  # an algo order has no order id until it triggers
        if state.venue_order_id:
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

    def _sync_exposure(self, order: Order) -> None:
        """One order's place in the ledger after any change: working with what is left, or gone."""
        if order.is_open:
            self.working[order.client_order_id] = order
        elif self.working.pop(order.client_order_id, None) is not None:
            self.retention.closed(order.client_order_id, self.clock.now_ns())
        if order.symbol not in self.exposure.symbols:
            return
        if order.is_open:
            # An amendment in flight counts at its worst: the larger quantity at the higher price.
            self.exposure.track(order.client_order_id, order.symbol, order.side, order.worst_remaining_steps,
                                order.worst_price_ticks, order.reduce_only or order.close_position)
        else:
            self.exposure.release(order.client_order_id, order.symbol)
            self._closing.pop(order.client_order_id, None)

    async def _persist(self, order: Order, event: str, detail: str = "") -> None:
        self._sync_exposure(order)  # every change of an order is persisted: the ledger follows here
        mode = self.order_mode.get(order.client_order_id, self.mode)
        doc = order_to_json(order, {"mode": mode.value, "request_id": self.request_of.get(order.client_order_id, "")})
        await self.hot.save_order(doc)
        await self.retention.forget_in_hot_state()
        await self.journal.order_event(self.clock.now_ns(), doc, event, mode.value,
                                       self.instruments[order.symbol], detail)

    def _publish_order(self, order: Order) -> None:
        self.publish(order_topic(order.symbol), order)

    # -- reads ----------------------------------------------------------------------------------
    def open_orders(self, symbol: str = "") -> list[Order]:
        # is_open again: an order closed by a path that has not persisted it yet is not reported open.
        return [o for o in self.working.values() if o.is_open and (not symbol or o.symbol == symbol)]

    def on_mark(self, symbol: str, mark_ticks: int) -> None:
        self.marks[symbol] = mark_ticks
