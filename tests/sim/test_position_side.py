"""The simulator's position mode (GET/POST /fapi/v1/positionSide/dual) with Binance's refusals: no change
needed, open orders, an open position; in hedge mode it refuses orders (it simulates one-way mode only)."""

from __future__ import annotations

import json

import aiohttp

from tests.sim.conftest import API_KEY, signed_query

HEADERS = {"X-MBX-APIKEY": API_KEY}


async def _call(s, venue, method, path, params):
    async with s.request(method, f"{venue.base_url}{path}?{signed_query(params, ts_ms=venue.now_ms())}",
                         headers=HEADERS) as resp:
        return resp.status, json.loads(await resp.text())


async def test_position_mode_changes_only_when_nothing_is_open(stepped_venue):
    venue = stepped_venue
    venue.step(2)
    book = venue.engine.books["BTCUSDT"]
    async with aiohttp.ClientSession() as s:
        assert await _call(s, venue, "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "false"}) == \
            (400, {"code": -4059, "msg": "No need to change position side."})
        price = book.instrument.format_price(book.best(True) - 100)
        status, order = await _call(s, venue, "POST", "/fapi/v1/order", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
            "price": price})
        assert status == 200
        status, body = await _call(s, venue, "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})
        assert (status, body["code"]) == (400, -4067)
        await _call(s, venue, "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]})
        await _call(s, venue, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                         "quantity": "0.010"})
        status, body = await _call(s, venue, "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})
        assert (status, body["code"]) == (400, -4068)
        await _call(s, venue, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET",
                                                         "quantity": "0.010", "reduceOnly": "true"})
        assert await _call(s, venue, "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"}) == \
            (200, {"code": 200, "msg": "success"})
        assert await _call(s, venue, "GET", "/fapi/v1/positionSide/dual", {}) == (200, {"dualSidePosition": True})
        status, body = await _call(s, venue, "POST", "/fapi/v1/order", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
            "price": price})
        assert (status, body["code"]) == (400, -4061)
        status, body = await _call(s, venue, "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "maybe"})
        assert (status, body["code"]) == (400, -1102)
