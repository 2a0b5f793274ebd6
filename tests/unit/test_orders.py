import itertools

import pytest

from celeris.domain.instruments import OrderType
from celeris.domain.orders import (
    TRANSITIONS, InvalidTransition, Order, OrderEvent, OrderStatus, Overfill, transition,
    valid_client_order_id,
)
from celeris.domain.values import Side


def _order(**kw):
    base = dict(client_order_id="cel-1", symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT,
                qty_steps=10, price_ticks=600000)
    base.update(kw)
    return Order(**base)


def test_every_move_outside_the_table_raises():
    for status, event in itertools.product(OrderStatus, OrderEvent):
        if (status, event) in TRANSITIONS:
            assert transition(status, event) is TRANSITIONS[(status, event)]
        else:
            with pytest.raises(InvalidTransition):
                transition(status, event)


def test_terminal_states_have_no_exits():
    for (status, _event) in TRANSITIONS:
        assert not status.is_terminal


def test_happy_path_with_partial_fills():
    order = _order()
    order.apply(OrderEvent.SUBMIT)
    order.apply(OrderEvent.ACCEPT)
    assert order.fill(4, 600000) is OrderStatus.PARTIALLY_FILLED
    assert order.fill(6, 600010) is OrderStatus.FILLED
    assert order.filled_steps == 10 and order.filled_quote == 4 * 600000 + 6 * 600010
    assert not order.is_open
    with pytest.raises(InvalidTransition):
        order.apply(OrderEvent.CANCEL)


def test_overfill_is_refused_and_changes_nothing():
    order = _order()
    order.apply(OrderEvent.SUBMIT)
    order.fill(7, 1)
    with pytest.raises(Overfill):
        order.fill(4, 1)
    assert order.filled_steps == 7 and order.status is OrderStatus.PARTIALLY_FILLED


def test_cancel_reject_returns_to_where_it_was():
    order = _order()
    order.apply(OrderEvent.SUBMIT)
    order.apply(OrderEvent.ACCEPT)
    order.apply(OrderEvent.CANCEL_REQUEST)
    assert order.apply(OrderEvent.CANCEL_REJECT) is OrderStatus.SUBMITTED
    order.fill(3, 1)
    order.apply(OrderEvent.CANCEL_REQUEST)
    order.fill(2, 1)  # fills may still arrive while the cancel is pending
    assert order.status is OrderStatus.PENDING_CANCEL
    assert order.apply(OrderEvent.CANCEL_REJECT) is OrderStatus.PARTIALLY_FILLED


def test_fill_can_overtake_the_acknowledgement():
    order = _order()
    order.apply(OrderEvent.SUBMIT)
    assert order.fill(10, 1) is OrderStatus.FILLED


def test_client_order_id_rule():
    assert valid_client_order_id("x-Cb7ytekJ_a.b:c/d-1")
    assert not valid_client_order_id("") and not valid_client_order_id("a" * 37)
    assert not valid_client_order_id("has space")
    with pytest.raises(ValueError):
        _order(client_order_id="bad id")
    with pytest.raises(ValueError):
        _order(qty_steps=0)
