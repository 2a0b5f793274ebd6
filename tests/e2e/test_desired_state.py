"""A component process boots into its desired state (CELERIS_DESIRED_STATE) and never acts in another.

Real processes (`python -m celeris NAME run`) against the bundled simulator. Their environment says
`mode=live` (a pod template written before a demotion); the desired file says otherwise. An attacker
submits orders in a tight loop from before the port opens until well after: every answer is a refusal
and the simulator receives no order. Kill -9, rewrite the file (demoted, halted), start again: back
demoted and halted, and nothing accepted in between. A file that cannot be used stops the process with
one line on stderr before its port ever opens.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import grpc
import pytest

from celeris.api.v1 import common_pb2, control_pb2, control_pb2_grpc, execution_pb2, execution_pb2_grpc
from celeris.api.v1 import risk_pb2, risk_pb2_grpc
from celeris.runtime.control_auth import control_metadata
from tests.sim.conftest import API_KEY, API_SECRET, sim_process  # noqa: F401
from tests.support.servers import free_port
from tests.support.waits import wait_until

pytestmark = pytest.mark.slow

TOKEN = "desired-state-test-token"
AUTH = control_metadata(TOKEN)
FAST_RECONNECT = [("grpc.initial_reconnect_backoff_ms", 10), ("grpc.min_reconnect_backoff_ms", 10),
                  ("grpc.max_reconnect_backoff_ms", 50)]
"""The attacker's channel retries the closed port every few milliseconds, not gRPC's default second."""
MODES = {"observation": common_pb2.MODE_OBSERVATION, "simulation": common_pb2.MODE_SIMULATION,
         "live": common_pb2.MODE_LIVE}


def desired(path: Path, generation: int, mode: str, halted: bool, reason: str = "", **settings) -> Path:
    path.write_text(json.dumps({"generation": generation, "mode": mode, "halted": halted, "haltReason": reason,
                                "settings": settings}))
    return path


def spawn(component: str, sim: dict, port: int, desired_path: Path | str, stderr: Path, **extra) -> subprocess.Popen:
    """As a pod starts it: plain settings on the command line (here mode=live, the stale template), the
    secrets and the desired file in the environment."""
    args = [sys.executable, "-m", "celeris", component, "run", "--set", f"venue_rest_url={sim['rest_url']}",
            "--set", f"venue_ws_url={sim['ws_url']}", "--set", "symbols=BTCUSDT,ETHUSDT",
            "--set", "mode=live", "--set", f"grpc_port={port}", "--set", f"metrics_port={free_port()}",
            "--set", "log_level=WARNING"]
    for key, value in extra.items():
        args += ["--set", f"{key}={value}"]
    env = {**os.environ, "CELERIS_VENUE_API_KEY": API_KEY, "CELERIS_VENUE_API_SECRET": API_SECRET,
           "CELERIS_CONTROL_TOKEN": TOKEN, "CELERIS_DESIRED_STATE": str(desired_path)}
    with open(stderr, "w") as err:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, text=True, env=env)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def sim_orders(sim: dict) -> int:
    """Every order the simulator has received (from anyone), from its admin endpoint."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{sim['rest_url']}/_sim/state") as response:
            return (await response.json())["stats"]["orders"]


def order(i: int) -> execution_pb2.SubmitOrderRequest:
    # A limit order valued at its own price: an engine that is not halted takes it (no book needed).
    return execution_pb2.SubmitOrderRequest(
        request_id=f"attacker-{os.getpid()}-{time.monotonic_ns()}-{i}", symbol="BTCUSDT", side=common_pb2.SIDE_BUY,
        type=execution_pb2.ORDER_TYPE_LIMIT, time_in_force=execution_pb2.TIME_IN_FORCE_GTC,
        quantity=common_pb2.Decimal(mantissa=2, scale=3), price=common_pb2.Decimal(mantissa=5500000, scale=2))


async def attack_execution(target: str, proc: subprocess.Popen, expect_mode: str, refusals_expected: set[str],
                           answered_after_open: int = 60):
    """Submit orders (and ask the status) in a tight loop from before the port opens until
    `answered_after_open` answers came back. Returns (refusals, statuses); fails on any accepted order
    and on any refusal for another reason than `refusals_expected` (a book not ready yet is no halt)."""
    refusals: list[str] = []
    statuses: list[control_pb2.ComponentStatus] = []
    unanswered = 0
    deadline = time.monotonic() + 90
    async with grpc.aio.insecure_channel(target, options=FAST_RECONNECT) as channel:
        execution = execution_pb2_grpc.ExecutionStub(channel)
        control = control_pb2_grpc.ControlStub(channel)
        i = 0
        while len(refusals) < answered_after_open:
            assert time.monotonic() < deadline, f"execution never answered; exit code {proc.poll()}"
            assert proc.poll() is None, f"execution exited with {proc.returncode}"
            i += 1
            try:
                ack = await execution.SubmitOrder(order(i), timeout=0.5)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), exc
                unanswered += 1
                continue
            assert not ack.accepted, f"an order was accepted {len(refusals)} answers after the port opened: {ack}"
            assert ack.error.code in refusals_expected, f"answer {len(refusals)}: {ack.error}"
            refusals.append(ack.error.code)
            status = await control.GetStatus(control_pb2.GetStatusRequest(), timeout=2, metadata=AUTH)
            assert status.mode == MODES[expect_mode] and status.halted, status
            statuses.append(status)
    assert unanswered > 0, "the attack began after the port opened: it did not test the boot"
    return refusals, statuses


