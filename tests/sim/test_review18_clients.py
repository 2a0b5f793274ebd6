"""What the second issue-18 review found driving the simulator with ccxt, python-binance and
binance-futures-connector, as regressions over a real socket on 127.0.0.1: GET /fapi/v1/symbolConfig says
the same maxNotionalValue as POST /fapi/v1/leverage and the position's brackets (it said 1,000,000 whatever
the leverage, so ccxt's fetch_leverage and a client sizing from it read a cap the venue does not apply)."""

from __future__ import annotations

import aiohttp
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from tests.sim.test_errors_and_admin import _signed


@pytest.mark.parametrize("leverage", [1, 20, 50, 100, 125])
async def test_symbol_config_says_the_max_notional_the_leverage_call_says(live_venue, leverage):
    async with aiohttp.ClientSession() as s:
        status, changed = await _signed(s, live_venue, "POST", "/fapi/v1/leverage",
                                        {"symbol": "BTCUSDT", "leverage": leverage})
        assert status == 200, changed
        status, config = await _signed(s, live_venue, "GET", "/fapi/v1/symbolConfig", {"symbol": "BTCUSDT"})
        assert status == 200, config
        status, risk = await _signed(s, live_venue, "GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"})
    assert config[0]["leverage"] == leverage
    assert config[0]["maxNotionalValue"] == changed["maxNotionalValue"] == risk[0]["maxNotionalValue"]


# -- GTD on the Algo Order API: the venue's one rule for goodTillDate, as on /fapi/v1/order ----------------
def _algo_gtd(venue, good_till: int) -> dict:
    book = venue.engine.books["BTCUSDT"]
    above = book.instrument.format_price(book.best(False) + 500)
    return {"algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "BUY", "type": "STOP", "quantity": "0.010",
            "price": above, "triggerPrice": above, "timeInForce": "GTD", "goodTillDate": good_till}


@pytest.mark.parametrize("ahead_ms, code", [(60_000, -5040), (599_000, -5040), (700_000, None)])
async def test_an_algo_gtd_needs_a_good_till_date_600_s_ahead_as_an_order_does(live_venue, ahead_ms, code):
    from tests.support.waits import wait_for

    assert await wait_for(lambda: live_venue.engine.books["BTCUSDT"].best(False) is not None)
    good_till = live_venue.now_ms() + ahead_ms + 123
    async with aiohttp.ClientSession() as s:
        status, body = await _signed(s, live_venue, "POST", "/fapi/v1/algoOrder", _algo_gtd(live_venue, good_till))
    if code is None:
        assert status == 200, body
        assert body["goodTillDate"] == good_till // 1000 * 1000  # whole seconds are kept
    else:
        assert (status, body["code"]) == (400, code), body


async def test_an_algo_gtd_beyond_the_last_date_is_refused(live_venue):
    async with aiohttp.ClientSession() as s:
        status, body = await _signed(s, live_venue, "POST", "/fapi/v1/algoOrder",
                                     _algo_gtd(live_venue, 253_402_300_799_000))
    assert (status, body["code"]) == (400, -5040), body


