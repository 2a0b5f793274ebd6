"""`celeris up --topology services` supervises its processes: a component killed with SIGKILL is started
again, the restart shows in the progress line and the summary, and the system keeps trading; no secret
is on any child's command line; every child's Control requires the run's token, which the others present."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CELERIS = str(Path(sys.executable).with_name("celeris"))


def children(pid: int) -> dict[int, str]:
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return out


def test_a_killed_component_is_restarted_and_secrets_stay_off_command_lines(tmp_path):
    secret = "s3cr3t-never-on-argv"
    proc = subprocess.Popen([CELERIS, "up", "--topology", "services", "--duration", "200", "--json",
                             "--dashboard-port", "0", "--state-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CELERIS_VENUE_API_SECRET": secret})
    lines = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "".join(lines)[-2000:]
            lines.append(line)
            if "Ctrl-C" in line:
                break
        kids = children(proc.pid)
        assert len(kids) >= 6, kids
        assert not [c for c in kids.values() if secret in c or "api_secret" in c or "api-secret" in c], kids
        assert not [c for c in kids.values() if "control_token" in c or "token=" in c], kids
        for death in (1, 2):  # and again: every death is a restart (with a longer back-off)
            kids = children(proc.pid)
            execution = next(pid for pid, cmd in kids.items() if "celeris execution run" in cmd)
            os.kill(execution, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = proc.stderr.readline()
                lines.append(line)
                if f"restarted: execution x{death}" in line and "execution not answering" not in line:
                    break
            assert any(f"restarted: execution x{death}" in line for line in lines), "".join(lines)[-2000:]
        # Trading goes on after the restart: accepted orders keep growing.
        counts = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(counts) < 4:
            line = proc.stderr.readline()
            if "orders" in line and "accepted" in line:
                counts.append(int(line.split("orders ")[1].split(" ")[0]))
        assert counts and counts[-1] > counts[0], counts
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["restarts"] == {"execution": 2}, summary
    assert summary["orders"] >= counts[-1]  # the earlier lives' orders are counted too
    assert "error" not in summary, summary


def test_services_in_simulation_mode_judge_the_paper_account_not_the_venue(tmp_path):
    import asyncio
    import re

    import grpc

    from celeris.api.v1 import account_pb2, account_pb2_grpc, execution_pb2, execution_pb2_grpc

    proc = subprocess.Popen([CELERIS, "up", "--topology", "services", "--mode", "simulation", "--duration", "200",
                             "--json", "--dashboard-port", "0", "--state-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        while True:
            line = proc.stderr.readline()
            assert line, "".join(lines)[-2000:]
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        ports = {name: int(re.search(rf"{name}\s+127\.0\.0\.1:(\d+)", text).group(1)) for name in ("execution", "account")}
        venue = re.search(r"venue\s+(http://127\.0\.0\.1:\d+)", text).group(1)

        async def unauthenticated():
            from celeris.api.v1 import control_pb2, control_pb2_grpc

            async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['execution']}") as ch:
                try:
                    await control_pb2_grpc.ControlStub(ch).Halt(control_pb2.HaltRequest(reason="x"), timeout=5)
                except grpc.aio.AioRpcError as exc:
                    return exc.code()

        # The processes' Control takes this run's token only (and the system runs: they present it).
        assert asyncio.run(unauthenticated()) is grpc.StatusCode.UNAUTHENTICATED

        async def look():
            async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['execution']}") as ch:
                paper = await execution_pb2_grpc.ExecutionStub(ch).GetPaperAccount(
                    execution_pb2.GetPaperAccountRequest(), timeout=5)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['account']}") as ch:
                state = await account_pb2_grpc.AccountMonitorStub(ch).GetAccountState(account_pb2.AccountRequest(),
                                                                                     timeout=5)
            return paper, state

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            paper, state = asyncio.run(look())
            traded = {p.symbol: (p.quantity.mantissa, p.quantity.scale) for p in paper.positions if p.quantity.mantissa}
            if traded:
                break
            time.sleep(0.5)
        assert paper.available and traded, "the paper account never traded"
        # The account monitor reports the paper account (give the fill stream a moment to catch up).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            paper, state = asyncio.run(look())
            ours = {p.symbol: p.quantity.mantissa * 10**(8 - p.quantity.scale) for p in state.positions
                    if p.quantity.mantissa}
            theirs = {p.symbol: p.quantity.mantissa * 10**(8 - p.quantity.scale) for p in paper.positions
                      if p.quantity.mantissa}
            if ours == theirs and ours:
                break
            time.sleep(0.3)
        assert ours == theirs, (ours, theirs)
        import json as _json
        import urllib.request
        with urllib.request.urlopen(f"{venue}/_sim/state", timeout=5) as answer:
            accounts = _json.loads(answer.read())["accounts"]
        assert all(a["open_orders"] == 0 and all(float(q) == 0 for q in a["positions"].values())
                   for a in accounts.values()), accounts  # the venue was never traded
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=90)

