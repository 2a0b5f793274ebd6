"""The simulator's REST and WebSocket protocol over real sockets on 127.0.0.1."""

import asyncio
import json
import time

import aiohttp

from celeris.domain.book import BookState, DepthEvent, OrderBook, SyncedBook
from tests.sim.conftest import API_KEY, API_SECRET, signed_query

HEADERS = {"X-MBX-APIKEY": API_KEY}


async def rest(session, venue, method, path, query="", body=None, headers=HEADERS):
    url = f"{venue.base_url}{path}" + (f"?{query}" if query else "")
    kwargs = {"headers": headers}
    if body is not None:
        kwargs["data"] = body
        kwargs["headers"] = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    async with session.request(method, url, **kwargs) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_signature_rules(live_venue):
    async with aiohttp.ClientSession() as s:
        status, body, headers = await rest(s, live_venue, "GET", "/fapi/v2/balance", signed_query({}))
        assert status == 200 and body[0]["asset"] == "USDT" and "X-MBX-USED-WEIGHT-1M" in headers
        status, body, _ = await rest(s, live_venue, "GET", "/fapi/v2/balance", signed_query({}, secret="nope"))
        assert (status, body["code"]) == (400, -1022)
        status, body, _ = await rest(s, live_venue, "GET", "/fapi/v2/balance",
                                     signed_query({}, ts_ms=int(time.time() * 1000) - 10_000))
        assert (status, body["code"]) == (400, -1021)
        status, body, _ = await rest(s, live_venue, "GET", "/fapi/v2/balance",
                                     signed_query({"recvWindow": 20_000}, ts_ms=int(time.time() * 1000) - 10_000))
        assert status == 200
        status, body, _ = await rest(s, live_venue, "GET", "/fapi/v2/balance",
                                     signed_query({}, ts_ms=int(time.time() * 1000) + 5_000))
        assert body["code"] == -1021
        status, body, _ = await rest(s, live_venue, "GET", "/fapi/v2/balance", signed_query({}), headers={})
        assert (status, body["code"]) == (401, -2014)
        status, body, _ = await rest(s, live_venue, "GET", "/fapi/v2/balance", signed_query({}),
                                     headers={"X-MBX-APIKEY": "someoneelse"})
        assert (status, body["code"]) == (401, -2015)


async def test_signature_covers_raw_query_plus_raw_body_and_query_wins(live_venue):
    import hashlib
    import hmac

    async with aiohttp.ClientSession() as s:
        book = live_venue.engine.books["BTCUSDT"]
        price = book.instrument.format_price(book.best(True) - 50)
        query = f"symbol=BTCUSDT&side=BUY&timestamp={int(time.time() * 1000)}"
        body = f"type=LIMIT&timeInForce=GTC&quantity=0.010&price={price}&side=SELL"
        signature = hmac.new(API_SECRET.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
        status, order, _ = await rest(s, live_venue, "POST", "/fapi/v1/order", query,
                                      body + f"&signature={signature}")
        assert status == 200, order
        assert order["side"] == "BUY"  # the query's side won over the body's
        # DELETE with parameters in the form body (python-binance does this)
        q2 = f"timestamp={int(time.time() * 1000)}"
        b2 = f"symbol=BTCUSDT&orderId={order['orderId']}"
        sig2 = hmac.new(API_SECRET.encode(), (q2 + b2).encode(), hashlib.sha256).hexdigest()
        status, cancelled, _ = await rest(s, live_venue, "DELETE", "/fapi/v1/order", q2, b2 + f"&signature={sig2}")
        assert status == 200 and cancelled["status"] == "CANCELED"


async def test_rate_limits_429_then_418_with_retry_after(live_venue):
    live_venue.weights.limit = 30
    async with aiohttp.ClientSession() as s:
        statuses = []
        for _ in range(45):
            status, body, headers = await rest(s, live_venue, "GET", "/fapi/v1/depth", "symbol=BTCUSDT&limit=5")
            statuses.append(status)
            if status in (429, 418):
                assert "Retry-After" in headers and body["code"] == -1003
        assert 429 in statuses and 418 in statuses
        assert statuses.index(429) < statuses.index(418)


async def test_fault_injection_over_the_admin_endpoint(live_venue):
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{live_venue.base_url}/_sim/faults", json={"rest_5xx": 1}) as r:
            assert r.status == 200
        status, body, _ = await rest(s, live_venue, "GET", "/fapi/v1/time")
        assert status == 503 and body["msg"] == "Service Unavailable."
        status, body, _ = await rest(s, live_venue, "GET", "/fapi/v1/time")
        assert status == 200
        # "unknown status": the order IS placed, the answer is a 503
        await s.post(f"{live_venue.base_url}/_sim/faults", json={"rest_unknown_503": 1})
        book = live_venue.engine.books["BTCUSDT"]
        price = book.instrument.format_price(book.best(True) - 80)
        status, body, _ = await rest(s, live_venue, "POST", "/fapi/v1/order", signed_query(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
             "price": price, "newClientOrderId": "unknown-1"}))
        assert status == 503 and "Unknown error" in body["msg"]
        status, body, _ = await rest(s, live_venue, "GET", "/fapi/v1/order", signed_query(
            {"symbol": "BTCUSDT", "origClientOrderId": "unknown-1"}))
        assert status == 200 and body["status"] == "NEW"
        await s.post(f"{live_venue.base_url}/_sim/faults", json={"clock_skew_ms": 4000})
        status, body, _ = await rest(s, live_venue, "GET", "/fapi/v1/time")
        assert body["serverTime"] - time.time() * 1000 > 3000
        async with s.post(f"{live_venue.base_url}/_sim/faults", json={"bogus": 1}) as r:
            assert r.status == 400


