"""Junk in every numeric, enum and boolean parameter of every order endpoint, over a real socket on 127.0.0.1:
REST /fapi/v1/order (POST, PUT, DELETE, GET), batchOrders (POST, PUT, DELETE), countdownCancelAll, leverage,
the Algo Order API, and the WebSocket API's order.place / order.modify / order.cancel. Each answer must be a
Binance error with the code Binance gives for that kind of parameter -- -1100 "Illegal characters found in
parameter 'X'; legal range is '...'" for an unparsable number (NaN, Infinity, "1e3", "-0", 21 digits, a
non-ASCII digit), -1130 for a junk boolean or enum, the venue's own code for side / type / timeInForce /
workingType / newOrderRespType -- naming the parameter, never a Python exception's name, never a 500; the
venue keeps serving afterwards, and nothing was placed, amended or cancelled."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from celeris.exchange_sim.server import SimVenue, start
from celeris.runtime.clock import SystemClock
from tests.sim.conftest import API_KEY, API_SECRET, signed_query
from tests.sim.test_ws_api import signed
from tests.support.waits import wait_for

HEADERS = {"X-MBX-APIKEY": API_KEY}
DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
INTEGER_RANGE = r"^[0-9]{1,20}$"
_DECIMAL = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?")
_INTEGER = re.compile(r"[0-9]{1,20}")

# What a careless or hostile client sends where a number belongs; none is a number Binance reads.
NUMBER_JUNK = ["NaN", "nan", "Infinity", "-Infinity", "inf", "1e3", "1E-2", "-0", "-1", "+1", " 1", "1 ", "1_000",
               "0x10", "\uff11", "\u0663", ".5", "5.", "1.2.3", "1" * 21, "0." + "1" * 21, "1,5", "abc", "true",
               "\x00", "1\n"]
BOOL_JUNK = ["1", "0", "yes", "no", "True ", "tru", "falsee", "null", "NaN"]


def _not_decimal(text: str) -> bool:
    return _DECIMAL.fullmatch(text) is None


def _not_integer(text: str) -> bool:
    return _INTEGER.fullmatch(text) is None or int(text) > 2**63 - 1


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
JUNK = {
    "decimal": st.one_of(st.sampled_from(NUMBER_JUNK), TEXT.filter(_not_decimal)),
    "integer": st.one_of(st.sampled_from(NUMBER_JUNK + ["1.0", "9" * 20]),
                         TEXT.filter(_not_integer), st.integers(2**63, 10**20 - 1).map(str)),
    "bool": st.one_of(st.sampled_from(BOOL_JUNK), TEXT.filter(lambda s: s.lower() not in ("true", "false"))),
}


def _enum_junk(allowed: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["buy", "Limit", "NONE ", "null", "1"]), TEXT).filter(lambda s: s not in allowed)


# -- what each endpoint is sent: a valid request whose one parameter the test replaces -------------------
def _limit(v) -> dict[str, str]:
    return {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
            "price": v.bid}


def _gtd(v) -> dict[str, str]:
    return dict(_limit(v), timeInForce="GTD", goodTillDate=str(v.now_ms() + 3_600_000))


def _stop(v) -> dict[str, str]:
    return {"symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET", "quantity": "0.010", "stopPrice": v.above}


def _trailing(v) -> dict[str, str]:
    return {"symbol": "BTCUSDT", "side": "SELL", "type": "TRAILING_STOP_MARKET", "quantity": "0.010",
            "callbackRate": "1.0", "activationPrice": v.above}


def _amend(v) -> dict[str, str]:
    return {"symbol": "BTCUSDT", "orderId": v.resting, "side": "BUY", "quantity": "0.011", "price": v.bid}


def _by_id(v) -> dict[str, str]:
    return {"symbol": "BTCUSDT", "orderId": v.resting}


def _algo(v) -> dict[str, str]:
    return {"algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET",
            "quantity": "0.010", "triggerPrice": v.above}


def _algo_stop(v) -> dict[str, str]:
    return dict(_algo(v), type="STOP", price=v.above, timeInForce="GTC")


def _algo_gtd(v) -> dict[str, str]:
    return dict(_algo_stop(v), timeInForce="GTD", goodTillDate=str(v.now_ms() + 3_600_000))


def _algo_trailing(v) -> dict[str, str]:
    return {"algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "TRAILING_STOP_MARKET",
            "quantity": "0.010", "callbackRate": "1.0", "activatePrice": v.above}


def _algo_by_id(v) -> dict[str, str]:
    return {"algoId": v.resting_algo}


SIDE, TYPES = ("BUY", "SELL"), ("LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                                "TRAILING_STOP_MARKET")
TIFS = ("GTC", "IOC", "FOK", "GTX", "GTD")
STP = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
MATCH = ("NONE", "OPPONENT", "OPPONENT_5", "OPPONENT_10", "OPPONENT_20", "QUEUE", "QUEUE_5", "QUEUE_10", "QUEUE_20")
ENUMS: dict[str, tuple[tuple[str, ...], int]] = {
    "side": (SIDE, -1117), "type": (TYPES, -1116), "timeInForce": (TIFS, -1115),
    "selfTradePreventionMode": (STP, -5039), "priceMatch": (MATCH, -5037), "positionSide": (("BOTH",), -1130),
    "workingType": (("MARK_PRICE", "CONTRACT_PRICE"), -4031), "newOrderRespType": (("ACK", "RESULT"), -1136),
    "algoType": (("CONDITIONAL",), -1130),
}
BOOLS = ("reduceOnly", "closePosition", "priceProtect")
INTEGERS = ("orderId", "goodTillDate", "countdownTime", "leverage", "algoId", "recvWindow", "timestamp")


def _kind(name: str) -> str:
    return "enum" if name in ENUMS else "bool" if name in BOOLS else "integer" if name in INTEGERS else "decimal"


PLACE = ["quantity", "price", "reduceOnly", "side", "type", "timeInForce", "selfTradePreventionMode", "priceMatch",
         "positionSide", "workingType", "newOrderRespType", "priceProtect", "recvWindow", "timestamp"]
# (transport, method, path, base, parameter): REST paths, "batch" for one element of batchOrders, "ws" methods.
CASES: list[tuple[str, str, str, Any, str]] = (
    [("rest", "POST", "/fapi/v1/order", _limit, p) for p in PLACE]
    + [("rest", "POST", "/fapi/v1/order", _gtd, "goodTillDate")]
    + [("rest", "POST", "/fapi/v1/order", _stop, p) for p in ("stopPrice", "closePosition")]
    + [("rest", "POST", "/fapi/v1/order", _trailing, p) for p in ("callbackRate", "activationPrice")]
    + [("rest", "PUT", "/fapi/v1/order", _amend, p) for p in ("orderId", "quantity", "price", "side", "priceMatch")]
    + [("rest", m, "/fapi/v1/order", _by_id, "orderId") for m in ("DELETE", "GET")]
    + [("batch", "POST", "/fapi/v1/batchOrders", _limit, p) for p in ("quantity", "price", "reduceOnly", "side",
                                                                        "timeInForce", "priceMatch")]
    + [("batch", "PUT", "/fapi/v1/batchOrders", _amend, p) for p in ("orderId", "quantity", "price")]
    + [("rest", "POST", "/fapi/v1/countdownCancelAll", lambda v: {"symbol": "BTCUSDT", "countdownTime": "60000"},
        "countdownTime")]
    + [("rest", "POST", "/fapi/v1/leverage", lambda v: {"symbol": "BTCUSDT", "leverage": "10"}, "leverage")]
    + [("rest", "POST", "/fapi/v1/algoOrder", _algo, p) for p in ("algoType", "quantity", "triggerPrice", "side",
                                                                  "type", "workingType", "priceProtect", "reduceOnly",
                                                                  "positionSide", "newOrderRespType",
                                                                  "selfTradePreventionMode")]
    + [("rest", "POST", "/fapi/v1/algoOrder", _algo, "closePosition")]
    + [("rest", "POST", "/fapi/v1/algoOrder", _algo_stop, p) for p in ("price", "timeInForce", "priceMatch")]
    + [("rest", "POST", "/fapi/v1/algoOrder", _algo_gtd, "goodTillDate")]
    + [("rest", "POST", "/fapi/v1/algoOrder", _algo_trailing, p) for p in ("callbackRate", "activatePrice")]
    + [("rest", m, "/fapi/v1/algoOrder", _algo_by_id, "algoId") for m in ("DELETE", "GET")]
    + [("ws", "order.place", "", _limit, p) for p in PLACE]
    + [("ws", "order.modify", "", _amend, p) for p in ("orderId", "quantity", "price")]
    + [("ws", "order.cancel", "", _by_id, "orderId")]
)


def _expected(name: str) -> tuple[int, str | None]:
    kind = _kind(name)
    if kind == "enum":
        allowed, code = ENUMS[name]
        return code, f"Data sent for parameter '{name}' is not valid." if code == -1130 else None
    if kind == "bool":
        return -1130, f"Data sent for parameter '{name}' is not valid."
    legal = INTEGER_RANGE if kind == "integer" else DECIMAL_RANGE
    return -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."


@pytest.fixture
async def venue():
    """A venue on a real socket with its market running, limits out of the way, one resting order and one
    resting algo order to aim amendments and cancels at."""
    v = SimVenue(symbols=["BTCUSDT", "ETHUSDT"], api_key=API_KEY, api_secret=API_SECRET, clock=SystemClock(),
                 seed=3, tick_ms=20, mark_interval_ms=200, weight_limit=10**9, orders_per_10s=10**9)
    runner, port = await start(v, "127.0.0.1", 0)
    v.base_url, v.ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    book = v.engine.books["BTCUSDT"]
    assert await wait_for(lambda: book.best(True) is not None and v.engine.mark("BTCUSDT"))
    ins = book.instrument
    v.bid = ins.format_price(book.best(True) - 200)
    v.above = ins.format_price(book.best(False) + 500)
    async with aiohttp.ClientSession() as s:
        status, body = await _rest(s, v, "POST", "/fapi/v1/order", _limit(v))
        assert status == 200, body
        v.resting = str(body["orderId"])
        status, body = await _rest(s, v, "POST", "/fapi/v1/algoOrder", _algo(v))
        assert status == 200, body
        v.resting_algo = str(body["algoId"])
    yield v
    await runner.cleanup()


async def _rest(s, v, method: str, path: str, params: dict) -> tuple[int, Any]:
    # encoded=True: sent byte for byte as signed (yarl would otherwise unquote %2C and %3A after signing)
    url = URL(f"{v.base_url}{path}?{signed_query(params)}", encoded=True)
    async with s.request(method, url, headers=HEADERS) as resp:
        return resp.status, json.loads(await resp.text())


async def _send(s, ws, v, case, junk: str) -> tuple[int, Any]:
    transport, method, path, base, name = case
    params = base(v)
    params[name] = junk
    if transport == "rest":
        return await _rest(s, v, method, path, params)
    if transport == "batch":
        status, body = await _rest(s, v, method, path, {"batchOrders": json.dumps([params])})
        assert status == 200 and isinstance(body, list) and len(body) == 1, (status, body)
        return 400, body[0]
    await ws.send_str(json.dumps({"id": "m1", "method": method, "params": signed(params)}))
    answer = json.loads(await ws.receive_str(timeout=5))
    return answer["status"], answer.get("error", answer)


def _state(v) -> tuple:
    account = v.engine.accounts[API_KEY]
    return (tuple((o.order_id, o.status, o.qty_steps, o.price_ticks) for o in account.orders.values()),
            tuple((a.algo_id, a.status) for a in account.algo_orders.values()),
            dict(account.leverage), dict(account.countdowns))


async def _check(s, ws, v, case, junk: str) -> None:
    before = _state(v)
    status, body = await _send(s, ws, v, case, junk)
    name = case[4]
    assert 400 <= status < 500, (case, junk, status, body)
    assert set(body) == {"code", "msg"} and isinstance(body["msg"], str), (case, junk, body)
    assert not re.search(r"Error|Exception|Traceback", body["msg"]), body
    code, msg = _expected(name)
    assert body["code"] == code, (case[:3], name, junk, body)
    if msg is not None:
        assert body["msg"] == msg, (case[:3], name, junk, body)
    assert _state(v) == before, (case[:3], name, junk)  # a refusal changes nothing
    # and the venue keeps serving: a good signed request still answers
    status, _ = await _rest(s, v, "GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})
    assert status == 200


@pytest.mark.parametrize("case", [c for c in CASES if _kind(c[4]) in ("decimal", "integer")],
                         ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-{c[4]}")
async def test_every_listed_junk_number_is_refused_with_binances_code(venue, case):
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{venue.ws_url}/ws-fapi/v1") as ws:
        for junk in NUMBER_JUNK:
            await _check(s, ws, venue, case, junk)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_generated_junk_in_any_parameter_is_refused_with_binances_code(venue, data):
    case = data.draw(st.sampled_from(CASES), label="case")
    name = case[4]
    kind = _kind(name)
    junk = data.draw(_enum_junk(ENUMS[name][0]) if kind == "enum" else JUNK[kind], label="junk")
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{venue.ws_url}/ws-fapi/v1") as ws:
        await _check(s, ws, venue, case, junk)


@pytest.mark.parametrize("ids, name", [("[\"abc\"]", "orderIdList"), ("[1.5]", "orderIdList"),
                                       ("[true]", "orderIdList"), ("[1e400]", "orderIdList"),
                                       ("[-1]", "orderIdList")])
async def test_junk_in_a_batch_cancel_list_is_refused_and_cancels_nothing(venue, ids, name):
    before = _state(venue)
    async with aiohttp.ClientSession() as s:
        status, body = await _rest(s, venue, "DELETE", "/fapi/v1/batchOrders",
                                   {"symbol": "BTCUSDT", "orderIdList": ids})
    assert status == 400 and body["code"] in (-1100, -1102, -1130), body
    assert name in body["msg"] and "Error" not in body["msg"]
    assert _state(venue) == before


@pytest.mark.parametrize("value, code", [("0.0100", None), ("0.0101", -1111), ("1" * 20, -4005),
                                         ("0.01" + "0" * 18, None)])
async def test_a_well_formed_quantity_is_read_for_precision_and_bounds_not_characters(venue, value, code):
    """The grammar is only the first gate: within it, extra decimals are -1111 and a huge value -4005."""
    async with aiohttp.ClientSession() as s:
        status, body = await _rest(s, venue, "POST", "/fapi/v1/order", dict(_limit(venue), quantity=value))
    if code is None:
        assert status == 200, body
    else:
        assert status == 400 and body["code"] == code, body
