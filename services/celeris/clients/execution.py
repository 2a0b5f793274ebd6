"""A gRPC client of execution: the strategy engine's OrderGateway when execution runs in another pod."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Callable

import grpc

from celeris.api.v1 import common_pb2, execution_pb2, execution_pb2_grpc
from celeris.domain.instruments import Instrument
from celeris.domain.orders import Order, OrderStatus
from celeris.domain.values import Side, format_units
from celeris.clients import execution_pb as convert
from celeris.domain.messages import AmendRequest, Fill, OrderRequest, Outcome, RejectCode, Rejection
from celeris.runtime import grpc_server
from celeris.transport.tasks import supervised

log = logging.getLogger(__name__)

STATUS_IN = {v: k for k, v in convert.STATUS.items()}


def order_from_pb(pb: execution_pb2.Order, ins: Instrument) -> Order:
    order = Order(pb.client_order_id, pb.symbol, convert.SIDE_IN[pb.side], convert.TYPE_IN[pb.type],
                  ins.qty(format_units(pb.quantity.mantissa, pb.quantity.scale)),
                  ins.price(format_units(pb.price.mantissa, pb.price.scale)) if pb.HasField("price") else None,
                  convert.TIF_IN.get(pb.time_in_force, convert.TimeInForce.GTC), pb.reduce_only,
                  strategy_id=pb.strategy_id, status=STATUS_IN.get(pb.status, OrderStatus.NEW),
                  venue_order_id=pb.venue_order_id or None, reject_reason=pb.reject_reason)
    order.filled_steps = ins.qty(format_units(pb.filled_quantity.mantissa, pb.filled_quantity.scale))
    return order


_MODE_NAMES = {common_pb2.MODE_OBSERVATION: "observation", common_pb2.MODE_SIMULATION: "simulation",
               common_pb2.MODE_LIVE: "live"}


class ExecutionClient:
    def __init__(self, target: str, instruments: dict[str, Instrument], timeout_s: float = 5.0) -> None:
        self._channel = grpc_server.insecure_channel(target)
        self._stub = execution_pb2_grpc.ExecutionStub(self._channel)
        self.instruments = instruments
        self.timeout_s = timeout_s
        self._fills: asyncio.Task[None] | None = None
        self._orders: asyncio.Task[None] | None = None

    async def submit(self, request: OrderRequest) -> Outcome:
        ins = self.instruments[request.symbol]
        pb = execution_pb2.SubmitOrderRequest(
            request_id=request.request_id, symbol=request.symbol, side=convert.SIDE[request.side],
            type=convert.TYPE[request.order_type], time_in_force=convert.TIF[request.time_in_force],
            quantity=common_pb2.Decimal(mantissa=ins.qty_grid.units(request.qty_steps), scale=ins.qty_grid.scale),
            reduce_only=request.reduce_only, strategy_id=request.strategy_id, ts_signal_ns=request.ts_signal_ns,
            client_order_id=request.client_order_id)
        if request.price_ticks is not None:
            pb.price.CopyFrom(common_pb2.Decimal(mantissa=ins.price_grid.units(request.price_ticks),
                                                 scale=ins.price_grid.scale))
        try:
            ack = await self._stub.SubmitOrder(pb, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            # Unknown outcome: the same request id, sent again later, gets the first answer.
            return Outcome(request.request_id, False, None,
                           Rejection(RejectCode.SUBMIT_FAILED, f"execution unreachable: {exc.code().name}"))
        return self._outcome(ack)

    async def cancel(self, request_id: str, symbol: str, client_order_id: str = "", venue_order_id: int = 0) -> Outcome:
        try:
            ack = await self._stub.CancelOrder(execution_pb2.CancelOrderRequest(
                request_id=request_id, symbol=symbol, client_order_id=client_order_id,
                venue_order_id=venue_order_id), timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            return Outcome(request_id, False, None, Rejection(RejectCode.SUBMIT_FAILED, exc.code().name))
        return self._outcome(ack)

    async def amend(self, request: AmendRequest) -> Outcome:
        """Execution's AmendOrder: a working LIMIT order's new quantity and price (SDK strategies amend)."""
        ins = self.instruments[request.symbol]
        pb = execution_pb2.AmendOrderRequest(
            request_id=request.request_id, symbol=request.symbol, client_order_id=request.client_order_id,
            quantity=common_pb2.Decimal(mantissa=ins.qty_grid.units(request.qty_steps), scale=ins.qty_grid.scale),
            price=common_pb2.Decimal(mantissa=ins.price_grid.units(request.price_ticks), scale=ins.price_grid.scale))
        try:
            ack = await self._stub.AmendOrder(pb, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            return Outcome(request.request_id, False, None, Rejection(RejectCode.SUBMIT_FAILED, exc.code().name))
        return self._outcome(ack)

    def _outcome(self, ack: execution_pb2.OrderAck) -> Outcome:
        order = order_from_pb(ack.order, self.instruments[ack.order.symbol]) if ack.HasField("order") else None
        rejection = None
        if ack.HasField("error"):
            try:
                code = RejectCode(ack.error.code)
            except ValueError:
                code = RejectCode.VENUE_REJECTED
            rejection = Rejection(code, ack.error.message, ack.error.venue_code)
        return Outcome(ack.request_id, ack.accepted, order, rejection)

    async def renew_owners(self, owners: list[str], lease_s: float) -> None:
        try:
            await self._stub.RenewOwners(execution_pb2.RenewOwnersRequest(owners=owners, lease_ms=int(lease_s * 1000)),
                                         timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            log.warning("owner leases not renewed: %s", exc.code().name)

    async def release_owner(self, owner: str) -> None:
        try:
            await self._stub.RenewOwners(execution_pb2.RenewOwnersRequest(released=[owner]), timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            log.warning("owner %s not released: %s", owner, exc.code().name)

    def stream_orders(self, on_order: Callable[[Any], None]) -> None:
        """Execution's order updates (snapshot, then every change), reopened when the stream is lost."""
        self._orders = supervised("execution-client-orders", lambda: self._stream_orders(on_order))

    async def _stream_orders(self, on_order: Callable[[Any], None]) -> None:
        while True:
            try:
                async for pb in self._stub.StreamOrderUpdates(execution_pb2.StreamOrdersRequest()):
                    if not pb.HasField("order") or not pb.order.symbol:
                        continue  # the snapshot marker
                    ins = self.instruments.get(pb.order.symbol)
                    if ins is not None:
                        on_order(order_from_pb(pb.order, ins))
            except grpc.aio.AioRpcError as exc:
                log.warning("order stream lost (%s); reopening", exc.code().name)
            await asyncio.sleep(0.5)

    def stream_fills(self, on_fill: Callable[[Fill], None]) -> None:
        self._fills = supervised("execution-client-fills", lambda: self._stream_fills(on_fill))

    async def _stream_fills(self, on_fill: Callable[[Fill], None]) -> None:
        while True:
            try:
                async for pb in self._stub.StreamFills(execution_pb2.StreamFillsRequest()):
                    if not pb.symbol:
                        continue  # the snapshot marker
                    ins = self.instruments[pb.symbol]
                    result = on_fill(Fill(pb.symbol, pb.client_order_id, pb.venue_order_id, pb.trade_id,
                                 Side.BUY if pb.side == common_pb2.SIDE_BUY else Side.SELL,
                                 ins.price(format_units(pb.price.mantissa, pb.price.scale)),
                                 ins.qty(format_units(pb.quantity.mantissa, pb.quantity.scale)),
                                 pb.commission.mantissa, pb.is_maker, pb.realized_pnl.mantissa, pb.strategy_id,
                                 _MODE_NAMES.get(pb.mode, "live"), pb.header.ts_event_ns,
                                 pb.commission_asset or "USDT"))
                    if asyncio.iscoroutine(result):
                        await result  # in order: the next fill waits for this one's handling
            except grpc.aio.AioRpcError as exc:
                log.warning("fill stream lost (%s); reopening", exc.code().name)
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        for task in (self._fills, self._orders):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._channel.close()
