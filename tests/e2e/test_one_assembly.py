"""One scenario, both local topologies, one outcome: the components are built by the same builders, so
what a user sees through the usual tools (gRPC, the kill switch, the venue's own answers) is the same
whether `celeris up` runs them in one process or as one process each.

The scenario: start from a TradingSystem file (tight limits, three strategies, live against the bundled
simulator), read back the configuration each component applied, let it trade, halt with the kill
switch, check the venue is flat with nothing open, resume with the kill switch. Counts of orders differ from run to run (the
market is timed), so the outcome compared is what must not differ: configuration, modes, halt
semantics, and what the venue holds afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import grpc
from binance.um_futures import UMFutures

from celeris.api.v1 import control_pb2, control_pb2_grpc, risk_pb2, risk_pb2_grpc, strategy_pb2, strategy_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
CELERIS = str(Path(sys.executable).with_name("celeris"))
KEY, SECRET = "assembly-key", "assembly-secret"
CONTROL_TOKEN = "assembly-control-token"
"""Given to `celeris up` as CELERIS_CONTROL_TOKEN: both topologies' Control services require it."""
AUTH = (("authorization", f"Bearer {CONTROL_TOKEN}"),)
MODES = {0: "unspecified", 1: "observation", 2: "simulation", 3: "live"}


def _start(topology: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen([CELERIS, "up", "-f", str(ROOT / "examples" / "tight-limits.yaml"), "--topology", topology,
                             "--duration", "150", "--json", "--dashboard-port", "0", "--api-key", KEY,
                             "--api-secret", SECRET, "--seed", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CELERIS_CONTROL_TOKEN": CONTROL_TOKEN})
    found: dict[str, str] = {}
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        lines.append(line)
        for key, pattern in (("venue", r"venue\s+(http://127\.0\.0\.1:\d+)"), ("grpc", r"gRPC\s+(127\.0\.0\.1:\d+)"),
                             *((n, rf"^\s+{n}\s+(127\.0\.0\.1:\d+)") for n in ("execution", "strategy", "risk"))):
            match = re.search(pattern, line)
            if match:
                found[key] = match.group(1)
        if "Ctrl-C" in line:
            break
    assert "venue" in found, "".join(lines)[-3000:]
    if topology == "inproc":  # one server answers for every component
        found.update(execution=found["grpc"], strategy=found["grpc"], risk=found["grpc"])
    return proc, found


async def _until(condition, timeout_s: float = 60.0):  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while True:
        value = await condition()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


def _detail(status: control_pb2.ComponentStatus, key: str) -> str:
    """A detail of execution's: keys are prefixed with the component where one server answers for all."""
    return status.details.get(key, status.details.get(f"execution.{key}", ""))


async def _scenario(targets: dict[str, str]) -> dict[str, object]:
    outcome: dict[str, object] = {}
    async with grpc.aio.insecure_channel(targets["risk"]) as rc, \
            grpc.aio.insecure_channel(targets["strategy"]) as sc, \
            grpc.aio.insecure_channel(targets["execution"]) as ec:
        risk, strategy = risk_pb2_grpc.RiskManagerStub(rc), strategy_pb2_grpc.StrategyEngineStub(sc)
        execution = control_pb2_grpc.ControlStub(ec)
        policies = (await risk.ListPolicies(risk_pb2.ListPoliciesRequest(), timeout=5)).policies
        outcome["risk_policies"] = sorted((p.name, p.threshold) for p in policies)
        listed = (await strategy.ListStrategies(strategy_pb2.ListStrategiesRequest(), timeout=5)).strategies
        outcome["strategies"] = sorted(s.name for s in listed)
        status = await execution.GetStatus(control_pb2.GetStatusRequest(), timeout=5, metadata=AUTH)
        outcome["execution_mode"] = MODES[status.mode]

        async def traded() -> bool:
            status = await execution.GetStatus(control_pb2.GetStatusRequest(), timeout=5, metadata=AUTH)
            return json.loads(_detail(status, "stats") or "{}").get("fills", 0) >= 3

        outcome["traded"] = await _until(traded)
        halt = subprocess.run([CELERIS, "halt", "--target", targets["risk"], "--reason", "one assembly",
                               "--by", "test"], capture_output=True, text=True, timeout=90)
        outcome["halt_exit_code"] = halt.returncode
        status = await execution.GetStatus(control_pb2.GetStatusRequest(), timeout=5, metadata=AUTH)
        outcome["after_halt"] = {"execution_halted": status.halted, "open_orders": _detail(status, "open_orders"),
                                 "flat": _detail(status, "halt_flat")}
        stop = await risk.GetEmergencyStopStatus(risk_pb2.GetEmergencyStopStatusRequest(), timeout=5)
        outcome["emergency_stop"] = {"active": stop.active, "by": stop.triggered_by}
        outcome["venue"] = _venue_after_halt(targets["venue"])
        resume = subprocess.run([CELERIS, "resume", "--target", targets["risk"], "--by", "test"],
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, "CELERIS_CONTROL_TOKEN": CONTROL_TOKEN})
        status = await execution.GetStatus(control_pb2.GetStatusRequest(), timeout=5, metadata=AUTH)
        outcome["after_resume"] = {"exit_code": resume.returncode, "execution_halted": status.halted}
    return outcome


def _venue_after_halt(venue: str) -> dict[str, object]:
    client = UMFutures(key=KEY, secret=SECRET, base_url=venue)
    positions = {p["symbol"]: Decimal(p["positionAmt"]) for p in client.get_position_risk()}
    return {"open_orders": client.get_orders(), "flat": all(q == 0 for q in positions.values())}


def _run(topology: str) -> dict[str, object]:
    proc, targets = _start(topology)
    try:
        return asyncio.run(_scenario(targets))
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_one_scenario_has_one_outcome_in_both_topologies():
    inproc, services = _run("inproc"), _run("services")
    expected_policies = {("max-position", "500"), ("max-leverage", "5"), ("daily-drawdown", "5.0")}
    assert expected_policies <= set(inproc["risk_policies"]), inproc["risk_policies"]  # type: ignore[arg-type]
    assert inproc["strategies"] == ["mm-btc", "mm-eth", "mom-btc"]
    assert inproc == {**inproc, "execution_mode": "live", "traded": True, "halt_exit_code": 0,
                      "after_halt": {"execution_halted": True, "open_orders": "0", "flat": "true"},
                      "emergency_stop": {"active": True, "by": "test"},
                      "venue": {"open_orders": [], "flat": True},
                      "after_resume": {"exit_code": 0, "execution_halted": False}}, inproc
    assert services == inproc