async def test_execution_boots_halted_in_its_desired_mode_and_refuses_from_the_first_order(sim_process, tmp_path):  # noqa: F811
    port = free_port()
    target = f"127.0.0.1:{port}"
    path = desired(tmp_path / "desired.json", 4, "simulation", True, "drill: halted by the operator",
                   risk={"maxPositionUsdt": "5000", "maxOrdersPerSecond": 50, "maxLeverage": 5})
    orders_before = await sim_orders(sim_process)
    proc = spawn("execution", sim_process, port, path, tmp_path / "execution-1.err")
    try:
        refusals, statuses = await attack_execution(target, proc, "simulation", {"HALTED"})
        status = statuses[-1]
        assert status.halt_reason == "drill: halted by the operator" and status.config_generation == 4
        assert status.component == "execution"

        # Kill -9; the operator demoted and halted it meanwhile; the template still says live.
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        desired(path, 5, "observation", True, "demoted after a loss")
        proc = spawn("execution", sim_process, port, path, tmp_path / "execution-2.err")
        refusals, statuses = await attack_execution(target, proc, "observation", {"HALTED", "OBSERVATION_MODE"})
        assert all(s.config_generation == 5 and s.halt_reason == "demoted after a loss" for s in statuses)
        assert await sim_orders(sim_process) == orders_before, "an order reached the simulator"
    finally:
        stop(proc)


async def test_the_desired_mode_wins_over_the_environment_when_not_halted(sim_process, tmp_path):  # noqa: F811
    """Not halted, desired observation, environment live: orders are logged, none leaves."""
    port = free_port()
    path = desired(tmp_path / "desired.json", 2, "observation", False)
    orders_before = await sim_orders(sim_process)
    proc = spawn("execution", sim_process, port, path, tmp_path / "execution.err")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=FAST_RECONNECT) as channel:
            control = control_pb2_grpc.ControlStub(channel)
            wait_until(lambda: proc.poll() is not None or _port_open(port), 60, "execution's port")
            status = await control.GetStatus(control_pb2.GetStatusRequest(), timeout=5, metadata=AUTH)
            assert status.mode == common_pb2.MODE_OBSERVATION and not status.halted and status.config_generation == 2
            for i in range(20):
                ack = await execution_pb2_grpc.ExecutionStub(channel).SubmitOrder(order(i), timeout=5)
                assert not ack.accepted and ack.error.code == "OBSERVATION_MODE", ack
        assert await sim_orders(sim_process) == orders_before
    finally:
        stop(proc)


async def test_risk_boots_stopped_with_its_desired_limits(sim_process, tmp_path):  # noqa: F811
    """Another component: the risk manager denies every check from the first one its port answers, shows
    the halt in GetStatus, and judges with the desired file's limits, not the environment's."""
    port = free_port()
    path = desired(tmp_path / "desired.json", 3, "simulation", True, "halted by the operator",
                   risk={"maxPositionUsdt": "2500", "maxOrdersPerSecond": 4, "maxLeverage": 3})
    proc = spawn("risk", sim_process, port, path, tmp_path / "risk.err",
                 risk_limits=json.dumps({"maxPositionUsdt": "900000", "maxLeverage": 20}))
    try:
        answers = unanswered = 0
        deadline = time.monotonic() + 90
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=FAST_RECONNECT) as channel:
            risk = risk_pb2_grpc.RiskManagerStub(channel)
            while answers < 40:
                assert time.monotonic() < deadline and proc.poll() is None, "risk did not come up"
                try:
                    reply = await risk.CheckOrder(risk_pb2.CheckOrderRequest(
                        request_id=f"r{answers}", symbol="BTCUSDT", side=common_pb2.SIDE_BUY,
                        quantity=common_pb2.Decimal(mantissa=1, scale=3)), timeout=0.5)
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), exc
                    unanswered += 1
                    continue
                assert not reply.approved, f"a check was approved {answers} answers after the port opened"
                answers += 1
            assert unanswered > 0
            status = await control_pb2_grpc.ControlStub(channel).GetStatus(control_pb2.GetStatusRequest(), timeout=5,
                                                                          metadata=AUTH)
            assert status.halted and status.halt_reason == "halted by the operator"
            assert status.config_generation == 3 and status.mode == common_pb2.MODE_SIMULATION
            stopped = await risk.GetEmergencyStopStatus(risk_pb2.GetEmergencyStopStatusRequest(), timeout=5)
            assert stopped.active
            policies = {p.name: p.threshold for p in (await risk.ListPolicies(risk_pb2.ListPoliciesRequest())).policies}
            assert policies["max-position"] == "2500" and policies["max-leverage"] == "3", policies
    finally:
        stop(proc)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


