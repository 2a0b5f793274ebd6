"""The simulator's countdownCancelAll (Binance's dead-man's switch) on a test clock over a real socket: a
countdown that is renewed in time never fires, one that runs out cancels that symbol's open orders and no
other's, 0 disarms, and bad calls get the venue's codes."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.sim.conftest import API_KEY, signed_query

HEADERS = {"X-MBX-APIKEY": API_KEY}


async def _signed(s, venue, method, path, params):
    query = signed_query(params, ts_ms=venue.now_ms())
    async with s.request(method, f"{venue.base_url}{path}?{query}", headers=HEADERS) as resp:
        return resp.status, json.loads(await resp.text())


async def _rest_bid(s, venue, symbol):
    book = venue.engine.books[symbol]
    price = book.instrument.format_price(book.best(True) - 200)
    qty = "0.010" if symbol == "BTCUSDT" else "0.100"
    status, order = await _signed(s, venue, "POST", "/fapi/v1/order", {
        "symbol": symbol, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": qty, "price": price})
    assert status == 200, order
    return order["orderId"]


async def _open(s, venue, symbol):
    status, orders = await _signed(s, venue, "GET", "/fapi/v1/openOrders", {"symbol": symbol})
    assert status == 200, orders
    return {o["orderId"] for o in orders}


async def test_a_countdown_renewed_in_time_never_fires_and_one_that_runs_out_cancels_its_symbol(stepped_venue):
    venue = stepped_venue
    venue.step(2)
    async with aiohttp.ClientSession() as s:
        btc, eth = await _rest_bid(s, venue, "BTCUSDT"), await _rest_bid(s, venue, "ETHUSDT")
        status, body = await _signed(s, venue, "POST", "/fapi/v1/countdownCancelAll",
                                     {"symbol": "BTCUSDT", "countdownTime": 5000})
        assert (status, body) == (200, {"symbol": "BTCUSDT", "countdownTime": "5000"})
        venue.step(4)
        assert await _open(s, venue, "BTCUSDT") == {btc}
        await _signed(s, venue, "POST", "/fapi/v1/countdownCancelAll", {"symbol": "BTCUSDT", "countdownTime": 5000})
        venue.step(4)  # 8 s after the first call: the renewal replaced it
        assert await _open(s, venue, "BTCUSDT") == {btc}
        venue.step(2)  # the renewal ran out
        assert await _open(s, venue, "BTCUSDT") == set()
        assert await _open(s, venue, "ETHUSDT") == {eth}
        account = venue.engine.accounts[API_KEY]
        assert account.orders[btc].status == "CANCELED" and "BTCUSDT" not in account.countdowns
        # 0 disarms.
        await _signed(s, venue, "POST", "/fapi/v1/countdownCancelAll", {"symbol": "ETHUSDT", "countdownTime": 2000})
        await _signed(s, venue, "POST", "/fapi/v1/countdownCancelAll", {"symbol": "ETHUSDT", "countdownTime": 0})
        venue.step(5)
        assert await _open(s, venue, "ETHUSDT") == {eth}


@pytest.mark.parametrize("params, code", [
    ({"symbol": "BTCUSDT"}, -1102),
    ({"countdownTime": 1000}, -1102),
    ({"symbol": "BTCUSDT", "countdownTime": -5}, -1100),    # a sign is outside ^[0-9]{1,20}$
    ({"symbol": "BTCUSDT", "countdownTime": "soon"}, -1100),
    ({"symbol": "NOPEUSDT", "countdownTime": 1000}, -1121),
])
async def test_bad_countdown_calls_get_the_venues_codes(stepped_venue, params, code):
    venue = stepped_venue
    async with aiohttp.ClientSession() as s:
        status, body = await _signed(s, venue, "POST", "/fapi/v1/countdownCancelAll", params)
        assert status == 400 and body["code"] == code, body
        async with s.post(f"{venue.base_url}/fapi/v1/countdownCancelAll?symbol=BTCUSDT&countdownTime=1") as resp:
            assert resp.status == 401 and (await resp.json())["code"] == -2014
