"""The simulator's Algo Order API (Binance's home of conditional orders since 2025-12-09) over a real socket on
a test clock: placing, triggering by last and by mark price, trailing stops, priceProtect, closePosition,
reduce-only rejection at trigger, GTD expiry, cancel / query / open / all lists / cancel-all, the venue's
error codes, ALGO_UPDATE events compared key-for-key and type-for-type with the recorded samples, the
transition table, and the -4120 mode of /fapi/v1/order and /fapi/v1/batchOrders."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from fractions import Fraction
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given, settings, strategies as st
from yarl import URL

from celeris.domain.clock import TestClock
from celeris.exchange_sim.algo_state import TRANSITIONS, AlgoStatus, InvalidAlgoTransition, SimAlgoOrder
from celeris.exchange_sim.contract import OrderType, TimeInForce
from celeris.exchange_sim.server import SimVenue, start
from celeris.exchange_sim.state import VenueError
from celeris.domain.values import Side
from tests.sim.conftest import API_KEY, API_SECRET, START_NS, signed_query
from tests.support.waits import wait_for

HEADERS = {"X-MBX-APIKEY": API_KEY}
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "binance" / "samples" / "nautilus"

NEW_ALGO_KEYS = {  # New Algo Order's answer, as Binance documents it
    "algoId", "clientAlgoId", "algoType", "orderType", "symbol", "side", "positionSide", "timeInForce", "quantity",
    "algoStatus", "triggerPrice", "price", "icebergQuantity", "selfTradePreventionMode", "workingType", "priceMatch",
    "closePosition", "priceProtect", "reduceOnly", "activatePrice", "callbackRate", "createTime", "updateTime",
    "triggerTime", "goodTillDate"}
QUERY_ALGO_KEYS = {  # Query Algo Order's answer (non-trailing), as Binance documents it
    "algoId", "clientAlgoId", "algoType", "orderType", "symbol", "side", "positionSide", "timeInForce", "quantity",
    "algoStatus", "actualOrderId", "actualPrice", "triggerPrice", "price", "icebergQuantity", "tpTriggerPrice",
    "tpPrice", "slTriggerPrice", "slPrice", "tpOrderType", "selfTradePreventionMode", "workingType", "priceMatch",
    "closePosition", "priceProtect", "reduceOnly", "createTime", "updateTime", "triggerTime", "goodTillDate"}


def _sample(name: str):
    data = json.loads((SAMPLES / name).read_text())
    return data["data"] if isinstance(data, dict) and "data" in data else data


def _shape(value):
    """Keys and value types, recursively: what a client's parser depends on."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


async def _signed(s, venue, method, path, params):
    query = signed_query(params, ts_ms=venue.now_ms())
    # encoded=True: the signature covers the query exactly as sent, so aiohttp must not re-quote it.
    async with s.request(method, URL(f"{venue.base_url}{path}?{query}", encoded=True), headers=HEADERS) as resp:
        return resp.status, json.loads(await resp.text())


@asynccontextmanager
async def _user_stream(s, venue):
    """A listen key's WebSocket, registered at the venue before the test goes on; yields a collector."""
    async with s.post(f"{venue.base_url}/fapi/v1/listenKey", headers=HEADERS) as resp:
        key = (await resp.json())["listenKey"]
    async with s.ws_connect(f"{venue.base_url.replace('http', 'ws')}/private/ws?listenKey={key}") as ws:
        assert await wait_for(lambda: any(key in c.streams for c in venue.connections))
        seen: list[dict] = []

        async def collect(predicate, timeout=5.0):
            await venue._flush_users()  # the stepped venue's own loop sleeps for an hour
            deadline = asyncio.get_running_loop().time() + timeout
            while not predicate(seen):
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    msg = await ws.receive(timeout=remaining)
                except asyncio.TimeoutError:
                    break
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                seen.append(json.loads(msg.data))
            return seen

        yield collect


def _algo_updates(events, status=None):
    return [e for e in events if e["e"] == "ALGO_UPDATE" and (status is None or e["o"]["X"] == status)]


def _has(status):
    return lambda events: bool(_algo_updates(events, status))


def _px(venue, ticks, symbol="BTCUSDT"):
    return venue.engine.books[symbol].instrument.format_price(ticks)


def _book(venue, symbol="BTCUSDT"):
    return venue.engine.books[symbol]