BAD_FILES = {
    "missing": None,
    "not json": "{generation: 1",
    "not an object": "[1, 2]",
    "unknown mode": json.dumps({"generation": 1, "mode": "yolo", "halted": False}),
    "unknown key": json.dumps({"generation": 1, "mode": "simulation", "halted": False, "halt": True}),
    "halted not a boolean": json.dumps({"generation": 1, "mode": "simulation", "halted": "false"}),
    "no mode": json.dumps({"generation": 1, "halted": False}),
    "negative generation": json.dumps({"generation": -1, "mode": "simulation", "halted": False}),
    "refused configuration": json.dumps({"generation": 1, "mode": "simulation", "halted": False,
                                         "settings": {"risk": {"maxPositionUsdt": "lots"}}}),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_file_that_cannot_be_used_stops_the_process_before_its_port_opens(sim_process, tmp_path, case):  # noqa: F811
    path = tmp_path / "desired.json"
    if BAD_FILES[case] is not None:
        path.write_text(BAD_FILES[case])
    port = free_port()
    err = tmp_path / "stderr"
    proc = spawn("execution", sim_process, port, path, err)
    try:
        opened = []
        wait_until(lambda: (opened.append(True) if _port_open(port) else None) or proc.poll() is not None,
                   60, "the process to exit", poll_s=0.01)
        assert proc.returncode not in (0, None)
        assert not opened, "the port opened"
        lines = err.read_text().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: desired state"), lines
        assert "Traceback" not in err.read_text()
    finally:
        stop(proc)


async def test_a_halted_strategy_engine_decides_but_never_orders(sim_process, tmp_path):  # noqa: F811
    """The strategy engine halted by its desired file, with a market maker that quotes on every book
    (the desired roster, not the environment's): signals are observed, no order reaches execution."""
    from celeris.api.v1 import strategy_pb2, strategy_pb2_grpc

    md, ex, st = free_port(), free_port(), free_port()
    roster = [{"name": "mm-btc", "type": "market_making", "symbol": "BTCUSDT", "orderSize": "0.010",
               "params": {"requote_every": 2}}]
    stale = json.dumps([{"name": "mom-eth", "type": "momentum", "symbol": "ETHUSDT", "order_size": "0.100",
                         "params": {"lookback": 10, "threshold_bps": 0.5}}])
    procs = [
        spawn("marketdata", sim_process, md, desired(tmp_path / "md.json", 1, "simulation", False), tmp_path / "md.err"),
        spawn("execution", sim_process, ex, desired(tmp_path / "ex.json", 1, "simulation", False), tmp_path / "ex.err",
              marketdata_target=f"127.0.0.1:{md}", paper_latency_ms=1),
        spawn("strategy", sim_process, st, desired(tmp_path / "st.json", 6, "simulation", True, "held by the operator",
                                                   strategies=roster), tmp_path / "st.err",
              marketdata_target=f"127.0.0.1:{md}", execution_target=f"127.0.0.1:{ex}", strategies=stale),
    ]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{st}") as st_ch, \
                grpc.aio.insecure_channel(f"127.0.0.1:{ex}") as ex_ch:
            control = control_pb2_grpc.ControlStub(st_ch)

            async def stats():
                status = await control.GetStatus(control_pb2.GetStatusRequest(), timeout=2, metadata=AUTH)
                assert status.halted and status.halt_reason == "held by the operator", status
                assert status.config_generation == 6 and status.mode == common_pb2.MODE_SIMULATION
                return json.loads(status.details["stats"])

            deadline = time.monotonic() + 90
            seen: dict = {}
            while time.monotonic() < deadline and seen.get("signals", 0) < 30:
                assert all(p.poll() is None for p in procs), [p.returncode for p in procs]
                try:
                    seen = await stats()
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.1)
            assert seen.get("signals", 0) >= 30, f"the market maker never produced signals: {seen}"
            assert seen["orders"] == 0, seen
            listed = await strategy_pb2_grpc.StrategyEngineStub(st_ch).ListStrategies(
                strategy_pb2.ListStrategiesRequest(), timeout=5)
            assert {s.name for s in listed.strategies} >= {"mm-btc"}
            assert {s.name for s in listed.strategies if s.enabled} == {"mm-btc"}
            open_orders = await execution_pb2_grpc.ExecutionStub(ex_ch).ListOpenOrders(
                execution_pb2.ListOpenOrdersRequest(), timeout=5)
            assert not open_orders.orders, open_orders
            ex_status = await control_pb2_grpc.ControlStub(ex_ch).GetStatus(control_pb2.GetStatusRequest(),
                                                                            timeout=5, metadata=AUTH)
            assert json.loads(ex_status.details["stats"])["submitted"] == 0
    finally:
        for proc in procs:
            stop(proc)
