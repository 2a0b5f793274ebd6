"""The paper venue's order surface behaves like the live venue's: amendments, batches, conditional and
trailing orders with their triggers, through execution in simulation mode — and one sequence of them
gives the same answers on paper and on the simulator."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from celeris.domain.book import BookState
from celeris.domain.clock import TestClock
from celeris.domain.instruments import OrderType, PriceMatch, TimeInForce, WorkingType
from celeris.domain.messages import AmendRequest, BookUpdate, OrderRequest, RejectCode, TradeUpdate
from celeris.domain.modes import Mode
from celeris.domain.orders import OrderStatus
from celeris.domain.values import Side
from celeris.execution.engine import ExecutionEngine
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.execution.paper import PaperVenue
from celeris.venues.binance import errors

from tests.execution.conftest import Harness, wait_for
from tests.sim.conftest import live_venue  # noqa: F401


@pytest.fixture
async def paper_engine(btcusdt):
    clock = TestClock(10**18)

    async def no_sleep(_s):
        return None

    paper = PaperVenue({"BTCUSDT": btcusdt}, clock, latency_ms=0, sleep=no_sleep)
    # bids 60000.0 (2.000) 59999.9 (1.000); asks 60000.1 (0.500) 60000.2 (3.000)
    paper.on_book(BookUpdate("BTCUSDT", 1, BookState.LIVE, True, [(600000, 2000), (599999, 1000)],
                             [(600001, 500), (600002, 3000)], 1, 0, 0))
    engine = ExecutionEngine(ExecutionConfig(("BTCUSDT",), PositionLimits(0, 1000)), {"BTCUSDT": btcusdt}, clock,
                             {Mode.SIMULATION: paper}, lambda t, m: None, mode=Mode.SIMULATION)
    await engine.start()
    yield engine, paper
    await engine.stop()


def limit(rid, side, qty, price, tif=TimeInForce.GTC):
    return OrderRequest(rid, "BTCUSDT", side, OrderType.LIMIT, qty, price, tif, strategy_id="paper")


def trade(price, qty, buyer_is_maker):
    return TradeUpdate("BTCUSDT", 1, 1, price, qty, buyer_is_maker, 0, 0)


async def test_an_amended_order_takes_its_new_terms_and_trades_if_its_new_price_crosses(paper_engine):
    engine, paper = paper_engine
    order = (await engine.submit(limit("am", Side.BUY, 100, 599990))).order
    up = await engine.amend(AmendRequest("am-1", "BTCUSDT", order.client_order_id, 200, 599995))
    await engine.settle()
    assert up.accepted and (order.qty_steps, order.price_ticks) == (200, 599995)
    assert (paper.orders[order.client_order_id].qty, paper.orders[order.client_order_id].price) == (200, 599995)
    same = await engine.amend(AmendRequest("am-2", "BTCUSDT", order.client_order_id, 200, 599995))
    assert same.rejection.venue_code == -5027
    cross = await engine.amend(AmendRequest("am-3", "BTCUSDT", order.client_order_id, 200, 600001))
    await engine.settle()
    assert cross.accepted
    assert await wait_for(lambda: order.status is OrderStatus.FILLED)
    assert paper.account_positions["BTCUSDT"].qty_steps == 200


async def test_a_post_only_amendment_that_would_trade_is_refused(paper_engine):
    engine, paper = paper_engine
    order = (await engine.submit(limit("gtx", Side.BUY, 100, 599990, TimeInForce.GTX))).order
    refused = await engine.amend(AmendRequest("gtx-1", "BTCUSDT", order.client_order_id, 100, 600002))
    assert refused.rejection.venue_code == -5022 and order.price_ticks == 599990
    assert order.status is OrderStatus.SUBMITTED and paper.orders[order.client_order_id].price == 599990


async def test_a_paper_batch_answers_each_element_and_a_batch_cancel_clears_them(paper_engine):
    engine, paper = paper_engine
    outcomes = await engine.submit_batch([limit("b0", Side.BUY, 10, 599900),
                                          limit("b1", Side.BUY, 10, 600002, TimeInForce.GTX),
                                          limit("b2", Side.BUY, 10, 599800)])
    assert [o.accepted for o in outcomes] == [True, False, True] and outcomes[1].rejection.venue_code == -5022
    canceled = await engine.cancel_batch("bc", "BTCUSDT", [outcomes[0].order.client_order_id,
                                                          outcomes[2].order.client_order_id])
    await engine.settle()
    assert all(c.accepted for c in canceled) and engine.open_orders() == []


async def test_a_stop_market_waits_for_the_last_price_then_fills_as_its_actual_order(paper_engine):
    engine, paper = paper_engine
    paper.on_trade(trade(600000, 1, True))  # the last price: 60000.0
    outcome = await engine.submit(OrderRequest("stop", "BTCUSDT", Side.BUY, OrderType.STOP_MARKET, 100,
                                               stop_price_ticks=600001, strategy_id="paper"))
    order = outcome.order
    assert outcome.accepted and order.is_algo and order.algo_id
    await engine.settle()
    assert order.status is OrderStatus.SUBMITTED and not order.triggered and paper.orders == {}
    paper.on_trade(trade(600001, 1, False))  # a buyer took 60000.1: the trigger is reached
    await engine.settle()
    assert order.triggered and order.venue_order_id == paper.orders[order.client_order_id].venue_order_id
    assert order.status is OrderStatus.FILLED and paper.account_positions["BTCUSDT"].qty_steps == 100


async def test_a_stop_that_would_trigger_at_once_is_refused_as_the_venue_refuses_it(paper_engine):
    engine, paper = paper_engine
    paper.on_trade(trade(600000, 1, True))
    outcome = await engine.submit(OrderRequest("now", "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, 100,
                                               stop_price_ticks=600005, strategy_id="paper"))
    assert outcome.rejection.venue_code == -2021 and paper.algo == {}


async def test_a_trailing_stop_activates_follows_the_best_price_and_fires_on_the_callback(paper_engine):
    engine, paper = paper_engine
    paper.account_positions["BTCUSDT"].qty_steps = 100  # long 0.1 to protect
    engine.positions["BTCUSDT"].qty_steps = 100
    paper.on_trade(trade(600000, 1, True))
    outcome = await engine.submit(OrderRequest("trail", "BTCUSDT", Side.SELL, OrderType.TRAILING_STOP_MARKET, 100,
                                               reduce_only=True, callback_rate_bps=100,
                                               activation_price_ticks=606000, strategy_id="paper"))
    order = outcome.order
    assert outcome.accepted
    paper.on_trade(trade(601000, 1, False))  # below activation: a 1 % fall from here does nothing
    paper.on_trade(trade(594000, 1, True))
    await engine.settle()
    assert not order.triggered
    paper.on_trade(trade(606000, 1, False))  # activated
    paper.on_trade(trade(610000, 1, False))  # new best
    paper.on_trade(trade(604000, 1, True))  # 0.98 % below the best: not yet
    await engine.settle()
    assert not order.triggered
    paper.on_trade(trade(603900, 1, True))  # 1.0 % below 61,000.0: fires, sells into the bids
    await engine.settle()
    assert order.triggered and order.status is OrderStatus.FILLED
    assert paper.account_positions["BTCUSDT"].qty_steps == 0


async def test_a_mark_price_stop_watches_the_book_and_a_close_position_closes_what_is_there(paper_engine):
    engine, paper = paper_engine
    paper.account_positions["BTCUSDT"].qty_steps = 70
    engine.positions["BTCUSDT"].qty_steps = 70
    outcome = await engine.submit(OrderRequest("cp", "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, 0,
                                               stop_price_ticks=599000, working_type=WorkingType.MARK_PRICE,
                                               close_position=True, strategy_id="paper"))
    order = outcome.order
    assert outcome.accepted and order.qty_steps == 70
    paper.on_book(BookUpdate("BTCUSDT", 2, BookState.LIVE, True, [(598000, 2000)], [(598010, 500)], 2, 0, 0))
    await engine.settle()
    assert order.triggered and order.status is OrderStatus.FILLED
    assert paper.account_positions["BTCUSDT"].qty_steps == 0


async def test_a_triggered_order_the_book_refuses_ends_the_algo_order_unfilled(paper_engine):
    engine, paper = paper_engine
    paper.on_trade(trade(600000, 1, True))
    outcome = await engine.submit(OrderRequest("ro", "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, 10,
                                               stop_price_ticks=599000, reduce_only=False, strategy_id="paper"))
    order = outcome.order
    paper.account_positions["BTCUSDT"].qty_steps = 0
    order.reduce_only = True  # as if the position it reduced closed before the trigger
    paper.algo[order.client_order_id].order.reduce_only = True
    paper.on_trade(trade(598000, 1, True))
    await engine.settle()
    assert order.status is OrderStatus.EXPIRED and paper.algo[order.client_order_id].status == "REJECTED"
    assert engine.stats.illegal_transitions == 0


@pytest.mark.parametrize("match, side, price", [(PriceMatch.OPPONENT, Side.BUY, 600001),
                                                (PriceMatch.OPPONENT_5, Side.BUY, 600002),  # 2 levels: the last
                                                (PriceMatch.QUEUE, Side.BUY, 600000),
                                                (PriceMatch.QUEUE_5, Side.SELL, 600002),
                                                (PriceMatch.OPPONENT, Side.SELL, 600000)])
async def test_a_price_match_order_is_priced_from_the_book_at_arrival_not_sent_as_a_market_order(
        paper_engine, match, side, price):
    engine, paper = paper_engine
    outcome = await engine.submit(OrderRequest("pm", "BTCUSDT", side, OrderType.LIMIT, 100, strategy_id="paper",
                                               price_match=match))
    await engine.settle()
    resting = paper.orders[outcome.order.client_order_id]
    assert outcome.accepted and resting.price == price
    opposite = match in (PriceMatch.OPPONENT, PriceMatch.OPPONENT_5)
    # Against the opposite best it trades as taker at that price only; a queue price rests.
    assert resting.filled == (100 if opposite else 0)
    assert {f.price_ticks for f in paper.fills} <= {price}


async def test_gtd_orders_expire_at_their_date_on_the_venue_clock(paper_engine):
    engine, paper = paper_engine
    now_ms = paper.clock.now_ns() // 1_000_000
    gtd = OrderRequest("gtd", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, 599000, TimeInForce.GTD, strategy_id="paper",
                       good_till_ms=now_ms + 700_000)
    order = (await engine.submit(gtd)).order
    paper.on_trade(trade(600000, 1, True))
    await engine.settle()
    assert order.status is OrderStatus.SUBMITTED
    paper.clock.advance(ms=700_000)
    paper.on_trade(trade(600000, 1, True))
    await engine.settle()
    assert order.status is OrderStatus.EXPIRED and paper.orders[order.client_order_id].status == "EXPIRED"


async def test_a_post_only_amendment_that_would_trade_cancels_the_order_as_at_the_venue(paper_engine):
    """Binance: "the order will be cancelled by the amendment" (post-only, new price would trade at once)."""
    engine, paper = paper_engine
    order = (await engine.submit(limit("gtx-am", Side.BUY, 100, 599990, TimeInForce.GTX))).order
    refused = await engine.amend(AmendRequest("gtx-am-1", "BTCUSDT", order.client_order_id, 100, 600001))
    await engine.settle()
    assert not refused.accepted and refused.rejection.venue_code == -5022
    assert order.status is OrderStatus.CANCELED and paper.orders[order.client_order_id].status == "CANCELED"
    assert engine.stats.illegal_transitions == 0


async def test_an_amendment_to_no_more_than_the_fill_cancels_the_partially_filled_order(paper_engine):
    engine, paper = paper_engine
    order = (await engine.submit(limit("pf-am", Side.BUY, 1000, 600001))).order  # takes the 0.500 at 60000.1
    await engine.settle()
    assert paper.orders[order.client_order_id].filled == 500
    # Execution never sends an amendment the venue would turn into a cancel: it refuses it itself.
    refused = await engine.amend(AmendRequest("pf-am-1", "BTCUSDT", order.client_order_id, 500, 599990))
    assert not refused.accepted and refused.rejection.code is RejectCode.INVALID_REQUEST
    assert order.status is OrderStatus.PARTIALLY_FILLED
    # Sent anyway (another client of the venue would), the paper venue cancels it, as the venue does.
    with pytest.raises(errors.OrderRejected):
        paper.amend_now(order, 500, 599990)
    await engine.settle()
    assert order.status is OrderStatus.CANCELED and paper.orders[order.client_order_id].status == "CANCELED"
    assert engine.stats.illegal_transitions == 0


async def test_a_gtd_date_with_milliseconds_expires_at_its_whole_second_as_at_the_venue(paper_engine):
    """The venue keeps whole seconds of goodTillDate (it answers and expires at them): so does paper."""
    engine, paper = paper_engine
    now_ms = paper.clock.now_ns() // 1_000_000 // 1000 * 1000
    paper.clock.advance(ms=now_ms + 1000 - paper.clock.now_ns() // 1_000_000)  # on a whole second
    now_ms += 1000
    gtd = OrderRequest("gtd-ms", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, 599000, TimeInForce.GTD,
                       strategy_id="paper", good_till_ms=now_ms + 700_900)
    order = (await engine.submit(gtd)).order
    paper.clock.advance(ms=700_000)
    paper.on_trade(trade(600000, 1, True))
    await engine.settle()
    assert order.status is OrderStatus.EXPIRED


# -- paper = venue -------------------------------------------------------------------------------
async def _sequence(engine, ins, bid, ask):
    """The same steps on either venue; what each answered (accepted, the venue's code) and where it ended."""
    answers = []

    def note(label, outcome):
        answers.append((label, outcome.accepted, outcome.rejection.venue_code if outcome.rejection else 0))

    far = bid - 2_000
    first = await engine.submit(limit("e1", Side.BUY, ins.qty("0.010"), far))
    note("place", first)
    note("amend", await engine.amend(AmendRequest("e2", "BTCUSDT", first.order.client_order_id, ins.qty("0.020"),
                                                  far - 10)))
    note("same", await engine.amend(AmendRequest("e3", "BTCUSDT", first.order.client_order_id, ins.qty("0.020"),
                                                 far - 10)))
    batch = await engine.submit_batch([limit("e5", Side.BUY, ins.qty("0.010"), far - 20),
                                       limit("e6", Side.BUY, ins.qty("0.010"), ask + 50, TimeInForce.GTX),
                                       limit("e7", Side.BUY, ins.qty("0.010"), far - 30)])
    for i, outcome in enumerate(batch):
        note(f"batch{i}", outcome)
    note("trail", await engine.submit(OrderRequest("e8", "BTCUSDT", Side.SELL, OrderType.TRAILING_STOP_MARKET,
                                                   ins.qty("0.010"), callback_rate_bps=500, strategy_id="paper")))
    await asyncio.sleep(0.05)
    await engine.settle()
    open_ids = [o.client_order_id for o in engine.open_orders() if not o.is_algo]
    for outcome in await engine.cancel_batch("e9", "BTCUSDT", open_ids):
        note("cancel", outcome)
    for order in [o for o in engine.open_orders() if o.is_algo]:
        note("cancel-algo", await engine.cancel(f"e10-{order.client_order_id}", "BTCUSDT", order.client_order_id))
    await asyncio.sleep(0.05)
    await engine.settle()
    assert await wait_for(lambda: not engine.open_orders(), timeout=5), engine.open_orders()
    summary = {engine.request_of[cid]: (o.status.value, o.qty_steps, o.filled_steps)
               for cid, o in engine.orders.items()}
    return answers, summary


async def test_the_same_amend_batch_and_algo_sequence_answers_the_same_on_paper_and_on_the_venue(live_venue):  # noqa: F811
    live = await Harness(live_venue).start()
    ins = live.ins()
    try:
        bid, ask = live.best(True), live.best(False)
        venue_result = await _sequence(live.engine, ins, bid, ask)
        bids, asks = live_venue.engine.books["BTCUSDT"].depth(20)
        clock = TestClock(10**18)

        async def no_sleep(_s):
            return None

        paper = PaperVenue({"BTCUSDT": ins}, clock, latency_ms=0, sleep=no_sleep)
        paper.on_book(BookUpdate("BTCUSDT", 1, BookState.LIVE, True, bids, asks, 1, 0, 0))
        engine = ExecutionEngine(ExecutionConfig(("BTCUSDT",), PositionLimits(0, 1000)), {"BTCUSDT": ins}, clock,
                                 {Mode.SIMULATION: paper}, lambda t, m: None, mode=Mode.SIMULATION)
        await engine.start()
        paper_result = await _sequence(engine, ins, bid, ask)
        await engine.stop()
    finally:
        await live.stop()
    assert venue_result[0] == paper_result[0]
    assert ("same", False, -5027) in venue_result[0] and ("batch1", False, -5022) in venue_result[0]
    assert venue_result[1] == paper_result[1]


async def test_the_paper_venue_refuses_to_amend_a_non_limit_order_with_binances_code(paper_engine):
    engine, paper = paper_engine
    order = (await engine.submit(limit("ioc-am", Side.BUY, 10, 599990, TimeInForce.GTC))).order
    paper.orders[order.client_order_id].order = dataclasses.replace(order, order_type=OrderType.MARKET)
    with pytest.raises(errors.OrderRejected) as refused:
        paper.amend_now(order, 20, 599990)
    assert refused.value.code == -5025
