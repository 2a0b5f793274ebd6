"""ccxt and python-binance, unchanged, against `celeris sim`: the market history endpoints (klines, mark and
index klines, 24-hour ticker, funding history, open interest), ccxt's order amendment and the dead-man's
switch, through each client's own calls. The clients live in .venv/clients (scripts/install): ccxt pins its own versions of
packages Celeris uses, and python-binance shares the `binance` package name with binance-futures-connector."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.sim.conftest import API_KEY, API_SECRET

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / ".venv" / "clients" / "bin" / "python"

CCXT = r"""
import json, sys
import ccxt
url, key, secret = sys.argv[1:4]
ex = ccxt.binanceusdm({"apiKey": key, "secret": secret, "options": {"fetchCurrencies": False}})
for name, value in list(ex.urls["api"].items()):
    if isinstance(value, str) and "/fapi/" in value:
        ex.urls["api"][name] = url + "/fapi/" + value.rsplit("/fapi/", 1)[1]
ex.load_markets()
s = "BTC/USDT:USDT"
print(json.dumps({
    "ohlcv": ex.fetch_ohlcv(s, "1m", limit=5), "ohlcv_5m": ex.fetch_ohlcv(s, "5m", limit=2),
    "mark": ex.fetch_mark_ohlcv(s, "1m", limit=2), "index": ex.fetch_index_ohlcv(s, "1m", limit=2),
    "ticker": {k: ex.fetch_ticker(s)[k] for k in ("last", "high", "low", "open", "baseVolume", "quoteVolume")},
    "funding": ex.fetch_funding_rate_history(s), "open_interest": ex.fetch_open_interest(s)["openInterestAmount"],
}))
bid = ex.fetch_order_book(s, 5)["bids"][0][0]
placed = ex.create_order(s, "limit", "buy", 0.01, round(bid - 100, 1))
edited = ex.edit_order(placed["id"], s, "limit", "buy", 0.02, round(bid - 120, 1))
seen = ex.fetch_order(placed["id"], s)
ex.cancel_order(placed["id"], s)
print(json.dumps({"placed": placed["id"], "edited": edited["id"], "amount": seen["amount"], "price": seen["price"],
                  "wanted": round(bid - 120, 1)}))
"""

PYTHON_BINANCE = r"""
import json, sys
from binance.client import Client
url, key, secret = sys.argv[1:4]
c = Client(key, secret, ping=False)
c.FUTURES_URL = url + "/fapi"
print(json.dumps({
    "klines": c.futures_klines(symbol="BTCUSDT", interval="1m", limit=5),
    "mark": c.futures_mark_price_klines(symbol="BTCUSDT", interval="1m", limit=2),
    "index": c.futures_index_price_klines(pair="BTCUSDT", interval="1m", limit=2),
    "ticker": c.futures_ticker(symbol="BTCUSDT"), "funding": c.futures_funding_rate(symbol="BTCUSDT"),
    "open_interest": c.futures_open_interest(symbol="BTCUSDT"),
    "countdown": c.futures_countdown_cancel_all(symbol="BTCUSDT", countdownTime=60000),
    # Disarmed again: the session's simulator serves other tests' orders.
    "disarmed": c.futures_countdown_cancel_all(symbol="BTCUSDT", countdownTime=0),
}))
"""


def _run(script: str, sim_process: dict) -> list[dict]:
    if not CLIENTS.exists():
        if os.environ.get("CI"):
            pytest.fail("no .venv/clients (scripts/install creates it)")
        pytest.skip("no .venv/clients (scripts/install creates it)")
    done = subprocess.run([str(CLIENTS), "-c", script, sim_process["rest_url"], API_KEY, API_SECRET],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _settle_funding(sim_process: dict) -> None:
    request = urllib.request.Request(f"{sim_process['admin_url']}/funding", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 200


def test_ccxt_reads_the_history_unchanged(sim_process):
    _settle_funding(sim_process)
    got, amended = _run(CCXT, sim_process)
    # ccxt's edit_order is PUT /fapi/v1/order: the same order, its new amount and price.
    assert amended["edited"] == amended["placed"] and amended["amount"] == 0.02
    assert amended["price"] == amended["wanted"]
    assert got["ohlcv"] and all(len(c) == 6 and c[2] >= max(c[1], c[4]) >= min(c[1], c[4]) >= c[3]
                                for c in got["ohlcv"])
    assert all(b[0] - a[0] == 60_000 for a, b in zip(got["ohlcv"], got["ohlcv"][1:]))
    assert got["ohlcv_5m"][-1][0] % 300_000 == 0
    assert got["mark"][-1][4] > 0 and got["index"][-1][4] > 0
    ticker = got["ticker"]
    assert ticker["low"] <= ticker["last"] <= ticker["high"] and ticker["baseVolume"] >= 0
    assert got["funding"] and got["funding"][-1]["fundingRate"] is not None
    assert got["open_interest"] >= 0


def test_python_binance_reads_the_history_and_keeps_the_switch_unchanged(sim_process):
    _settle_funding(sim_process)
    (got,) = _run(PYTHON_BINANCE, sim_process)
    assert got["klines"] and all(len(k) == 12 for k in got["klines"])
    assert float(got["mark"][-1][4]) > 0 and float(got["index"][-1][4]) > 0
    assert got["ticker"]["symbol"] == "BTCUSDT" and float(got["ticker"]["lastPrice"]) > 0
    assert got["funding"] and {"symbol", "fundingTime", "fundingRate", "markPrice"} <= set(got["funding"][-1])
    assert got["open_interest"]["symbol"] == "BTCUSDT"
    assert got["countdown"] == {"symbol": "BTCUSDT", "countdownTime": "60000"}
    assert got["disarmed"] == {"symbol": "BTCUSDT", "countdownTime": "0"}
