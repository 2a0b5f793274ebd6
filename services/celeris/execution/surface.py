"""Amendments and batches: the rest of the venue's order surface, through the same gate as a new order.

Owns the amend path (single and batch: PUT /fapi/v1/order and /fapi/v1/batchOrders) and batch place and
cancel (POST and DELETE /fapi/v1/batchOrders). An amendment is an order for the risk it takes: one that can
add exposure (a larger quantity, a more aggressive price) goes through the halt, the breaker, the filters,
the limits with every working and in-flight order counted, the margin, the risk manager and the rates,
and is checked against the halt again after every wait and right before it leaves; one that only reduces
passes a halt. While it is in flight the order counts at its worst (the larger quantity at the higher
price, Order.worst_*), so a burst of amendments with slow answers cannot pass on the same headroom.
Batch place reserves each element through Submission.reserve, exactly as a single order, and answers
each element separately, as the venue does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING

from celeris.domain.instruments import OrderType
from celeris.domain.messages import (
    AmendRequest,
    BatchResult,
    OrderRequest,
    Outcome,
    RejectCode,
    Rejection,
    VenueOrderState,
)
from celeris.domain.orders import InvalidTransition, Order, OrderEvent, OrderStatus
from celeris.domain.risk import Denied
from celeris.execution import validation
from celeris.execution.validation import MANUAL_OWNER
from celeris.execution.venue import OrderVenue
from celeris.venues.binance import errors

if TYPE_CHECKING:
    from celeris.execution.engine import ExecutionEngine

log = logging.getLogger(__name__)

MAX_BATCH_PLACE = 5
MAX_BATCH_CANCEL = 10
_AMBIGUOUS = (errors.ServiceUnavailable, errors.UnknownExecutionStatus, errors.RateLimited)


class OrderSurface:
    def __init__(self, engine: ExecutionEngine) -> None:
        self.engine = engine

    # -- amendments -----------------------------------------------------------------------------
    async def amend(self, request: AmendRequest) -> Outcome:
        """Change a working LIMIT order's quantity and price; the same request id answers the same way."""
        return (await self.amend_batch([request], batch=False))[0]

    async def amend_batch(self, requests: list[AmendRequest], batch: bool = True) -> list[Outcome]:
        """Up to five amendments, each checked on its own and sent in one request (PUT batchOrders)."""
        engine = self.engine
        if batch and not 0 < len(requests) <= MAX_BATCH_PLACE:
            return [self._refuse(r.request_id, None, Rejection(RejectCode.INVALID_REQUEST,
                                                                f"a batch holds 1 to {MAX_BATCH_PLACE} amendments"))
                    for r in requests]
        if batch:
            surcharge = validation.batch_surcharge(engine._rates, len(requests))
            if surcharge is not None:
                return [self._refuse(r.request_id, None, surcharge) for r in requests]
        outcomes: list[Outcome | None] = [None] * len(requests)
        async with contextlib.AsyncExitStack() as stack:
            held: list[tuple[int, AmendRequest, Order]] = []
            seen: set[str] = set()
            for i, request in enumerate(requests):
                stored = await engine.hot.get_answer(request.request_id)
                if stored is not None:
                    engine.stats.duplicates_answered += 1
                    outcomes[i] = engine.submission._outcome_from_answer(request.request_id, stored)
                    continue
                if request.client_order_id in seen:
                    outcomes[i] = self._refuse(request.request_id, None, Rejection(
                        RejectCode.INVALID_REQUEST, "one amendment per order in a batch"))
                    continue
                seen.add(request.client_order_id)
                order = engine.orders.get(request.client_order_id)
                rejection = validation.check_amend_shape(order, request)
                if rejection is None:
                    assert order is not None
                    # One amendment, cancel or send of an order at a time; its state may move while we wait.
                    await stack.enter_async_context(engine._lock(order.client_order_id))
                    rejection = validation.check_amend_shape(order, request)
                if rejection is not None:
                    outcomes[i] = self._refuse(request.request_id, order, rejection)
                    continue
                assert order is not None
                outcome = await self._reserve_amend(request, order)
                if outcome is not None:
                    outcomes[i] = outcome
                else:
                    held.append((i, request, order))
            if held:
                await self._send_amendments(held, outcomes, batch)
        done = [o for o in outcomes if o is not None]
        assert len(done) == len(requests)
        for request, outcome in zip(requests, done):
            await engine.hot.put_answer(request.request_id, engine.submission._answer(outcome),
                                        engine.config.idempotency_ttl_s)
        return done

    async def _reserve_amend(self, request: AmendRequest, order: Order) -> Outcome | None:
        """The checks, then the order moves to PENDING_AMEND (counted at its worst from here). None = go."""
        engine = self.engine
        halt = engine.halt_control
        rejection = engine.pre_trade.check_amend(order, request, engine.mode, halt.halted, halt.halt_reason,
                                                 engine.draining, engine.available_balance)
        if rejection is not None:
            return self._refuse(request.request_id, order, rejection)
        adds = validation.amend_adds_exposure(order, request.qty_steps, request.price_ticks)
        order.request_amend(request.qty_steps, request.price_ticks, engine.clock.now_ns())
        engine._sync_exposure(order)
        if adds and engine.risk is not None:
            as_new = OrderRequest(request.request_id, order.symbol, order.side, OrderType.LIMIT,
                                  request.qty_steps - order.filled_steps, request.price_ticks, order.time_in_force,
                                  order.reduce_only, None, order.strategy_id or MANUAL_OWNER)
            try:
                verdict = await engine.risk.check(as_new, engine.marks.get(order.symbol))
            except BaseException:
                self._drop_amend(order)
                raise
            if isinstance(verdict, Denied):
                self._drop_amend(order)
                return self._refuse(request.request_id, order, Rejection(RejectCode.RISK_DENIED, verdict.reason))
        late = self._late(order, adds)
        if late is not None:
            self._drop_amend(order)
            return self._refuse(request.request_id, order, late)
        await engine._persist(order, "amend_request")
        late = self._late(order, adds)  # the halt may have come while the record was written
        if late is not None:
            self._drop_amend(order)
            await engine._persist(order, "amend_reject", late.message)
            return self._refuse(request.request_id, order, late)
        return None

    def _late(self, order: Order, adds: bool) -> Rejection | None:
        """After a wait: an amendment that can add exposure stops at a halt, a drain, observation."""
        engine = self.engine
        if order.status is not OrderStatus.PENDING_AMEND:
            return Rejection(RejectCode.NOT_CANCELABLE, f"order became {order.status.value} before the amendment "
                                                        f"was sent")
        if not adds:
            return None
        halt = engine.halt_control
        return validation.gate(OrderRequest("amend", order.symbol, order.side, OrderType.LIMIT, 1), False,
                               engine.mode, halt.halted, halt.halt_reason, engine.draining)

    def _drop_amend(self, order: Order) -> None:
        if order.amend_qty_steps is not None and order.status in (OrderStatus.PENDING_AMEND,
                                                                  OrderStatus.PENDING_CANCEL):
            order.amend_rejected(self.engine.clock.now_ns())
        self.engine._sync_exposure(order)

    async def _send_amendments(self, held: list[tuple[int, AmendRequest, Order]],
                               outcomes: list[Outcome | None], batch: bool) -> None:
        engine = self.engine
        halt = engine.halt_control
        sending = asyncio.get_running_loop().create_future()
        halt.sending.add(sending)  # a halt now waits for these answers, then cancels what they left
        try:
            by_venue: dict[int, tuple[OrderVenue, list[tuple[int, AmendRequest, Order]]]] = {}
            for item in held:
                venue = engine.venues[engine.order_mode[item[2].client_order_id]]
                by_venue.setdefault(id(venue), (venue, []))[1].append(item)
            for venue, items in by_venue.values():
                results = await self._amend_at(venue, items, batch)
                for (i, request, order), result in zip(items, results):
                    outcomes[i] = await self._finish_amend(venue, request, order, result)
        finally:
            halt.sending.discard(sending)
            sending.set_result(None)

    async def _amend_at(self, venue: OrderVenue, items: list[tuple[int, AmendRequest, Order]],
                        batch: bool) -> list[BatchResult]:
        engine = self.engine
        if not engine.breaker.allow():
            return [BatchResult(error=errors.ServiceUnavailable(-1001, "circuit breaker open", 503))] * len(items)
        try:
            if batch:
                results = await venue.amend_batch([(o, r.qty_steps, r.price_ticks) for _, r, o in items])
            else:
                _, request, order = items[0]
                results = [BatchResult(state=await venue.amend(order, request.qty_steps, request.price_ticks))]
            engine.breaker.success()
            return results
        except errors.VenueError as exc:
            if isinstance(exc, (errors.ServiceUnavailable, errors.UnknownExecutionStatus)):
                engine.breaker.failure()
            return [BatchResult(error=exc)] * len(items)

    async def _finish_amend(self, venue: OrderVenue, request: AmendRequest, order: Order,
                            result: BatchResult) -> Outcome:
        engine = self.engine
        now = engine.clock.now_ns()
        state, error = result.state, result.error
        if isinstance(error, _AMBIGUOUS):
            # Did it land? The venue's own terms settle it; while it cannot say, the worst case stays counted.
            state = await engine.submission.query_quietly(venue, order)
            if state is None or state.qty_steps is None:
                await engine._persist(order, "amend_unknown", str(error))
                return Outcome(request.request_id, False, order, Rejection(
                    RejectCode.SUBMIT_FAILED, f"amendment outcome unknown: {error}"))
            error = None if (state.qty_steps, state.price_ticks) == (request.qty_steps, request.price_ticks) \
                else errors.OrderRejected(0, "the venue kept the old terms")
        if order.amend_qty_steps is None:
            pass  # the stream's AMENDMENT (or a fill that finished it) got here first
        elif error is not None or state is None:
            self._drop_amend(order)
        else:
            try:
                order.amended(state.qty_steps if state.qty_steps is not None else request.qty_steps,
                              state.price_ticks if state.price_ticks is not None else request.price_ticks, now)
            except InvalidTransition as exc:
                log.error("amendment answer refused by the order table: %s", exc)
        await engine._persist(order, "amend" if error is None else "amend_reject", str(error or ""))
        engine._publish_order(order)
        if error is not None:
            engine.stats.rejected += 1
            code = getattr(error, "code", 0)
            rejection = Rejection(RejectCode.NOT_CANCELABLE if isinstance(error, errors.UnknownOrder)
                                  else RejectCode.VENUE_REJECTED, getattr(error, "msg", str(error)), code)
            engine.submission.count(rejection.code)
            return Outcome(request.request_id, False, order, rejection)
        engine.stats.accepted += 1
        return Outcome(request.request_id, True, order)

    def _refuse(self, request_id: str, order: Order | None, rejection: Rejection) -> Outcome:
        engine = self.engine
        engine.stats.rejected += 1
        engine.submission.count(rejection.code)
        log.info("amendment refused: %s", rejection.message, extra={"request_id": request_id})
        return Outcome(request_id, False, order, rejection)

    # -- batch place ----------------------------------------------------------------------------
    async def place_batch(self, requests: list[OrderRequest]) -> list[Outcome]:
        """Up to five orders in one request: each is reserved exactly as a single order (validation, limits
        with the earlier elements counted, the risk manager, the halt), then they leave together and each
        gets the venue's own answer. Algo (conditional) orders cannot be batched: the venue has no batch
        for them."""
        engine = self.engine
        sub = engine.submission
        if not 0 < len(requests) <= MAX_BATCH_PLACE:
            return [sub.reject(r, Rejection(RejectCode.INVALID_REQUEST, f"a batch holds 1 to {MAX_BATCH_PLACE} "
                                                                        f"orders")) for r in requests]
        surcharge = validation.batch_surcharge(engine._rates, len(requests))
        if surcharge is not None:
            return [sub.reject(r, surcharge) for r in requests]
        outcomes: list[Outcome | None] = [None] * len(requests)
        reserved: list[tuple[int, OrderRequest, Order]] = []
        for i, request in enumerate(requests):
            engine.stats.submitted += 1
            if not request.strategy_id:
                request = dataclasses.replace(request, strategy_id=MANUAL_OWNER)
            stored = await engine.hot.get_answer(request.request_id)
            if stored is not None:
                engine.stats.duplicates_answered += 1
                outcomes[i] = sub._outcome_from_answer(request.request_id, stored)
                continue
            if request.order_type.is_conditional:
                outcomes[i] = sub.reject(request, Rejection(RejectCode.INVALID_REQUEST, "conditional orders go "
                                                            "through the Algo Order API: submit them one by one"))
                continue
            result = await sub.reserve(request)
            if isinstance(result, Outcome):
                outcomes[i] = result
            else:
                reserved.append((i, request, result))
        if reserved:
            await self._send_batch(reserved, outcomes)
        done = [o for o in outcomes if o is not None]
        assert len(done) == len(requests)
        for outcome in done:
            await engine.hot.put_answer(outcome.request_id, sub._answer(outcome), engine.config.idempotency_ttl_s)
            for observer in engine.on_outcome:
                observer(outcome)
        return done

    async def _send_batch(self, reserved: list[tuple[int, OrderRequest, Order]],
                          outcomes: list[Outcome | None]) -> None:
        engine = self.engine
        sub = engine.submission
        halt = engine.halt_control
        sending = asyncio.get_running_loop().create_future()
        halt.sending.add(sending)
        try:
            async with contextlib.AsyncExitStack() as stack:
                going: list[tuple[int, OrderRequest, Order]] = []
                for i, request, order in reserved:
                    await stack.enter_async_context(engine._lock(order.client_order_id))
                    late = sub._late_gate(order, False)
                    if late is not None:
                        outcomes[i] = sub._refuse_reserved(request, order, late)
                        continue
                    order.apply(OrderEvent.SUBMIT, engine.clock.now_ns())
                    await engine._persist(order, "submit")
                    going.append((i, request, order))
                # The halt may have come while the records were written: nothing leaves once it has.
                still: list[tuple[int, OrderRequest, Order]] = []
                for i, request, order in going:
                    late = sub._late_gate(order, False)
                    if late is not None:
                        outcomes[i] = await self._reject_pending(request, order, late)
                    else:
                        still.append((i, request, order))
                if not still:
                    return
                venue = engine.venues[engine.order_mode[still[0][2].client_order_id]]
                results = await self._place_at(venue, [o for _, _, o in still])
                for (i, request, order), result in zip(still, results):
                    outcomes[i] = await self._finish_place(venue, request, order, result)
        finally:
            halt.sending.discard(sending)
            sending.set_result(None)

    async def _place_at(self, venue: OrderVenue, orders: list[Order]) -> list[BatchResult]:
        engine = self.engine
        if not engine.breaker.allow():
            return [BatchResult(error=errors.ServiceUnavailable(-1001, "circuit breaker open", 503))] * len(orders)
        try:
            results = await venue.place_batch(orders)
            engine.breaker.success()
            return results
        except errors.AuthenticationFailed as exc:
            engine.halt_control.halt_soon(f"venue authentication failed ({exc.code}): trading stopped", "execution")
            return [BatchResult(error=exc)] * len(orders)
        except errors.VenueError as exc:
            if isinstance(exc, (errors.ServiceUnavailable, errors.UnknownExecutionStatus)):
                engine.breaker.failure()
            return [BatchResult(error=exc)] * len(orders)

    async def _finish_place(self, venue: OrderVenue, request: OrderRequest, order: Order,
                            result: BatchResult) -> Outcome:
        engine = self.engine
        state: VenueOrderState | None = result.state
        error = result.error
        if isinstance(error, _AMBIGUOUS):
            state = await engine.submission.query_quietly(venue, order)
            if state is not None:
                engine.stats.ambiguous_resolved += 1
                error = None
        if error is not None or state is None:
            message = getattr(error, "msg", str(error))
            code = RejectCode.SUBMIT_FAILED if isinstance(error, _AMBIGUOUS) else RejectCode.VENUE_REJECTED
            return await self._reject_pending(request, order, Rejection(code, message, getattr(error, "code", 0)))
        engine._apply_venue_state(order, state)
        await engine._persist(order, "ack")
        engine._publish_order(order)
        engine.stats.accepted += 1
        return Outcome(request.request_id, True, order)

    async def _reject_pending(self, request: OrderRequest, order: Order, rejection: Rejection) -> Outcome:
        engine = self.engine
        if order.status in (OrderStatus.NEW, OrderStatus.PENDING_SUBMIT):
            order.reject_reason = rejection.message
            order.apply(OrderEvent.REJECT, engine.clock.now_ns())
            await engine._persist(order, "reject", rejection.message)
            engine._publish_order(order)
        engine.stats.rejected += 1
        engine.submission.count(rejection.code)
        return Outcome(request.request_id, False, order, rejection)

    # -- batch cancel ---------------------------------------------------------------------------
    async def cancel_batch(self, request_id: str, symbol: str, client_order_ids: list[str]) -> list[Outcome]:
        """Up to ten cancels of one symbol in one request; algo orders not yet triggered are cancelled one
        by one at the Algo API (the venue has no batch there). One answer per id, in order."""
        engine = self.engine
        if not 0 < len(client_order_ids) <= MAX_BATCH_CANCEL:
            return [Outcome(request_id, False, None, Rejection(RejectCode.INVALID_REQUEST, f"a batch cancels 1 to "
                                                               f"{MAX_BATCH_CANCEL} orders"))
                    for _ in client_order_ids]
        outcomes: list[Outcome | None] = [None] * len(client_order_ids)
        async with contextlib.AsyncExitStack() as stack:
            going: list[tuple[int, Order]] = []
            for i, cid in enumerate(client_order_ids):
                order = engine.orders.get(cid)
                if cid in client_order_ids[:i]:
                    outcomes[i] = Outcome(request_id, False, order, Rejection(RejectCode.INVALID_REQUEST,
                                                                              "the same order twice in a batch"))
                    continue
                if order is None or order.symbol != symbol or order.status is OrderStatus.NEW or \
                        (order.is_algo and not order.triggered):
                    # Not for the venue's batch: unknown here, never sent, or at the Algo API.
                    outcomes[i] = await engine.cancel(f"{request_id}:{cid}", symbol, cid)
                    continue
                await stack.enter_async_context(engine._lock(cid))
                if not order.is_open:
                    outcomes[i] = Outcome(request_id, False, order, Rejection(RejectCode.NOT_CANCELABLE,
                                                                              f"order is {order.status.value}"))
                    continue
                if order.status is not OrderStatus.PENDING_SUBMIT:
                    order.apply(OrderEvent.CANCEL_REQUEST, engine.clock.now_ns())
                going.append((i, order))
            if going:
                venue = engine.venues[engine.order_mode[going[0][1].client_order_id]]
                try:
                    results = await venue.cancel_batch(symbol, [o.client_order_id for _, o in going])
                except errors.VenueError as exc:
                    results = [BatchResult(error=exc)] * len(going)
                for (i, order), result in zip(going, results):
                    outcomes[i] = await self._finish_cancel(venue, request_id, order, result)
        done = [o for o in outcomes if o is not None]
        assert len(done) == len(client_order_ids)
        return done

    async def _finish_cancel(self, venue: OrderVenue, request_id: str, order: Order, result: BatchResult) -> Outcome:
        engine = self.engine
        sub = engine.submission
        error = result.error
        if result.state is not None:
            sub._finish_cancel(order, result.state.status, result.state.executed_steps)
        elif isinstance(error, errors.UnknownOrder):
            known = await sub.query_quietly(venue, order)
            sub._finish_cancel(order, known.status if known else "CANCELED", known.executed_steps if known else None)
        else:
            if order.status is OrderStatus.PENDING_CANCEL:
                order.apply(OrderEvent.CANCEL_REJECT, engine.clock.now_ns())
            await engine._persist(order, "cancel_failed", str(error))
            return Outcome(request_id, False, order, Rejection(RejectCode.VENUE_REJECTED, getattr(error, "msg", str(error)),
                                                               getattr(error, "code", 0)))
        await engine._persist(order, "cancel")
        engine._publish_order(order)
        return Outcome(request_id, not order.is_open or order.client_order_id in engine._closing, order)
