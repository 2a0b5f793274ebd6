"""New orders over Binance's WebSocket API (venues/binance/ws_api.py) against the bundled simulator's
/ws-fapi/v1, over real sockets on 127.0.0.1: accepted with the same user-stream events as REST, refused with
the exceptions REST raises, a dropped connection or a silent one leaves the outcome unknown and execution's
query resolves it (one order at the venue), REST carries the orders while the WebSocket API is down, and
frames that answer nothing do not stop the reader."""

from __future__ import annotations

import asyncio
import socket

import pytest

from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.messages import AmendRequest
from celeris.domain.orders import OrderStatus
from celeris.domain.values import MONEY_SCALE
from celeris.exchange_sim.engine import VenueError
from celeris.venues.binance import errors
from celeris.venues.binance.ws_api import WsApiClient
from tests.execution.conftest import Harness, live_venue, request, wait_for  # noqa: F401
from tests.sim.conftest import API_KEY


def sim_orders(h, client_id):
    account = h.sim.engine.accounts[API_KEY]
    return [o for o in account.orders.values() if o.client_order_id == client_id]


def amend_request(order, ins, price_ticks, qty):
    return AmendRequest(f"amend-{order.client_order_id}", order.symbol, order.client_order_id, ins.qty(qty), price_ticks)


def ws_api_connections(venue):
    """The simulator's WebSocket API connections (listed with the stream ones, with no streams)."""
    return [c for c in venue.connections if not c.streams]


def client_factory(url, **kw):
    kw.setdefault("backoff_initial_s", 0.05)
    kw.setdefault("backoff_max_s", 0.05)
    return lambda rest: WsApiClient(url, rest, **kw)


@pytest.fixture
async def ws_harness(live_venue):  # noqa: F811
    h = await Harness(live_venue, ws_api=client_factory(f"{live_venue.ws_url}/ws-fapi/v1")).start()
    assert h.live.ws_api.connected
    yield h
    await h.stop()


async def test_an_order_placed_over_the_ws_api_is_accepted_and_its_events_arrive_as_over_rest(ws_harness):
    h = ws_harness
    ins = h.ins()
    requests_before = h.sim.stats.get("ws_api_requests", 0)
    resting = await h.engine.submit(request(price=ins.format_price(h.best(True) - 100), instrument=ins))
    assert resting.accepted and resting.order.status is OrderStatus.SUBMITTED
    assert [o.status for o in sim_orders(h, resting.order.client_order_id)] == ["NEW"]
    # The user stream's NEW event lands on the order as for a REST order (its venue id is the stream's).
    assert await wait_for(lambda: resting.order.venue_order_id != 0)
    market = await h.engine.submit(request(order_type=OrderType.MARKET, qty="0.050", instrument=ins))
    assert market.accepted
    assert await wait_for(lambda: market.order.status is OrderStatus.FILLED)
    assert h.engine.positions["BTCUSDT"].qty_steps == 50
    assert sum(m.qty_steps for t, m in h.published if t == "fills.BTCUSDT") == 50
    # Both went over the WebSocket API, none over REST.
    assert (h.live.orders_over_ws_api, h.live.orders_over_rest) == (2, 0)
    assert h.sim.stats["ws_api_requests"] - requests_before == 2
    # An amendment and a cancel take the same socket (order.modify, order.cancel), with REST's answers.
    amended = await h.engine.amend(amend_request(resting.order, ins, h.best(True) - 120, "0.020"))
    assert amended.accepted, amended.rejection
    (at_venue,) = sim_orders(h, resting.order.client_order_id)
    assert (at_venue.price_ticks, at_venue.qty_steps) == (h.best(True) - 120, 20)
    assert (resting.order.price_ticks, resting.order.qty_steps) == (h.best(True) - 120, 20)
    cancel = await h.engine.cancel("c1", "BTCUSDT", resting.order.client_order_id)
    assert cancel.accepted and resting.order.status is OrderStatus.CANCELED
    assert [o.status for o in sim_orders(h, resting.order.client_order_id)] == ["CANCELED"]
    assert (h.live.amends_over_ws_api, h.live.cancels_over_ws_api) == (1, 1)
    assert h.sim.stats["ws_api_requests"] - requests_before == 4


async def _refusal(call):
    with pytest.raises(errors.VenueError) as caught:
        await call()
    return type(caught.value), caught.value.code


