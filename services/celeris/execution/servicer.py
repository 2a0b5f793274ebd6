"""gRPC shell of execution: decode, one call into the engine, encode."""

from __future__ import annotations

import asyncio

import grpc

from celeris.api.v1 import common_pb2, execution_pb2, execution_pb2_grpc
from celeris.clients import execution_pb as convert
from celeris.domain.messages import Fill, Outcome
from celeris.domain.orders import Order
from celeris.domain.topics import fill_topic, order_topic
from celeris.execution.engine import ExecutionEngine
from celeris.execution.surface import MAX_BATCH_PLACE
from celeris.transport.bus import InProcessBus


def _batch(request, acks: list[execution_pb2.OrderAck]) -> execution_pb2.BatchAck:  # type: ignore[no-untyped-def]
    return execution_pb2.BatchAck(request_id=request.request_id, acks=acks)


def _invalid(request_id: str, exc: Exception | str) -> execution_pb2.OrderAck:
    return execution_pb2.OrderAck(request_id=request_id, accepted=False,
                                  error=common_pb2.Error(code="INVALID_REQUEST", message=str(exc)))


def _each(elements, read):  # type: ignore[no-untyped-def]
    """A batch's elements read one by one: the domain request, or the refusal of that element alone (a
    malformed element must not refuse its neighbours, nor lend them its reason)."""
    out = []
    for element in elements:
        try:
            out.append(read(element))
        except convert.BadRequest as exc:
            out.append(_invalid(element.request_id, exc))
    return out


