"""The simulator's WebSocket API (/ws-fapi/v1) over a real socket on 127.0.0.1, driven with aiohttp's client:
the order methods act on the same orders as REST (placed over one, seen and cancelled over the other, the
same ORDER_TRADE_UPDATE events, the same refusals and the same order-count and weight limits), signing
and session failures get Binance's codes, and no frame, however malformed, stops the connection or the venue."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sim.conftest import API_KEY, API_SECRET, signed_query
from tests.support.waits import wait_for

HEADERS = {"X-MBX-APIKEY": API_KEY}


def _render(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def signed(params: dict, *, secret: str = API_SECRET, key: str | None = API_KEY, ts_ms: int | None = None,
           timestamp: bool = True) -> dict:
    """Params as Binance's WebSocket API wants them signed: apiKey and timestamp among them, every param but
    the signature sorted by name and joined name=value&..., HMAC-SHA256 with the secret."""
    p = dict(params)
    if key is not None:
        p.setdefault("apiKey", key)
    if timestamp:
        p.setdefault("timestamp", ts_ms if ts_ms is not None else int(time.time() * 1000))
    payload = "&".join(f"{k}={_render(v)}" for k, v in sorted(p.items()))
    p["signature"] = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return p


async def call(ws, method: str, params: dict | None = None, req_id: Any = "r1") -> dict:
    frame: dict[str, Any] = {"id": req_id, "method": method}
    if params is not None:
        frame["params"] = params
    await ws.send_str(json.dumps(frame))
    return json.loads(await ws.receive_str(timeout=5))


async def rest(s, venue, method: str, path: str, params: dict) -> tuple[int, Any]:
    async with s.request(method, f"{venue.base_url}{path}?{signed_query(params)}", headers=HEADERS) as resp:
        return resp.status, json.loads(await resp.text())


async def _bid_price(venue, symbol: str = "BTCUSDT", ticks_below: int = 200) -> str:
    book = venue.engine.books[symbol]
    assert await wait_for(lambda: book.best(True) is not None)
    return book.instrument.format_price(book.best(True) - ticks_below)


def _limit(price: str, qty: str = "0.010", **extra: Any) -> dict:
    return {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": qty,
            "price": price, **extra}


async def test_an_order_placed_over_the_ws_api_is_seen_and_cancelled_over_rest_and_vice_versa(live_venue):
    venue = live_venue
    price = await _bid_price(venue)
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{venue.ws_url}/ws-fapi/v1") as ws:
        placed = await call(ws, "order.place", signed(_limit(price, newClientOrderId="wsapi-1")), req_id=7)
        assert placed["id"] == 7 and placed["status"] == 200, placed
        order = placed["result"]
        assert (order["status"], order["clientOrderId"], order["price"], order["origQty"]) == \
            ("NEW", "wsapi-1", price, "0.010")
        limits = {(r["rateLimitType"], r["interval"], r["intervalNum"]): r for r in placed["rateLimits"]}
        assert limits[("ORDERS", "SECOND", 10)]["count"] >= 1 and limits[("REQUEST_WEIGHT", "MINUTE", 1)]
        # The same order over REST, with the same answer shape as a REST placement.
        status, seen = await rest(s, venue, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]})
        assert status == 200 and seen["status"] == "NEW" and seen["clientOrderId"] == "wsapi-1"
        status, rest_placed = await rest(s, venue, "POST", "/fapi/v1/order", _limit(price))
        assert status == 200 and set(rest_placed) == set(order)
        status, cancelled = await rest(s, venue, "DELETE", "/fapi/v1/order",
                                       {"symbol": "BTCUSDT", "orderId": order["orderId"]})
        assert status == 200 and cancelled["status"] == "CANCELED"
        queried = await call(ws, "order.status", signed({"symbol": "BTCUSDT", "origClientOrderId": "wsapi-1"}))
        assert queried["status"] == 200 and queried["result"]["status"] == "CANCELED", queried
        assert queried["result"]["time"] == seen["time"]
        # Vice versa: the REST order modified and cancelled over the WebSocket API.
        lower = venue.engine.books["BTCUSDT"].instrument.format_price(
            venue.engine.books["BTCUSDT"].instrument.price(price) - 5)
        modified = await call(ws, "order.modify", signed({"symbol": "BTCUSDT", "orderId": rest_placed["orderId"],
                                                          "side": "BUY", "quantity": "0.020", "price": lower}))
        assert modified["status"] == 200 and (modified["result"]["origQty"], modified["result"]["price"]) == \
            ("0.020", lower), modified
        gone = await call(ws, "order.cancel", signed({"symbol": "BTCUSDT", "orderId": rest_placed["orderId"]}))
        assert gone["status"] == 200 and gone["result"]["status"] == "CANCELED"
        status, seen = await rest(s, venue, "GET", "/fapi/v1/order",
                                  {"symbol": "BTCUSDT", "orderId": rest_placed["orderId"]})
        assert (status, seen["status"], seen["origQty"]) == (200, "CANCELED", "0.020")
        again = await call(ws, "order.cancel", signed({"symbol": "BTCUSDT", "orderId": rest_placed["orderId"]}))
        assert (again["status"], again["error"]["code"]) == (400, -2011)


async def test_ws_api_orders_push_the_same_user_stream_events_as_rest_orders(live_venue):
    venue = live_venue
    price = await _bid_price(venue)
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{venue.base_url}/fapi/v1/listenKey", headers=HEADERS) as resp:
            key = (await resp.json())["listenKey"]
        async with s.ws_connect(f"{venue.ws_url}/ws/{key}") as user, \
                s.ws_connect(f"{venue.ws_url}/ws-fapi/v1") as ws:
            assert await wait_for(lambda: any(key in c.streams for c in venue.connections))
            placed = (await call(ws, "order.place", signed(_limit(price))))["result"]
            await call(ws, "order.cancel", signed({"symbol": "BTCUSDT", "orderId": placed["orderId"]}))
            statuses = []
            while len(statuses) < 2:
                msg = json.loads(await user.receive_str(timeout=5))
                event = msg.get("data", msg)
                if event.get("e") == "ORDER_TRADE_UPDATE" and event["o"]["i"] == placed["orderId"]:
                    statuses.append((event["o"]["x"], event["o"]["X"]))
            assert statuses == [("NEW", "NEW"), ("CANCELED", "CANCELED")]


async def test_refusals_are_the_engines_own_whichever_way_the_order_came(live_venue):
    venue = live_venue
    price = await _bid_price(venue)
    ins = venue.engine.books["BTCUSDT"].instrument
    cases = [_limit(price, qty="0.0101"), _limit(price, qty="0"), _limit(price + "1"),
             {**_limit(price), "symbol": "NOPEUSDT"}, {**_limit(price), "side": "UP"},
             {**_limit(price), "timeInForce": "NEVER"}, {k: v for k, v in _limit(price).items() if k != "quantity"},
             _limit(ins.format_price(ins.price(price) * 10))]
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{venue.ws_url}/ws-fapi/v1") as ws:
        for params in cases:
            rest_status, rest_body = await rest(s, venue, "POST", "/fapi/v1/order", params)
            answer = await call(ws, "order.place", signed(params))
            assert rest_status == answer["status"] == 400, (params, rest_body, answer)
            assert answer["error"] == rest_body, params


@pytest.mark.parametrize("case, code", [
    ("bad_signature", -1022), ("other_secret", -1022), ("stale", -1021), ("ahead", -1021),
    ("no_key", -2014), ("unknown_key", -2015), ("no_signature", -1102), ("no_timestamp", -1102),
    ("huge_window", -1131), ("tampered", -1022),
])
async def test_signing_failures_get_binances_codes_and_the_connection_keeps_serving(live_venue, case, code):
    venue = live_venue
    price = await _bid_price(venue)
    now = venue.now_ms()
    params = {
        "bad_signature": {**signed(_limit(price)), "signature": "0" * 64},
        "other_secret": signed(_limit(price), secret="not-the-secret"),
        "stale": signed(_limit(price), ts_ms=now - 10_000),
        "ahead": signed(_limit(price), ts_ms=now + 5_000),
        "no_key": signed(_limit(price), key=None),
        "unknown_key": signed(_limit(price), key="nobody"),
        "no_signature": {k: v for k, v in signed(_limit(price)).items() if k != "signature"},
        "no_timestamp": signed(_limit(price), timestamp=False),
        "huge_window": signed(_limit(price, recvWindow=70_000)),
        "tampered": {**signed(_limit(price)), "quantity": "0.020"},
    }[case]
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{venue.ws_url}/ws-fapi/v1") as ws:
        answer = await call(ws, "order.place", params)
        assert (answer["status"], answer["error"]["code"]) == (400, code), answer
        assert not any(o.is_open for o in venue.engine.accounts[API_KEY].orders.values())
        ok = await call(ws, "order.place", signed(_limit(price)))
        assert ok["status"] == 200, ok


async def test_a_logged_on_session_may_leave_out_key_and_signature_until_it_logs_out(live_venue):
    venue = live_venue
    price = await _bid_price(venue)
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{venue.ws_url}/ws-fapi/v1") as ws:
        status = await call(ws, "session.status")
        assert status["status"] == 200 and status["result"]["apiKey"] is None
        unsigned = {**_limit(price), "timestamp": int(time.time() * 1000)}
        assert (await call(ws, "order.place", unsigned))["error"]["code"] == -2014
        bad = await call(ws, "session.logon", signed({}, secret="wrong"))
        assert bad["error"]["code"] == -1022
        logon = await call(ws, "session.logon", signed({}))
        assert logon["status"] == 200 and logon["result"]["apiKey"] == API_KEY
        assert logon["result"]["authorizedSince"] >= logon["result"]["connectedSince"]
        placed = await call(ws, "order.place", unsigned)
        assert placed["status"] == 200, placed
        stale = await call(ws, "order.status", {"symbol": "BTCUSDT", "orderId": placed["result"]["orderId"],
                                                "timestamp": int(time.time() * 1000) - 60_000})
        assert stale["error"]["code"] == -1021  # a logon does not lift the timestamp rule
        other = await call(ws, "order.status", {"symbol": "BTCUSDT", "orderId": placed["result"]["orderId"],
                                                "apiKey": "someone-else", "timestamp": int(time.time() * 1000)})
        assert other["error"]["code"] == -2015
        assert (await call(ws, "session.status"))["result"]["apiKey"] == API_KEY
        out = await call(ws, "session.logout")
        assert out["status"] == 200 and out["result"]["apiKey"] is None
        after = await call(ws, "order.cancel", {"symbol": "BTCUSDT", "orderId": placed["result"]["orderId"],
                                                "timestamp": int(time.time() * 1000)})
        assert after["error"]["code"] == -2014
    # Another connection was never logged on.
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{venue.ws_url}/ws-fapi/v1") as ws:
        assert (await call(ws, "session.status"))["result"]["apiKey"] is None


async def test_ws_api_and_rest_orders_share_the_order_count_limit_and_the_weight(live_venue):
    venue = live_venue
    price = await _bid_price(venue)
    venue.orders_per_10s = 3
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{venue.ws_url}/ws-fapi/v1") as ws:
        assert (await rest(s, venue, "POST", "/fapi/v1/order", _limit(price)))[0] == 200
        for _ in range(2):
            assert (await call(ws, "order.place", signed(_limit(price))))["status"] == 200
        refused = await call(ws, "order.place", signed(_limit(price)))
        assert (refused["status"], refused["error"]["code"]) == (429, -1015), refused
        status, body = await rest(s, venue, "POST", "/fapi/v1/order", _limit(price))
        assert (status, body["code"]) == (429, -1015)
        # Weight: the WebSocket API spends from the same minute as REST.
        venue.weights.limit = venue.weights.used + 2
        answers = [await call(ws, "order.status", signed({"symbol": "BTCUSDT", "orderId": 1})) for _ in range(3)]
        assert [a["status"] for a in answers] == [400, 400, 429], answers
        assert answers[-1]["error"]["code"] == -1003
        async with s.get(f"{venue.base_url}/fapi/v1/time") as resp:
            assert resp.status == 429


MALFORMED = [
    "not json", "", "[1, 2]", "null", "42", '"order.place"', "[" * 5000, '{"method": "session.status"}',
    '{"id": 1}', '{"id": 1, "method": 5}', '{"id": 1, "method": ""}', '{"id": 1, "method": "order.explode"}',
    '{"id": [1], "method": "session.status"}', '{"id": true, "method": "session.status"}',
    '{"id": 1, "method": "session.status", "params": []}', '{"id": 1, "method": "session.status", "params": "x"}',
    '{"id": 1, "method": "order.place", "params": {"symbol": null}}',
    '{"id": 1, "method": "order.place", "params": {"symbol": ["BTCUSDT"]}}',
    '{"id": 1, "method": "order.place", "params": {"price": 1.5}}',
    '{"id": 1, "method": "order.place", "params": {"timestamp": 1e400}}',
    '{"id": 1, "method": "order.place", "params": {"timestamp": ' + "9" * 5000 + "}}",
    '{"id": 1, "method": "order.status", "params": {"symbol": "BTCUSDT", "orderId": "x", "timestamp": 1}}',
    json.dumps({"id": 1, "method": "order.place", "params": {"symbol": "B" * 100_000}}),
]


async def test_malformed_frames_get_an_error_answer_and_the_connection_and_venue_keep_serving(live_venue):
    venue = live_venue
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{venue.ws_url}/ws-fapi/v1") as ws:
        for frame in MALFORMED:
            await ws.send_str(frame)
            answer = json.loads(await ws.receive_str(timeout=5))
            assert 400 <= answer["status"] < 500 and answer["error"]["code"] < 0, (frame[:80], answer)
            assert "id" in answer
        await ws.send_bytes(b'{"id": 1, "method": "session.status"}')
        assert json.loads(await ws.receive_str(timeout=5))["error"]["code"] == -1135
        assert (await call(ws, "session.status", req_id=99))["id"] == 99
        async with s.get(f"{venue.base_url}/fapi/v1/time") as resp:
            assert resp.status == 200


async def test_the_answer_echoes_a_valid_id_even_when_the_request_is_refused(live_venue):
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{live_venue.ws_url}/ws-fapi/v1") as ws:
        for req_id in ("abc", 0, None, "e2a85d9f-07a5-4f94-8d5f-789dc3deb097"):
            assert (await call(ws, "nope.nope", req_id=req_id)) == \
                {"id": req_id, "status": 400, "error": {"code": -1020, "msg": "This operation is not supported: "
                                                                              "unknown method 'nope.nope'."}}


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children,
                                                                                         max_size=4), max_leaves=12)
FRAMES = st.one_of(
    st.text(max_size=200),
    JSON.map(json.dumps),
    st.fixed_dictionaries({"id": JSON, "method": st.sampled_from(["order.place", "order.cancel", "order.modify",
                                                                  "order.status", "session.logon", "x"]) | JSON},
                          optional={"params": st.dictionaries(st.sampled_from(
                              ["symbol", "side", "type", "quantity", "price", "orderId", "timestamp", "apiKey",
                               "signature", "recvWindow", "timeInForce", "origClientOrderId"]) | st.text(max_size=8),
                              JSON, max_size=8) | JSON}).map(json.dumps),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(FRAMES, min_size=1, max_size=5))
async def test_generated_frames_are_all_answered_and_nothing_is_placed(live_venue, frames):
    venue = live_venue
    before = len(venue.engine.accounts[API_KEY].orders)
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{venue.ws_url}/ws-fapi/v1") as ws:
        for frame in frames:
            await ws.send_str(frame)
            answer = json.loads(await ws.receive_str(timeout=5))
            assert set(answer) <= {"id", "status", "result", "error", "rateLimits"}, answer
            assert answer["status"] == 200 or (answer["status"] in (400, 429) and answer["error"]["code"] < 0), answer
        assert (await call(ws, "session.status"))["status"] == 200
    assert len(venue.engine.accounts[API_KEY].orders) == before  # nothing unsigned got through


async def test_return_rate_limits_false_leaves_them_out_and_is_signed_like_any_param(live_venue):
    price = await _bid_price(live_venue)
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{live_venue.ws_url}/ws-fapi/v1") as ws:
        quiet = await call(ws, "order.place", signed(_limit(price, returnRateLimits=False)))
        assert quiet["status"] == 200 and "rateLimits" not in quiet, quiet
        assert "rateLimits" in await call(ws, "order.place", signed(_limit(price, returnRateLimits=True)))


async def test_a_frame_beyond_the_wire_limit_closes_only_its_connection(live_venue):
    from celeris.exchange_sim.ws_api import MAX_WIRE_BYTES

    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{live_venue.ws_url}/ws-fapi/v1") as other, \
                s.ws_connect(f"{live_venue.ws_url}/ws-fapi/v1", max_msg_size=0) as ws:
            try:
                await ws.send_str(" " * (MAX_WIRE_BYTES + 1))
                msg = await ws.receive(timeout=5)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
            except ConnectionError:  # the venue closed it while the frame was still being written
                pass
            assert await wait_for(lambda: len(live_venue.connections) == 1)
            assert (await call(other, "session.status"))["status"] == 200
        async with s.ws_connect(f"{live_venue.ws_url}/ws-fapi/v1") as ws:
            assert (await call(ws, "session.status"))["status"] == 200


async def test_user_data_stream_methods_share_the_rest_listen_key(live_venue):
    venue = live_venue
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{venue.ws_url}/ws-fapi/v1") as ws:
        assert (await call(ws, "userDataStream.start"))["error"]["code"] == -2014
        assert (await call(ws, "userDataStream.start", {"apiKey": "nobody"}))["error"]["code"] == -2015
        started = await call(ws, "userDataStream.start", {"apiKey": API_KEY})
        assert started["status"] == 200, started
        key = started["result"]["listenKey"]
        async with s.post(f"{venue.base_url}/fapi/v1/listenKey", headers=HEADERS) as resp:
            assert (await resp.json())["listenKey"] == key  # one active key per account, whichever API asked
        assert (await call(ws, "userDataStream.ping", {"apiKey": API_KEY}))["result"] == {"listenKey": key}
        assert (await call(ws, "userDataStream.stop", {"apiKey": API_KEY}))["result"] == {}
        assert key not in venue.listen_keys
        assert (await call(ws, "userDataStream.ping", {"apiKey": API_KEY}))["error"]["code"] == -1125
        await call(ws, "session.logon", signed({}))
        assert (await call(ws, "userDataStream.start"))["status"] == 200  # the logon's key
