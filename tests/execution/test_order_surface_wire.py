"""The connector's order surface on the wire: what a venue on 127.0.0.1 receives for every parameter,
amendment, batch and algo order, and how the venue's recorded answers and stream events (real samples in
data/binance/samples) become domain values."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from celeris.domain.clock import TestClock
from celeris.domain.instruments import (
    OrderType,
    PriceMatch,
    SelfTradePrevention,
    TimeInForce,
    WorkingType,
)
from celeris.domain.messages import Execution
from celeris.domain.orders import Order
from celeris.domain.values import Side
from celeris.venues.binance import codec, errors
from celeris.venues.binance.order_wire import callback_rate_text
from celeris.venues.binance.orders import BinanceOrderVenue
from celeris.venues.binance.rest import BinanceRestClient

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "binance" / "samples"


def sample(name):
    return json.loads((SAMPLES / name).read_text())


def order_body(cid, qty="0.010", price="59900.0", status="NEW", executed="0.000"):
    return {"orderId": 4087922044, "symbol": "BTCUSDT", "status": status, "clientOrderId": cid, "price": price,
            "origQty": qty, "executedQty": executed, "type": "LIMIT", "side": "BUY", "timeInForce": "GTC"}


class RecordingVenue:
    """A venue that records every request (method, path, parameters) and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.batch_answer: list[dict] | None = None
        self.open_algo: list[dict] = []

    async def handle(self, request: web.Request) -> web.Response:
        params = dict(parse_qsl(request.query_string, keep_blank_values=True))
        self.requests.append((request.method, request.path, params))
        route = (request.method, request.path)
        if route == ("POST", "/fapi/v1/algoOrder"):
            return web.json_response({"algoId": 2148719, "clientAlgoId": params["clientAlgoId"],
                                      "algoType": "CONDITIONAL", "type": params["type"], "symbol": "BTCUSDT",
                                      "side": params["side"], "quantity": params.get("quantity", ""),
                                      "algoStatus": "NEW", "triggerPrice": params.get("triggerPrice", "0")})
        if route == ("DELETE", "/fapi/v1/algoOrder"):
            return web.json_response({"algoId": 2148719, "clientAlgoId": params["clientAlgoId"], "code": "200",
                                      "msg": "success"})
        if route == ("GET", "/fapi/v1/algoOrder"):
            return web.json_response({"code": -2013, "msg": "Order does not exist."}, status=400)
        if request.path == "/fapi/v1/batchOrders":
            return web.json_response(self.batch_answer)
        if route == ("GET", "/fapi/v1/openOrders"):
            return web.json_response([])
        if route == ("GET", "/fapi/v1/openAlgoOrders"):
            return web.json_response(self.open_algo)
        if route == ("PUT", "/fapi/v1/order"):
            return web.json_response(order_body(params["origClientOrderId"], params["quantity"], params["price"]))
        cid = params.get("newClientOrderId") or params.get("origClientOrderId") or "x"
        if params.get("symbol") == "DOGEUSDT":
            return web.json_response(order_body(cid, "38", "0.13855"))
        return web.json_response(order_body(cid))

    def last(self, path):
        return [r for r in self.requests if r[1] == path][-1]


@pytest.fixture
async def wire(btcusdt):
    recorder = RecordingVenue()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    clock = TestClock(1_700_000_000 * 10**9)
    rest = BinanceRestClient(f"http://127.0.0.1:{port}", clock, api_key="k", api_secret="s")
    venue = BinanceOrderVenue(rest, "ws://127.0.0.1:1/ws", {"BTCUSDT": btcusdt}, clock)
    yield recorder, venue, btcusdt
    await rest.close()
    await runner.cleanup()


def make(btcusdt, cid="cel-m-1", order_type=OrderType.LIMIT, qty="0.010", price="59900.0", **kw):
    return Order(cid, "BTCUSDT", kw.pop("side", Side.BUY), order_type, btcusdt.qty(qty),
                 btcusdt.price(price) if price else None, **kw)


async def test_every_new_parameter_of_a_plain_order_reaches_the_venue(wire):
    recorder, venue, ins = wire
    order = make(ins, time_in_force=TimeInForce.GTD, good_till_ms=1_700_003_600_000,
                 stp_mode=SelfTradePrevention.EXPIRE_BOTH)
    await venue.place(order)
    method, path, params = recorder.last("/fapi/v1/order")
    assert (method, path) == ("POST", "/fapi/v1/order")
    assert params["timeInForce"] == "GTD" and params["goodTillDate"] == "1700003600000"
    assert params["selfTradePreventionMode"] == "EXPIRE_BOTH" and params["price"] == "59900.00"
    matched = make(ins, "cel-m-2", price=None, price_match=PriceMatch.OPPONENT_5)
    await venue.place(matched)
    params = recorder.last("/fapi/v1/order")[2]
    assert params["priceMatch"] == "OPPONENT_5" and "price" not in params and params["timeInForce"] == "GTC"


