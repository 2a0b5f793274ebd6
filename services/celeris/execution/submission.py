"""Submission: getting an order to the venue exactly once, and cancelling it.

Owns the order path after validation: idempotency (a request id answers the same way twice, a duplicate
in flight waits for the first), the reservation before the risk manager's check, the halt re-checked
after every wait and right before the send, persisting before the request leaves, sending with retries
and back-off, ambiguous outcomes (timeouts, 5xx, the 503 "unknown") resolved by asking the venue for the
client order id before any retry, rate-limit waits, the circuit breaker, and the halt on an
authentication failure. Cancels too: a cancel that finds the order gone asks the venue what happened.

The order table and the gate flags are the engine's; this class keeps only what is in flight.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celeris.domain.messages import (
    OrderRequest,
    Outcome,
    RejectCode,
    Rejection,
    VenueOrderState,
    client_order_id_for,
)
from celeris.domain.modes import Mode
from celeris.domain.orders import Order, OrderEvent, OrderStatus
from celeris.domain.risk import Denied
from celeris.execution import validation
from celeris.execution.validation import MANUAL_OWNER
from celeris.execution.venue import OrderVenue
from celeris.venues.binance import errors

if TYPE_CHECKING:
    from celeris.execution.engine import ExecutionEngine

log = logging.getLogger(__name__)

DUPLICATE_CLIENT_ID = -4116
"""Binance: \"ClientOrderId is duplicated\" (an open order has it)."""


