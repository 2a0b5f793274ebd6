"""`celeris replay`: strategies over the real capture with the simulation fill model; deterministic."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import CAPTURE_60S

CELERIS = str(Path(sys.executable).with_name("celeris"))


def run(*extra):
    result = subprocess.run([CELERIS, "replay", str(CAPTURE_60S), *extra], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_replay_is_deterministic_and_plots(tmp_path):
    plot = tmp_path / "pnl.png"
    first = run("--plot", str(plot))
    second = run()
    first.pop("plot")
    assert first == second
    assert first["messages"] == 15927 and first["gaps"] == 0
    assert first["signals"] > 0 and first["orders"] > 0 and first["fills"] > 0
    data = plot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


def test_replay_refuses_a_missing_file(tmp_path):
    result = subprocess.run([CELERIS, "replay", str(tmp_path / "nope.gz")], capture_output=True, text=True)
    assert result.returncode == 2 and "does not exist" in result.stderr
