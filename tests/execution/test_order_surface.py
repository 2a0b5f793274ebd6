"""The venue's order surface through execution: amendments, batches, algo (conditional) orders and their
parameters, attacked where they touch safety.

An amendment is an order: one that adds exposure meets the halt, the limits (with every in-flight
amendment counted at its worst) and the rates; one that reduces passes a halt. The venue is scripted
(tests/execution/scripted_venue.py), so acknowledgements arrive when the test says.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from celeris.domain.instruments import (
    OrderType,
    PriceMatch,
    SelfTradePrevention,
    TimeInForce,
    WorkingType,
)
from celeris.domain.messages import (
    AmendRequest,
    Execution,
    OrderRequest,
    RejectCode,
    VenueOrderEvent,
)
from celeris.domain.orders import (
    InvalidTransition,
    Order,
    OrderEvent,
    OrderStatus,
    Overfill,
)
from celeris.domain.values import Side
from celeris.execution.model import order_from_json, order_to_json
from celeris.execution.store import MemoryHotState
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.execution.scripted_venue import ScriptedVenue
from tests.execution.test_safety import PRICE, SlowRisk, buy, make_engine, settle_loop

NOW_MS = 1_700_000_000_000  # the test clock of make_engine


async def resting(engine, venue, rid, qty, price=PRICE - 1000):
    """A LIMIT buy acknowledged and resting at the venue."""
    task = asyncio.ensure_future(engine.submit(buy(rid, qty, price)))
    await settle_loop()
    venue.placed[-1].ack.set()
    outcome = await task
    assert outcome.accepted, outcome.rejection
    return outcome.order


def amend(rid, order, qty, price):
    return AmendRequest(rid, order.symbol, order.client_order_id, qty, price)


# -- the lifecycle -------------------------------------------------------------------------------
async def test_an_amendment_is_pending_until_the_venue_answers_then_the_order_has_the_new_terms(btcusdt):
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue)
    await engine.start()
    order = await resting(engine, venue, "a1", 10)
    task = asyncio.ensure_future(engine.amend(amend("am1", order, 15, PRICE - 900)))
    await settle_loop()
    assert order.status is OrderStatus.PENDING_AMEND and len(venue.amends) == 1
    assert order.qty_steps == 10 and order.worst_qty_steps == 15  # both terms count while in flight
    assert engine.exposure.symbols["BTCUSDT"].pending_buy == 15
    venue.amends[0].ack.set()
    outcome = await task
    await engine.settle()  # the stream's AMENDMENT arrives too: applied once, harmlessly
    assert outcome.accepted
    assert (order.status, order.qty_steps, order.price_ticks) == (OrderStatus.SUBMITTED, 15, PRICE - 900)
    assert engine.exposure.symbols["BTCUSDT"].pending_buy == 15
    # The same request id answers the same way, without a second amendment at the venue.
    assert (await engine.amend(amend("am1", order, 15, PRICE - 900))).accepted and len(venue.amends) == 1
    await engine.stop()


async def test_a_refused_amendment_keeps_the_old_terms_and_frees_the_worst_case(btcusdt):
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue)
    await engine.start()
    order = await resting(engine, venue, "a2", 10)
    task = asyncio.ensure_future(engine.amend(amend("am2", order, 20, PRICE - 1000)))
    await settle_loop()
    venue.amends[0].reject = True
    venue.amends[0].ack.set()
    outcome = await task
    assert not outcome.accepted and outcome.rejection.code is RejectCode.VENUE_REJECTED
    assert (order.status, order.qty_steps, order.amend_qty_steps) == (OrderStatus.SUBMITTED, 10, None)
    assert engine.exposure.symbols["BTCUSDT"].pending_buy == 10
    await engine.stop()


async def test_a_fill_racing_a_smaller_amendment_is_kept_and_the_venue_refusal_restores_the_order(btcusdt):
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue)
    await engine.start()
    order = await resting(engine, venue, "a3", 100)
    task = asyncio.ensure_future(engine.amend(amend("am3", order, 50, PRICE - 1000)))
    await settle_loop()
    venue.fill(venue.placed[0], 70, PRICE - 1000)  # the venue filled 70 before the amendment reached it
    await engine.settle()
    assert order.status is OrderStatus.PENDING_AMEND and order.filled_steps == 70
    venue.amends[0].ack.set()  # the venue refuses: 50 is not above the 70 executed
    outcome = await task
    assert not outcome.accepted
    assert (order.status, order.qty_steps, order.filled_steps) == (OrderStatus.PARTIALLY_FILLED, 100, 70)
    await engine.stop()


async def test_an_order_that_fills_at_its_old_terms_while_a_larger_amendment_flies_is_filled(btcusdt):
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue)
    await engine.start()
    order = await resting(engine, venue, "a4", 10)
    task = asyncio.ensure_future(engine.amend(amend("am4", order, 15, PRICE - 1000)))
    await settle_loop()
    venue.fill(venue.placed[0], 10, PRICE - 1000)  # FILLED at the venue: the amendment will be refused
    await engine.settle()
    assert order.status is OrderStatus.FILLED and order.filled_steps == 10
    venue.amends[0].ack.set()
    assert not (await task).accepted
    assert order.status is OrderStatus.FILLED and engine.positions["BTCUSDT"].qty_steps == 10
    await engine.stop()


async def test_an_amendment_made_elsewhere_arrives_on_the_stream_and_changes_the_terms(btcusdt):
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue)
    await engine.start()
    order = await resting(engine, venue, "a5", 10)
    engine.on_venue_event(VenueOrderEvent("BTCUSDT", order.client_order_id, order.venue_order_id,
                                          Execution.AMENDMENT, Side.BUY, order_type="LIMIT", orig_qty_steps=12,
                                          price_ticks=PRICE - 990))
    await engine.settle()
    assert (order.status, order.qty_steps, order.price_ticks) == (OrderStatus.SUBMITTED, 12, PRICE - 990)
    assert engine.exposure.symbols["BTCUSDT"].pending_buy == 12
    await engine.stop()


def test_the_transition_table_refuses_a_second_amendment_and_amending_a_closed_order():
    order = Order("cel-t-1", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, 100)
    with pytest.raises(InvalidTransition):
        order.request_amend(12, 100)  # not yet at the venue
    order.apply(OrderEvent.SUBMIT)
    order.apply(OrderEvent.ACCEPT)
    order.request_amend(12, 101)
    with pytest.raises(InvalidTransition):
        order.request_amend(13, 101)  # one at a time
    with pytest.raises(Overfill):
        order.fill(13, 100)  # more than either terms allow
    order.fill(12, 101)  # the amendment landed first, and the new quantity filled
    assert order.status is OrderStatus.FILLED
    with pytest.raises(InvalidTransition):
        order.request_amend(20, 101)


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["amend", "ack", "reject", "fill", "cancel_req"]),
                                st.integers(1, 30)), max_size=25))
def test_any_sequence_of_amendments_and_fills_keeps_fills_within_the_quantity_the_venue_could_have(steps):
    order = Order("cel-t-2", "BTCUSDT", Side.BUY, OrderType.LIMIT, 20, 100)
    order.apply(OrderEvent.SUBMIT)
    order.apply(OrderEvent.ACCEPT)
    for kind, n in steps:
        try:
            if kind == "amend":
                order.request_amend(order.filled_steps + n, 100)
            elif kind == "ack" and order.amend_qty_steps is not None:
                order.amended(order.amend_qty_steps, order.amend_price_ticks)
            elif kind == "reject" and order.amend_qty_steps is not None:
                order.amend_rejected()
            elif kind == "fill":
                order.fill(n, 100)
            elif kind == "cancel_req":
                order.apply(OrderEvent.CANCEL_REQUEST)
        except (InvalidTransition, Overfill, ValueError):
            pass
        assert order.filled_steps <= order.worst_qty_steps
        assert order.worst_remaining_steps >= 0
        assert (order.status is OrderStatus.FILLED) == (order.filled_steps == order.qty_steps
                                                        and order.amend_qty_steps is None) or \
            order.status is OrderStatus.PENDING_CANCEL or not order.is_open
        if order.status is OrderStatus.PENDING_AMEND:
            assert order.amend_qty_steps is not None


@pytest.mark.parametrize("landed", [True, False])
async def test_an_amendment_whose_answer_was_lost_in_a_crash_is_settled_from_the_venue_terms(btcusdt, landed):
    venue = ScriptedVenue()
    hot = MemoryHotState()
    engine = make_engine(btcusdt, venue, hot=hot)
    await engine.start()
    order = await resting(engine, venue, "crash", 10)
    task = asyncio.ensure_future(engine.amend(amend("crash-am", order, 14, PRICE - 950)))
    await settle_loop()
    assert len(venue.amends) == 1
    task.cancel()  # the process dies with the amendment at the venue, its answer never read
    with pytest.raises(asyncio.CancelledError):
        await task
    if landed:
        venue.placed[0].qty, venue.placed[0].price = 14, PRICE - 950
    restarted = make_engine(btcusdt, venue, hot=hot)
    await restarted.start()  # loads the record (PENDING_AMEND, both terms counted), then reconciles
    again = restarted.orders[order.client_order_id]
    assert again.status is OrderStatus.SUBMITTED and again.amend_qty_steps is None
    assert (again.qty_steps, again.price_ticks) == ((14, PRICE - 950) if landed else (10, PRICE - 1000))
    assert restarted.exposure.symbols["BTCUSDT"].pending_buy == again.qty_steps
    await engine.stop()
    await restarted.stop()


# -- safety: an amendment is an order ------------------------------------------------------------
async def test_a_halted_engine_refuses_an_amendment_that_adds_exposure_and_allows_one_that_reduces(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    order = await resting(engine, venue, "h1", 10)
    engine.halt_control.halted, engine.halt_control.halt_reason = True, "tester"  # the gate, closed
    larger = await engine.amend(amend("h-up", order, 11, PRICE - 1000))
    dearer = await engine.amend(amend("h-px", order, 10, PRICE - 500))  # a buy moved up: may now trade
    assert larger.rejection.code is RejectCode.HALTED and dearer.rejection.code is RejectCode.HALTED
    assert venue.amends == []
    smaller = await engine.amend(amend("h-down", order, 8, PRICE - 1500))
    assert smaller.accepted and (order.qty_steps, order.price_ticks) == (8, PRICE - 1500)
    assert all(not a.halted_at_write or a.qty <= a.placed.order.qty_steps for a in venue.amends)
    await engine.stop()


async def test_an_amendment_in_its_risk_check_when_the_halt_comes_never_reaches_the_venue(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    order = await resting(engine, venue, "h2", 10)
    release = asyncio.Event()
    engine.risk = SlowRisk(release)
    task = asyncio.ensure_future(engine.amend(amend("h2-up", order, 20, PRICE - 1000)))
    await settle_loop()
    assert order.status is OrderStatus.PENDING_AMEND  # reserved: counted at 20 while it is checked
    halt = asyncio.ensure_future(engine.halt("halt during the amendment's check", "tester"))
    await settle_loop()
    release.set()
    outcome = await task
    await halt
    assert not outcome.accepted and outcome.rejection.code is RejectCode.HALTED
    assert venue.amends == []
    assert order.status is OrderStatus.CANCELED and order.qty_steps == 10
    await engine.stop()


async def test_a_halt_waits_for_an_amendment_on_the_wire_then_cancels_the_order(btcusdt):
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue)
    await engine.start()
    order = await resting(engine, venue, "h3", 10)
    task = asyncio.ensure_future(engine.amend(amend("h3-up", order, 20, PRICE - 1000)))
    await settle_loop()
    assert len(venue.amends) == 1 and not venue.amends[0].halted_at_write
    halt = asyncio.ensure_future(engine.halt("halt", "tester"))
    await settle_loop()
    assert not halt.done() and venue.cancels == []  # the halt waits for the amendment's answer
    venue.amends[0].ack.set()
    assert (await task).accepted
    assert await halt == 1
    assert order.status is OrderStatus.CANCELED and venue.placed[0].status == "CANCELED"
    await engine.stop()


async def test_a_burst_of_amendments_with_delayed_answers_cannot_pass_the_limit_on_the_same_headroom(btcusdt):
    """Five resting 0.02 BTC buys (1,200 USDT each, 6,000 in all) under 10,000 USDT; each asks to double
    before any answer comes back. Only three fit (9,600); the venue must never hold more than the limit
    even if every amendment it received lands."""
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue)
    await engine.start()
    orders = [await resting(engine, venue, f"burst{i}", 20, PRICE) for i in range(5)]
    tasks = [asyncio.ensure_future(engine.amend(amend(f"burst-am{i}", o, 40, PRICE))) for i, o in enumerate(orders)]
    await settle_loop(40)
    assert len(venue.amends) == 3
    assert venue.exposure_if_all_land("BTCUSDT", Side.BUY) * PRICE // 10 // 1000 <= 10_000
    for a in venue.amends:
        a.ack.set()
    outcomes = await asyncio.gather(*tasks)
    refused = [o for o in outcomes if not o.accepted]
    assert len(refused) == 2 and all(o.rejection.code is RejectCode.POSITION_LIMIT for o in refused)
    assert engine.exposure.symbols["BTCUSDT"].pending_buy == 3 * 40 + 2 * 20
    await engine.stop()


AMEND_OPS = st.lists(st.one_of(
    st.tuples(st.just("amend"), st.integers(0, 2), st.integers(10, 50), st.integers(-30, 30)),
    st.tuples(st.just("ack_amend"), st.integers(0, 30), st.booleans()),
    st.tuples(st.just("fill"), st.integers(0, 2), st.integers(1, 30)),
    st.tuples(st.just("halt"),),
), min_size=1, max_size=30)


async def _amend_interleave(btcusdt, ops):
    """Three resting buys of 0.02 (60 steps of an 83-step limit), then amendments, their answers, fills and
    a halt in any order. After every step: if everything the venue holds or has been asked lands, the
    position is within the limit; nothing that adds exposure was written while halted."""
    limit_steps = 83  # 5,000 USDT at 60,000
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue, limit_usdt=5_000)
    await engine.start()
    for i in range(3):
        await resting(engine, venue, f"base{i}", 20, PRICE - 100 - i)
    tasks = []
    for n, op in enumerate(ops):
        kind = op[0]
        if kind == "amend":
            order = venue.placed[op[1]].order
            price = (order.price_ticks or PRICE) + op[3]
            tasks.append(asyncio.ensure_future(engine.amend(amend(f"a{n}", order, op[2], price))))
        elif kind == "ack_amend" and venue.amends:
            pending = venue.amends[op[1] % len(venue.amends)]
            pending.reject = op[2]
            pending.ack.set()
        elif kind == "fill":
            placed = venue.placed[op[1]]
            venue.fill(placed, op[2], placed.price or PRICE)
        elif kind == "halt":
            tasks.append(asyncio.ensure_future(engine.halt("random halt", "hypothesis")))
        await settle_loop(5)
        assert venue.exposure_if_all_land("BTCUSDT", Side.BUY) <= limit_steps, ops[:n + 1]
        assert all(not a.halted_at_write or (a.qty <= a.placed.qty and (a.placed.price is None
                                                                         or a.price <= a.placed.price))
                   for a in venue.amends if not a.done), "an amendment adding exposure was written while halted"
    for _ in range(50):
        for pending in venue.amends:
            pending.ack.set()
        await settle_loop(5)
        if all(t.done() for t in tasks):
            break
    for task in tasks:
        if not task.done():
            task.cancel()
    await engine.settle()
    # Once every answer is in, the order table agrees with the venue about every working order's terms.
    for placed in venue.placed:
        order = engine.orders[placed.order.client_order_id]
        if order.is_open and placed.open:
            assert (order.qty_steps, order.price_ticks) == (placed.qty, placed.price)
    await engine.stop()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=AMEND_OPS)
@example(ops=[("amend", 0, 40, 0), ("amend", 1, 40, 0)])  # two in flight: 40 + 40 + 20 > 83 if not counted
def test_random_interleavings_of_amendments_keep_the_limit_and_the_halt(btcusdt, ops):
    asyncio.run(_amend_interleave(btcusdt, ops))


async def test_amendments_spend_the_order_rate_like_orders(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    order = await resting(engine, venue, "rate", 10)
    engine.rate.limit = 3
    outcomes = [await engine.amend(amend(f"rate-{i}", order, 10 - (i % 2), PRICE - 1000 - i)) for i in range(5)]
    assert [o.accepted for o in outcomes].count(True) <= 3
    assert any(o.rejection and o.rejection.code is RejectCode.RATE_LIMIT for o in outcomes)
    await engine.stop()


async def test_an_amendment_is_checked_against_the_filters_and_only_limit_orders_can_be_amended(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    order = await resting(engine, venue, "flt", 10)
    tiny = await engine.amend(amend("flt-1", order, 10, 0))
    assert tiny.rejection.code is RejectCode.FILTER
    stop = (await engine.submit(OrderRequest("stp", "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, 10,
                                             stop_price_ticks=PRICE - 5000, reduce_only=False,
                                             strategy_id="mom"))).order
    assert stop is not None and stop.is_algo
    refused = await engine.amend(amend("flt-2", stop, 12, PRICE))
    assert refused.rejection.code is RejectCode.INVALID_REQUEST and venue.amends == []
    await engine.stop()


# -- batches ------------------------------------------------------------------------------------
async def test_a_batch_is_one_venue_request_with_one_answer_per_element(btcusdt):
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue)
    await engine.start()
    requests = [buy("bp0", 10, PRICE - 1000), buy("bp1", 10, PRICE - 1010),
                OrderRequest("bp2", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, None, strategy_id="mom"),
                buy("bp3", 10, PRICE - 1020)]
    task = asyncio.ensure_future(engine.submit_batch(requests))
    await settle_loop(40)
    assert venue.batches == ["place"] and len(venue.placed) == 3  # bp2 (no price) never left
    venue.placed[1].reject = True
    for p in venue.placed:
        p.ack.set()
    outcomes = await task
    assert [o.accepted for o in outcomes] == [True, False, False, True]
    assert outcomes[1].rejection.code is RejectCode.VENUE_REJECTED and outcomes[1].order.status is OrderStatus.REJECTED
    assert outcomes[2].rejection.code is RejectCode.INVALID_REQUEST
    assert [o.request_id for o in outcomes] == ["bp0", "bp1", "bp2", "bp3"]
    # A retry of the batch answers from the first time: nothing is sent twice.
    again = await engine.submit_batch(requests)
    assert [o.accepted for o in again] == [True, False, False, True] and len(venue.placed) == 3
    await engine.stop()


async def test_each_batch_element_counts_the_earlier_ones_against_the_limit(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    outcomes = await engine.submit_batch([buy(f"lim{i}", 50, PRICE) for i in range(5)])  # 3,000 USDT each
    assert [o.accepted for o in outcomes] == [True, True, True, False, False]
    assert all(o.rejection.code is RejectCode.POSITION_LIMIT for o in outcomes[3:])
    assert len(venue.placed) == 3
    await engine.stop()


async def test_a_halted_engine_sends_no_batch_and_a_halt_during_the_batch_stops_it(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    release = asyncio.Event()
    engine.risk = SlowRisk(release)
    task = asyncio.ensure_future(engine.submit_batch([buy("hb0", 10), buy("hb1", 10)]))
    await settle_loop()
    halt = asyncio.ensure_future(engine.halt("halt during a batch", "tester"))
    await settle_loop()
    release.set()
    outcomes = await task
    await halt
    assert all(o.rejection.code is RejectCode.HALTED for o in outcomes) and venue.placed == []
    await engine.stop()


async def test_batch_cancel_and_batch_amend_answer_each_element(btcusdt):
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue)
    await engine.start()
    a = await resting(engine, venue, "bc0", 10)
    b = await resting(engine, venue, "bc1", 10, PRICE - 1100)
    task = asyncio.ensure_future(engine.amend_batch([amend("ba0", a, 8, PRICE - 1000),
                                                     amend("ba1", b, 9, PRICE - 1100)]))
    await settle_loop(40)
    assert venue.batches == ["amend"] and len(venue.amends) == 2
    venue.amends[1].reject = True
    for x in venue.amends:
        x.ack.set()
    amended = await task
    assert [o.accepted for o in amended] == [True, False] and (a.qty_steps, b.qty_steps) == (8, 10)
    venue.auto_ack = True
    canceled = await engine.cancel_batch("bc", "BTCUSDT", [a.client_order_id, "cel-nobody-0", b.client_order_id])
    assert venue.batches[-1] == "cancel"
    assert [o.accepted for o in canceled] == [True, False, True]
    assert canceled[1].rejection.code is RejectCode.UNKNOWN_ORDER
    assert a.status is OrderStatus.CANCELED and b.status is OrderStatus.CANCELED
    await engine.stop()


# -- the rest of the parameters: what each order type takes ---------------------------------------
def trailing(rid, **kw):
    fields = {"callback_rate_bps": 100, "strategy_id": "mom"}
    fields.update(kw)
    return OrderRequest(rid, "BTCUSDT", Side.SELL, OrderType.TRAILING_STOP_MARKET, 10, **fields)


@pytest.mark.parametrize("request_, fragment", [
    (trailing("t0", callback_rate_bps=None), "needs a callbackRate"),
    (trailing("t1", callback_rate_bps=5), "0.1 % to 10 %"),
    (trailing("t2", callback_rate_bps=1010), "0.1 % to 10 %"),
    (trailing("t3", callback_rate_bps=105), "steps of 0.1 %"),
    (trailing("t4", stop_price_ticks=PRICE), "no stop price"),
    (OrderRequest("g0", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, PRICE, TimeInForce.GTD, strategy_id="m"),
     "needs goodTillDate"),
    (OrderRequest("g1", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, PRICE, TimeInForce.GTD, strategy_id="m",
                  good_till_ms=NOW_MS + 599_000), "600 s ahead"),
    (OrderRequest("g2", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, PRICE, strategy_id="m",
                  good_till_ms=NOW_MS + 3_600_000), "for GTD orders only"),
    (OrderRequest("p0", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, PRICE, strategy_id="m",
                  price_match=PriceMatch.OPPONENT), "must not carry one"),
    (OrderRequest("p1", "BTCUSDT", Side.BUY, OrderType.MARKET, 10, strategy_id="m",
                  price_match=PriceMatch.QUEUE), "not MARKET"),
    (OrderRequest("c0", "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, 10, stop_price_ticks=PRICE - 100,
                  close_position=True, strategy_id="m"), "send no quantity"),
    (OrderRequest("c1", "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, 0, stop_price_ticks=PRICE - 100,
                  close_position=True, reduce_only=True, strategy_id="m"), "closePosition and reduceOnly"),
    (OrderRequest("c2", "BTCUSDT", Side.SELL, OrderType.LIMIT, 0, PRICE, close_position=True, strategy_id="m"),
     "STOP_MARKET and TAKE_PROFIT_MARKET"),
    (OrderRequest("w0", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, PRICE, working_type=WorkingType.MARK_PRICE,
                  strategy_id="m"), "conditional orders only"),
])
async def test_each_order_type_takes_only_its_parameters(btcusdt, request_, fragment):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    outcome = await engine.submit(request_)
    assert not outcome.accepted and outcome.rejection.code is RejectCode.INVALID_REQUEST
    assert fragment in outcome.rejection.message
    assert venue.placed == []
    await engine.stop()


async def test_valid_uses_of_every_parameter_reach_the_venue_on_the_order_record(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    gtd = await engine.submit(OrderRequest("v0", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, PRICE - 100,
                                           TimeInForce.GTD, strategy_id="m", good_till_ms=NOW_MS + 3_600_000,
                                           stp_mode=SelfTradePrevention.EXPIRE_MAKER))
    matched = await engine.submit(OrderRequest("v1", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, strategy_id="m",
                                               price_match=PriceMatch.QUEUE_5))
    trail = await engine.submit(trailing("v2", activation_price_ticks=PRICE + 100, callback_rate_bps=250,
                                         working_type=WorkingType.MARK_PRICE, price_protect=True))
    assert gtd.accepted and matched.accepted and trail.accepted, (gtd, matched, trail)
    sent = [p.order for p in venue.placed]
    assert sent[0].good_till_ms == NOW_MS + 3_600_000 and sent[0].stp_mode is SelfTradePrevention.EXPIRE_MAKER
    assert sent[1].price_match is PriceMatch.QUEUE_5 and sent[1].price_ticks is None
    assert sent[2].is_algo and sent[2].callback_rate_bps == 250 and sent[2].activation_price_ticks == PRICE + 100
    assert sent[2].working_type is WorkingType.MARK_PRICE and sent[2].price_protect
    # The record survives a restart with every field.
    for order in sent:
        assert order_to_json(order_from_json(order_to_json(order))) == order_to_json(order)
    await engine.stop()


async def test_close_position_is_sized_by_the_position_and_refused_when_it_would_not_reduce(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    close = OrderRequest("cp0", "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, 0, stop_price_ticks=PRICE - 100,
                         close_position=True, strategy_id="m")
    flat = await engine.submit(close)
    assert flat.rejection.code is RejectCode.FILTER and venue.placed == []
    engine.positions["BTCUSDT"].qty_steps = 30
    long = await engine.submit(dataclasses.replace(close, request_id="cp1"))
    assert long.accepted and long.order.close_position and long.order.qty_steps == 30
    # A halt refuses a strategy's reduce-only orders too (only the flatten's pass): closePosition included.
    engine.halt_control.halted = True
    halted = await engine.submit(dataclasses.replace(close, request_id="cp2"))
    assert halted.rejection.code is RejectCode.HALTED and len(venue.placed) == 1
    await engine.stop()


# -- algo (conditional) orders ----------------------------------------------------------------------
async def test_a_conditional_order_is_tracked_through_its_trigger_to_the_fills_of_the_actual_order(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    engine.positions["BTCUSDT"].qty_steps = venue.positions_steps["BTCUSDT"] = 10
    outcome = await engine.submit(OrderRequest("algo0", "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, 10,
                                               stop_price_ticks=PRICE - 1000, strategy_id="m"))
    order = outcome.order
    assert outcome.accepted and order.is_algo and not order.triggered
    cid = order.client_order_id
    engine.on_venue_event(VenueOrderEvent("BTCUSDT", cid, 0, Execution.NEW, Side.SELL, algo_id=777))
    engine.on_venue_event(VenueOrderEvent("BTCUSDT", cid, 555_000, Execution.TRIGGERED, Side.SELL, algo_id=777,
                                          order_status="TRIGGERED"))
    await engine.settle()
    assert order.triggered and order.venue_order_id == 555_000 and order.algo_id == 777
    assert order.status is OrderStatus.SUBMITTED
    # The actual order's fills, named by its own order id only.
    engine.on_venue_event(VenueOrderEvent("BTCUSDT", "", 555_000, Execution.TRADE, Side.SELL, 10, PRICE - 1001,
                                          trade_id=1, order_status="FILLED"))
    await engine.settle()
    assert order.status is OrderStatus.FILLED and engine.positions["BTCUSDT"].qty_steps == 0
    await engine.stop()


async def test_a_conditional_order_not_yet_triggered_is_cancelled_at_the_algo_api(btcusdt):
    calls = []

    class AlgoVenue(ScriptedVenue):
        async def cancel_algo(self, symbol, client_order_id):
            calls.append(("algo", client_order_id))
            return await self.cancel(symbol, client_order_id)

    venue = AlgoVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    order = (await engine.submit(trailing("algo1"))).order
    assert (await engine.cancel("algo1-c", "BTCUSDT", order.client_order_id)).accepted
    assert calls == [("algo", order.client_order_id)] and order.status is OrderStatus.CANCELED
    await engine.stop()


# -- the Execution API (gRPC over a real socket) ---------------------------------------------------
@pytest.fixture
async def grpc_engine(btcusdt):
    import grpc
    from celeris.api.v1 import execution_pb2_grpc
    from celeris.execution.servicer import ExecutionServicer
    from celeris.transport.bus import InProcessBus

    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    server = grpc.aio.server()
    execution_pb2_grpc.add_ExecutionServicer_to_server(ExecutionServicer(engine, InProcessBus()), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield execution_pb2_grpc.ExecutionStub(channel), engine, venue
    await server.stop(None)
    await engine.stop()


def _dec(mantissa, scale):
    from celeris.api.v1 import common_pb2

    return common_pb2.Decimal(mantissa=mantissa, scale=scale)


async def test_the_execution_api_carries_every_parameter_amendments_and_batches(grpc_engine):
    from celeris.api.v1 import common_pb2
    from celeris.api.v1 import execution_pb2 as pb

    stub, engine, venue = grpc_engine
    limit = pb.SubmitOrderRequest(request_id="g-1", symbol="BTCUSDT", side=common_pb2.SIDE_BUY,
                                  type=pb.ORDER_TYPE_LIMIT, time_in_force=pb.TIME_IN_FORCE_GTD,
                                  quantity=_dec(10, 3), price=_dec(5990000, 2), good_till_ms=NOW_MS + 3_600_000,
                                  stp_mode=pb.SELF_TRADE_PREVENTION_EXPIRE_TAKER, strategy_id="api")
    ack = await stub.SubmitOrder(limit)
    assert ack.accepted, ack.error
    sent = venue.placed[-1].order
    assert sent.time_in_force is TimeInForce.GTD and sent.good_till_ms == NOW_MS + 3_600_000
    assert sent.stp_mode is SelfTradePrevention.EXPIRE_TAKER
    trail = await stub.SubmitOrder(pb.SubmitOrderRequest(
        request_id="g-2", symbol="BTCUSDT", side=common_pb2.SIDE_SELL, type=pb.ORDER_TYPE_TRAILING_STOP_MARKET,
        quantity=_dec(10, 3), callback_rate_bps=30, activation_price=_dec(6100000, 2),
        working_type=pb.WORKING_TYPE_MARK_PRICE, price_protect=True, strategy_id="api"))
    assert trail.accepted, trail.error
    assert venue.placed[-1].order.callback_rate_bps == 30 and venue.placed[-1].order.is_algo
    amended = await stub.AmendOrder(pb.AmendOrderRequest(request_id="g-3", symbol="BTCUSDT",
                                                         client_order_id=ack.order.client_order_id,
                                                         quantity=_dec(12, 3), price=_dec(5990100, 2)))
    assert amended.accepted and amended.order.quantity.mantissa == 12
    batch = await stub.SubmitBatch(pb.SubmitBatchRequest(request_id="g-4", orders=[
        pb.SubmitOrderRequest(request_id="g-5", symbol="BTCUSDT", side=common_pb2.SIDE_BUY, type=pb.ORDER_TYPE_LIMIT,
                              quantity=_dec(10, 3), price=_dec(5980000, 2), strategy_id="api"),
        pb.SubmitOrderRequest(request_id="g-6", symbol="BTCUSDT", side=common_pb2.SIDE_BUY, type=pb.ORDER_TYPE_LIMIT,
                              quantity=_dec(10, 3), price_match=pb.PRICE_MATCH_QUEUE, price=_dec(5980000, 2),
                              strategy_id="api")]))
    assert [a.accepted for a in batch.acks] == [True, False] and batch.request_id == "g-4"
    assert batch.acks[1].error.code == "INVALID_REQUEST"
    canceled = await stub.CancelBatch(pb.CancelBatchRequest(request_id="g-7", symbol="BTCUSDT", client_order_ids=[
        ack.order.client_order_id, batch.acks[0].order.client_order_id]))
    assert [a.accepted for a in canceled.acks] == [True, True]
    unknown_enum = await stub.SubmitOrder(pb.SubmitOrderRequest(
        request_id="g-8", symbol="BTCUSDT", side=common_pb2.SIDE_BUY, type=pb.ORDER_TYPE_LIMIT, quantity=_dec(10, 3),
        price=_dec(5980000, 2), price_match=99))
    assert not unknown_enum.accepted and unknown_enum.error.code == "INVALID_REQUEST"


async def test_a_batch_counts_five_on_the_venue_10_second_window_whatever_its_size(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue, venue_orders_per_10s=9)
    await engine.start()
    first = await engine.submit_batch([buy("w0", 1, PRICE - 1000)])
    assert first[0].accepted and engine.venue_rate[0].room() == 4  # 5 taken for one order
    second = await engine.submit_batch([buy("w1", 1, PRICE - 1000), buy("w2", 1, PRICE - 1000)])
    assert all(o.rejection.code is RejectCode.RATE_LIMIT for o in second) and len(venue.placed) == 1
    await engine.stop()
