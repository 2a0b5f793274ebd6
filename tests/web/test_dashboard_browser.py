"""The web dashboard in headless Chromium, served by the dashboard server of a running system."""

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"


def _wait(url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return resp.status
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


@pytest.mark.skipif(not (WEB / "dist" / "index.html").exists(), reason="web dashboard not built (scripts/install)")
def test_dashboard_shows_live_numbers_and_halts_trading(tmp_path):
    assert shutil.which("chromium") or os.environ.get("CHROMIUM"), "chromium is required (scripts/install --system)"
    port, token = free_port(), secrets.token_urlsafe(12)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("celeris")), "up", "--quiet", "--dashboard-port",
                             str(port), f"--dashboard-token={token}"], stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "up.log", "w"), text=True)
    try:
        _wait(f"http://127.0.0.1:{port}/healthz")
        page = subprocess.run(["node", "e2e/dashboard.e2e.mjs", f"http://127.0.0.1:{port}/?token={token}",
                               str(tmp_path)], cwd=WEB, capture_output=True, text=True, timeout=120)
        assert page.returncode == 0, page.stderr
        result = json.loads(page.stdout.strip().splitlines()[-1])
        assert result["mode"] == "live" and result["changed"], result
        assert result["bookLevels"] >= 10 and result["healthItems"] == 5
        assert result["haltedBadge"] and result["resumeVisible"]
        assert result["phoneOverflow"] <= 0, "the page scrolls sideways at phone width"
        assert result["errors"] == []
        assert result["badToken"].startswith("invalid token")
        for width, layout in result["layout"].items():
            assert layout["clipped"] == 0, (width, layout)  # no table cut off (the Liq. column at 1400 px)
            assert layout["sameRow"] and layout["topRowGap"] <= 2, (width, layout)  # no empty column on top
            assert layout["latencyLabel"] == "Strategy decision p99"  # says what it measures
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/state",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            state = json.loads(resp.read())["data"]
        assert state["risk.stop"]["active"] and state["system.status"]["halted"]
        assert state["risk.stop"]["by"] == "web dashboard"
        assert (tmp_path / "dashboard-desktop.png").exists()
    finally:
        proc.terminate()
        proc.wait(30)
