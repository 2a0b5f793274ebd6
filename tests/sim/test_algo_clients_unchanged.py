"""ccxt 4.5.90 and python-binance 1.0.37, unchanged, against `celeris sim`: futures STOP_MARKET and trailing
stops, which both clients send to Binance's Algo Order API (POST /fapi/v1/algoOrder, algoType CONDITIONAL)
since the venue moved conditional orders there on 2025-12-09, then queried, listed and cancelled with each
client's own calls (python-binance: conditional=True / algoId route to algoOrder, openAlgoOrders,
allAlgoOrders, algoOpenOrders; ccxt: params trigger=True do the same). The clients run in .venv/clients,
as in tests/sim/test_clients_unchanged.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.sim.conftest import API_KEY, API_SECRET

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / ".venv" / "clients" / "bin" / "python"

PYTHON_BINANCE = r"""
import json, sys
from binance.client import Client
url, key, secret = sys.argv[1:4]
c = Client(key, secret, ping=False)
c.FUTURES_URL = url + "/fapi"
far = round(float(c.futures_symbol_ticker(symbol="ETHUSDT")["price"]) * 1.5, 2)
# futures_create_order routes conditional types to the algo endpoint (stopPrice becomes triggerPrice).
stop = c.futures_create_order(symbol="ETHUSDT", side="BUY", type="STOP_MARKET", quantity="0.100", stopPrice=far)
trail = c.futures_create_order(symbol="ETHUSDT", side="SELL", type="TRAILING_STOP_MARKET", quantity="0.100",
                               callbackRate="1.5", activatePrice=far)
seen = c.futures_get_order(symbol="ETHUSDT", algoId=stop["algoId"])
opened = c.futures_get_open_orders(symbol="ETHUSDT", conditional=True)
everything = c.futures_get_all_orders(symbol="ETHUSDT", conditional=True)
cancelled = c.futures_cancel_order(symbol="ETHUSDT", algoId=stop["algoId"])
swept = c.futures_cancel_all_open_orders(symbol="ETHUSDT", conditional=True)
left = c.futures_get_open_algo_orders(symbol="ETHUSDT")
print(json.dumps({"far": f"{far:.2f}", "stop": stop, "trail": trail, "seen": seen, "opened": opened,
                  "everything": everything, "cancelled": cancelled, "swept": swept, "left": left,
                  "trail_after": c.futures_get_algo_order(algoId=trail["algoId"])}))
"""

CCXT = r"""
import json, sys
import ccxt
url, key, secret = sys.argv[1:4]
ex = ccxt.binanceusdm({"apiKey": key, "secret": secret, "options": {"fetchCurrencies": False}})
for name, value in list(ex.urls["api"].items()):
    if isinstance(value, str) and "/fapi/" in value:
        ex.urls["api"][name] = url + "/fapi/" + value.rsplit("/fapi/", 1)[1]
ex.load_markets()
s = "ETH/USDT:USDT"
far = round(ex.fetch_ticker(s)["last"] * 1.5, 2)
stop = ex.create_order(s, "market", "buy", 0.1, None, {"triggerPrice": far})
trail = ex.create_order(s, "market", "sell", 0.1, None, {"trailingPercent": 2, "trailingTriggerPrice": far})
seen = ex.fetch_order(stop["id"], s, {"trigger": True})
opened = ex.fetch_open_orders(s, params={"trigger": True})
everything = ex.fetch_orders(s, params={"trigger": True})
cancelled = ex.cancel_order(stop["id"], s, {"trigger": True})
ex.cancel_all_orders(s, {"trigger": True})
left = ex.fetch_open_orders(s, params={"trigger": True})
pick = lambda o: {k: o[k] for k in ("id", "clientOrderId", "type", "side", "amount", "triggerPrice", "status")}
print(json.dumps({"far": far, "stop": pick(stop), "trail": pick(trail), "trail_info": trail["info"],
                  "seen": pick(seen), "opened": [pick(o) for o in opened],
                  "everything": [pick(o) for o in everything], "cancelled": cancelled["id"],
                  "left": [pick(o) for o in left]}))
