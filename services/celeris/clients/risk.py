"""The risk manager's pre-trade check as execution's `RiskCheck` port, over gRPC.

Checks go over one CheckOrders stream the client keeps open (one HTTP/2 stream carries many checks;
unary calls on a 2-core machine top out near 2,000/s), with at most `max_in_flight` checks on it and a
deadline per check. A server without the stream (UNIMPLEMENTED) is asked with unary CheckOrder from
then on. Fails closed: a check whose answer does not come within the timeout, or whose stream breaks,
is denied with that reason, because trading without the check is exactly what the check exists to
prevent. A check that times out ends its stream (the answers behind it cannot overtake it); the next
check opens a new one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import AsyncIterator

import grpc

from celeris.api.v1 import common_pb2, risk_pb2, risk_pb2_grpc
from celeris.domain.instruments import Instrument
from celeris.domain.risk import Approved, Denied, PolicyKind, Scope, Violation
from celeris.domain.values import Side
from celeris.domain.messages import OrderRequest
from celeris.runtime import grpc_server
from celeris.runtime.convert import decimal_fraction


MAX_BATCH = 64
"""Checks per CheckOrders message: the server checks a message's batch without yielding, so this bounds
how long one message holds its event loop (64 x ~20 us)."""


class StreamBroken(Exception):
    """The stream ended or failed before this check's answer came; `code` names why (a gRPC status)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class NoStream(Exception):
    """The server has no CheckOrders (UNIMPLEMENTED): nothing on the stream was checked."""


class CheckStream:
    """One open CheckOrders call: requests go out in the order `send` is called, answers come back in
    the same order and resolve the matching futures. An answer for another request id, an answer nobody
    asked for, or the stream ending fails every check still waiting on it (and marks it broken)."""

    def __init__(self, stub: risk_pb2_grpc.RiskManagerStub) -> None:
        self._outbox: asyncio.Queue[risk_pb2.CheckOrderRequest | None] = asyncio.Queue()
        self._waiting: deque[tuple[str, asyncio.Future[risk_pb2.CheckOrderResponse]]] = deque()
        self.broken = False
        self._call = stub.CheckOrders(self._requests())
        self._reader = asyncio.ensure_future(self._read())

    async def _requests(self) -> AsyncIterator[risk_pb2.CheckOrdersRequest]:
        """One message per turn with every check queued since the last one went out (at most MAX_BATCH):
        under load one message carries many checks, alone a check goes out at once. Only the verdicts
        are read, so the server is asked not to build the post-trade metrics."""
        while True:
            request = await self._outbox.get()
            if request is None:
                return
            batch = [request]
            while len(batch) < MAX_BATCH and not self._outbox.empty():
                request = self._outbox.get_nowait()
                if request is None:
                    yield risk_pb2.CheckOrdersRequest(checks=batch, without_post_trade=True, request_id=batch[0].request_id)
                    return
                batch.append(request)
            yield risk_pb2.CheckOrdersRequest(checks=batch, without_post_trade=True, request_id=batch[0].request_id)

    def send(self, request: risk_pb2.CheckOrderRequest) -> asyncio.Future[risk_pb2.CheckOrderResponse]:
        """Queue `request` (synchronously, so the order of calls is the order on the wire)."""
        future: asyncio.Future[risk_pb2.CheckOrderResponse] = asyncio.get_running_loop().create_future()
        self._waiting.append((request.request_id, future))
        self._outbox.put_nowait(request)
        return future

    async def _read(self) -> None:
        error: Exception = StreamBroken("stream ended")
        try:
            async for message in self._call:
                for reply in message.answers:
                    if not self._waiting:
                        raise StreamBroken("answer without a request")
                    request_id, future = self._waiting[0]
                    if reply.request_id != request_id:
                        raise StreamBroken("answer out of order")  # its check too is denied, below
                    self._waiting.popleft()
                    if not future.done():  # a check that timed out has gone; its answer is dropped
                        future.set_result(reply)
        except grpc.aio.AioRpcError as exc:
            error = NoStream() if exc.code() is grpc.StatusCode.UNIMPLEMENTED else StreamBroken(exc.code().name)
        except StreamBroken as exc:
            error = exc
        except asyncio.CancelledError:
            error = StreamBroken("CANCELLED")
        except Exception as exc:  # the channel itself failed: still every waiting check is denied
            error = StreamBroken(type(exc).__name__)
        finally:
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        if not self.broken:
            self.broken = True
            self._call.cancel()
            self._outbox.put_nowait(None)
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)

    async def close(self, why: str = "CANCELLED") -> None:
        self._fail(StreamBroken(why))
        self._reader.cancel()
        try:
            await self._reader
        except asyncio.CancelledError:
            pass