async def test_error_answers_become_the_exceptions_rest_raises(ws_harness):
    h = ws_harness
    ins = h.ins()
    bid, ask = h.best(True), h.best(False)

    def limit(client_id, price_ticks, tif="GTC", qty="0.010"):
        return {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": tif, "quantity": qty,
                "price": ins.format_price(price_ticks), "newClientOrderId": client_id, "newOrderRespType": "ACK"}

    def over_ws(params):
        return lambda: h.live.ws_api.request("order.place", params, weight=0)

    def over_rest(params):
        return lambda: h.rest.request("POST", "/fapi/v1/order", params, signed=True, weight=0)

    placed = await h.live.ws_api.request("order.place", limit("dup-1", bid - 100), weight=0)
    assert placed["clientOrderId"] == "dup-1" and placed["status"] == "NEW"
    cases = {
        "duplicate client id": limit("dup-1", bid - 100),
        "post-only that would cross": limit("gtx-1", ask, tif="GTX"),
        "insufficient margin": limit("margin-1", bid - 100, qty="0.100"),  # with 1 USDT left (below)
        "price off the tick grid": {**limit("tick-1", bid - 100), "price": ins.format_price(bid - 100) + "1"},
    }
    account = h.sim.engine.accounts[API_KEY]
    wallet = account.wallet
    refusals = {}
    for name, params in cases.items():
        account.wallet = 10**MONEY_SCALE if name == "insufficient margin" else wallet
        refusals[name] = await _refusal(over_ws(params))
        assert refusals[name] == await _refusal(over_rest(params)), name
        assert issubclass(refusals[name][0], errors.OrderRejected), name
    account.wallet = wallet
    assert [refusals[name][1] for name in cases][:3] == [-4116, -5022, -2019]
    # A cancel or an amendment of an order the venue does not have: UnknownOrder over both (execution then
    # queries the order, as after a REST answer).
    unknown = {"symbol": "BTCUSDT", "origClientOrderId": "never-placed"}
    modify = {**unknown, "side": "BUY", "quantity": "0.010", "price": ins.format_price(bid - 100)}
    assert await _refusal(lambda: h.live.ws_api.request("order.cancel", unknown)) == \
        await _refusal(lambda: h.rest.request("DELETE", "/fapi/v1/order", unknown, signed=True))
    assert await _refusal(lambda: h.live.ws_api.request("order.modify", modify)) == \
        await _refusal(lambda: h.rest.request("PUT", "/fapi/v1/order", modify, signed=True))
    assert (await _refusal(lambda: h.live.ws_api.request("order.cancel", unknown)))[0] is errors.UnknownOrder
    # A bad key is AuthenticationFailed over both (the WebSocket API answers it 400, REST 401).
    good_key = h.rest._api_key
    h.rest._api_key = "not-a-key"
    try:
        bad_key = limit("key-1", bid - 100)
        assert await _refusal(over_ws(bad_key)) == await _refusal(over_rest(bad_key)) == \
            (errors.AuthenticationFailed, -2015)
    finally:
        h.rest._api_key = good_key
    # -1021 re-syncs the clock and sends once more, as REST does: the order is placed.
    h.rest.server_clock.offset_ms -= 120_000
    again = await h.live.ws_api.request("order.place", limit("ts-1", bid - 100), weight=0)
    assert again["clientOrderId"] == "ts-1" and abs(h.rest.server_clock.offset_ms) < 60_000
    assert h.live.ws_api.connected  # refusals do not touch the connection


async def test_a_connection_dropped_with_the_order_in_flight_is_resolved_by_query_without_a_duplicate(live_venue):  # noqa: F811
    venue = live_venue
    # A long request timeout: only the drop itself can end the request quickly.
    h = await Harness(venue, ws_api=client_factory(f"{venue.ws_url}/ws-fapi/v1", timeout_s=60)).start()
    try:
        place = venue._place_order
        dropped = []

        async def place_then_drop(account, params, received_ns):
            result = await place(account, params, received_ns)  # the order is at the venue ...
            if not dropped:
                for conn in ws_api_connections(venue):  # ... and its answer never leaves
                    dropped.append(conn)
                    await conn.ws.close(message=b"dropped by the test")
            return result

        venue._place_order = place_then_drop
        ins = h.ins()
        outcome = await asyncio.wait_for(
            h.engine.submit(request(price=ins.format_price(h.best(True) - 100), instrument=ins)), 20)
        assert dropped, "the connection was not dropped"
        assert outcome.accepted and outcome.order.status is OrderStatus.SUBMITTED
        assert h.engine.stats.ambiguous_resolved == 1  # resolved by execution's query ...
        assert [o.status for o in sim_orders(h, outcome.order.client_order_id)] == ["NEW"]  # ... once at the venue
        assert (h.live.orders_over_ws_api, h.live.orders_over_rest) == (1, 0)
        # The connection comes back and carries the next order.
        assert await h.live.ws_api.wait_connected(10)
        nxt = await h.engine.submit(request(price=ins.format_price(h.best(True) - 101), instrument=ins))
        assert nxt.accepted and (h.live.orders_over_ws_api, h.live.orders_over_rest) == (2, 0)
        assert len(sim_orders(h, nxt.order.client_order_id)) == 1
    finally:
        await h.stop()