async def test_listen_key_lifecycle(live_venue):
    async with aiohttp.ClientSession() as s:
        status, body, _ = await rest(s, live_venue, "POST", "/fapi/v1/listenKey")
        key = body["listenKey"]
        assert status == 200 and len(key) == 64
        _, again, _ = await rest(s, live_venue, "POST", "/fapi/v1/listenKey")
        assert again["listenKey"] == key  # an active key is returned again
        status, _, _ = await rest(s, live_venue, "PUT", "/fapi/v1/listenKey")
        assert status == 200
        status, _, _ = await rest(s, live_venue, "DELETE", "/fapi/v1/listenKey")
        status, body, _ = await rest(s, live_venue, "PUT", "/fapi/v1/listenKey")
        assert (status, body["code"]) == (400, -1125)


async def _collect(ws, predicate, timeout=5.0):
    out = []
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate(out):
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            break
        try:
            msg = await ws.receive(timeout=remaining)
        except asyncio.TimeoutError:
            break
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        out.append(json.loads(msg.data))
    return out


async def test_depth_stream_chain_and_snapshot_build_the_venue_book(live_venue):
    """The official futures procedure, against our venue: buffer, snapshot, straddle, pu chain."""
    ins = live_venue.engine.books["BTCUSDT"].instrument
    synced = SyncedBook(OrderBook("BTCUSDT"))
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{live_venue.ws_url}/stream?streams=btcusdt@depth@100ms") as ws:
            first = await _collect(ws, lambda out: len(out) >= 3)
            _, snap, _ = await rest(s, live_venue, "GET", "/fapi/v1/depth", "symbol=BTCUSDT&limit=1000")
            events = first + await _collect(ws, lambda out: len(out) >= 40)
            verdicts = []
            for frame in events:
                assert frame["stream"] == "btcusdt@depth@100ms"
                d = frame["data"]
                verdicts.append(synced.on_event(DepthEvent(
                    d["U"], d["u"], d["pu"], [(ins.price(p), ins.qty(q)) for p, q in d["b"]],
                    [(ins.price(p), ins.qty(q)) for p, q in d["a"]])))
                if len(verdicts) == len(first):
                    synced.on_snapshot(snap["lastUpdateId"], [(ins.price(p), ins.qty(q)) for p, q in snap["bids"]],
                                       [(ins.price(p), ins.qty(q)) for p, q in snap["asks"]])
            assert synced.state is BookState.LIVE and synced.stats.gaps == 0 and synced.stats.applied > 30
            # Our book equals the venue's own book at the same update id.
            _, now_snap, _ = await rest(s, live_venue, "GET", "/fapi/v1/depth", "symbol=BTCUSDT&limit=20")
            more = await _collect(ws, lambda out: bool(out) and out[-1]["data"]["u"] >= now_snap["lastUpdateId"])
            for frame in more:
                d = frame["data"]
                synced.on_event(DepthEvent(d["U"], d["u"], d["pu"], [(ins.price(p), ins.qty(q)) for p, q in d["b"]],
                                           [(ins.price(p), ins.qty(q)) for p, q in d["a"]]))
            if synced.book.last_update_id == now_snap["lastUpdateId"]:
                assert [[ins.format_price(p), ins.format_qty(q)] for p, q in synced.book.bids(20)] == now_snap["bids"]