class GrpcRiskCheck:
    def __init__(self, target: str, instruments: dict[str, Instrument], timeout_s: float = 1.0,
                 max_in_flight: int = 256, use_stream: bool = True) -> None:
        self._channel = grpc_server.insecure_channel(target)
        self._stub = risk_pb2_grpc.RiskManagerStub(self._channel)
        self._instruments = instruments
        self.timeout_s = timeout_s
        """Per check, from the call to the answer (waiting for a slot included)."""
        self.use_stream = use_stream
        """False after the server answered UNIMPLEMENTED to CheckOrders: unary CheckOrder from then on."""
        self._slots = asyncio.Semaphore(max_in_flight)
        self._stream: CheckStream | None = None
        self.failures = 0
        self.streams_opened = 0

    async def check(self, request: OrderRequest, mark_ticks: int | None) -> Approved | Denied:
        ins = self._instruments[request.symbol]
        price_ticks = request.price_ticks if request.price_ticks is not None else (mark_ticks or 0)
        pb = risk_pb2.CheckOrderRequest(
            request_id=request.request_id, symbol=request.symbol,
            side=common_pb2.SIDE_BUY if request.side is Side.BUY else common_pb2.SIDE_SELL,
            quantity=common_pb2.Decimal(mantissa=ins.qty_grid.units(request.qty_steps), scale=ins.qty_grid.scale),
            price=common_pb2.Decimal(mantissa=ins.price_grid.units(price_ticks), scale=ins.price_grid.scale),
            reduce_only=request.reduce_only, strategy_id=request.strategy_id)
        reply = await self.ask(pb)
        if isinstance(reply, str):
            self.failures += 1
            return Denied((Violation("risk-manager-unavailable", PolicyKind.HARD, "availability",
                                     decimal_fraction(common_pb2.Decimal()), f"unreachable: {reply}"),))
        if reply.approved:
            return Approved()
        if reply.error_code:
            return Denied((Violation("risk-check-refused", PolicyKind.HARD, "request", decimal_fraction(
                common_pb2.Decimal()), f"{reply.error_code}: {reply.error[:200]}"),))
        return Denied(tuple(Violation(v.policy, PolicyKind(v.kind) if v.kind in ("hard", "soft", "emergency")
                                      else PolicyKind.HARD, v.metric, decimal_fraction(v.value), v.threshold,
                                      Scope(v.scope) if v.scope in ("account", "symbol", "strategy") else Scope.ACCOUNT,
                                      v.scope_id) for v in reply.violations))

    async def ask(self, pb: risk_pb2.CheckOrderRequest) -> risk_pb2.CheckOrderResponse | str:
        """The server's answer, or why there is none (a gRPC status name, "DEADLINE_EXCEEDED" on timeout)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        if self.use_stream:
            try:
                return await self._over_stream(pb, deadline)
            except NoStream:
                self.use_stream = False  # an older server: nothing was checked, ask it the unary way
            except StreamBroken as broken:
                return broken.code
        try:
            return await self._stub.CheckOrder(pb, timeout=max(deadline - loop.time(), 0.001))
        except grpc.aio.AioRpcError as exc:
            return exc.code().name

    async def _over_stream(self, pb: risk_pb2.CheckOrderRequest, deadline: float) -> risk_pb2.CheckOrderResponse:
        stream = None
        try:
            async with asyncio.timeout_at(deadline):
                async with self._slots:
                    stream = self._stream
                    if stream is None or stream.broken:
                        stream = self._stream = CheckStream(self._stub)
                        self.streams_opened += 1
                    return await stream.send(pb)
        except TimeoutError:
            if stream is not None:
                # The answers behind this one cannot overtake it: end the stream now (they are denied) and
                # let the next check open a fresh one, rather than queueing more behind a stalled server.
                await stream.close("DEADLINE_EXCEEDED")
            raise StreamBroken("DEADLINE_EXCEEDED") from None

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()
        await self._channel.close()

