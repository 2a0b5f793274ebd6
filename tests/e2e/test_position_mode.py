"""An account in hedge mode is refused at start in one line, as a user meets it: `celeris sim`, the account
switched to hedge mode with a signed POST /fapi/v1/positionSide/dual (as any client does), then `celeris up`
against it. Celeris trades one-way mode; it must not start and silently skip LONG/SHORT positions."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.sim.conftest import signed_query

CELERIS = str(Path(sys.executable).with_name("celeris"))
KEY, SECRET = "hedge-key-0001", "hedge-secret-0001"


def _signed(url: str, method: str, path: str, params: dict) -> dict:
    request = urllib.request.Request(f"{url}{path}?{signed_query(params, secret=SECRET)}", method=method,
                                     headers={"X-MBX-APIKEY": KEY})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def test_an_account_in_hedge_mode_is_refused_at_start_in_one_line():
    sim = subprocess.Popen([CELERIS, "sim", "--port", "0", "--api-key", KEY, "--api-secret", SECRET,
                            "--symbols", "BTCUSDT"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = json.loads(sim.stdout.readline())["rest_url"]
        assert _signed(url, "GET", "/fapi/v1/positionSide/dual", {}) == {"dualSidePosition": False}
        assert _signed(url, "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})["code"] == 200
        assert _signed(url, "GET", "/fapi/v1/positionSide/dual", {}) == {"dualSidePosition": True}
        up = subprocess.run([CELERIS, "up", "--venue-rest-url", url, "--venue-ws-url", url.replace("http", "ws"),
                             "--api-key", KEY, "--api-secret", SECRET, "--symbols", "BTCUSDT", "--mode", "live", "--duration", "5"],
                            capture_output=True, text=True, timeout=90)
        assert up.returncode != 0 and "hedge mode" in up.stderr and "Traceback" not in up.stderr, up.stderr[-3000:]
        assert len(up.stderr.strip().splitlines()) == 1, up.stderr
        # Back to one-way mode: the same command starts and trades.
        assert _signed(url, "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "false"})["code"] == 200
        ok = subprocess.run([CELERIS, "up", "--venue-rest-url", url, "--venue-ws-url", url.replace("http", "ws"),
                             "--api-key", KEY, "--api-secret", SECRET, "--symbols", "BTCUSDT", "--mode", "live", "--duration", "3",
                             "--json"], capture_output=True, text=True, timeout=90)
        assert ok.returncode == 0, ok.stderr[-3000:]
    finally:
        sim.terminate()
        sim.wait(10)