class Submission:
    def __init__(self, engine: ExecutionEngine) -> None:
        self.engine = engine
        self.inflight: dict[str, asyncio.Future[Outcome]] = {}
        """request id -> the answer being worked out: a duplicate waits for it instead of sending again."""
        self.ts_signal: dict[str, int] = {}
        """client order id -> the market data receipt that caused it, until its request is on the socket."""

    # -- orders ---------------------------------------------------------------------------------
    async def submit(self, request: OrderRequest) -> Outcome:
        """Validate, persist, send; the same request id always gets the same answer."""
        engine = self.engine
        engine.stats.submitted += 1
        if not request.strategy_id:  # every order has an owner
            request = dataclasses.replace(request, strategy_id=MANUAL_OWNER)
        stored = await engine.hot.get_answer(request.request_id)
        if stored is not None:
            engine.stats.duplicates_answered += 1
            return self._outcome_from_answer(request.request_id, stored)
        inflight = self.inflight.get(request.request_id)
        if inflight is not None:
            engine.stats.duplicates_answered += 1
            return await asyncio.shield(inflight)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.inflight[request.request_id] = future
        try:
            outcome = await self.place(request)
            await engine.hot.put_answer(request.request_id, self._answer(outcome), engine.config.idempotency_ttl_s)
            for observer in engine.on_outcome:
                observer(outcome)
            future.set_result(outcome)
            return outcome
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a waiting duplicate re-raises it, nobody else must
            raise
        finally:
            self.inflight.pop(request.request_id, None)

    async def reserve(self, request: OrderRequest, flatten: bool = False,
                      mode: Mode | None = None) -> Order | Outcome:
        """Validation, the reservation, the risk manager and the late gate: the reserved order, or the answer
        that refused it. Every order path (single, batch) goes through here."""
        engine = self.engine
        rejection = engine._validate(request, flatten)
        if rejection is not None:
            return self.reject(request, rejection)
        client_id = request.client_order_id or client_order_id_for(request.request_id, request.strategy_id)
        existing = engine.orders.get(client_id)
        if existing is None and engine.retention.known_closed(client_id):
            # Closed and dropped from memory, its id still inside the idempotency window: never placed twice.
            engine.stats.duplicates_answered += 1
            return self.reject(request, Rejection(RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                                                  f"client order id {client_id} was already used (order closed)"))
        if existing is not None:
            if engine.request_of.get(client_id) == request.request_id:
                # The same request, whose answer was lost (a crash between sending and answering).
                engine.stats.duplicates_answered += 1
                if existing.status is OrderStatus.REJECTED:
                    return Outcome(request.request_id, False, existing,
                                   Rejection(RejectCode.SUBMIT_FAILED, existing.reject_reason or "rejected"))
                return Outcome(request.request_id, True, existing)
            return self.reject(request, Rejection(RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                                                  f"client order id {client_id} was already used"))
        try:
            order = self.order_for(request, client_id)
        except ValueError as exc:
            return self.reject(request, Rejection(RejectCode.INVALID_REQUEST, str(exc)))
        mode = mode or engine.mode
        if not flatten:
            engine.traded_modes.add(mode)
        # The reservation: from here this order counts as working in every later check (status NEW).
        engine._register(order, mode, request.request_id)
        if request.ts_signal_ns:
            self.ts_signal[client_id] = request.ts_signal_ns
        if engine.risk is not None and not flatten:
            try:
                verdict = await engine.risk.check(request, engine.marks.get(request.symbol))
            except BaseException:
                engine._abandon(order, "the risk check failed")
                raise
            if isinstance(verdict, Denied):
                return self._refuse_reserved(request, order, Rejection(RejectCode.RISK_DENIED, verdict.reason))
        late = self._late_gate(order, flatten)
        if late is not None:
            return self._refuse_reserved(request, order, late)
        return order

    def order_for(self, request: OrderRequest, client_id: str) -> Order:
        """The order record of a request that passed validation (raises ValueError on a bad id)."""
        engine = self.engine
        now = engine.clock.now_ns()
        qty = request.qty_steps
        if request.close_position:
            # No quantity is sent; it closes what the position is. Our books bound it by the position now.
            qty = abs(engine.positions[request.symbol].qty_steps)
        return Order(client_id, request.symbol, request.side, request.order_type, qty,
                     request.price_ticks, request.time_in_force, request.reduce_only, request.stop_price_ticks,
                     request.strategy_id, ts_created_ns=now, ts_updated_ns=now,
                     callback_rate_bps=request.callback_rate_bps,
                     activation_price_ticks=request.activation_price_ticks, working_type=request.working_type,
                     price_protect=request.price_protect, close_position=request.close_position,
                     stp_mode=request.stp_mode, price_match=request.price_match, good_till_ms=request.good_till_ms,
                     is_algo=request.order_type.is_conditional)

    async def place(self, request: OrderRequest, flatten: bool = False, mode: Mode | None = None) -> Outcome:
        """The gate. Everything up to the reservation is synchronous, so two requests cannot both pass
        on the same headroom; the halt is checked again after every wait and just before the send."""
        reserved = await self.reserve(request, flatten, mode)
        if isinstance(reserved, Outcome):
            return reserved
        return await self._send_one(request, reserved, flatten)

    async def _send_one(self, request: OrderRequest, order: Order, flatten: bool) -> Outcome:
        engine = self.engine
        client_id = order.client_order_id
        venue = engine.venues.get(engine.order_mode[client_id])
        assert venue is not None
        # Past the gate: a halt from now on waits for this send to finish, then cancels what it placed.
        sending = asyncio.get_running_loop().create_future()
        halt = engine.halt_control
        halt.sending.add(sending)
        try:
            async with engine._lock(client_id):  # a cancel of this order waits until it has been sent
                late = self._late_gate(order, flatten)
                if late is not None:
                    return self._refuse_reserved(request, order, late)
                order.apply(OrderEvent.SUBMIT, engine.clock.now_ns())
                await engine._persist(order, "submit")  # before the request leaves: a crash now loses nothing
                late = self._late_gate(order, flatten)  # the halt may have come while the record was written
                if late is not None:
                    order.reject_reason = late.message
                    order.apply(OrderEvent.REJECT, engine.clock.now_ns())
                    await engine._persist(order, "reject", late.message)
                    engine._publish_order(order)
                    engine.stats.rejected += 1
                    self.count(late.code)
                    return Outcome(request.request_id, False, order, late)
                state, rejection = await self.send_with_retries(venue, order, flatten)
                if rejection is not None:
                    if order.status in (OrderStatus.NEW, OrderStatus.PENDING_SUBMIT):
                        order.reject_reason = rejection.message
                        order.apply(OrderEvent.REJECT, engine.clock.now_ns())
                        await engine._persist(order, "reject", rejection.message)
                        engine._publish_order(order)
                    engine.stats.rejected += 1
                    self.count(rejection.code)
                    return Outcome(request.request_id, False, order, rejection)
                assert state is not None
                engine._apply_venue_state(order, state)
                await engine._persist(order, "ack")
                engine._publish_order(order)
        finally:
            halt.sending.discard(sending)
            sending.set_result(None)
        engine.stats.accepted += 1
        return Outcome(request.request_id, True, order)

    def _late_gate(self, order: Order, flatten: bool) -> Rejection | None:
        engine = self.engine
        halt = engine.halt_control
        return validation.late_gate(order, engine.order_mode.get(order.client_order_id), flatten, engine.mode,
                                    halt.halted, halt.halt_reason, engine.draining)

    def _refuse_reserved(self, request: OrderRequest, order: Order, rejection: Rejection) -> Outcome:
        self.engine._abandon(order, rejection.message)
        self.ts_signal.pop(order.client_order_id, None)
        return self.reject(request, rejection)

    async def send_with_retries(self, venue: OrderVenue, order: Order, flatten: bool = False) -> tuple[
            VenueOrderState | None, Rejection | None]:
        engine = self.engine
        config = engine.config
        halt = engine.halt_control
        last_error = ""
        unknown_since = 0
        """When the last send whose outcome is unknown went out (0: none): until the venue's receive window
        has passed since then, that send may still land, so nothing is sent again and nothing given up."""
        sends = 0
        for attempt in range(config.max_submit_attempts):
            if attempt:
                engine.stats.retries += 1
                # Before any retry: did the previous attempt reach the venue after all?
                known = await self._resolve(venue, order, unknown_since)
                if known is not None:
                    engine.stats.ambiguous_resolved += 1
                    return known, None
                unknown_since = 0  # past its window and not found: that send can no longer land
                await engine._sleep(config.retry_backoff_s * (2 ** (attempt - 1)))
                if halt.halted and not flatten:
                    # No new attempt once halted; one last look below settles whether an earlier one landed.
                    last_error = f"trading halted: {halt.halt_reason}"
                    break
            if not engine.breaker.allow():
                return None, Rejection(RejectCode.CIRCUIT_OPEN, "circuit breaker open: the venue is failing")
            sent_ns = engine.clock.now_ns()
            sends += 1
            try:
                state = await venue.place(order, self._latency_probe(order))
                engine.breaker.success()
                return state, None
            except errors.OrderRejected as exc:
                engine.breaker.success()  # the venue works; it refused this order
                if attempt and exc.code == DUPLICATE_CLIENT_ID:  # an earlier send of this very order landed
                    known = await self.query_quietly(venue, order)
                    if known is not None:
                        engine.stats.ambiguous_resolved += 1
                        return known, None
                return None, Rejection(RejectCode.VENUE_REJECTED, exc.msg, exc.code)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                # An answer we cannot read to an order the venue may well have placed: unknown, not a crash.
                log.warning("unreadable answer to the order %s (%r): its outcome is unknown",
                            order.client_order_id, exc)
                last_error, unknown_since = f"unreadable answer ({type(exc).__name__})", sent_ns
                continue
            except errors.AuthenticationFailed as exc:
                # This order's lock is held here and the halt cancels every order (this one included):
                # close the gate now, run the rest of the halt outside the lock.
                halt.halt_soon(f"venue authentication failed ({exc.code}): trading stopped", "execution")
                return None, Rejection(RejectCode.VENUE_REJECTED, exc.msg, exc.code)
            except errors.RateLimited as exc:
                last_error = f"rate limited ({exc.status})"
                if exc.retry_after_s > config.max_rate_limit_wait_s:
                    break
                await engine._sleep(exc.retry_after_s)
            except (errors.ServiceUnavailable, errors.UnknownExecutionStatus) as exc:
                engine.breaker.failure()
                last_error, unknown_since = exc.msg, sent_ns
            except errors.VenueError as exc:
                return None, Rejection(RejectCode.VENUE_REJECTED, exc.msg, exc.code)
        known = await self._resolve(venue, order, unknown_since)
        if known is not None:
            engine.stats.ambiguous_resolved += 1
            return known, None
        return None, Rejection(RejectCode.SUBMIT_FAILED, f"not accepted after {sends} "
                                                         f"attempt{'s' if sends != 1 else ''}: {last_error}")

    async def _resolve(self, venue: OrderVenue, order: Order, unknown_since: int) -> VenueOrderState | None:
        """The venue's state of an order after a failed send; after a send of unknown outcome, asked again
        until the venue's receive window has passed since that send (a miss before then proves nothing)."""
        engine = self.engine
        known = await self.query_quietly(venue, order)
        if known is not None or not unknown_since:
            return known
        deadline = unknown_since + int(engine.config.unknown_outcome_window_s * 1e9)
        while known is None and engine.clock.now_ns() < deadline:
            await engine._sleep(min(1.0, max(0.05, (deadline - engine.clock.now_ns()) / 1e9)))
            known = await self.query_quietly(venue, order)
        return known

    def _latency_probe(self, order: Order) -> Callable[[int], None] | None:
        ts_signal = self.ts_signal.pop(order.client_order_id, 0)
        if not ts_signal:
            return None
        samples = self.engine.tick_to_order_ns
        return lambda written_ns: samples.append(written_ns - ts_signal)

    async def query_quietly(self, venue: OrderVenue, order: Order) -> VenueOrderState | None:
        """The venue's state of one order, or None if it does not know it or cannot say (three tries)."""
        engine = self.engine
        for _ in range(3):
            try:
                if order.is_algo and not order.triggered:
                    return await venue.query_algo(order.symbol, order.client_order_id)
                return await venue.query(order.symbol, order.client_order_id)
            except errors.RateLimited as exc:
                await engine._sleep(min(exc.retry_after_s, engine.config.max_rate_limit_wait_s))
            except errors.VenueError:
                await engine._sleep(engine.config.retry_backoff_s)
        return None

    def reject(self, request: OrderRequest, rejection: Rejection) -> Outcome:
        self.engine.stats.rejected += 1
        self.count(rejection.code)
        log.info("order refused: %s", rejection.message,
                 extra={"request_id": request.request_id, "code": rejection.code.value})
        return Outcome(request.request_id, False, None, rejection)

    def count(self, code: RejectCode) -> None:
        codes = self.engine.stats.reject_codes
        codes[code.value] = codes.get(code.value, 0) + 1

    def _answer(self, outcome: Outcome) -> dict[str, Any]:
        """An outcome as the hot state keeps it for the idempotency TTL."""
        rejection = outcome.rejection
        return {"accepted": outcome.accepted,
                "client_order_id": outcome.order.client_order_id if outcome.order else "",
                "rejection": None if rejection is None else {"code": rejection.code.value,
                                                             "message": rejection.message,
                                                             "venue_code": rejection.venue_code}}

    def _outcome_from_answer(self, request_id: str, answer: dict[str, Any]) -> Outcome:
        order = self.engine.orders.get(answer.get("client_order_id", ""))
        rejection = answer.get("rejection")
        return Outcome(request_id, answer["accepted"], order,
                       None if rejection is None else Rejection(RejectCode(rejection["code"]), rejection["message"],
                                                                rejection["venue_code"]))

    # -- cancels --------------------------------------------------------------------------------
    async def cancel(self, request_id: str, symbol: str, client_order_id: str = "",
                     venue_order_id: int = 0) -> Outcome:
        engine = self.engine
        if not client_order_id and venue_order_id:
            client_order_id = engine.by_venue_id.get(venue_order_id, "")
        order = engine.orders.get(client_order_id)
        if order is None or order.symbol != symbol:
            return Outcome(request_id, False, None, Rejection(RejectCode.UNKNOWN_ORDER, "unknown order"))
        async with engine._lock(client_order_id):
            if not order.is_open:
                return Outcome(request_id, False, order,
                               Rejection(RejectCode.NOT_CANCELABLE, f"order is {order.status.value}"))
            if order.status is OrderStatus.NEW:
                # Reserved, still in its pre-trade checks: it will never be sent.
                engine._abandon(order, "cancelled before it was sent")
                return Outcome(request_id, True, order)
            venue = engine.venues.get(engine.order_mode[client_order_id])
            assert venue is not None
            if order.status is not OrderStatus.PENDING_SUBMIT:
                order.apply(OrderEvent.CANCEL_REQUEST, engine.clock.now_ns())
            try:
                if order.is_algo and not order.triggered:
                    state = await venue.cancel_algo(symbol, client_order_id)
                else:
                    state = await venue.cancel(symbol, client_order_id)
                self._finish_cancel(order, state.status, state.executed_steps)
            except errors.UnknownOrder:
                # Gone already: filled or cancelled at the venue. Ask what happened.
                known = await self.query_quietly(venue, order)
                self._finish_cancel(order, known.status if known else "CANCELED",
                                    known.executed_steps if known else None)
            except errors.VenueError as exc:
                if order.status is OrderStatus.PENDING_CANCEL:
                    order.apply(OrderEvent.CANCEL_REJECT, engine.clock.now_ns())
                await engine._persist(order, "cancel_failed", exc.msg)
                return Outcome(request_id, False, order,
                               Rejection(RejectCode.VENUE_REJECTED, exc.msg, getattr(exc, "code", 0)))
            await engine._persist(order, "cancel")
            engine._publish_order(order)
        return Outcome(request_id, not order.is_open or client_order_id in engine._closing, order)

    def _finish_cancel(self, order: Order, status: str, executed_steps: int | None = None) -> None:
        now = self.engine.clock.now_ns()
        if not order.is_open:
            return
        if status in ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH") and executed_steps is not None \
                and executed_steps > order.filled_steps:
            # The venue filled part of it before the cancel, and its fill events have not arrived yet (the
            # REST answer overtook the stream): close it when they have, so no fill meets a closed order.
            self.engine._closing[order.client_order_id] = (
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
        engine = self.engine
        targets = engine.open_orders(symbol)
        results = await asyncio.gather(*(engine.cancel(f"{request_id}:{o.client_order_id}", o.symbol,
                                                       o.client_order_id) for o in targets))
        canceled = sum(1 for r in results if r.accepted)
        failures = [r.rejection for r in results if r.rejection is not None]
        return canceled, failures