async def test_an_unanswered_request_times_out_as_outcome_unknown_and_the_order_is_placed_once(live_venue):  # noqa: F811
    venue = live_venue
    h = await Harness(venue, ws_api=client_factory(f"{venue.ws_url}/ws-fapi/v1", timeout_s=0.3)).start()
    release = asyncio.Event()
    try:
        place = venue._place_order
        swallowed = []

        async def swallow_first(account, params, received_ns):
            if not swallowed:  # the first request is never executed and never answered
                swallowed.append(params.get("newClientOrderId", ""))
                await release.wait()
                raise VenueError(-1000, "released at the end of the test")
            return await place(account, params, received_ns)

        venue._place_order = swallow_first
        ws_api = h.live.ws_api
        with pytest.raises(errors.UnknownExecutionStatus):
            await ws_api.request("order.place", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                 "quantity": "0.001"}, weight=0)
        assert ws_api.timeouts == 1
        assert await ws_api.wait_connected(10)  # the silent connection was closed and a new one opened
        # Through execution: the timeout is an unknown outcome, the query finds nothing, the retry places it once.
        swallowed.clear()
        ins = h.ins()
        outcome = await h.engine.submit(request(price=ins.format_price(h.best(True) - 100), instrument=ins))
        assert outcome.accepted and swallowed == [outcome.order.client_order_id]
        assert h.engine.stats.retries >= 1
        assert [o.status for o in sim_orders(h, outcome.order.client_order_id)] == ["NEW"]
    finally:
        release.set()
        await h.stop()


async def test_orders_go_over_rest_while_the_ws_api_is_down_and_over_it_once_it_is_back(live_venue):  # noqa: F811
    venue = live_venue
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"ws://127.0.0.1:{s.getsockname()[1]}/ws-fapi/v1"
    h = await Harness(venue, ws_api=client_factory(dead, connect_wait_s=0.2)).start()
    try:
        ws_api = h.live.ws_api
        assert not ws_api.connected
        ins = h.ins()
        ws_requests = venue.stats.get("ws_api_requests", 0)
        down = await h.engine.submit(request(price=ins.format_price(h.best(True) - 100), instrument=ins))
        assert down.accepted and (h.live.orders_over_ws_api, h.live.orders_over_rest) == (0, 1)
        assert len(sim_orders(h, down.order.client_order_id)) == 1
        assert venue.stats.get("ws_api_requests", 0) == ws_requests  # not over both
        ws_api.url = f"{venue.ws_url}/ws-fapi/v1"  # the venue's WebSocket API is reachable again
        assert await ws_api.wait_connected(10)
        up = await h.engine.submit(request(price=ins.format_price(h.best(True) - 101), instrument=ins))
        assert up.accepted and (h.live.orders_over_ws_api, h.live.orders_over_rest) == (1, 1)
        assert len(sim_orders(h, up.order.client_order_id)) == 1
    finally:
        await h.stop()


async def test_frames_that_answer_nothing_do_not_break_the_reader(ws_harness):
    h = ws_harness
    venue = h.sim
    answer = venue._ws_api_answer

    async def garbage_first(session, data):
        for conn in ws_api_connections(venue):
            for frame in ("not json", "[1, 2]", '{"no": "id"}', '{"id": [1]}', '{"id": 987654321, "status": 200}',
                          '{"id": null, "status": 400, "error": {"code": -1135, "msg": "x"}}',
                          '{"id": true, "status": 200}', '{"id": 1.0, "status": 200}'):
                await conn.ws.send_str(frame)
            await conn.ws.send_bytes(b'{"id": 1}')
        return await answer(session, data)

    venue._ws_api_answer = garbage_first
    ins = h.ins()
    outcome = await h.engine.submit(request(price=ins.format_price(h.best(True) - 100), instrument=ins,
                                            tif=TimeInForce.GTC))
    assert outcome.accepted and h.live.orders_over_ws_api == 1
    assert h.live.ws_api.unmatched_frames == 9 and h.live.ws_api.connected
    assert len(sim_orders(h, outcome.order.client_order_id)) == 1


async def test_a_rate_limit_answer_is_rest_s_rate_limited_and_blocks_the_shared_budget(ws_harness):
    h = ws_harness
    ins = h.ins()
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
              "price": ins.format_price(h.best(True) - 100), "newClientOrderId": "limited-1"}
    h.sim.faults.rest_429 = 1  # the IP's request weight: REST and the WebSocket API count against one budget
    with pytest.raises(errors.RateLimited) as over_ws:
        await h.live.ws_api.request("order.place", params, weight=0)
    assert (over_ws.value.code, over_ws.value.status) == (-1003, 429)
    assert h.rest.budget.blocked_until > 0  # as REST does: nothing goes out until the block ends
    assert sim_orders(h, "limited-1") == []
