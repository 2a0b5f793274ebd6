"""priceMatch and GTD on the simulator's order endpoint (POST/PUT /fapi/v1/order, batches and the WebSocket
API share it), as Binance USD-M documents them: priceMatch takes the order's price from the book at arrival
(OPPONENT[_N]: the Nth best price on the other side, QUEUE[_N]: on its own side) and is refused with a price
or on a type without one; a GTD order needs a goodTillDate more than 600 s ahead (whole seconds kept),
is refused otherwise with -5040, and the venue expires it at that time with its user-data event."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from celeris.exchange_sim.engine import VenueError
from celeris.exchange_sim.state import SymbolBook
from celeris.domain.values import Side
from tests.sim.conftest import API_KEY
from tests.sim.test_engine import book, fmt, place

MATCHES = ["OPPONENT", "OPPONENT_5", "OPPONENT_10", "OPPONENT_20", "QUEUE", "QUEUE_5", "QUEUE_10", "QUEUE_20"]


def _limit(venue, side="BUY", **extra):
    return place(venue, symbol="BTCUSDT", side=side, type="LIMIT", quantity="0.010", **extra)


@pytest.mark.parametrize("match", MATCHES)
@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_price_match_takes_the_nth_level_of_the_side_it_names(venue, match, side):
    b = book(venue)
    kind, _, depth = match.partition("_")
    # OPPONENT of a buy is the ask side; QUEUE of a buy is its own (bid) side.
    bids_side = (side == "SELL") == (kind == "OPPONENT")
    expected = b.prices(bids_side)[int(depth or 1) - 1]
    order = _limit(venue, side=side, timeInForce="GTC", priceMatch=match)
    assert order.price_ticks == expected and order.price_match == match
    body = venue.engine.order_json(order)
    assert body["priceMatch"] == match and body["price"] == fmt(venue, expected)
    new_event = [e["o"] for e in venue.engine.accounts[API_KEY].events if "o" in e and e["o"]["i"] == order.order_id][0]
    assert new_event["pm"] == match


def test_an_opponent_buy_takes_liquidity_and_a_queue_buy_rests_at_the_best_bid(venue):
    best_bid = book(venue).best(True)
    taker = _limit(venue, timeInForce="GTC", priceMatch="OPPONENT")
    assert taker.filled_steps > 0
    maker = _limit(venue, timeInForce="GTC", priceMatch="QUEUE")
    assert maker.status == "NEW" and maker.price_ticks == best_bid
    assert maker in book(venue).queues[(True, best_bid)]


@pytest.mark.parametrize("params, code", [
    ({"type": "LIMIT", "timeInForce": "GTC", "priceMatch": "OPPONENT", "price": "60000.00"}, -1106),
    ({"type": "MARKET", "priceMatch": "OPPONENT"}, -5038),  # UNSUPPORTED_ORDER_TYPE_PRICE_MATCH
    ({"type": "LIMIT", "timeInForce": "GTC", "priceMatch": "OPPONENT_3"}, -5037),  # INVALID_PRICE_MATCH
    ({"type": "LIMIT", "timeInForce": "GTC", "priceMatch": "opponent"}, -5037),
])
def test_price_match_where_it_does_not_belong_is_refused(venue, params, code):
    before = dict(venue.engine.accounts[API_KEY].orders)
    with pytest.raises(VenueError) as refused:
        place(venue, symbol="BTCUSDT", side="BUY", quantity="0.010", **params)
    assert refused.value.code == code and venue.engine.accounts[API_KEY].orders == before


def test_an_empty_side_has_no_price_to_match(venue):
    b = book(venue)
    b.synthetic_asks.clear()
    with pytest.raises(VenueError) as refused:
        _limit(venue, timeInForce="GTC", priceMatch="OPPONENT")
    assert (refused.value.code, refused.value.msg) == (-5041, "No depth matches this BBO order")  # BBO_ORDER_REJECT


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 10_000), unique=True, max_size=30), st.sampled_from(MATCHES),
       st.sampled_from([Side.BUY, Side.SELL]))
def test_match_price_is_always_a_level_of_the_named_side(prices, match, side):
    b = SymbolBook(instrument=None)  # type: ignore[arg-type]
    b.synthetic_bids = {p: 1 for p in prices}
    b.synthetic_asks = {p + 20_000: 1 for p in prices}
    got = b.match_price(side, match)
    own_bids = (side is Side.SELL) == match.startswith("OPPONENT")
    levels = b.prices(own_bids)
    if not levels:
        assert got is None
    else:
        n = int(match.partition("_")[2] or 1)
        assert got == levels[min(n, len(levels)) - 1]


def test_an_amendment_with_price_match_reprices_from_the_book(venue):
    order = _limit(venue, timeInForce="GTC", price=fmt(venue, book(venue).best(True) - 50))
    venue.engine.amend(venue.engine.accounts[API_KEY], {"symbol": "BTCUSDT", "orderId": str(order.order_id),
                                                        "side": "BUY", "quantity": "0.010", "priceMatch": "QUEUE"})
    assert order.price_ticks == book(venue).best(True) and order.price_match == "QUEUE"


def test_a_gtd_order_expires_at_its_good_till_date_with_its_event(venue, clock):
    now_ms = clock.now_ns() // 1_000_000
    good_till = now_ms + 601_000 + 789  # the venue drops the milliseconds
    order = _limit(venue, timeInForce="GTD", goodTillDate=good_till,
                   price=fmt(venue, book(venue).best(True) - 50))
    assert order.good_till_ms == good_till // 1000 * 1000
    assert venue.engine.order_json(order)["goodTillDate"] == order.good_till_ms
    clock.set((order.good_till_ms - 1) * 1_000_000)
    venue.tick()
    assert order.status == "NEW"
    clock.set(order.good_till_ms * 1_000_000)
    venue.tick()
    assert order.status == "EXPIRED" and order not in book(venue).queues.get((True, order.price_ticks), [])
    events = [e["o"] for e in venue.engine.accounts[API_KEY].events if "o" in e and e["o"]["i"] == order.order_id]
    assert [(o["x"], o["X"]) for o in events] == [("NEW", "NEW"), ("EXPIRED", "EXPIRED")]
    assert events[0]["gtd"] == order.good_till_ms


@pytest.mark.parametrize("ahead_ms, code", [(600_000, -5040), (0, -5040), (-1, -5040)])
def test_a_good_till_date_less_than_600_s_ahead_is_refused(venue, clock, ahead_ms, code):
    now_ms = clock.now_ns() // 1_000_000
    with pytest.raises(VenueError) as refused:
        _limit(venue, timeInForce="GTD", goodTillDate=max(0, now_ms + ahead_ms),
               price=fmt(venue, book(venue).best(True) - 50))
    assert refused.value.code == code


@pytest.mark.parametrize("extra, code", [
    ({"timeInForce": "GTD"}, -1102),                                  # goodTillDate missing
    ({"timeInForce": "GTD", "goodTillDate": "soon"}, -1100),          # not a timestamp
    ({"timeInForce": "GTD", "goodTillDate": "253402300799000"}, -5040),  # past the venue's last date
    ({"timeInForce": "GTC", "goodTillDate": "1890000000000"}, -1106),  # only for GTD
])
def test_malformed_good_till_dates_are_refused(venue, extra, code):
    with pytest.raises(VenueError) as refused:
        _limit(venue, price=fmt(venue, book(venue).best(True) - 50), **extra)
    assert refused.value.code == code
