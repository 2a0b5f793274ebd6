"""Order amendment in the simulator (PUT /fapi/v1/order and PUT /fapi/v1/batchOrders), as Binance USD-M
describes it: a resting LIMIT order keeps its ids, takes the new price and quantity, goes to the back of its
level's queue, trades at once if it now crosses, and the user stream says AMENDMENT; what cannot be amended
is refused with a code and leaves the order as it was."""

from __future__ import annotations

import json

import aiohttp
import pytest
import yarl

from celeris.exchange_sim.engine import VenueError
from tests.sim.conftest import API_KEY, signed_query
from tests.sim.test_engine import book, fmt, place


def _rest_bid(venue, below=50, qty="0.010", **extra):
    return place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity=qty,
                 price=fmt(venue, book(venue).best(True) - below), **extra)


def _amend(venue, order, **params):
    return venue.engine.amend(venue.engine.accounts[API_KEY],
                              {"symbol": "BTCUSDT", "orderId": str(order.order_id), "side": order.side.value,
                               **{k: str(v) for k, v in params.items()}})


def test_an_amended_order_keeps_its_ids_moves_and_loses_its_queue_priority(venue):
    first = _rest_bid(venue)
    second = _rest_bid(venue)
    b = book(venue)
    level = (True, first.price_ticks)
    assert list(b.queues[level]) == [first, second]
    amended = _amend(venue, first, quantity="0.020", price=fmt(venue, first.price_ticks))
    assert amended is first and first.qty_steps == 20 and first.status == "NEW"
    assert list(b.queues[level]) == [second, first]  # to the back of the queue
    _amend(venue, first, quantity="0.020", price=fmt(venue, first.price_ticks - 5))
    assert first not in b.queues[level] and first in b.queues[(True, first.price_ticks)]
    events = [e["o"] for e in venue.engine.accounts[API_KEY].events if e["o"]["i"] == first.order_id]
    assert [o["x"] for o in events] == ["NEW", "AMENDMENT", "AMENDMENT"] and events[-1]["q"] == "0.020"


def test_an_amendment_that_crosses_trades_at_once(venue):
    order = _rest_bid(venue)
    _amend(venue, order, quantity="0.010", price=fmt(venue, book(venue).best(False)))
    assert order.status == "FILLED"
    assert venue.engine.accounts[API_KEY].positions["BTCUSDT"].qty_steps == 10


@pytest.mark.parametrize("change, code", [
    ({"quantity": "0.010", "price": "same"}, -5027),            # nothing to change
    ({"quantity": "0.010", "price": "1.05"}, -4014),            # off the tick grid
    ({"quantity": "0.0105", "price": "same"}, -1111),           # off the step grid
    ({"side": "SELL", "quantity": "0.020", "price": "same"}, -1117),
    ({"quantity": "0.020"}, -1102),                             # price is required
])
def test_what_cannot_be_amended_is_refused_and_the_order_is_untouched(venue, change, code):
    order = _rest_bid(venue)
    before = (order.qty_steps, order.price_ticks, list(book(venue).queues[(True, order.price_ticks)]))
    params = {"side": order.side.value, **change}
    if params.get("price") == "same":
        params["price"] = fmt(venue, order.price_ticks)
    with pytest.raises(VenueError) as refused:
        venue.engine.amend(venue.engine.accounts[API_KEY],
                           {"symbol": "BTCUSDT", "orderId": str(order.order_id), **params})
    assert refused.value.code == code, refused.value.msg
    assert (order.qty_steps, order.price_ticks, list(book(venue).queues[(True, order.price_ticks)])) == before


