"""Two venue rules the adversarial review of issue 18 found the simulator missing: an amendment counts
on the order-count windows like a new order (Binance: 1 on 10 s, 1 on 1 min), so a limiter that amends
heavily meets -1015 here as it would live; and closePosition belongs to STOP_MARKET / TAKE_PROFIT_MARKET
only (-1106 elsewhere, -4137 with a quantity), as the Algo path already says."""

from __future__ import annotations

import pytest

from celeris.exchange_sim.engine import VenueError
from tests.sim.conftest import API_KEY
from tests.sim.test_engine import book, fmt, place


async def test_amendments_fill_the_order_window_like_new_orders(venue):
    account = venue.engine.accounts[API_KEY]
    order = place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
                  price=fmt(venue, book(venue).best(True) - 50))
    venue.orders_per_10s = 3
    before = venue._orders_since(venue.now_ms() - 10_000)
    answers = []
    for i in range(6):
        try:
            await venue._amend_order(account, {"symbol": "BTCUSDT", "orderId": str(order.order_id), "side": "BUY",
                                               "quantity": f"0.0{11 + i}", "price": fmt(venue, order.price_ticks)})
            answers.append("ok")
        except VenueError as refused:
            answers.append(refused.code)
    assert venue._orders_since(venue.now_ms() - 10_000) >= before + 3
    assert -1015 in answers and answers[0] == "ok"
    assert order.qty_steps < 16  # the refused amendments changed nothing


@pytest.mark.parametrize("params, code", [
    ({"type": "LIMIT", "timeInForce": "GTC", "price": "1.00"}, -1106),
    ({"type": "MARKET"}, -1106),
])
def test_close_position_on_a_plain_order_is_refused(venue, params, code):
    with pytest.raises(VenueError) as refused:
        place(venue, symbol="BTCUSDT", side="SELL", closePosition="true", **params)
    assert refused.value.code == code


def test_close_position_with_a_quantity_is_refused(venue):
    with pytest.raises(VenueError) as refused:
        place(venue, symbol="BTCUSDT", side="SELL", type="STOP_MARKET", closePosition="true", quantity="0.010",
              stopPrice=fmt(venue, book(venue).best(True) - 500))
    assert refused.value.code in (-4137, -4120)