# -- a parameter sent twice ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path, method, query", [
    ("/fapi/v1/order", "POST", "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.010&quantity=5"),
    ("/fapi/v1/leverage", "POST", "symbol=BTCUSDT&leverage=5&leverage=125"),
])
async def test_a_parameter_sent_twice_is_refused_not_read_as_its_last_value(live_venue, path, method, query):
    """Binance: -1101 "Duplicate values for a parameter detected."; the simulator took the last value."""
    import hashlib
    import hmac
    import time

    from yarl import URL

    from tests.sim.conftest import API_KEY, API_SECRET

    query += f"&timestamp={int(time.time() * 1000)}"
    signature = hmac.new(API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    before = dict(live_venue.engine.accounts[API_KEY].leverage), len(live_venue.engine.accounts[API_KEY].orders)
    async with aiohttp.ClientSession() as s, s.request(
            method, URL(f"{live_venue.base_url}{path}?{query}&signature={signature}", encoded=True),
            headers={"X-MBX-APIKEY": API_KEY}) as resp:
        body = await resp.json()
    assert (resp.status, body["code"]) == (400, -1101), body
    assert (dict(live_venue.engine.accounts[API_KEY].leverage), len(live_venue.engine.accounts[API_KEY].orders)) \
        == before


# -- execution and the venue agree on goodTillDate at its boundary --------------------------------------
@settings(max_examples=400, deadline=None)
@given(now_ms=st.integers(1_700_000_000_000, 1_800_000_000_000), ahead_ms=st.integers(598_000, 602_000))
def test_execution_refuses_exactly_the_good_till_dates_the_venue_refuses(now_ms, ahead_ms):
    """The venue keeps whole seconds and wants more than 600 s ahead: execution passing a date the venue then
    refuses (-5040) is a live rejection that pre-trade validation is there to prevent."""
    from celeris.domain.instruments import OrderType, TimeInForce
    from celeris.domain.messages import OrderRequest
    from celeris.domain.values import Side
    from celeris.exchange_sim.algo import read_good_till
    from celeris.exchange_sim.state import VenueError
    from celeris.execution.validation import check_surface

    good_till = now_ms + ahead_ms
    request = OrderRequest("g", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, 600000, TimeInForce.GTD, strategy_id="m",
                           good_till_ms=good_till)
    try:
        read_good_till({"goodTillDate": str(good_till)}, now_ms)
        venue_accepts = True
    except VenueError:
        venue_accepts = False
    assert (check_surface(request, now_ms) is None) == venue_accepts, (now_ms, ahead_ms)


# -- GET /fapi/v1/orderAmendment (python-binance's futures_v1_get_order_amendment got a 404) ---------------
async def test_an_orders_amendments_are_listed_with_before_and_after(live_venue):
    from tests.support.waits import wait_for

    book = live_venue.engine.books["BTCUSDT"]
    assert await wait_for(lambda: book.best(True) is not None and live_venue.engine.mark("BTCUSDT"))
    fmt = book.instrument.format_price
    low = book.best(True) - 300
    async with aiohttp.ClientSession() as s:
        status, placed = await _signed(s, live_venue, "POST", "/fapi/v1/order", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
            "price": fmt(low)})
        assert status == 200, placed
        for qty, price in (("0.020", low), ("0.020", low - 10)):
            status, body = await _signed(s, live_venue, "PUT", "/fapi/v1/order", {
                "symbol": "BTCUSDT", "orderId": placed["orderId"], "side": "BUY", "quantity": qty, "price": fmt(price)})
            assert status == 200, body
        status, history = await _signed(s, live_venue, "GET", "/fapi/v1/orderAmendment",
                                        {"symbol": "BTCUSDT", "orderId": placed["orderId"]})
        assert status == 200, history
        status, by_client_id = await _signed(s, live_venue, "GET", "/fapi/v1/orderAmendment",
                                             {"symbol": "BTCUSDT", "origClientOrderId": placed["clientOrderId"],
                                              "limit": 1})
        status_missing, missing = await _signed(s, live_venue, "GET", "/fapi/v1/orderAmendment", {"symbol": "BTCUSDT"})
        status_junk, junk = await _signed(s, live_venue, "GET", "/fapi/v1/orderAmendment",
                                          {"symbol": "BTCUSDT", "orderId": placed["orderId"], "limit": "NaN"})
    assert [h["amendment"]["count"] for h in history] == [1, 2]
    first, second = history
    assert set(first) == {"amendmentId", "symbol", "pair", "orderId", "clientOrderId", "time", "amendment"}
    assert first["orderId"] == placed["orderId"] and first["clientOrderId"] == placed["clientOrderId"]
    assert first["amendment"]["origQty"] == {"before": "0.010", "after": "0.020"}
    assert first["amendment"]["price"] == {"before": fmt(low), "after": fmt(low)}
    assert second["amendment"]["price"] == {"before": fmt(low), "after": fmt(low - 10)}
    assert second["amendmentId"] > first["amendmentId"]
    assert len(by_client_id) == 1
    assert (status_missing, missing["code"]) == (400, -1102)
    assert (status_junk, junk["code"]) == (400, -1100)


# -- an amendment weighs on the order counts, not the IP weight (Binance: 1 on 10 s, 1 on 1 min, 0 on IP) ----
async def test_an_amendment_weighs_0_on_the_ip_and_its_ws_answer_reports_the_order_counts(live_venue):
    import json

    from tests.sim.test_ws_api import call, signed
    from tests.support.waits import wait_for

    book = live_venue.engine.books["BTCUSDT"]
    assert await wait_for(lambda: book.best(True) is not None and live_venue.engine.mark("BTCUSDT"))
    fmt = book.instrument.format_price
    low = book.best(True) - 300
    async with aiohttp.ClientSession() as s:
        status, placed = await _signed(s, live_venue, "POST", "/fapi/v1/order", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
            "price": fmt(low)})
        assert status == 200, placed
        used = []
        for qty in ("0.011", "0.012"):
            from tests.sim.conftest import API_KEY, signed_query

            query = signed_query({"symbol": "BTCUSDT", "orderId": placed["orderId"], "side": "BUY", "quantity": qty,
                                  "price": fmt(low)})
            async with s.put(f"{live_venue.base_url}/fapi/v1/order?{query}", headers={"X-MBX-APIKEY": API_KEY}) as r:
                assert r.status == 200, await r.text()
                used.append(int(r.headers["X-MBX-USED-WEIGHT-1M"]))
                assert int(r.headers["X-MBX-ORDER-COUNT-10S"]) >= 1
        assert used[1] == used[0]  # the second amendment added no IP weight
        async with s.ws_connect(f"{live_venue.ws_url}/ws-fapi/v1") as ws:
            modified = await call(ws, "order.modify", signed({"symbol": "BTCUSDT", "orderId": placed["orderId"],
                                                              "side": "BUY", "quantity": "0.013", "price": fmt(low)}))
    assert modified["status"] == 200, json.dumps(modified)
    limits = {(r["rateLimitType"], r["interval"], r["intervalNum"]): r["count"] for r in modified["rateLimits"]}
    assert limits[("ORDERS", "SECOND", 10)] >= 4 and limits[("ORDERS", "MINUTE", 1)] >= 4


