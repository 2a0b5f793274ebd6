"""The order surface end to end: execution in live mode against the simulator over real sockets, amending,
batching and placing algo orders, with the venue's own state checked after each step."""

from __future__ import annotations

from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.messages import AmendRequest, OrderRequest, RejectCode
from celeris.domain.orders import OrderStatus
from celeris.domain.values import Side

from tests.execution.conftest import live_venue, request, wait_for  # noqa: F401
from tests.sim.conftest import API_KEY


def sim_orders(h, client_id):
    account = h.sim.engine.accounts[API_KEY]
    return [o for o in account.orders.values() if o.client_order_id == client_id]


def sim_algo(h, client_id):
    account = h.sim.engine.accounts[API_KEY]
    return [a for a in account.algo_orders.values() if a.client_algo_id == client_id]


async def test_an_amendment_changes_the_order_at_the_venue_and_its_stream_event_agrees(harness):
    h = harness
    ins = h.ins()
    price = h.best(True) - 200
    outcome = await h.engine.submit(request(price=ins.format_price(price), qty="0.010", instrument=ins))
    order = outcome.order
    amended = await h.engine.amend(AmendRequest("sim-am1", "BTCUSDT", order.client_order_id, ins.qty("0.020"),
                                                price - 10))
    assert amended.accepted, amended.rejection
    venue_order = sim_orders(h, order.client_order_id)[0]
    assert (venue_order.qty_steps, venue_order.price_ticks) == (ins.qty("0.020"), price - 10)
    await h.engine.settle()
    assert (order.status, order.qty_steps, order.price_ticks) == (OrderStatus.SUBMITTED, ins.qty("0.020"), price - 10)
    assert h.engine.stats.illegal_transitions == 0


async def test_batch_place_amend_and_cancel_against_the_venue_answer_each_element(harness):
    h = harness
    ins = h.ins()
    bid, ask = h.best(True), h.best(False)
    requests = [request(price=ins.format_price(bid - 300), instrument=ins, strategy_id="batch"),
                # Post-only across the book: only the venue can know it, and it refuses this element alone.
                request(price=ins.format_price(ask + 50), tif=TimeInForce.GTX, instrument=ins, strategy_id="batch"),
                request(price=ins.format_price(bid - 310), instrument=ins, strategy_id="batch")]
    outcomes = await h.engine.submit_batch(requests)
    await h.engine.settle()
    assert outcomes[0].accepted and outcomes[2].accepted
    assert not outcomes[1].accepted and outcomes[1].rejection.code is RejectCode.VENUE_REJECTED
    first, third = outcomes[0].order, outcomes[2].order
    assert [o.status for o in sim_orders(h, first.client_order_id)] == ["NEW"]
    amended = await h.engine.amend_batch([
        AmendRequest("sim-ba0", "BTCUSDT", first.client_order_id, ins.qty("0.005"), bid - 320),
        AmendRequest("sim-ba1", "BTCUSDT", third.client_order_id, ins.qty("0.007"), bid - 330)])
    assert all(o.accepted for o in amended), [o.rejection for o in amended]
    assert sim_orders(h, third.client_order_id)[0].qty_steps == ins.qty("0.007")
    canceled = await h.engine.cancel_batch("sim-bc", "BTCUSDT", [first.client_order_id, third.client_order_id])
    assert all(o.accepted for o in canceled)
    assert first.status is OrderStatus.CANCELED and third.status is OrderStatus.CANCELED
    assert [o.status for o in sim_orders(h, third.client_order_id)] == ["CANCELED"]


async def test_a_stop_order_goes_to_the_algo_api_triggers_and_is_filled_through_its_actual_order(harness):
    h = harness
    ins = h.ins()
    book = h.sim.engine.books["BTCUSDT"]
    order = None
    for attempt in range(5):  # the market moves between reading the last price and the order's arrival
        stop = book.last_price_ticks + 5
        outcome = await h.engine.submit(OrderRequest(f"sim-stop-{attempt}", "BTCUSDT", Side.BUY,
                                                     OrderType.STOP_MARKET, ins.qty("0.010"),
                                                     stop_price_ticks=stop, strategy_id="stops"))
        if outcome.accepted:
            order = outcome.order
            break
    assert order is not None and order.is_algo and order.algo_id
    assert [a.status.value for a in sim_algo(h, order.client_order_id)] == ["NEW"]
    assert sim_orders(h, order.client_order_id) == []  # held apart from the book until triggered
    # Our own market buy lifts the last price through the trigger.
    push = await h.engine.submit(request(order_type=OrderType.MARKET, qty="0.300", instrument=ins))
    assert push.accepted
    assert await wait_for(lambda: order.status is OrderStatus.FILLED, timeout=10)
    assert order.triggered and order.venue_order_id and order.filled_steps == ins.qty("0.010")
    assert h.engine.stats.illegal_transitions == 0


async def test_a_trailing_stop_rests_at_the_algo_api_and_is_cancelled_there(harness):
    h = harness
    outcome = await h.engine.submit(OrderRequest("sim-trail", "BTCUSDT", Side.SELL, OrderType.TRAILING_STOP_MARKET,
                                                 h.ins().qty("0.010"), callback_rate_bps=500, strategy_id="stops"))
    assert outcome.accepted, outcome.rejection
    order = outcome.order
    assert [a.status.value for a in sim_algo(h, order.client_order_id)] == ["NEW"]
    assert sim_algo(h, order.client_order_id)[0].callback_rate is not None
    canceled = await h.engine.cancel("sim-trail-c", "BTCUSDT", order.client_order_id)
    assert canceled.accepted and order.status is OrderStatus.CANCELED
    assert [a.status.value for a in sim_algo(h, order.client_order_id)] == ["CANCELED"]
    # After a restart the open algo orders are reconciled from openAlgoOrders: none is left.
    await h.engine.reconcile(h.live)
    assert order.status is OrderStatus.CANCELED


async def test_a_post_only_amendment_across_the_book_is_refused_and_the_venue_cancels_the_order(harness):
    """Binance: "the order will be cancelled by the amendment" when a GTX order's new price would trade."""
    h = harness
    ins = h.ins()
    outcome = await h.engine.submit(request(price=ins.format_price(h.best(True) - 200), tif=TimeInForce.GTX,
                                            instrument=ins, strategy_id="gtx"))
    assert outcome.accepted, outcome.rejection
    order = outcome.order
    refused = await h.engine.amend(AmendRequest("sim-gtx-am", "BTCUSDT", order.client_order_id, ins.qty("0.010"),
                                                h.best(False) + 20))
    assert not refused.accepted and refused.rejection.venue_code == -5022
    assert [o.status for o in sim_orders(h, order.client_order_id)] == ["CANCELED"]
    assert await wait_for(lambda: order.status is OrderStatus.CANCELED)
    assert h.engine.stats.illegal_transitions == 0
