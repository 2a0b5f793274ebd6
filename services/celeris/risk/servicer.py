"""gRPC shell of the risk manager: CheckOrder (unary, and the CheckOrders stream sharing its translation),
metrics, policies, the emergency stop, alerts."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import grpc

from celeris.api.v1 import common_pb2, risk_pb2, risk_pb2_grpc
from celeris.domain.risk import Denied, Policy, PolicyKind, Scope, Violation
from celeris.domain.values import Side
from celeris.domain.alerts import Alert
from celeris.domain.values import MONEY_SCALE
from celeris.risk.engine import RiskEngine, StopState
from celeris.risk.metrics import RiskMetrics
from celeris.runtime import grpc_server
from celeris.runtime.convert import decimal_str

log = logging.getLogger(__name__)


_INT64_MAX = 2**63 - 1


def dec(value: Decimal | int, scale: int = MONEY_SCALE) -> common_pb2.Decimal:
    """A real-unit figure (the metrics' Decimal edge) as a protobuf Decimal, half-even at `scale`."""
    mantissa = round(Decimal(value).scaleb(scale))
    while abs(mantissa) > _INT64_MAX and scale > 0:  # a huge figure ("infinite" concentration): fewer decimals
        scale -= 1
        mantissa = round(Decimal(value).scaleb(scale))
    # Beyond int64 at scale 0 (a quantity of 2^63 steps: its leverage): the largest figure the wire holds,
    # rather than an encoding error in place of the denial.
    mantissa = max(-_INT64_MAX, min(_INT64_MAX, mantissa))
    return common_pb2.Decimal(mantissa=mantissa, scale=scale)


def _ppm_dec(ppm: int, native_scale: int) -> common_pb2.Decimal:
    """A ppm figure (`native_scale` 6 for a ratio, 4 for a percentage) at MONEY_SCALE, like every other
    Decimal of the API; at its own exact scale when MONEY_SCALE would overflow the int64 mantissa (the
    "infinite" ratio of a non-positive equity is 10^15 ppm)."""
    mantissa = ppm * 10 ** (MONEY_SCALE - native_scale)
    if -_INT64_MAX <= mantissa <= _INT64_MAX:
        return common_pb2.Decimal(mantissa=mantissa, scale=MONEY_SCALE)
    return common_pb2.Decimal(mantissa=ppm, scale=native_scale)


def metrics_pb(m: RiskMetrics, ts_ns: int) -> risk_pb2.RiskMetrics:
    """Straight from the integers (money units are already MONEY_SCALE): no Decimal per call."""
    D, s = common_pb2.Decimal, MONEY_SCALE
    return risk_pb2.RiskMetrics(
        equity=D(mantissa=m.equity_units, scale=s), margin_ratio=_ppm_dec(m.margin_ratio_ppm, 6),
        leverage=_ppm_dec(m.leverage_ppm, 6), daily_drawdown_pct=_ppm_dec(m.daily_drawdown_ppm, 4),
        peak_drawdown_pct=_ppm_dec(m.peak_drawdown_ppm, 4),
        concentration_pct={k: _ppm_dec(v, 4) for k, v in m.concentration_ppm.items()},
        orders_per_minute=m.orders_per_minute, ts_ns=ts_ns)


def violation_pb(v: Violation) -> risk_pb2.PolicyViolation:
    return risk_pb2.PolicyViolation(policy=v.policy, kind=v.kind.value, metric=v.metric, value=dec(v.value),
                                    threshold=v.threshold, scope=v.scope.value, scope_id=v.scope_id)


def stop_pb(stop: StopState, request_id: str) -> risk_pb2.EmergencyStopStatus:
    return risk_pb2.EmergencyStopStatus(
        request_id=request_id, active=stop.active, reason=stop.reason, triggered_by=stop.triggered_by,
        triggered_at_ns=stop.triggered_at_ns, orders_canceled=stop.orders_canceled,
        positions_closed=stop.positions_closed, completed_at_ns=stop.completed_at_ns, enabled_by=stop.enabled_by,
        enabled_at_ns=stop.enabled_at_ns)


def policy_pb(p: Policy, request_id: str = "") -> risk_pb2.RiskPolicy:
    return risk_pb2.RiskPolicy(request_id=request_id, name=p.name, metric=p.metric, operator=p.operator,
                               threshold=p.threshold, kind=p.kind.value, scope=p.scope.value, scope_id=p.scope_id,
                               enabled=p.enabled, priority=p.priority)


class Refused(Exception):
    """A request the check cannot read: the status CheckOrder ends with, the answer CheckOrders gives."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _refusal(request: risk_pb2.CheckOrderRequest, refused: Refused) -> risk_pb2.CheckOrderResponse:
    return risk_pb2.CheckOrderResponse(request_id=request.request_id, approved=False, error_code=refused.code.name,
                                       error=refused.message)


class RiskServicer(risk_pb2_grpc.RiskManagerServicer):
    def __init__(self, engine: RiskEngine) -> None:
        self._engine = engine

    async def CheckOrder(self, request, context):  # type: ignore[no-untyped-def]
        try:
            return self._check(request)
        except Refused as refused:
            await context.abort(refused.code, refused.message)

    async def CheckOrders(self, request_iterator, context):  # type: ignore[no-untyped-def]
        """CheckOrder for every check of every message, answered in order. One message at a time: the
        next is read only once these answers are written, so a client that never reads is held back by
        HTTP/2 flow control instead of growing a queue here."""
        sequence = 0
        async for batch in request_iterator:
            sequence += 1
            header = common_pb2.StreamHeader(sequence=sequence, ts_publish_ns=self._engine.clock.now_ns())
            if len(batch.checks) > grpc_server.MAX_REPEATED:
                refused = Refused(grpc.StatusCode.INVALID_ARGUMENT,
                                  f"{len(batch.checks)} checks in one message (at most {grpc_server.MAX_REPEATED})")
                yield risk_pb2.CheckOrdersResponse(answers=[_refusal(r, refused) for r in batch.checks],
                                                   header=header, request_id=batch.request_id)
                continue
            post_trade = not batch.without_post_trade
            yield risk_pb2.CheckOrdersResponse(answers=[self._answer(r, post_trade) for r in batch.checks],
                                               header=header, request_id=batch.request_id)

    def _answer(self, request: risk_pb2.CheckOrderRequest, post_trade: bool) -> risk_pb2.CheckOrderResponse:
        """A check of the stream: what CheckOrder would refuse with a status is an answer that says so."""
        try:
            problem = grpc_server.oversized(request)  # the interceptor sees the batch, not each check
            if problem:
                raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"request refused: {problem}")
            return self._check(request, post_trade)
        except Refused as refused:
            return _refusal(request, refused)
        except Exception as exc:  # one check must not end the stream: refused, logged, the next served
            log.exception("risk check failed for %r", request.request_id[:128])
            return _refusal(request, Refused(grpc.StatusCode.INTERNAL, f"check failed: {type(exc).__name__}"))

    def _check(self, request: risk_pb2.CheckOrderRequest, post_trade: bool = True) -> risk_pb2.CheckOrderResponse:
        """Decode, one engine call, encode; `Refused` for a request the engine must not see."""
        ins = self._engine.instruments.get(request.symbol)
        if ins is None:
            raise Refused(grpc.StatusCode.NOT_FOUND, f"unknown symbol {request.symbol!r}")
        if request.side not in (common_pb2.SIDE_BUY, common_pb2.SIDE_SELL):
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "side must be BUY or SELL")
        if len(request.request_id) > 128 or len(request.strategy_id) > 128:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "request_id and strategy_id: at most 128 characters")
        try:
            qty = ins.qty(decimal_str(request.quantity, "quantity"))
            price = ins.price(decimal_str(request.price, "price")) if request.price.mantissa else None
        except ValueError as exc:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from exc
        if qty <= 0 or (price is not None and price <= 0):
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "quantity and price must be positive")
        if qty > max(ins.max_qty_steps, ins.market_max_qty_steps) or \
                (price is not None and price > ins.max_price_ticks):
            # No venue takes it, and its figures (2^63 steps) do not fit the answer's int64 mantissas.
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "quantity or price above the instrument's maximum")
        result = self._engine.check_order(request.request_id, request.symbol,
                                          Side.BUY if request.side == common_pb2.SIDE_BUY else Side.SELL,
                                          qty, price, request.reduce_only, request.strategy_id)
        outcome = result.outcome
        violations = outcome.violations if isinstance(outcome, Denied) else outcome.warnings
        return risk_pb2.CheckOrderResponse(
            request_id=request.request_id, approved=not isinstance(outcome, Denied),
            violations=[violation_pb(v) for v in violations],
            post_trade=metrics_pb(result.post_trade, self._engine.clock.now_ns()) if post_trade else None,
            processing_time_us=result.processing_time_us)

    async def GetRiskMetrics(self, request, context):  # type: ignore[no-untyped-def]
        if self._engine.metrics is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no account state yet")
        return metrics_pb(self._engine.metrics, self._engine.clock.now_ns())

    async def TriggerEmergencyStop(self, request, context):  # type: ignore[no-untyped-def]
        stop = await self._engine.emergency_stop(request.reason or "manual emergency stop",
                                                 request.triggered_by or "unknown",
                                                 bool(request.flatten_positions))  # as asked: False keeps positions
        return stop_pb(stop, request.request_id)

    async def GetEmergencyStopStatus(self, request, context):  # type: ignore[no-untyped-def]
        return stop_pb(self._engine.stop, request.request_id)

    async def EnableTrading(self, request, context):  # type: ignore[no-untyped-def]
        try:
            stop = await self._engine.enable_trading(request.enabled_by, request.reason)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return stop_pb(stop, request.request_id)

    async def ListPolicies(self, request, context):  # type: ignore[no-untyped-def]
        return risk_pb2.ListPoliciesResponse(request_id=request.request_id,
                                             policies=[policy_pb(p) for p in self._engine.policies])

    async def UpsertPolicy(self, request, context):  # type: ignore[no-untyped-def]
        if not (0 < len(request.name) <= 64) or len(request.scope_id) > 64 or len(request.threshold) > 40:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name (1-64), scope_id (64) or threshold (40 "
                                                                  "characters) out of bounds")
        try:
            policy = Policy(request.name, request.metric, request.operator, request.threshold,
                            PolicyKind(request.kind or "hard"), Scope(request.scope or "account"), request.scope_id,
                            request.enabled, request.priority or 100)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        await self._engine.policy_store.upsert(policy)
        await self._engine.reload_policies()
        return policy_pb(policy, request.request_id)

    async def DeletePolicy(self, request, context):  # type: ignore[no-untyped-def]
        if not await self._engine.policy_store.delete(request.name):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no policy named {request.name!r}")
        await self._engine.reload_policies()
        return risk_pb2.ListPoliciesResponse(request_id=request.request_id,
                                             policies=[policy_pb(p) for p in self._engine.policies])

    async def StreamAlerts(self, request, context):  # type: ignore[no-untyped-def]
        queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=1000)

        def on_alert(alert: Alert) -> None:
            if queue.full():
                queue.get_nowait()  # a consumer this slow gets the newest alerts
            queue.put_nowait(alert)

        self._engine.on_alert.append(on_alert)
        sequence = 0
        try:
            for alert in self._engine.alerts[-50:]:
                sequence += 1
                yield _alert_pb(alert, sequence, True)
            while True:
                alert = await queue.get()
                sequence += 1
                yield _alert_pb(alert, sequence, False)
        finally:
            self._engine.on_alert.remove(on_alert)


def _alert_pb(alert: Alert, sequence: int, snapshot: bool) -> risk_pb2.RiskAlert:
    return risk_pb2.RiskAlert(header=common_pb2.StreamHeader(sequence=sequence, ts_event_ns=alert.ts_ns,
                                                             snapshot=snapshot),
                              id=alert.id, severity=alert.severity, category=alert.category, message=alert.message,
                              acknowledged=alert.acknowledged)


def registrar(engine: RiskEngine):  # type: ignore[no-untyped-def]
    def register(server: grpc.aio.Server) -> None:
        risk_pb2_grpc.add_RiskManagerServicer_to_server(RiskServicer(engine), server)
    return register