async def test_skipped_depth_event_breaks_the_chain(live_venue):
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{live_venue.ws_url}/ws/btcusdt@depth@100ms") as ws:
            before = await _collect(ws, lambda out: len(out) >= 3)
            await s.post(f"{live_venue.base_url}/_sim/faults", json={"skip_depth_events": {"BTCUSDT": 1}})
            after = await _collect(ws, lambda out: len(out) >= 5)
    events = before + after
    breaks = sum(1 for a, b in zip(events, events[1:]) if b["pu"] != a["u"])
    assert breaks == 1


async def test_subscribe_list_unsubscribe_and_errors(live_venue):
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{live_venue.ws_url}/market/ws/0") as ws:  # ccxt's dummy path segment
            await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "ethusdt@bookTicker"], "id": 1})
            replies = await _collect(ws, lambda out: any(m.get("id") == 1 for m in out))
            assert {"result": None, "id": 1} in replies
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 2})
            listed = await _collect(ws, lambda out: any(m.get("id") == 2 for m in out))
            assert next(m for m in listed if m.get("id") == 2)["result"] == ["btcusdt@aggTrade", "ethusdt@bookTicker"]
            await ws.send_str("{not json")
            bad = await _collect(ws, lambda out: any(m.get("code") == 3 for m in out))
            assert any(m.get("code") == 3 for m in bad)
            await ws.send_json({"method": "SUBSCRIBE", "params": ["nosuch@depth"], "id": 4})
            err = await _collect(ws, lambda out: any(m.get("id") == 4 for m in out))
            assert next(m for m in err if m.get("id") == 4)["code"] == 2
            ticks = await _collect(ws, lambda out: any(m.get("e") == "bookTicker" for m in out))
            ticker = next(m for m in ticks if m.get("e") == "bookTicker")
            assert ticker["s"] == "ETHUSDT" and float(ticker["b"]) < float(ticker["a"])


async def test_mark_price_and_partial_depth_streams(live_venue):
    async with aiohttp.ClientSession() as s:
        url = f"{live_venue.ws_url}/stream?streams=btcusdt@markPrice@1s/btcusdt@depth5@100ms"
        async with s.ws_connect(url) as ws:
            got = await _collect(ws, lambda out: {f["stream"] for f in out} >= {"btcusdt@markPrice@1s",
                                                                                "btcusdt@depth5@100ms"})
    mark = next(f["data"] for f in got if f["stream"] == "btcusdt@markPrice@1s")
    assert mark["e"] == "markPriceUpdate" and float(mark["p"]) > 0
    partial = next(f["data"] for f in got if f["stream"] == "btcusdt@depth5@100ms")
    assert partial["e"] == "depthUpdate" and len(partial["b"]) == 5 and "pu" in partial


