"""ccxt.pro and python-binance, unchanged, trading over the simulator's WebSocket API (/ws-fapi/v1) through
their own calls: ccxt's create_order_ws / edit_order_ws / fetch_order_ws / cancel_order_ws and python-binance's
ws_futures_create_order / ws_futures_edit_order / ws_futures_get_order / ws_futures_cancel_order sign as Binance documents and
read the venue's answers and refusals. (binance-futures-connector 4.2 in .venv has no WebSocket API client.)
The clients live in .venv/clients, run as their own processes (see test_clients_unchanged.py)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from decimal import Decimal

import pytest

from tests.sim.conftest import API_KEY, API_SECRET
from tests.sim.test_clients_unchanged import CLIENTS

CCXT_PRO = r"""
import asyncio, json, sys
import ccxt.pro as ccxtpro

async def main():
    url, ws_url, key, secret = sys.argv[1:5]
    ex = ccxtpro.binanceusdm({"apiKey": key, "secret": secret, "options": {"fetchCurrencies": False}})
    for name, value in list(ex.urls["api"].items()):
        if isinstance(value, str) and "/fapi/" in value:
            ex.urls["api"][name] = url + "/fapi/" + value.rsplit("/fapi/", 1)[1]
    ex.urls["api"]["ws"]["ws-api"]["linear"] = ws_url + "/ws-fapi/v1"
    try:
        await ex.load_markets()
        s = "BTC/USDT:USDT"
        bid = (await ex.fetch_order_book(s, 5))["bids"][0][0]
        placed = await ex.create_order_ws(s, "limit", "buy", 0.01, round(bid - 100, 1))
        edited = await ex.edit_order_ws(placed["id"], s, "limit", "buy", 0.02, round(bid - 120, 1))
        seen = await ex.fetch_order_ws(placed["id"], s)
        cancelled = await ex.cancel_order_ws(placed["id"], s)
        try:
            await ex.create_order_ws(s, "limit", "sell", 0.01, round(bid - 100, 1), {"reduceOnly": True})
            refused = None
        except Exception as exc:
            refused = type(exc).__name__ + ": " + str(exc)
        print(json.dumps({"placed": placed["id"], "placed_status": placed["status"], "seen": seen["status"],
                          "edited": [edited["id"], seen["amount"], seen["price"], round(bid - 120, 1)],
                          "cancelled": cancelled["status"], "refused": refused}))
    finally:
        await ex.close()

asyncio.run(main())
"""

PYTHON_BINANCE = r"""
import asyncio, json, sys
from binance.async_client import AsyncClient

async def main():
    url, ws_url, key, secret = sys.argv[1:5]
    AsyncClient.WS_FUTURES_URL = ws_url + "/ws-fapi/v1"
    c = AsyncClient(key, secret)
    c.FUTURES_URL = url + "/fapi"
    try:
        depth = await c.futures_order_book(symbol="BTCUSDT", limit=5)
        price = "%.1f" % (float(depth["bids"][0][0]) - 100)
        placed = await c.ws_futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                                 quantity="0.010", price=price)
        lower = "%.1f" % (float(price) - 20)
        edited = await c.ws_futures_edit_order(symbol="BTCUSDT", orderId=placed["orderId"], side="BUY",
                                               quantity="0.020", price=lower)
        seen = await c.ws_futures_get_order(symbol="BTCUSDT", orderId=placed["orderId"])
        cancelled = await c.ws_futures_cancel_order(symbol="BTCUSDT", orderId=placed["orderId"])
        # Floats, as a python-binance user may pass them: JSON numbers, as in Binance's own order.place example.
        floated = await c.ws_futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                                  quantity=0.01, price=float(lower))
        await c.ws_futures_cancel_order(symbol="BTCUSDT", orderId=floated["orderId"])
        try:
            await c.ws_futures_create_order(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC",
                                            quantity="0.010", price=price, reduceOnly="true")
            refused = None
        except Exception as exc:
            refused = getattr(exc, "code", None)
        print(json.dumps({"placed": placed["orderId"], "client_id": placed["clientOrderId"],
                          "placed_status": placed["status"], "seen": seen["status"],
                          "edited": [edited["origQty"], edited["price"], seen["origQty"], seen["price"], lower],
                          "cancelled": cancelled["status"], "refused": refused,
                          "floated": [floated["status"], floated["origQty"], floated["price"]]}))
    finally:
        await c.close_connection()

asyncio.run(main())
"""


async def _run(script: str, venue) -> dict:
    if not CLIENTS.exists():
        if os.environ.get("CI"):
            pytest.fail("no .venv/clients (scripts/install creates it)")
        pytest.skip("no .venv/clients (scripts/install creates it)")
    # The venue runs on this test's loop: the client must run beside it, not block it.
    proc = await asyncio.create_subprocess_exec(str(CLIENTS), "-c", script, venue.base_url, venue.ws_url, API_KEY,
                                                API_SECRET, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]
    return json.loads(out.decode().strip().splitlines()[-1])


async def test_ccxt_pro_places_queries_and_cancels_over_the_ws_api_unchanged(live_venue):
    got = await _run(CCXT_PRO, live_venue)
    assert (got["placed_status"], got["seen"], got["cancelled"]) == ("open", "open", "canceled"), got
    assert "-2022" in got["refused"], got
    placed_id, amount, price, wanted = got["edited"]
    assert (placed_id, amount, price) == (got["placed"], 0.02, wanted), got  # reduceOnly sent as a JSON boolean: signed and read as "true"
    order = live_venue.engine.accounts[API_KEY].orders[int(got["placed"])]
    assert order.status == "CANCELED"


async def test_python_binance_places_queries_and_cancels_over_the_ws_api_unchanged(live_venue):
    got = await _run(PYTHON_BINANCE, live_venue)
    assert (got["placed_status"], got["seen"], got["cancelled"], got["refused"]) == \
        ("NEW", "NEW", "CANCELED", -2022), got
    edited_qty, edited_price, seen_qty, seen_price, wanted = got["edited"]
    assert (edited_qty, edited_price) == (seen_qty, seen_price), got
    assert (Decimal(seen_qty), Decimal(seen_price)) == (Decimal("0.020"), Decimal(wanted)), got
    order = live_venue.engine.accounts[API_KEY].orders[got["placed"]]
    assert (order.status, order.client_order_id) == ("CANCELED", got["client_id"])
    status, qty, price = got["floated"]
    assert (status, qty, Decimal(price)) == ("NEW", "0.010", Decimal(got["edited"][4])), got
