"""The risk manager as its own process (`python -m celeris risk run`): the operator's Configure call turns
the TradingSystem's spec.risk into hard policies, and a bad limit is refused without changing any."""

from __future__ import annotations

import json
import subprocess

import grpc
import pytest

from celeris.api.v1 import control_pb2, control_pb2_grpc, risk_pb2, risk_pb2_grpc
from tests.support.servers import free_port
from tests.sim.conftest import sim_process  # noqa: F401
from tests.strategy.test_services import spawn
from tests.support.waits import until


async def test_configure_applies_risk_limits_in_the_running_process(sim_process):  # noqa: F811
    port = free_port()
    proc = spawn("risk", sim_process, grpc_port=port, metrics_port=free_port())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            risk = risk_pb2_grpc.RiskManagerStub(channel)
            ctl = control_pb2_grpc.ControlStub(channel)
            assert await until(lambda: risk.ListPolicies(risk_pb2.ListPoliciesRequest(), timeout=1))
            limits = {"maxPositionUsdt": "2500", "maxDailyDrawdownPct": 1.5, "maxOrdersPerSecond": 4, "maxLeverage": 3}
            status = await ctl.Configure(control_pb2.ConfigureRequest(
                generation=3, settings_json=json.dumps({"strategies": [], "risk": limits}), requested_by="test"))
            assert status.config_generation == 3
            policies = {p.name: p for p in (await risk.ListPolicies(risk_pb2.ListPoliciesRequest())).policies}
            assert (policies["max-position"].threshold, policies["max-leverage"].threshold,
                    policies["order-velocity"].threshold, policies["daily-drawdown"].threshold) == \
                ("2500", "3", "240", "1.5")

            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await ctl.Configure(control_pb2.ConfigureRequest(
                    generation=4, settings_json=json.dumps({"risk": {"maxLeverage": 2, "maxPositionUsdt": "lots"}})))
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "lots" in refused.value.details()
            policies = {p.name: p for p in (await risk.ListPolicies(risk_pb2.ListPoliciesRequest())).policies}
            assert policies["max-leverage"].threshold == "3"
            assert (await ctl.GetStatus(control_pb2.GetStatusRequest())).config_generation == 3

            with pytest.raises(grpc.aio.AioRpcError) as malformed:
                await ctl.Configure(control_pb2.ConfigureRequest(generation=5, settings_json="{not json"))
            assert malformed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