async def test_user_stream_order_of_events_on_a_fill(live_venue):
    async with aiohttp.ClientSession() as s:
        _, body, _ = await rest(s, live_venue, "POST", "/fapi/v1/listenKey")
        key = body["listenKey"]
        async with s.ws_connect(f"{live_venue.ws_url}/private/ws?listenKey={key}") as ws:
            await asyncio.sleep(0.05)
            status, order, _ = await rest(s, live_venue, "POST", "/fapi/v1/order", signed_query(
                {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002",
                 "newClientOrderId": "fill-order-1", "newOrderRespType": "RESULT"}))
            assert status == 200 and order["status"] == "FILLED"
            events = await _collect(ws, lambda out: sum(1 for e in out if e["e"] == "ACCOUNT_UPDATE") >= 1)
    kinds = [e["e"] for e in events]
    new = next(i for i, e in enumerate(events) if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "NEW")
    lite = kinds.index("TRADE_LITE")
    trade = next(i for i, e in enumerate(events) if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE")
    account = kinds.index("ACCOUNT_UPDATE")
    assert new < lite < trade < account
    assert events[trade]["o"]["c"] == "fill-order-1" and events[trade]["o"]["X"] == "FILLED"
    assert events[account]["a"]["P"][0]["pa"] == "0.002"


async def test_dropped_connections_and_listen_key_expiry(live_venue):
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{live_venue.ws_url}/ws/btcusdt@aggTrade") as ws:
            async with s.post(f"{live_venue.base_url}/_sim/drop", json={"which": "market"}) as r:
                assert (await r.json())["dropped"] == 1
            msg = await ws.receive(timeout=5)
            while msg.type == aiohttp.WSMsgType.TEXT:
                msg = await ws.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        _, body, _ = await rest(s, live_venue, "POST", "/fapi/v1/listenKey")
        key = body["listenKey"]
        async with s.ws_connect(f"{live_venue.ws_url}/ws/{key}") as ws:
            live_venue.listen_keys[key] = (API_KEY, 0)  # expire it now
            events = await _collect(ws, lambda out: any(e.get("e") == "listenKeyExpired" for e in out))
            assert any(e.get("e") == "listenKeyExpired" and e["listenKey"] == key for e in events)


async def test_recent_trades_and_stalls(live_venue):
    async with aiohttp.ClientSession() as s:
        await asyncio.sleep(0.3)  # let background flow trade
        status, trades, _ = await rest(s, live_venue, "GET", "/fapi/v1/trades", "symbol=BTCUSDT&limit=5")
        assert status == 200 and 0 < len(trades) <= 5
        assert [t["id"] for t in trades] == sorted(t["id"] for t in trades)
        _, aggs, _ = await rest(s, live_venue, "GET", "/fapi/v1/aggTrades", "symbol=BTCUSDT&limit=5")
        assert aggs[-1]["a"] >= trades[-1]["id"]
        async with s.ws_connect(f"{live_venue.ws_url}/ws/btcusdt@depth@0ms") as ws:
            assert await _collect(ws, lambda out: len(out) >= 2, timeout=3)
            await s.post(f"{live_venue.base_url}/_sim/faults", json={"stall_ms": 600})
            await asyncio.sleep(0.05)
            stalled = await _collect(ws, lambda out: len(out) >= 1, timeout=0.4)
            resumed = await _collect(ws, lambda out: len(out) >= 1, timeout=3)
        assert stalled == [] and resumed


async def test_connection_age_cap_closes_the_socket():
    from celeris.exchange_sim.server import SimVenue, start
    from celeris.runtime.clock import SystemClock

    v = SimVenue(symbols=["BTCUSDT"], api_key=API_KEY, api_secret=API_SECRET, clock=SystemClock(), tick_ms=20,
                 ws_max_age_s=0.3)  # the venue's 24 h cap, compressed
    runner, port = await start(v, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"ws://127.0.0.1:{port}/ws/btcusdt@bookTicker") as ws:
                started = asyncio.get_running_loop().time()
                while True:
                    msg = await ws.receive(timeout=5)
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                assert 0.2 < asyncio.get_running_loop().time() - started < 3
    finally:
        await runner.cleanup()


async def test_malformed_admin_and_rest_input_is_a_400_with_a_reason_never_a_500(live_venue):  # noqa: F811
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for path, body in (("/_sim/faults", "not json"), ("/_sim/faults", "[1, 2]"),
                           ("/_sim/faults", '{"rest_5xx": "many"}'), ("/_sim/drop", '{"which": "bogus"}'),
                           ("/_sim/position", '{"symbol": "NOPE"}'), ("/_sim/position", "{}"),
                           ("/_sim/faults", "[" * 5000), ("/_sim/faults", '{"stall_ms": 1e400}'),
                           ("/_sim/faults", '{"rest_5xx": -1}'), ("/_sim/faults", '{"stall_ms": -1}'),
                           ("/_sim/position", '{"symbol": "BTCUSDT", "qty": "0.001", "price": "-1"}')):
            async with session.post(live_venue.base_url + path, data=body) as resp:
                assert resp.status == 400, (path, body, resp.status)
                assert "error" in await resp.json()
        async with session.get(live_venue.base_url + "/fapi/v1/depth?symbol=BTCUSDT&limit=abc") as resp:
            assert resp.status == 400 and (await resp.json())["code"] < 0
        async with session.get(live_venue.base_url + "/fapi/v1/depth?symbol=BTCUSDT&limit=" + "9" * 5000) as resp:
            assert resp.status == 400
        async with session.get(live_venue.base_url + "/fapi/v1/nothing-here") as resp:
            assert resp.status == 404 and "code" in await resp.json()
        async with session.post(live_venue.base_url + "/_sim/drop", data='{"which": "bogus"}') as resp:
            assert resp.status == 400
        async with session.get(live_venue.base_url + "/_sim/state") as resp:
            assert resp.status == 200 and (await resp.json())["connections"] >= 0