async def test_conditional_and_trailing_orders_go_to_the_algo_api_with_their_parameters(wire):
    recorder, venue, ins = wire
    stop = make(ins, "cel-m-3", OrderType.STOP_MARKET, price=None, side=Side.SELL, is_algo=True,
                stop_price_ticks=ins.price("58000.0"), working_type=WorkingType.MARK_PRICE, price_protect=True,
                close_position=True)
    state = await venue.place(stop)
    method, path, params = recorder.last("/fapi/v1/algoOrder")
    assert method == "POST" and params["algoType"] == "CONDITIONAL" and params["clientAlgoId"] == "cel-m-3"
    assert params["triggerPrice"] == "58000.00" and "stopPrice" not in params
    assert params["workingType"] == "MARK_PRICE" and params["priceProtect"] == "TRUE"
    assert params["closePosition"] == "true" and "quantity" not in params and "reduceOnly" not in params
    assert state.algo_id == 2148719 and state.venue_order_id == 0 and state.status == "NEW"
    assert not [r for r in recorder.requests if r[1] == "/fapi/v1/order"]  # never the order endpoint
    trail = make(ins, "cel-m-4", OrderType.TRAILING_STOP_MARKET, price=None, side=Side.SELL, is_algo=True,
                 callback_rate_bps=150, activation_price_ticks=ins.price("61000.0"), reduce_only=True)
    await venue.place(trail)
    params = recorder.last("/fapi/v1/algoOrder")[2]
    assert params["callbackRate"] == "1.5" and params["activatePrice"] == "61000.00"
    assert params["reduceOnly"] == "true" and "stopPrice" not in params and "triggerPrice" not in params
    cancel = await venue.cancel_algo("BTCUSDT", "cel-m-4")
    assert recorder.last("/fapi/v1/algoOrder")[0] == "DELETE" and cancel.status == "CANCELED"
    assert await venue.query_algo("BTCUSDT", "cel-m-4") is None


@pytest.mark.parametrize("bps, text", [(10, "0.1"), (100, "1"), (150, "1.5"), (1000, "10"), (250, "2.5")])
def test_callback_rates_are_written_as_the_venue_writes_percentages(bps, text):
    assert callback_rate_text(bps) == text


async def test_an_amendment_is_a_put_with_side_quantity_and_price(wire):
    recorder, venue, ins = wire
    order = make(ins, "cel-m-5")
    state = await venue.amend(order, ins.qty("0.020"), ins.price("59950.0"))
    method, _, params = recorder.last("/fapi/v1/order")
    assert method == "PUT"
    assert params == {**params, "symbol": "BTCUSDT", "origClientOrderId": "cel-m-5", "side": "BUY",
                      "quantity": "0.020", "price": "59950.00"}
    assert (state.qty_steps, state.price_ticks) == (ins.qty("0.020"), ins.price("59950.0"))


async def test_batches_are_compact_json_and_every_element_gets_its_own_answer(wire):
    recorder, venue, ins = wire
    ok = sample("ccxt/ccxt_fapi_v1_batchOrders_POST_response.json")[0]
    recorder.batch_answer = [dict(ok, clientOrderId="cel-m-6"), {"code": -2022, "msg": "ReduceOnly Order is rejected."}]
    results = await venue.place_batch([make(ins, "cel-m-6"), make(ins, "cel-m-7", reduce_only=True)])
    method, _, params = recorder.last("/fapi/v1/batchOrders")
    elements = json.loads(params["batchOrders"])
    assert method == "POST" and " " not in params["batchOrders"]
    assert [e["newClientOrderId"] for e in elements] == ["cel-m-6", "cel-m-7"]
    assert elements[1]["reduceOnly"] == "true" and all(isinstance(v, str) for e in elements for v in e.values())
    assert results[0].state.client_order_id == "cel-m-6" and results[0].error is None
    assert isinstance(results[1].error, errors.OrderRejected) and results[1].error.code == -2022
    # A batch amendment: the venue's real PUT answer, and a short answer leaves the rest unknown.
    recorder.batch_answer = sample("ccxt/ccxt_fapi_v1_batchOrders_PUT_modify_response.json")
    results = await venue.amend_batch([(make(ins, "x-xcKtGhcu04075babaeb34c55af79ba"), ins.qty("0.100"),
                                        ins.price("66666.0")), (make(ins, "cel-m-8"), 5, 5)])
    method, _, params = recorder.last("/fapi/v1/batchOrders")
    assert method == "PUT" and json.loads(params["batchOrders"])[0]["quantity"] == "0.100"
    assert results[0].state.qty_steps == ins.qty("0.100")
    assert isinstance(results[1].error, errors.UnknownExecutionStatus)
    recorder.batch_answer = [order_body("a", status="CANCELED"), {"code": -2011, "msg": "Unknown order sent."}]
    results = await venue.cancel_batch("BTCUSDT", ["a", "b"])
    method, _, params = recorder.last("/fapi/v1/batchOrders")
    assert method == "DELETE" and params["origClientOrderIdList"] == '["a","b"]'
    assert results[0].state.status == "CANCELED" and isinstance(results[1].error, errors.UnknownOrder)


