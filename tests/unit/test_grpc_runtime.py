"""The runtime's gRPC server over real sockets: health, Control, correlation ids, /metrics, drain."""

import io
import json
import signal
import subprocess
import sys

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import Counter

from celeris.api.v1 import common_pb2, control_pb2, control_pb2_grpc
from celeris.domain.clock import TestClock
from celeris.domain.modes import Mode
from celeris.runtime import control as control_mod
from celeris.runtime import grpc_server, logs, metrics


@pytest.fixture
async def running():
    clock = TestClock()
    ctl = control_mod.ComponentControl("execution", clock)
    bound = grpc_server.create_server([control_mod.registrar(ctl)], port=0)
    await bound.server.start()
    await bound.set_serving()
    channel = grpc_server.insecure_channel(bound.target)
    yield ctl, bound, channel
    await channel.close()
    await bound.server.stop(None)


async def test_health_and_status_over_a_real_channel(running):
    ctl, bound, channel = running
    assert bound.port > 0
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    status = await control_pb2_grpc.ControlStub(channel).GetStatus(control_pb2.GetStatusRequest(request_id="r1"))
    assert status.component == "execution" and status.request_id == "r1"
    assert status.mode == common_pb2.MODE_OBSERVATION


async def test_mode_table_enforced_and_halt_resume_recorded(running):
    ctl, _, channel = running
    stub = control_pb2_grpc.ControlStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SetMode(control_pb2.SetModeRequest(mode=common_pb2.MODE_LIVE))
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    seen = []

    async def on_mode(mode):
        seen.append(mode)

    ctl.on_mode.append(on_mode)
    await stub.SetMode(control_pb2.SetModeRequest(mode=common_pb2.MODE_SIMULATION, requested_by="op"))
    reply = await stub.SetMode(control_pb2.SetModeRequest(mode=common_pb2.MODE_LIVE, requested_by="op"))
    assert reply.mode == common_pb2.MODE_LIVE and seen == [Mode.SIMULATION, Mode.LIVE]

    halted = await stub.Halt(control_pb2.HaltRequest(reason="drawdown", requested_by="risk"))
    again = await stub.Halt(control_pb2.HaltRequest(reason="second", requested_by="x"))
    assert halted.halted and again.halt_reason == "drawdown"  # idempotent
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Resume(control_pb2.ResumeRequest())
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    resumed = await stub.Resume(control_pb2.ResumeRequest(requested_by="alice", reason="checked"))
    assert not resumed.halted
    assert [a for _, a, _ in ctl.audit] == ["set_mode", "set_mode", "halt", "resume"]


async def test_correlation_id_travels_with_the_call(running):
    ctl, _, channel = running
    stream = io.StringIO()
    logs.setup("execution", stream=stream)
    token = logs.correlation_id.set("cid-42")
    try:
        await control_pb2_grpc.ControlStub(channel).Halt(control_pb2.HaltRequest(reason="t", requested_by="me"))
    finally:
        logs.correlation_id.reset(token)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    halt_logs = [r for r in records if r["msg"] == "control halt"]
    assert halt_logs and halt_logs[0]["correlation_id"] == "cid-42"


async def test_metrics_endpoint_serves_the_registry():
    registry = metrics.new_registry()
    counter = Counter("orders_submitted_total", "Orders sent", registry=registry)
    counter.inc(3)
    runner, port = await metrics.start_metrics_server(registry, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
        assert resp.status == 200 and "orders_submitted_total 3.0" in text
    finally:
        await runner.cleanup()


SERVER_SCRIPT = r"""
import asyncio, sys
from celeris.domain.clock import TestClock
from celeris.runtime import control, grpc_server, logs
logs.setup("demo")
async def main():
    ctl = control.ComponentControl("demo", TestClock())
    bound = grpc_server.create_server([control.registrar(ctl)], port=0)
    print(bound.port, flush=True)
    async def drain():
        await ctl.drain()
        print("drained", flush=True)
    await grpc_server.serve_until_signal(bound, drain, drain_timeout_s=2)
grpc_server.install_uvloop()
asyncio.run(main())
"""


def test_sigterm_drains_and_stops_cleanly():
    proc = subprocess.Popen([sys.executable, "-c", SERVER_SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "drained" in out
    assert '"msg": "stopped"' in err


async def test_configure_applies_in_order_and_refuses_old_generations(running):
    ctl, _, channel = running
    seen = []

    async def hook(config):
        seen.append(config)

    ctl.on_configure.append(hook)
    stub = control_pb2_grpc.ControlStub(channel)
    reply = await stub.Configure(control_pb2.ConfigureRequest(generation=3, settings_json='{"risk": {"maxLeverage": 5}}'))
    assert reply.config_generation == 3 and seen == [{"risk": {"maxLeverage": 5}}]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Configure(control_pb2.ConfigureRequest(generation=2, settings_json="{}"))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Configure(control_pb2.ConfigureRequest(generation=4, settings_json="not json"))