def test_only_open_limit_orders_are_amended(venue):
    filled = place(venue, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
    with pytest.raises(VenueError) as refused:
        _amend(venue, filled, quantity="0.020", price=fmt(venue, book(venue).best(True)))
    assert refused.value.code == -2013


async def test_amend_and_batch_amend_over_the_wire(stepped_venue):
    venue = stepped_venue
    venue.step(2)
    headers = {"X-MBX-APIKEY": API_KEY}
    orders = [_rest_bid(venue, below=50 + i) for i in range(2)]
    async with aiohttp.ClientSession() as s:
        query = signed_query({"symbol": "BTCUSDT", "orderId": orders[0].order_id, "side": "BUY", "quantity": "0.030",
                              "price": fmt(venue, orders[0].price_ticks)}, ts_ms=venue.now_ms())
        async with s.put(f"{venue.base_url}/fapi/v1/order?{query}", headers=headers) as resp:
            body = await resp.json()
            assert resp.status == 200 and body["origQty"] == "0.030" and body["orderId"] == orders[0].order_id
        batch = json.dumps([{"symbol": "BTCUSDT", "orderId": orders[1].order_id, "side": "BUY", "quantity": "0.040",
                             "price": fmt(venue, orders[1].price_ticks)},
                            {"symbol": "BTCUSDT", "orderId": 1, "side": "BUY", "quantity": "0.040", "price": "1"}])
        query = signed_query({"batchOrders": batch}, ts_ms=venue.now_ms())
        # As sent: aiohttp would otherwise re-encode the query and the signature would no longer match it.
        async with s.put(yarl.URL(f"{venue.base_url}/fapi/v1/batchOrders?{query}", encoded=True),
                         headers=headers) as resp:
            answers = await resp.json()
        assert resp.status == 200 and answers[0]["origQty"] == "0.040" and answers[1]["code"] == -2013


# Binance (PUT /fapi/v1/order): "the order will be cancelled by the amendment" when it is partially filled and
# the new quantity is not above its executedQty, or post-only (GTX) and the new price would trade at once.
def _partially_filled(venue):
    b = book(venue)
    ask = b.best(False)
    b.set_synthetic(False, ask, 5)  # 0.005 at the best ask: an order of 0.010 crossing it fills half
    order = _rest_bid(venue)
    _amend(venue, order, quantity="0.010", price=fmt(venue, ask))
    assert (order.status, order.filled_steps) == ("PARTIALLY_FILLED", 5)
    return order


@pytest.mark.parametrize("qty", ["0.005", "0.004"])
def test_an_amendment_to_no_more_than_the_fill_cancels_the_partially_filled_order(venue, qty):
    order = _partially_filled(venue)
    with pytest.raises(VenueError):
        _amend(venue, order, quantity=qty, price=fmt(venue, order.price_ticks))
    assert order.status == "CANCELED" and order not in book(venue).queues.get((True, order.price_ticks), [])
    events = [e["o"] for e in venue.engine.accounts[API_KEY].events
              if e.get("e") == "ORDER_TRADE_UPDATE" and e["o"]["i"] == order.order_id]
    assert events[-1]["x"] == "CANCELED" and events[-1]["X"] == "CANCELED"


def test_an_amendment_above_the_fill_keeps_the_partially_filled_order(venue):
    order = _partially_filled(venue)
    _amend(venue, order, quantity="0.006", price=fmt(venue, order.price_ticks))
    assert (order.status, order.qty_steps) == ("PARTIALLY_FILLED", 6)


def test_a_post_only_amendment_that_would_trade_cancels_the_order(venue):
    order = place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTX", quantity="0.010",
                  price=fmt(venue, book(venue).best(True) - 50))
    with pytest.raises(VenueError) as refused:
        _amend(venue, order, quantity="0.010", price=fmt(venue, book(venue).best(False)))
    assert refused.value.code == -5022
    assert order.status == "CANCELED" and order.filled_steps == 0


def test_amending_a_non_limit_order_is_binances_limit_order_only(venue):
    stop = place(venue, symbol="BTCUSDT", side="BUY", type="STOP_MARKET", quantity="0.010",
                 stopPrice=fmt(venue, book(venue).best(False) + 500))
    with pytest.raises(VenueError) as refused:
        _amend(venue, stop, quantity="0.020", price=fmt(venue, book(venue).best(True)))
    assert (refused.value.code, refused.value.msg) == (-5025, "Only limit order is supported.")


def test_an_order_is_modified_fewer_than_10000_times(venue, monkeypatch):
    order = _rest_bid(venue)
    order.amendments = 9_998
    _amend(venue, order, quantity="0.011", price=fmt(venue, order.price_ticks))  # the 9,999th
    with pytest.raises(VenueError) as refused:
        _amend(venue, order, quantity="0.012", price=fmt(venue, order.price_ticks))
    assert (refused.value.code, refused.value.msg) == (-5026, "Exceed maximum modify order limit.")
    assert order.qty_steps == 11


def test_an_amendment_below_min_notional_is_binances_modification_min_notional(venue):
    eth = book(venue, "ETHUSDT")
    bid = eth.best(True)
    ins = eth.instrument
    order = place(venue, symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="1.000",
                  price=ins.format_price(bid - 50))
    assert ins.notional_exact(order.price_ticks, 1) < ins.min_notional  # 0.001 ETH is below MIN_NOTIONAL
    with pytest.raises(VenueError) as refused:
        venue.engine.amend(venue.engine.accounts[API_KEY], {"symbol": "ETHUSDT", "orderId": str(order.order_id),
                                                            "side": "BUY", "quantity": "0.001",
                                                            "price": ins.format_price(order.price_ticks)})
    assert refused.value.code == -5029 and refused.value.msg.startswith("Order's notional must be no smaller than")
    assert "reduce only" not in refused.value.msg and order.qty_steps == ins.qty("1.000")