"""


def _run(script: str, sim_process: dict) -> dict:
    if not CLIENTS.exists():
        if os.environ.get("CI"):
            pytest.fail("no .venv/clients (scripts/install creates it)")
        pytest.skip("no .venv/clients (scripts/install creates it)")
    done = subprocess.run([str(CLIENTS), "-c", script, sim_process["rest_url"], API_KEY, API_SECRET],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_python_binance_places_lists_and_cancels_algo_orders_unchanged(sim_process):
    got = _run(PYTHON_BINANCE, sim_process)
    stop, trail = got["stop"], got["trail"]
    assert (stop["algoType"], stop["orderType"], stop["algoStatus"]) == ("CONDITIONAL", "STOP_MARKET", "NEW")
    assert stop["triggerPrice"] == got["far"] and stop["clientAlgoId"].startswith("x-Cb7ytekJ")
    assert (trail["orderType"], trail["callbackRate"], trail["activatePrice"]) == \
        ("TRAILING_STOP_MARKET", "1.5", got["far"])
    assert got["seen"]["algoId"] == stop["algoId"] and got["seen"]["algoStatus"] == "NEW"
    assert {o["algoId"] for o in got["opened"]} == {stop["algoId"], trail["algoId"]}
    assert {stop["algoId"], trail["algoId"]} <= {o["algoId"] for o in got["everything"]}
    assert got["cancelled"] == {"algoId": stop["algoId"], "clientAlgoId": stop["clientAlgoId"], "code": "200",
                                "msg": "success"}
    assert got["swept"] == {"code": 200, "msg": "The operation of cancel all open order is done."}
    assert got["left"] == [] and got["trail_after"]["algoStatus"] == "CANCELED"


def test_ccxt_places_lists_and_cancels_algo_orders_unchanged(sim_process):
    got = _run(CCXT, sim_process)
    stop, trail = got["stop"], got["trail"]
    # ccxt reads the algo answer: algoId as the id, orderType (STOP_MARKET: its unified "market" with a
    # trigger price) as the type, algoStatus NEW as open.
    assert (stop["type"], stop["side"], stop["amount"], stop["status"]) == ("market", "buy", 0.1, "open")
    assert stop["triggerPrice"] == got["far"] and trail["side"] == "sell"
    assert got["trail_info"]["orderType"] == "TRAILING_STOP_MARKET" and got["trail_info"]["callbackRate"] == "2.0"
    assert got["seen"]["id"] == stop["id"] and got["seen"]["status"] == "open"
    assert {o["id"] for o in got["opened"]} == {stop["id"], trail["id"]}
    assert {stop["id"], trail["id"]} <= {o["id"] for o in got["everything"]}
    assert got["cancelled"] == stop["id"] and got["left"] == []


def test_binance_futures_connector_keeps_its_legacy_stop_and_reaches_the_algo_api_by_signed_request(sim_process):
    """binance-futures-connector 4.2.0 has no algo methods: its new_order(STOP_MARKET) goes to /fapi/v1/order,
    which the simulator still takes by default (older clients), and its public sign_request reaches the algo
    endpoints unchanged."""
    from binance.um_futures import UMFutures

    client = UMFutures(key=API_KEY, secret=API_SECRET, base_url=sim_process["rest_url"])
    far = f"{float(client.ticker_price('BTCUSDT')['price']) * 1.5:.1f}"
    legacy = client.new_order(symbol="BTCUSDT", side="BUY", type="STOP_MARKET", quantity="0.010", stopPrice=far)
    assert legacy["type"] == "STOP_MARKET" and legacy["status"] == "NEW"
    client.cancel_order(symbol="BTCUSDT", orderId=legacy["orderId"])
    placed = client.sign_request("POST", "/fapi/v1/algoOrder", {
        "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET", "quantity": "0.010",
        "triggerPrice": far, "clientAlgoId": "connector-algo-1"})
    assert placed["algoStatus"] == "NEW" and placed["clientAlgoId"] == "connector-algo-1"
    listed = client.sign_request("GET", "/fapi/v1/openAlgoOrders", {"symbol": "BTCUSDT"})
    assert placed["algoId"] in {o["algoId"] for o in listed}
    cancelled = client.sign_request("DELETE", "/fapi/v1/algoOrder", {"clientAlgoId": "connector-algo-1"})
    assert cancelled == {"algoId": placed["algoId"], "clientAlgoId": "connector-algo-1", "code": "200",
                         "msg": "success"}