# -- the WebSocket API takes DECIMAL values as JSON numbers, as Binance's own order.place example sends them ---
async def test_ws_order_place_with_price_and_quantity_as_json_numbers_as_binance_documents(live_venue):
    """Binance's USD-M order.place request example: "price": 43187.00, "quantity": 0.1 (numbers). The
    signature payload carries each value as written in the request."""
    import hashlib
    import hmac
    import json
    import time

    from tests.sim.conftest import API_KEY, API_SECRET
    from tests.support.waits import wait_for

    book = live_venue.engine.books["BTCUSDT"]
    assert await wait_for(lambda: book.best(True) is not None and live_venue.engine.mark("BTCUSDT"))
    price = book.instrument.format_price(book.best(True) - 300)  # e.g. "59700.10", written as a number below
    params = {"apiKey": API_KEY, "positionSide": "BOTH", "price": price, "quantity": "0.010", "side": "BUY",
              "symbol": "BTCUSDT", "timeInForce": "GTC", "timestamp": str(int(time.time() * 1000)), "type": "LIMIT"}
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    signature = hmac.new(API_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    numbers = {"price", "quantity", "timestamp"}
    body = ", ".join(f'"{k}": {v}' if k in numbers else f'"{k}": "{v}"' for k, v in params.items())
    frame = f'{{"id": "n1", "method": "order.place", "params": {{{body}, "signature": "{signature}"}}}}'
    assert f'"price": {price}' in frame and '"quantity": 0.010' in frame
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{live_venue.ws_url}/ws-fapi/v1") as ws:
        await ws.send_str(frame)
        answer = json.loads(await ws.receive_str(timeout=5))
        # a float id is still no id (an integer, a string or null)
        await ws.send_str('{"id": 1.5, "method": "session.status"}')
        float_id = json.loads(await ws.receive_str(timeout=5))
    assert answer["status"] == 200, answer
    assert (answer["result"]["price"], answer["result"]["origQty"]) == (price, "0.010")
    assert float_id["status"] == 400 and float_id["error"]["code"] == -1135, float_id


# -- newOrderRespType: ACK (the default) answers the order as accepted, RESULT as it ended ------------------
@pytest.mark.parametrize("resp_type", [None, "ACK", "RESULT"])
async def test_a_market_order_answers_as_accepted_with_ack_and_as_filled_with_result(live_venue, resp_type):
    """PROTOCOL.md §5.2: with ACK a market order comes back status NEW, executedQty 0 (its fills follow on the
    user stream); RESULT waits for the final state. A client reading fills from an ACK answer meets it here."""
    from tests.support.waits import wait_for

    assert await wait_for(lambda: live_venue.engine.books["BTCUSDT"].best(False) is not None)
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
    if resp_type:
        params["newOrderRespType"] = resp_type
    async with aiohttp.ClientSession() as s:
        status, body = await _signed(s, live_venue, "POST", "/fapi/v1/order", params)
        assert status == 200, body
        status, seen = await _signed(s, live_venue, "GET", "/fapi/v1/order",
                                     {"symbol": "BTCUSDT", "orderId": body["orderId"]})
        await _signed(s, live_venue, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET",
                                                               "quantity": "0.010", "reduceOnly": "true"})
    assert seen["status"] == "FILLED"
    if resp_type == "RESULT":
        assert (body["status"], body["executedQty"], body["cumQty"]) == ("FILLED", "0.010", "0.010")
        assert body["avgPrice"] == seen["avgPrice"]
    else:
        assert (body["status"], body["executedQty"], body["cumQty"], body["cumQuote"]) == \
            ("NEW", "0.000", "0.000", "0.00000")
        assert float(body["avgPrice"]) == 0 and set(body) == set(seen) - {"time"} | {"cumQty"}
