"""The dead-man's switch as a user meets it: `celeris up -f` a TradingSystem with `venue.cancelAllAfter: 2s`,
services topology, live on the bundled simulator. While execution lives the venue's countdown is renewed and
the market makers' orders rest; when the execution process hangs (SIGSTOP: no crash handler, no drain, no
goodbye) the venue itself cancels every open order within the countdown."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from tests.e2e.test_supervision import children

ROOT = Path(__file__).resolve().parents[2]
CELERIS = str(Path(sys.executable).with_name("celeris"))


def _venue_state(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_sim/state", timeout=5) as resp:
        return next(iter(json.loads(resp.read())["accounts"].values()))


def _until(condition, timeout_s: float):  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()


def test_a_hung_execution_has_its_orders_cancelled_by_the_venue(tmp_path):
    doc = yaml.safe_load((ROOT / "examples" / "tight-limits.yaml").read_text())
    doc["spec"]["venue"]["cancelAllAfter"] = "2s"
    spec = tmp_path / "deadman.yaml"
    spec.write_text(yaml.safe_dump(doc))
    proc = subprocess.Popen([CELERIS, "up", "-f", str(spec), "--topology", "services", "--duration", "150", "--json",
                             "--dashboard-port", "0", "--state-dir", str(tmp_path / "state")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    stopped = None
    try:
        venue = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stderr.readline()
            lines.append(line)
            if match := re.search(r"venue\s+(http://127\.0\.0\.1:\d+)", line):
                venue = match.group(1)
            if "Ctrl-C" in line:
                break
        assert venue, "".join(lines)[-3000:]
        # Armed (both symbols) with orders resting, and renewed: the deadline moves on.
        armed = _until(lambda: (s := _venue_state(venue))["open_orders"] > 0 and len(s["countdowns"]) == 2 and s,
                       timeout_s=60)
        assert armed, _venue_state(venue)
        first = armed["countdowns"]["BTCUSDT"]
        assert _until(lambda: _venue_state(venue)["countdowns"].get("BTCUSDT", 0) > first + 1000, timeout_s=10)
        execution = next(pid for pid, cmd in children(proc.pid).items() if "celeris execution run" in cmd)
        os.kill(execution, signal.SIGSTOP)
        stopped = execution
        hung_at = time.monotonic()
        # Every order gone and the countdowns with them: they fired (only firing or a 0 removes one).
        assert _until(lambda: (s := _venue_state(venue))["open_orders"] == 0 and s["countdowns"] == {},
                      timeout_s=15), _venue_state(venue)
        assert time.monotonic() - hung_at < 10  # the countdown (2 s, checked on the venue's ticks), not a timeout
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
