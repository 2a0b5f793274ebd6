"""A component started against a venue that does not answer says so in one line and exits non-zero:
no traceback and no leaked HTTP session (what a crash-looping pod shows in its log)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once it is closed


@pytest.mark.parametrize("component", ["strategy", "execution", "marketdata"])
def test_an_unreachable_venue_at_start_is_one_line_and_a_failure(component, tmp_path):
    port = closed_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'services'}", "CELERIS_VENUE_REST_URL": f"http://127.0.0.1:{port}",
           "CELERIS_VENUE_WS_URL": f"ws://127.0.0.1:{port}", "CELERIS_STATE_DIR": str(tmp_path),
           "CELERIS_GRPC_PORT": "0", "CELERIS_METRICS_PORT": "0"}
    proc = subprocess.run([sys.executable, "-m", "celeris", component, "run"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Unclosed client session" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "venue" in errors[0] and "CELERIS_VENUE_REST_URL" in errors[0]
