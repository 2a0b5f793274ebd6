"""Bad input is refused and the service keeps serving: random and malformed messages to the risk manager's
and execution's order RPCs over a real gRPC socket; every call answers within a bound, and a valid call
afterwards still works. The case that once hung the risk manager (scale 2**32-1) is pinned."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celeris.api.v1 import common_pb2, execution_pb2, execution_pb2_grpc, risk_pb2, risk_pb2_grpc
from celeris.domain.clock import TestClock
from celeris.domain.modes import Mode
from celeris.domain.positions import Position
from celeris.execution import servicer as execution_servicer
from celeris.execution.engine import ExecutionEngine
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.risk import servicer as risk_servicer
from celeris.risk.engine import MemoryAudit, MemoryFlag, MemoryPolicyStore, RiskEngine
from celeris.risk.metrics import AccountSnapshot
from celeris.runtime import grpc_server
from celeris.transport.bus import InProcessBus
from tests.execution.scripted_venue import ScriptedVenue

ANSWER_WITHIN_S = 2.0

decimals = st.builds(common_pb2.Decimal, mantissa=st.integers(-2**63, 2**63 - 1),
                     scale=st.one_of(st.integers(0, 20), st.integers(0, 2**32 - 1)))
texts = st.one_of(st.text(max_size=40), st.text(min_size=200, max_size=3000), st.sampled_from(["BTCUSDT", ""]))
enums = st.integers(-5, 2**31 - 1)


class Account:
    def __init__(self, btcusdt):
        self.btcusdt = btcusdt

    async def snapshot(self):
        return AccountSnapshot(10_000 * 10**8, {"BTCUSDT": Position(self.btcusdt, 0, Fraction(0))},
                               {"BTCUSDT": 600_000}, {"BTCUSDT": 20})


async def _servers(btcusdt):
    clock = TestClock(10**18)
    risk = RiskEngine({"BTCUSDT": btcusdt}, clock, Account(btcusdt), MemoryPolicyStore(), MemoryAudit(),
                      MemoryFlag(), None)
    await risk.refresh()
    risk.policies = await risk.policy_store.load()
    venue = ScriptedVenue(auto_ack=True)
    bus = InProcessBus()
    execution = ExecutionEngine(ExecutionConfig(("BTCUSDT",), PositionLimits(0, 10**6)), {"BTCUSDT": btcusdt},
                                clock, {Mode.LIVE: venue}, bus.publish, mode=Mode.LIVE)
    execution.on_mark("BTCUSDT", 600_000)
    bound = grpc_server.create_server([risk_servicer.registrar(risk), execution_servicer.registrar(execution, bus)])
    await bound.server.start()
    return bound


async def _timed(call):
    started = time.monotonic()
    try:
        await asyncio.wait_for(call, ANSWER_WITHIN_S)
        code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
    assert time.monotonic() - started < ANSWER_WITHIN_S
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), code
    return code


async def _fuzz(btcusdt, checks, submits):
    bound = await _servers(btcusdt)
    try:
        async with grpc.aio.insecure_channel(bound.target) as channel:
            risk = risk_pb2_grpc.RiskManagerStub(channel)
            execution = execution_pb2_grpc.ExecutionStub(channel)
            for request in checks:
                await _timed(risk.CheckOrder(request, timeout=ANSWER_WITHIN_S))
            for request in submits:
                await _timed(execution.SubmitOrder(request, timeout=ANSWER_WITHIN_S))
            # Still serving, and still right.
            ok = await risk.CheckOrder(risk_pb2.CheckOrderRequest(
                request_id="after", symbol="BTCUSDT", side=common_pb2.SIDE_BUY,
                quantity=common_pb2.Decimal(mantissa=1, scale=3), price=common_pb2.Decimal(mantissa=600000, scale=1)),
                timeout=ANSWER_WITHIN_S)
            assert ok.approved
    finally:
        await bound.server.stop(None)


check_requests = st.builds(risk_pb2.CheckOrderRequest, request_id=texts, symbol=texts, side=enums,
                           quantity=decimals, price=decimals, reduce_only=st.booleans(), strategy_id=texts)
submit_requests = st.builds(execution_pb2.SubmitOrderRequest, request_id=texts, symbol=texts, side=enums, type=enums,
                            time_in_force=enums, quantity=decimals, price=decimals, stop_price=decimals,
                            reduce_only=st.booleans(), strategy_id=texts, client_order_id=texts)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(checks=st.lists(check_requests, max_size=6), submits=st.lists(submit_requests, max_size=6))
def test_random_order_messages_are_answered_promptly_and_the_services_keep_serving(btcusdt, checks, submits):
    asyncio.run(_fuzz(btcusdt, checks, submits))


def test_the_decimal_that_hung_the_risk_manager_is_refused(btcusdt):
    hostile = common_pb2.Decimal(mantissa=-2**63, scale=2**32 - 1)
    checks = [risk_pb2.CheckOrderRequest(request_id="x", symbol="BTCUSDT", side=common_pb2.SIDE_BUY,
                                         quantity=hostile, price=hostile)] * 3
    submits = [execution_pb2.SubmitOrderRequest(request_id="y", symbol="BTCUSDT", side=common_pb2.SIDE_BUY,
                                                type=execution_pb2.ORDER_TYPE_LIMIT, quantity=hostile, price=hostile)]
    asyncio.run(_fuzz(btcusdt, checks, submits))


def test_a_huge_repeated_field_or_string_is_refused_at_once(btcusdt):
    async def go():
        bound = await _servers(btcusdt)
        try:
            async with grpc.aio.insecure_channel(bound.target) as channel:
                execution = execution_pb2_grpc.ExecutionStub(channel)
                started = time.monotonic()
                stream = execution.StreamOrderUpdates(execution_pb2.StreamOrdersRequest(symbols=["BTCUSDT"] * 200_000),
                                                      timeout=5)
                try:
                    async for _ in stream:
                        raise AssertionError("a stream of 200,000 symbols was served")
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT and "200000 items" in exc.details()
                risk = risk_pb2_grpc.RiskManagerStub(channel)
                try:
                    await risk.CheckOrder(risk_pb2.CheckOrderRequest(request_id="x" * 300_000), timeout=5)
                    raise AssertionError("a 300 kB request id was served")
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
                assert time.monotonic() - started < 2
        finally:
            await bound.server.stop(None)

    asyncio.run(go())