async def _place(s, venue, **params):
    params.setdefault("algoType", "CONDITIONAL")
    params.setdefault("symbol", "BTCUSDT")
    status, body = await _signed(s, venue, "POST", "/fapi/v1/algoOrder", params)
    assert status == 200, body
    return body


async def test_a_stop_market_triggers_by_last_price_and_its_order_fills(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    book = _book(venue)
    last = book.last_price_ticks
    async with aiohttp.ClientSession() as s, _user_stream(s, venue) as events:
        placed = await _place(s, venue, side="BUY", type="STOP_MARKET", quantity="0.010",
                              triggerPrice=_px(venue, last + 50), clientAlgoId="stop-by-last-1")
        assert set(placed) == NEW_ALGO_KEYS
        assert (placed["algoStatus"], placed["orderType"], placed["clientAlgoId"]) == \
            ("NEW", "STOP_MARKET", "stop-by-last-1")
        assert placed["triggerPrice"] == _px(venue, last + 50) and placed["quantity"] == "0.010"
        book.last_price_ticks = last + 49  # one tick short
        venue.engine.check_algo_triggers("BTCUSDT")
        _, still = await _signed(s, venue, "GET", "/fapi/v1/algoOrder", {"algoId": placed["algoId"]})
        assert still["algoStatus"] == "NEW" and still["actualOrderId"] == ""
        book.last_price_ticks = last + 50
        venue.engine.check_algo_triggers("BTCUSDT")
        got = await events(_has("FINISHED"))
        _, done = await _signed(s, venue, "GET", "/fapi/v1/algoOrder", {"clientAlgoId": "stop-by-last-1"})
        assert set(done) == QUERY_ALGO_KEYS
        assert done["algoStatus"] == "FINISHED" and done["actualOrderId"] and done["triggerTime"] > 0
        _, actual = await _signed(s, venue, "GET", "/fapi/v1/order",
                                  {"symbol": "BTCUSDT", "orderId": done["actualOrderId"]})
        assert actual["status"] == "FILLED" and actual["executedQty"] == "0.010" and actual["type"] == "MARKET"
        assert actual["clientOrderId"] == "stop-by-last-1" and done["actualPrice"] == actual["avgPrice"]
    assert [e["o"]["X"] for e in _algo_updates(got)] == ["NEW", "TRIGGERING", "TRIGGERED", "FINISHED"]
    triggered = _algo_updates(got, "TRIGGERED")[0]["o"]
    assert triggered["ai"] == done["actualOrderId"] and triggered["act"] == "MARKET"
    finished = _algo_updates(got, "FINISHED")[0]["o"]
    assert finished["aq"] == "0.010" and finished["ap"] == actual["avgPrice"]
    # The actual order goes through the matching engine like any order, after TRIGGERED, before FINISHED.
    kinds = [(e["e"], e.get("o", {}).get("X")) for e in got]
    order_events = [e["o"] for e in got if e["e"] == "ORDER_TRADE_UPDATE"]
    assert [o["X"] for o in order_events] == ["NEW", "FILLED"]
    assert all(o["i"] == int(done["actualOrderId"]) and o["c"] == "stop-by-last-1" for o in order_events)
    assert kinds.index(("ALGO_UPDATE", "TRIGGERED")) < kinds.index(("ORDER_TRADE_UPDATE", "NEW")) < \
        kinds.index(("ORDER_TRADE_UPDATE", "FILLED")) < kinds.index(("ALGO_UPDATE", "FINISHED"))
    assert venue.engine.accounts[API_KEY].positions["BTCUSDT"].qty_steps == 10


async def test_a_mark_price_stop_ignores_the_last_price_and_follows_the_mark(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    book = _book(venue)
    mark, last = book.mark_ticks, book.last_price_ticks
    trigger = min(mark, last) - 100
    async with aiohttp.ClientSession() as s:
        placed = await _place(s, venue, side="SELL", type="STOP_MARKET", quantity="0.010", workingType="MARK_PRICE",
                              triggerPrice=_px(venue, trigger))
        book.last_price_ticks = trigger - 10  # the last price crossed: a MARK_PRICE stop does not care
        venue.engine.check_algo_triggers("BTCUSDT")
        _, body = await _signed(s, venue, "GET", "/fapi/v1/algoOrder", {"algoId": placed["algoId"]})
        assert body["algoStatus"] == "NEW" and body["workingType"] == "MARK_PRICE"
        book.last_price_ticks = last
        book.mark_ticks = trigger
        venue.engine.check_algo_triggers("BTCUSDT")
        _, body = await _signed(s, venue, "GET", "/fapi/v1/algoOrder", {"algoId": placed["algoId"]})
        assert body["algoStatus"] == "FINISHED"
    assert venue.engine.accounts[API_KEY].positions["BTCUSDT"].qty_steps == -10


async def test_a_trailing_stop_activates_then_fires_on_the_callback_from_its_high(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    book = _book(venue)
    start_ticks = book.last_price_ticks
    activation = start_ticks + 100
    async with aiohttp.ClientSession() as s:
        placed = await _place(s, venue, side="SELL", type="TRAILING_STOP_MARKET", quantity="0.010",
                              callbackRate="1.0", activatePrice=_px(venue, activation))
        assert placed["activatePrice"] == _px(venue, activation) and placed["callbackRate"] == "1.0"

        def status():
            venue.engine.check_algo_triggers("BTCUSDT")
            return venue.engine.accounts[API_KEY].algo_orders[placed["algoId"]].status

        book.last_price_ticks = start_ticks - 2000  # far below the activation: never trails
        assert status() is AlgoStatus.NEW
        high = activation + 5000
        book.last_price_ticks = high  # activated, new high
        assert status() is AlgoStatus.NEW
        book.last_price_ticks = high - high * 5 // 1000  # -0.5 % from the high
        assert status() is AlgoStatus.NEW
        book.last_price_ticks = high - high * 11 // 1000  # -1.1 %: fires
        assert status() is AlgoStatus.FINISHED
        _, body = await _signed(s, venue, "GET", "/fapi/v1/algoOrder", {"algoId": placed["algoId"]})
        assert body["orderType"] == "TRAILING_STOP_MARKET" and body["callbackRate"] == "1.0"
        assert set(body) == QUERY_ALGO_KEYS | {"activatePrice", "callbackRate"}


async def test_price_protect_holds_a_stop_back_while_mark_and_last_diverge(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    book = _book(venue)
    mark = book.mark_ticks
    assert book.instrument.trigger_protect == Fraction(5, 100)  # exchangeInfo's triggerProtect "0.0500"
    async with aiohttp.ClientSession() as s:
        placed = await _place(s, venue, side="BUY", type="STOP_MARKET", quantity="0.010", priceProtect="TRUE",
                              triggerPrice=_px(venue, book.last_price_ticks + 100))
        assert placed["priceProtect"] is True
        book.last_price_ticks = mark * 106 // 100  # 6 % above the mark: beyond triggerProtect
        venue.engine.check_algo_triggers("BTCUSDT")
        algo = venue.engine.accounts[API_KEY].algo_orders[placed["algoId"]]
        assert algo.status is AlgoStatus.NEW
        book.last_price_ticks = mark * 104 // 100  # 4 %: within it
        venue.engine.check_algo_triggers("BTCUSDT")
        assert algo.status is AlgoStatus.FINISHED


async def test_close_position_closes_the_whole_position_and_reduce_only_without_one_is_rejected(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    book = _book(venue)
    account = venue.engine.accounts[API_KEY]
    async with aiohttp.ClientSession() as s, _user_stream(s, venue) as events:
        # Reduce-only with nothing to reduce: accepted, then refused by the matching engine when it triggers.
        lonely = await _place(s, venue, side="SELL", type="STOP_MARKET", quantity="0.010", reduceOnly="true",
                              triggerPrice=_px(venue, book.last_price_ticks - 100))
        book.last_price_ticks -= 100
        venue.engine.check_algo_triggers("BTCUSDT")
        got = await events(_has("REJECTED"))
        rejected = _algo_updates(got, "REJECTED")[0]["o"]
        assert rejected["aid"] == lonely["algoId"] and rejected["rm"] == "Reduce Only reject" and rejected["ai"] == ""
        assert not account.algo_by_order and account.positions["BTCUSDT"].qty_steps == 0
        status, opened = await _signed(s, venue, "POST", "/fapi/v1/order",
                                       {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.037"})
        assert status == 200 and account.positions["BTCUSDT"].qty_steps == 37
        closer = await _place(s, venue, side="SELL", type="STOP_MARKET", closePosition="true",
                              triggerPrice=_px(venue, book.last_price_ticks - 100))
        assert closer["closePosition"] is True
        book.last_price_ticks -= 100
        venue.engine.check_algo_triggers("BTCUSDT")
        assert account.positions["BTCUSDT"].qty_steps == 0
        _, body = await _signed(s, venue, "GET", "/fapi/v1/algoOrder", {"algoId": closer["algoId"]})
        _, actual = await _signed(s, venue, "GET", "/fapi/v1/order",
                                  {"symbol": "BTCUSDT", "orderId": body["actualOrderId"]})
        assert body["algoStatus"] == "FINISHED" and actual["executedQty"] == "0.037" and actual["reduceOnly"]


async def test_a_gtd_algo_order_expires_at_its_date(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    async with aiohttp.ClientSession() as s, _user_stream(s, venue) as events:
        placed = await _place(s, venue, side="BUY", type="STOP_MARKET", quantity="0.010", timeInForce="GTD",
                              goodTillDate=venue.now_ms() + 601_000,  # more than 600 s ahead, as the venue wants
                              triggerPrice=_px(venue, _book(venue).last_price_ticks * 2))
        assert placed["goodTillDate"] == venue.now_ms() + 601_000 and placed["timeInForce"] == "GTD"
        venue.step(600)
        assert venue.engine.accounts[API_KEY].algo_orders[placed["algoId"]].status is AlgoStatus.NEW
        venue.step(1)
        got = await events(_has("EXPIRED"))
    expired = _algo_updates(got, "EXPIRED")[0]["o"]
    assert expired["aid"] == placed["algoId"] and expired["gtd"] == placed["goodTillDate"]
    assert set(expired) == set(_sample("rs_algo_update_new.json")["o"])


async def test_cancel_query_and_the_open_all_and_cancel_all_lists(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    far_btc = _px(venue, _book(venue).last_price_ticks * 2)
    far_eth = _px(venue, _book(venue, "ETHUSDT").last_price_ticks * 2, "ETHUSDT")
    async with aiohttp.ClientSession() as s:
        a = await _place(s, venue, side="BUY", type="STOP_MARKET", quantity="0.010", triggerPrice=far_btc,
                         clientAlgoId="list-a")
        b = await _place(s, venue, side="BUY", type="TAKE_PROFIT", quantity="0.010", price=far_btc,
                         timeInForce="GTC", triggerPrice=_px(venue, _book(venue).last_price_ticks // 2))
        c = await _place(s, venue, symbol="ETHUSDT", side="BUY", type="STOP_MARKET", quantity="0.100",
                         triggerPrice=far_eth)
        _, btc_open = await _signed(s, venue, "GET", "/fapi/v1/openAlgoOrders", {"symbol": "BTCUSDT"})
        _, all_open = await _signed(s, venue, "GET", "/fapi/v1/openAlgoOrders", {})
        assert [o["algoId"] for o in btc_open] == [a["algoId"], b["algoId"]]
        assert {o["algoId"] for o in all_open} == {a["algoId"], b["algoId"], c["algoId"]}
        assert all(set(o) == QUERY_ALGO_KEYS for o in all_open)
        # Cancel by algoId and by clientAlgoId; a second cancel is an unknown order.
        status, cancelled = await _signed(s, venue, "DELETE", "/fapi/v1/algoOrder", {"algoId": b["algoId"]})
        assert (status, cancelled) == (200, {"algoId": b["algoId"], "clientAlgoId": b["clientAlgoId"],
                                             "code": "200", "msg": "success"})
        status, cancelled = await _signed(s, venue, "DELETE", "/fapi/v1/algoOrder", {"clientAlgoId": "list-a"})
        assert status == 200 and cancelled["algoId"] == a["algoId"]
        status, again = await _signed(s, venue, "DELETE", "/fapi/v1/algoOrder", {"algoId": a["algoId"]})
        assert (status, again["code"]) == (400, -2011)
        status, unknown = await _signed(s, venue, "GET", "/fapi/v1/algoOrder", {"algoId": 42})
        assert (status, unknown["code"]) == (400, -2013)
        status, neither = await _signed(s, venue, "DELETE", "/fapi/v1/algoOrder", {})
        assert (status, neither["code"]) == (400, -1102)
        _, history = await _signed(s, venue, "GET", "/fapi/v1/allAlgoOrders", {"symbol": "BTCUSDT"})
        assert [(o["algoId"], o["algoStatus"]) for o in history] == [(a["algoId"], "CANCELED"),
                                                                      (b["algoId"], "CANCELED")]
        _, newer = await _signed(s, venue, "GET", "/fapi/v1/allAlgoOrders",
                                 {"symbol": "BTCUSDT", "algoId": b["algoId"]})
        assert [o["algoId"] for o in newer] == [b["algoId"]]
        status, missing = await _signed(s, venue, "GET", "/fapi/v1/allAlgoOrders", {})
        assert (status, missing["code"]) == (400, -1102)
        status, done = await _signed(s, venue, "DELETE", "/fapi/v1/algoOpenOrders", {"symbol": "ETHUSDT"})
        assert (status, done) == (200, {"code": 200, "msg": "The operation of cancel all open order is done."})
        _, all_open = await _signed(s, venue, "GET", "/fapi/v1/openAlgoOrders", {})
        assert all_open == []


async def test_weights_and_order_counts_of_the_algo_endpoints(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    far = _px(venue, _book(venue).last_price_ticks * 2)
    async with aiohttp.ClientSession() as s:
        async def used(method, path, params):
            query = signed_query(params, ts_ms=venue.now_ms())
            before = venue.weights.used
            async with s.request(method, f"{venue.base_url}{path}?{query}", headers=HEADERS) as resp:
                assert resp.status == 200, await resp.text()
                return venue.weights.used - before, resp.headers

        weight, headers = await used("POST", "/fapi/v1/algoOrder", {
            "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET",
            "quantity": "0.010", "triggerPrice": far})
        assert weight == 0 and headers["X-MBX-ORDER-COUNT-10S"] == "1"
        async with s.get(f"{venue.base_url}/_sim/state") as resp:
            assert next(iter((await resp.json())["accounts"].values()))["open_algo_orders"] == 1
        algo_id = next(iter(venue.engine.accounts[API_KEY].algo_orders))
        assert (await used("GET", "/fapi/v1/algoOrder", {"algoId": algo_id}))[0] == 1
        assert (await used("DELETE", "/fapi/v1/algoOrder", {"algoId": algo_id}))[0] == 1
        assert (await used("DELETE", "/fapi/v1/algoOpenOrders", {"symbol": "BTCUSDT"}))[0] == 1
        assert (await used("GET", "/fapi/v1/openAlgoOrders", {"symbol": "BTCUSDT"}))[0] == 1
        assert (await used("GET", "/fapi/v1/openAlgoOrders", {}))[0] == 40
        assert (await used("GET", "/fapi/v1/allAlgoOrders", {"symbol": "BTCUSDT"}))[0] == 5
        async with s.post(f"{venue.base_url}/fapi/v1/algoOrder?symbol=BTCUSDT") as resp:
            assert resp.status == 401 and (await resp.json())["code"] == -2014


def _valid(venue, **overrides):
    book = _book(venue)
    params = {"algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET",
              "quantity": "0.010", "triggerPrice": _px(venue, book.last_price_ticks + 1000)}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


@pytest.mark.parametrize("overrides, code", [
    ({"triggerPrice": None}, -1102),
    ({"quantity": None}, -1102),
    ({"algoType": "VP"}, -1130),
    ({"algoType": None}, -1102),
    ({"type": "LIMIT", "price": "1000.00", "timeInForce": "GTC"}, -1116),
    ({"type": "ICEBERG"}, -1116),
    ({"side": "UP"}, -1117),
    ({"timeInForce": "NEVER"}, -1115),
    ({"workingType": "INDEX_PRICE"}, -4031),
    ({"type": "TRAILING_STOP_MARKET", "triggerPrice": None, "callbackRate": "0.05"}, -2007),
    ({"type": "TRAILING_STOP_MARKET", "triggerPrice": None, "callbackRate": "10.1"}, -2007),
    ({"type": "TRAILING_STOP_MARKET", "triggerPrice": None, "callbackRate": "0.15"}, -2007),
    ({"type": "TRAILING_STOP_MARKET", "triggerPrice": None}, -1102),
    ({"closePosition": "true"}, -4137),
    ({"closePosition": "true", "quantity": None, "reduceOnly": "true"}, -1106),
    ({"closePosition": "true", "quantity": None, "type": "STOP", "price": "1000.00"}, -1106),
    ({"price": "1000.00"}, -1106),
    ({"type": "STOP", "timeInForce": "GTC"}, -1102),
    ({"triggerPrice": "70000.05"}, -4014),
    ({"triggerPrice": "0"}, -4006),
    ({"triggerPrice": "99999999.00"}, -4007),
    ({"quantity": "0.0105"}, -1111),
    ({"quantity": "lots"}, -1100),
    ({"quantity": "0.000"}, -4003),
    ({"quantity": "100000"}, -4005),
    ({"positionSide": "LONG"}, -4061),
    ({"clientAlgoId": "no spaces allowed"}, -4015),
    ({"selfTradePreventionMode": "MAYBE"}, -5039),  # INVALID_SELF_TRADE_PREVENTION_MODE
    ({"priceProtect": "perhaps"}, -1130),
    ({"timeInForce": "GTD", "goodTillDate": None}, -1102),
    ({"symbol": "NOPEUSDT"}, -1121),
])
async def test_bad_algo_orders_get_the_venues_codes(stepped_venue, overrides, code):
    venue = stepped_venue
    venue.step(3)
    async with aiohttp.ClientSession() as s:
        status, body = await _signed(s, venue, "POST", "/fapi/v1/algoOrder", _valid(venue, **overrides))
    assert status == 400 and body["code"] == code, body
    assert venue.engine.accounts[API_KEY].algo_orders == {}


async def test_immediate_trigger_duplicates_and_margin_are_refused(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    last = _book(venue).last_price_ticks
    async with aiohttp.ClientSession() as s:
        status, body = await _signed(s, venue, "POST", "/fapi/v1/algoOrder",
                                     _valid(venue, triggerPrice=_px(venue, last - 10)))  # a BUY stop below last
        assert (status, body["code"]) == (400, -2021)
        await _place(s, venue, **_valid(venue, clientAlgoId="twice"))
        status, body = await _signed(s, venue, "POST", "/fapi/v1/algoOrder", _valid(venue, clientAlgoId="twice"))
        assert (status, body["code"]) == (400, -4116)
        await _signed(s, venue, "DELETE", "/fapi/v1/algoOrder", {"clientAlgoId": "twice"})
        await _place(s, venue, **_valid(venue, clientAlgoId="twice"))  # free again once the first is gone
        status, body = await _signed(s, venue, "POST", "/fapi/v1/algoOrder", _valid(venue, quantity="900"))
        assert (status, body["code"]) == (400, -2019)


@settings(max_examples=60, deadline=None)
@given(tenths_hundredths=st.integers(min_value=-5, max_value=2000))
def test_callback_rate_is_accepted_exactly_from_0_1_to_10_in_tenths(tenths_hundredths):
    rate = Fraction(tenths_hundredths, 100)
    text = f"{tenths_hundredths / 100:.2f}" if tenths_hundredths >= 0 else f"-{-tenths_hundredths / 100:.2f}"
    venue = SimVenue(symbols=["BTCUSDT"], api_key=API_KEY, api_secret=API_SECRET, clock=TestClock(start_ns=START_NS))
    venue.tick()
    account = venue.engine.accounts[API_KEY]
    params = {"algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "TRAILING_STOP_MARKET",
              "quantity": "0.010", "callbackRate": text}
    accepted = Fraction(1, 10) <= rate <= 10 and (rate * 10).denominator == 1
    if accepted:
        algo = venue.engine.place_algo(account, params)
        assert algo.callback_rate == rate
    else:
        with pytest.raises(VenueError) as refusal:
            venue.engine.place_algo(account, params)
        # a negative rate is outside the DECIMAL grammar (-1100); a readable one out of range is -2007
        assert refusal.value.code == (-1100 if tenths_hundredths < 0 else -2007)


def test_the_lifecycle_moves_only_through_its_table():
    for origin in AlgoStatus:
        for target in AlgoStatus:
            algo = SimAlgoOrder(1, "x", "BTCUSDT", Side.BUY, OrderType.STOP_MARKET, TimeInForce.GTC, 1, 0, 1,
                                status=origin)
            if target in TRANSITIONS[origin]:
                algo.move(target, 5)
                assert (algo.status, algo.update_ms) == (target, 5)
            else:
                with pytest.raises(InvalidAlgoTransition):
                    algo.move(target, 5)
                assert algo.status is origin
    assert TRANSITIONS[AlgoStatus.NEW] == {AlgoStatus.TRIGGERING, AlgoStatus.CANCELED, AlgoStatus.EXPIRED}
    assert not any(TRANSITIONS[s] for s in (AlgoStatus.FINISHED, AlgoStatus.CANCELED, AlgoStatus.REJECTED,
                                            AlgoStatus.EXPIRED))


async def test_algo_updates_have_the_recorded_keys_and_types(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    book = _book(venue)
    last = book.last_price_ticks
    async with aiohttp.ClientSession() as s, _user_stream(s, venue) as events:
        fired = await _place(s, venue, side="BUY", type="STOP_MARKET", quantity="0.010",
                             triggerPrice=_px(venue, last + 50))
        kept = await _place(s, venue, side="BUY", type="TAKE_PROFIT", quantity="0.010", timeInForce="GTC",
                            price=_px(venue, last // 2), triggerPrice=_px(venue, last // 2))
        await _signed(s, venue, "DELETE", "/fapi/v1/algoOrder", {"algoId": kept["algoId"]})
        book.last_price_ticks = last + 50
        venue.engine.check_algo_triggers("BTCUSDT")
        got = await events(_has("FINISHED"))
    by_status = {}
    for event in _algo_updates(got):
        by_status.setdefault(event["o"]["X"], event)
    assert by_status["NEW"]["o"]["aid"] == fired["algoId"] and by_status["CANCELED"]["o"]["aid"] == kept["algoId"]
    for status, sample in [("NEW", "rs_algo_update_new.json"), ("CANCELED", "rs_algo_update_canceled.json"),
                           ("TRIGGERING", "py_ws_futures_algo_update_triggering.json"),
                           ("TRIGGERED", "py_ws_futures_algo_update_triggered.json"),
                           ("FINISHED", "py_ws_futures_algo_update_finished.json")]:
        assert _shape(by_status[status]) == _shape(_sample(sample)), status
    # The REST list's keys cover the recorded openAlgoOrders element (which spells Binance's "orderType"
    # as "type"; nautilus reads either).
    recorded = set(_sample("rs_open_algo_orders.json")[0]) - {"type"}
    assert recorded <= QUERY_ALGO_KEYS


@pytest.fixture
async def algo_only_venue():
    """A venue that answers -4120 for conditional types on /fapi/v1/order, as Binance does since 2025-12-09."""
    clock = TestClock(start_ns=START_NS)
    venue = SimVenue(symbols=["BTCUSDT"], api_key=API_KEY, api_secret=API_SECRET, clock=clock, seed=1,
                     tick_ms=3_600_000, reject_legacy_conditional=True)
    runner, port = await start(venue, "127.0.0.1", 0)
    venue.base_url = f"http://127.0.0.1:{port}"
    for _ in range(3):
        clock.advance(ms=1000)
        venue.tick()
    yield venue
    await runner.cleanup()


async def test_algo_only_mode_refuses_conditional_types_on_the_order_endpoints(algo_only_venue):
    venue = algo_only_venue
    trigger = _px(venue, _book(venue).last_price_ticks + 1000)
    stop = {"symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET", "quantity": "0.010", "stopPrice": trigger}
    async with aiohttp.ClientSession() as s:
        status, body = await _signed(s, venue, "POST", "/fapi/v1/order", stop)
        assert (status, body) == (400, {"code": -4120, "msg": "Order type not supported for this endpoint. "
                                                              "Please use the Algo Order API endpoints instead."})
        limit = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
                 "price": _px(venue, _book(venue).best(True) - 100)}
        status, body = await _signed(s, venue, "POST", "/fapi/v1/batchOrders",
                                     {"batchOrders": json.dumps([stop, limit])})
        assert status == 200 and body[0]["code"] == -4120 and body[1]["status"] == "NEW"
        placed = await _place(s, venue, **_valid(venue, triggerPrice=trigger))
        assert placed["algoStatus"] == "NEW"


async def test_by_default_the_order_endpoint_still_takes_conditional_types(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    async with aiohttp.ClientSession() as s:
        status, body = await _signed(s, venue, "POST", "/fapi/v1/order", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET", "quantity": "0.010",
            "stopPrice": _px(venue, _book(venue).last_price_ticks + 1000)})
    assert status == 200 and body["type"] == "STOP_MARKET" and body["status"] == "NEW"


async def test_a_triggered_limit_order_cancelled_in_the_book_finishes_its_algo_order_unfilled(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    book = _book(venue)
    last = book.last_price_ticks
    async with aiohttp.ClientSession() as s, _user_stream(s, venue) as events:
        # A BUY STOP whose limit is far below the book: triggered, it rests in the book.
        placed = await _place(s, venue, side="BUY", type="STOP", quantity="0.010", timeInForce="GTC",
                              price=_px(venue, last // 2), triggerPrice=_px(venue, last + 50))
        book.last_price_ticks = last + 50
        venue.engine.check_algo_triggers("BTCUSDT")
        _, body = await _signed(s, venue, "GET", "/fapi/v1/algoOrder", {"algoId": placed["algoId"]})
        assert body["algoStatus"] == "TRIGGERED"
        status, open_ = await _signed(s, venue, "GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})
        assert [(o["orderId"], o["type"], o["price"]) for o in open_] == \
            [(int(body["actualOrderId"]), "LIMIT", _px(venue, last // 2))]
        status, _ = await _signed(s, venue, "DELETE", "/fapi/v1/algoOrder", {"algoId": placed["algoId"]})
        assert status == 400  # no longer at the algo service: its order is in the book
        status, _ = await _signed(s, venue, "DELETE", "/fapi/v1/order",
                                  {"symbol": "BTCUSDT", "orderId": body["actualOrderId"]})
        assert status == 200
        got = await events(_has("FINISHED"))
    finished = _algo_updates(got, "FINISHED")[0]
    assert finished["o"]["aq"] == "0.000" and finished["o"]["act"] == "LIMIT"
    assert _shape(finished) == _shape(_sample("py_ws_futures_algo_update_finished_canceled.json"))


async def test_price_match_sets_the_triggered_orders_limit_from_the_book(stepped_venue):
    venue = stepped_venue
    venue.step(3)
    book = _book(venue)
    last = book.last_price_ticks
    async with aiohttp.ClientSession() as s:
        status, body = await _signed(s, venue, "POST", "/fapi/v1/algoOrder",
                                     _valid(venue, priceMatch="OPPONENT"))  # STOP_MARKET: no limit to match
        assert (status, body["code"]) == (400, -5038)  # UNSUPPORTED_ORDER_TYPE_PRICE_MATCH
        status, body = await _signed(s, venue, "POST", "/fapi/v1/algoOrder", _valid(
            venue, type="STOP", timeInForce="GTC", priceMatch="QUEUE", price=_px(venue, last)))
        assert (status, body["code"]) == (400, -1106)  # priceMatch or price, not both
        placed = await _place(s, venue, side="BUY", type="STOP", quantity="0.010", timeInForce="GTC",
                              priceMatch="OPPONENT", triggerPrice=_px(venue, last + 50))
        best_ask = book.best(False)
        book.last_price_ticks = last + 50
        venue.engine.check_algo_triggers("BTCUSDT")
        _, body = await _signed(s, venue, "GET", "/fapi/v1/algoOrder", {"algoId": placed["algoId"]})
        _, actual = await _signed(s, venue, "GET", "/fapi/v1/order",
                                  {"symbol": "BTCUSDT", "orderId": body["actualOrderId"]})
    assert actual["type"] == "LIMIT" and actual["price"] == _px(venue, best_ask)
    assert actual["status"] == "FILLED" and body["algoStatus"] == "FINISHED"


def test_celeris_sim_algo_only_answers_4120_on_the_order_endpoint():
    """`celeris sim --algo-only` as users run it: -4120 on /fapi/v1/order, the algo endpoint open."""
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    exe = Path(sys.executable).with_name("celeris")
    proc = subprocess.Popen([str(exe), "sim", "--port", "0", "--api-key", API_KEY, "--api-secret", API_SECRET,
                             "--symbols", "BTCUSDT", "--algo-only"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        url = json.loads(proc.stdout.readline())["rest_url"]

        def post(path, params):
            query = signed_query(params, ts_ms=int(time.time() * 1000))
            request = urllib.request.Request(f"{url}{path}?{query}", method="POST", headers=HEADERS)
            try:
                with urllib.request.urlopen(request, timeout=5) as resp:
                    return resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read())

        stop = {"symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET", "quantity": "0.010",
                "stopPrice": "1000000.00"}
        assert post("/fapi/v1/order", stop)[1]["code"] == -4120
        status, body = post("/fapi/v1/algoOrder", {**{k: v for k, v in stop.items() if k != "stopPrice"},
                                                   "algoType": "CONDITIONAL", "triggerPrice": "1000000.00"})
        assert status == 200 and body["algoStatus"] == "NEW"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
