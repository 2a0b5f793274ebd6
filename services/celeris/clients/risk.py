"""The risk manager's pre-trade check as execution's `RiskCheck` port, over gRPC.

Fails closed: if the risk manager cannot answer within the timeout, the order is denied with that
reason, because trading without the check is exactly what the check exists to prevent.
"""

from __future__ import annotations

import grpc

from celeris.api.v1 import common_pb2, risk_pb2, risk_pb2_grpc
from celeris.domain.instruments import Instrument
from celeris.domain.risk import Approved, Denied, PolicyKind, Scope, Violation
from celeris.domain.values import Side
from celeris.domain.messages import OrderRequest
from celeris.runtime import grpc_server
from celeris.runtime.convert import decimal_fraction


class GrpcRiskCheck:
    def __init__(self, target: str, instruments: dict[str, Instrument], timeout_s: float = 1.0) -> None:
        self._channel = grpc_server.insecure_channel(target)
        self._stub = risk_pb2_grpc.RiskManagerStub(self._channel)
        self._instruments = instruments
        self.timeout_s = timeout_s
        self.failures = 0

    async def check(self, request: OrderRequest, mark_ticks: int | None) -> Approved | Denied:
        ins = self._instruments[request.symbol]
        price_ticks = request.price_ticks if request.price_ticks is not None else (mark_ticks or 0)
        pb = risk_pb2.CheckOrderRequest(
            request_id=request.request_id, symbol=request.symbol,
            side=common_pb2.SIDE_BUY if request.side is Side.BUY else common_pb2.SIDE_SELL,
            quantity=common_pb2.Decimal(mantissa=ins.qty_grid.units(request.qty_steps), scale=ins.qty_grid.scale),
            price=common_pb2.Decimal(mantissa=ins.price_grid.units(price_ticks), scale=ins.price_grid.scale),
            reduce_only=request.reduce_only, strategy_id=request.strategy_id)
        try:
            reply = await self._stub.CheckOrder(pb, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            self.failures += 1
            return Denied((Violation("risk-manager-unavailable", PolicyKind.HARD, "availability",
                                     decimal_fraction(common_pb2.Decimal()), f"unreachable: {exc.code().name}"),))
        if reply.approved:
            return Approved()
        return Denied(tuple(Violation(v.policy, PolicyKind(v.kind) if v.kind in ("hard", "soft", "emergency")
                                      else PolicyKind.HARD, v.metric, decimal_fraction(v.value), v.threshold,
                                      Scope(v.scope) if v.scope in ("account", "symbol", "strategy") else Scope.ACCOUNT,
                                      v.scope_id) for v in reply.violations))

    async def close(self) -> None:
        await self._channel.close()