async def test_open_algo_orders_are_part_of_the_venue_open_orders(wire):
    recorder, venue, ins = wire
    recorder.open_algo = sample("nautilus/rs_open_algo_orders.json")
    events = await venue.open_orders()
    assert len(events) == 1 and events[0].client_order_id == "test-algo-order-1"
    assert events[0].algo_id == 123456789 and events[0].orig_qty_steps == ins.qty("0.001")


def _stream(venue):
    seen = []

    async def reconnect():
        return None

    venue._on_event, venue._on_reconnect = seen.append, reconnect
    return seen


async def test_algo_updates_become_lifecycle_events_and_the_triggered_order_is_cancelled_by_its_id(wire, btcusdt):
    recorder, venue, _ = wire
    import dataclasses

    doge = dataclasses.replace(btcusdt, symbol="DOGEUSDT", price_grid=type(btcusdt.price_grid).of("0.00001", 5),
                               qty_grid=type(btcusdt.qty_grid).of("1", 0))
    venue.instruments["DOGEUSDT"] = doge
    seen = _stream(venue)
    for name in ("py_ws_futures_algo_update_triggering.json", "py_ws_futures_algo_update_triggered.json",
                 "py_ws_futures_algo_update_finished.json"):
        raw = json.dumps(sample(f"nautilus/{name}")["data"])
        venue._on_user_event(codec.decode_user_event(raw))
    assert [e.execution for e in seen] == [Execution.TRIGGERED]  # TRIGGERING and FINISHED move nothing
    triggered = seen[0]
    assert triggered.client_order_id == "O-20251211-053131-TEST-000-1" and triggered.venue_order_id == 88937381063
    assert triggered.algo_id == 1000000033225453 and triggered.orig_qty_steps == 38
    await venue.cancel("DOGEUSDT", "O-20251211-053131-TEST-000-1")
    assert recorder.last("/fapi/v1/order")[2].get("orderId") == "88937381063"
    venue.instruments["BNBUSDT"] = dataclasses.replace(doge, symbol="BNBUSDT",
                                                       qty_grid=type(btcusdt.qty_grid).of("0.01", 2))
    for name in ("rs_algo_update_new.json", "rs_algo_update_canceled.json"):
        venue._on_user_event(codec.decode_user_event(json.dumps(sample(f"nautilus/{name}"))))
    assert [e.execution for e in seen[1:]] == [Execution.NEW, Execution.CANCELED]


async def test_amendment_and_price_match_order_updates_are_decoded(wire, btcusdt):
    _, venue, _ = wire
    seen = _stream(venue)
    body = {"s": "BTCUSDT", "c": "cel-m-9", "S": "BUY", "o": "LIMIT", "f": "GTC", "q": "0.020", "p": "59950.0",
            "ap": "0", "sp": "0", "x": "AMENDMENT", "X": "NEW", "i": 7, "l": "0", "z": "0", "L": "0", "T": 1,
            "t": 0, "m": False, "R": False, "ps": "BOTH", "pm": "NONE", "gtd": 0, "V": "NONE"}
    venue._on_user_event(codec.decode_user_event(json.dumps({"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": body})))
    assert seen[-1].execution is Execution.AMENDMENT
    assert (seen[-1].orig_qty_steps, seen[-1].price_ticks) == (btcusdt.qty("0.020"), btcusdt.price("59950.0"))
    for name in ("py_ws_futures_order_update_new_price_match.json",
                 "py_ws_futures_order_update_new_stop_limit_price_match.json",
                 "py_ws_futures_order_update_new_limit_if_touched_price_match.json"):
        event = codec.decode_user_event(json.dumps(sample(f"nautilus/{name}")["data"]))
        assert isinstance(event, codec.OrderTradeUpdate) and event.o.x == "NEW"