class ExecutionServicer(execution_pb2_grpc.ExecutionServicer):
    def __init__(self, engine: ExecutionEngine, bus: InProcessBus) -> None:
        self._engine = engine
        self._bus = bus

    def _mode(self, order: Order):  # type: ignore[no-untyped-def]
        return self._engine.order_mode.get(order.client_order_id, self._engine.mode)

    async def SubmitOrder(self, request, context):  # type: ignore[no-untyped-def]
        try:
            order_request = convert.order_request(request, self._engine.instruments)
        except convert.BadRequest as exc:
            return execution_pb2.OrderAck(request_id=request.request_id, accepted=False,
                                          error=common_pb2.Error(code="INVALID_REQUEST", message=str(exc)))
        outcome = await self._engine.submit(order_request)
        return convert.ack_pb(outcome, self._engine.instruments, self._engine.mode)

    def _acks(self, request, outcomes: list[Outcome]) -> execution_pb2.BatchAck:  # type: ignore[no-untyped-def]
        return _batch(request, [convert.ack_pb(o, self._engine.instruments, self._engine.mode) for o in outcomes])

    async def AmendOrder(self, request, context):  # type: ignore[no-untyped-def]
        try:
            amend = convert.amend_request(request, self._engine.instruments)
        except convert.BadRequest as exc:
            return _invalid(request.request_id, exc)
        outcome = await self._engine.amend(amend)
        return convert.ack_pb(outcome, self._engine.instruments, self._engine.mode)

    async def SubmitBatch(self, request, context):  # type: ignore[no-untyped-def]
        read = _each(request.orders, lambda o: convert.order_request(o, self._engine.instruments))
        return await self._merged(request, read, self._engine.submit_batch, "orders")

    async def AmendBatch(self, request, context):  # type: ignore[no-untyped-def]
        read = _each(request.amendments, lambda a: convert.amend_request(a, self._engine.instruments))
        return await self._merged(request, read, self._engine.amend_batch, "amendments")

    async def _merged(self, request, read, run, what: str) -> execution_pb2.BatchAck:  # type: ignore[no-untyped-def]
        """The well-formed elements go to the engine as one batch; every element is answered in its place."""
        if not 0 < len(read) <= MAX_BATCH_PLACE:  # the engine's own size rule, for a batch it never sees whole
            return _batch(request, [_invalid(r.request_id, f"a batch holds 1 to {MAX_BATCH_PLACE} {what}")
                                    for r in read])
        good = [r for r in read if not isinstance(r, execution_pb2.OrderAck)]
        outcomes = iter(await run(good) if good else [])
        return _batch(request, [r if isinstance(r, execution_pb2.OrderAck) else
                                convert.ack_pb(next(outcomes), self._engine.instruments, self._engine.mode)
                                for r in read])

    async def CancelBatch(self, request, context):  # type: ignore[no-untyped-def]
        outcomes = await self._engine.cancel_batch(request.request_id, request.symbol, list(request.client_order_ids))
        return self._acks(request, outcomes)

    async def CancelOrder(self, request, context):  # type: ignore[no-untyped-def]
        outcome = await self._engine.cancel(request.request_id, request.symbol, request.client_order_id,
                                            request.venue_order_id)
        return convert.ack_pb(outcome, self._engine.instruments, self._engine.mode)

    async def CancelAll(self, request, context):  # type: ignore[no-untyped-def]
        canceled, failures = await self._engine.cancel_all(request.request_id, request.symbol)
        return execution_pb2.CancelAllResponse(
            request_id=request.request_id, canceled=canceled,
            errors=[common_pb2.Error(code=f.code.value, message=f.message, venue_code=f.venue_code)
                    for f in failures])

    async def GetOrder(self, request, context):  # type: ignore[no-untyped-def]
        order = self._engine.orders.get(request.client_order_id)
        if order is None or order.symbol != request.symbol:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown order")
        return convert.order_pb(order, self._engine.instruments[order.symbol], self._mode(order))

    async def ListOpenOrders(self, request, context):  # type: ignore[no-untyped-def]
        orders = self._engine.open_orders(request.symbol)
        return execution_pb2.ListOpenOrdersResponse(
            request_id=request.request_id,
            orders=[convert.order_pb(o, self._engine.instruments[o.symbol], self._mode(o)) for o in orders])

    async def RenewOwners(self, request, context):  # type: ignore[no-untyped-def]
        if len(request.owners) > 1000 or len(request.released) > 1000 or request.lease_ms < 0 \
                or request.lease_ms > 3_600_000 or any(len(o) > 256 for o in [*request.owners, *request.released]):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "at most 1000 owners of 256 characters, "
                                                                  "lease_ms in 0..3600000")
        self._engine.renew_owners(list(request.owners), request.lease_ms / 1000 if request.lease_ms else None)
        for owner in request.released:
            self._engine.release_owner(owner)
        return execution_pb2.RenewOwnersResponse(request_id=request.request_id,
                                                 orphans_canceled=self._engine.stats.orphans_canceled)

    async def GetPaperAccount(self, request, context):  # type: ignore[no-untyped-def]
        from celeris.domain.modes import Mode as _Mode
        from celeris.execution.paper import PaperVenue

        paper = self._engine.venues.get(_Mode.SIMULATION)
        if not isinstance(paper, PaperVenue):
            return execution_pb2.PaperAccount(request_id=request.request_id, available=False)
        return convert.paper_account_pb(paper, request.request_id)

    async def StreamOrderUpdates(self, request, context):  # type: ignore[no-untyped-def]
        symbols = list(request.symbols) or list(self._engine.instruments)
        queue: asyncio.Queue[Order] = asyncio.Queue(maxsize=100_000)
        offs = [self._bus.subscribe(order_topic(s), queue.put_nowait) for s in symbols]
        sequence = 0
        clock = self._engine.clock
        try:
            for order in self._engine.open_orders():
                if order.symbol in symbols:
                    sequence += 1
                    yield execution_pb2.OrderUpdate(
                        header=common_pb2.StreamHeader(sequence=sequence, ts_publish_ns=clock.now_ns(), snapshot=True),
                        order=convert.order_pb(order, self._engine.instruments[order.symbol], self._mode(order)))
            sequence += 1
            # An empty snapshot marker closes the snapshot even when there were no open orders.
            yield execution_pb2.OrderUpdate(header=common_pb2.StreamHeader(sequence=sequence, snapshot=True,
                                                                           ts_publish_ns=clock.now_ns()))
            while True:
                order = await queue.get()
                sequence += 1
                yield execution_pb2.OrderUpdate(
                    header=common_pb2.StreamHeader(sequence=sequence, ts_event_ns=order.ts_updated_ns,
                                                   ts_publish_ns=clock.now_ns()),
                    order=convert.order_pb(order, self._engine.instruments[order.symbol], self._mode(order)))
        finally:
            for off in offs:
                off()

    async def StreamFills(self, request, context):  # type: ignore[no-untyped-def]
        symbols = list(request.symbols) or list(self._engine.instruments)
        queue: asyncio.Queue[Fill] = asyncio.Queue(maxsize=100_000)
        offs = [self._bus.subscribe(fill_topic(s), queue.put_nowait) for s in symbols]
        sequence = 0
        try:
            sequence += 1
            yield execution_pb2.Fill(header=common_pb2.StreamHeader(sequence=sequence, snapshot=True,
                                                                     ts_publish_ns=self._engine.clock.now_ns()))
            while True:
                fill = await queue.get()
                sequence += 1
                yield convert.fill_pb(fill, self._engine.instruments[fill.symbol], sequence,
                                      self._engine.clock.now_ns())
        finally:
            for off in offs:
                off()


def registrar(engine: ExecutionEngine, bus: InProcessBus):  # type: ignore[no-untyped-def]
    def register(server: grpc.aio.Server) -> None:
        execution_pb2_grpc.add_ExecutionServicer_to_server(ExecutionServicer(engine, bus), server)
    return register
