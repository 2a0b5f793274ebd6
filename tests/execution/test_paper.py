"""Simulation mode: the paper venue fills against live books like the venue would."""

import asyncio
from fractions import Fraction

import pytest

from celeris.domain.book import BookState
from celeris.domain.clock import TestClock
from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.modes import Mode
from celeris.domain.orders import OrderStatus
from celeris.domain.values import MONEY_SCALE, Side
from celeris.execution.engine import ExecutionEngine
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.domain.messages import RejectCode
from celeris.execution.paper import PaperVenue
from celeris.domain.messages import BookUpdate, TradeUpdate
from tests.execution.conftest import request, wait_for


@pytest.fixture
def setup(btcusdt):
    clock = TestClock()
    instruments = {"BTCUSDT": btcusdt}
    sleeps = []

    async def fake_sleep(s):
        sleeps.append(s)

    paper = PaperVenue(instruments, clock, latency_ms=7, sleep=fake_sleep)
    published = []
    engine = ExecutionEngine(ExecutionConfig(("BTCUSDT",), PositionLimits(0, 1000)), instruments, clock,
                             {Mode.SIMULATION: paper}, lambda t, m: published.append((t, m)), mode=Mode.SIMULATION)
    # A book: bids 60000.0 (2.000) 59999.9 (1.000); asks 60000.1 (0.500) 60000.2 (3.000)
    paper.on_book(BookUpdate("BTCUSDT", 1, BookState.LIVE, True, [(600000, 2000), (599999, 1000)],
                             [(600001, 500), (600002, 3000)], 1, 0, 0))
    return engine, paper, published, sleeps, btcusdt


def trade(price, qty, buyer_is_maker):
    return TradeUpdate("BTCUSDT", 1, 1, price, qty, buyer_is_maker, 0, 0)


async def test_market_order_walks_the_visible_levels_as_taker(setup):
    engine, paper, published, sleeps, ins = setup
    await engine.start()
    outcome = await engine.submit(request(order_type=OrderType.MARKET, qty="0.800", instrument=ins))
    await asyncio.sleep(0)
    order = outcome.order
    assert await wait_for(lambda: order.status is OrderStatus.FILLED)
    fills = [m for t, m in published if t == "fills.BTCUSDT"]
    assert [(f.price_ticks, f.qty_steps, f.is_maker) for f in fills] == [(600001, 500, False), (600002, 300, False)]
    # taker fee 0.04 % of (60000.1 x 0.5 + 60000.2 x 0.3)
    expected = (Fraction(6000010, 100) * Fraction(1, 2) + Fraction(6000020, 100) * Fraction(3, 10)) * Fraction(4, 10000)
    assert sum(f.commission for f in fills) == pytest.approx(expected * 10**MONEY_SCALE, abs=2)
    assert 0.007 in sleeps  # the latency model delayed the placement


async def test_resting_order_waits_for_the_queue_ahead(setup):
    engine, paper, published, _, ins = setup
    await engine.start()
    outcome = await engine.submit(request(price="60000.00", qty="0.300", instrument=ins))
    order = outcome.order
    assert order.status is OrderStatus.SUBMITTED
    paper.on_trade(trade(600000, 1500, True))  # sellers hit the bid: 2.000 ahead of us, 1.5 consumed
    await asyncio.sleep(0)
    assert order.filled_steps == 0
    paper.on_trade(trade(600000, 600, True))  # 0.5 left ahead, 0.1 reaches us
    assert await wait_for(lambda: order.filled_steps == 100)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    # A trade through our price fills at most its own quantity (the taker's size), never the whole rest
    # (this test once asserted the opposite: 0.010 through a 0.200 remainder filled all of it).
    paper.on_trade(trade(599999, 10, True))
    assert await wait_for(lambda: order.filled_steps == 110)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    paper.on_book(BookUpdate("BTCUSDT", 2, BookState.LIVE, False, [], [(600000, 400)], 2, 0, 0))
    assert await wait_for(lambda: order.status is OrderStatus.FILLED)  # the ask moved through our bid
    fills = [m for t, m in published if t == "fills.BTCUSDT"]
    assert all(f.is_maker for f in fills) and sum(f.qty_steps for f in fills) == 300


async def test_book_moving_through_a_resting_order_fills_it(setup):
    engine, paper, _, _, ins = setup
    await engine.start()
    outcome = await engine.submit(request(side=Side.SELL, price="60000.50", qty="0.100", instrument=ins))
    paper.on_book(BookUpdate("BTCUSDT", 2, BookState.LIVE, False, [(600005, 700)], [], 2, 0, 0))
    assert await wait_for(lambda: outcome.order.status is OrderStatus.FILLED)


async def test_tif_rules_and_no_book(setup):
    engine, paper, _, _, ins = setup
    await engine.start()
    gtx = await engine.submit(request(price="60000.10", tif=TimeInForce.GTX, instrument=ins))
    assert gtx.rejection.venue_code == -5022
    fok = await engine.submit(request(price="60000.10", qty="1.000", tif=TimeInForce.FOK, instrument=ins))
    assert fok.rejection.venue_code == -5021
    ioc = await engine.submit(request(price="60000.10", qty="1.000", tif=TimeInForce.IOC, instrument=ins))
    assert await wait_for(lambda: ioc.order.status is OrderStatus.EXPIRED)
    assert ioc.order.filled_steps == 500
    paper.on_book(BookUpdate("BTCUSDT", 3, BookState.STALE, False, [], [], 3, 0, 0))
    stale = await engine.submit(request(order_type=OrderType.MARKET, instrument=ins))
    assert not stale.accepted and "no live book" in stale.rejection.message


async def test_cancel_and_reduce_only_in_paper(setup):
    engine, paper, _, _, ins = setup
    await engine.start()
    resting = await engine.submit(request(price="59990.00", instrument=ins))
    cancel = await engine.cancel("c", "BTCUSDT", resting.order.client_order_id)
    assert cancel.accepted and resting.order.status is OrderStatus.CANCELED
    reduce = await engine.submit(request(side=Side.SELL, order_type=OrderType.MARKET, reduce_only=True,
                                         instrument=ins))
    assert not reduce.accepted and reduce.rejection.venue_code == -2022


async def test_mode_switch_routes_orders_to_the_right_venue(setup, btcusdt):
    engine, paper, _, _, ins = setup
    await engine.start()
    await engine.set_mode(Mode.OBSERVATION)
    assert (await engine.submit(request(order_type=OrderType.MARKET, instrument=ins))).rejection.code \
        is RejectCode.OBSERVATION_MODE
    await engine.set_mode(Mode.SIMULATION)
    outcome = await engine.submit(request(order_type=OrderType.MARKET, instrument=ins))
    assert outcome.accepted and engine.order_mode[outcome.order.client_order_id] is Mode.SIMULATION


async def test_the_write_stamp_is_the_injected_clock_not_the_wall_clock(setup):
    # A backtest runs on the capture's event clock: the paper venue's "socket write" time must be that
    # clock's, or latency measured from it (and everything downstream) depends on when the run happened.
    from celeris.domain.orders import Order
    _engine, paper, _published, _sleeps, btcusdt = setup
    paper.clock.advance(ms=1234)
    stamps = []
    order = Order("cel-w-1", "BTCUSDT", Side.BUY, OrderType.LIMIT, btcusdt.qty("0.010"), btcusdt.price("59000.0"))
    await paper.place(order, on_write=stamps.append)
    assert stamps == [paper.clock.now_ns()]


def test_the_venue_refuses_the_order_past_the_open_orders_limit_as_binance_does(btcusdt):
    """MAX_NUM_ORDERS (200 on BTCUSDT): the 201st open order is refused with -2025; a closed one frees a place."""
    from celeris.domain.orders import Order
    from celeris.venues.binance import errors

    assert btcusdt.max_num_orders == 200  # from the bundled exchangeInfo's filter
    paper = PaperVenue({"BTCUSDT": btcusdt}, TestClock(), latency_ms=0)
    paper.on_book(BookUpdate("BTCUSDT", 1, BookState.LIVE, True, [(600000, 2000)], [(600001, 500)], 1, 0, 0))

    def bid(i, price=599_000):
        return paper.place_now(Order(f"o-{i}", "BTCUSDT", Side.BUY, OrderType.LIMIT, 1, price - i % 50))

    for i in range(200):
        bid(i)
    with pytest.raises(errors.OrderRejected) as err:
        bid(200)
    assert (err.value.code, err.value.msg) == (-2025, "Reach max open order limit.")
    with pytest.raises(errors.OrderRejected):  # a market order too: the count is checked before matching
        paper.place_now(Order("m", "BTCUSDT", Side.BUY, OrderType.MARKET, 1, None))
    paper.cancel_now("o-0")
    assert bid(201).status == "NEW"
    with pytest.raises(errors.OrderRejected):
        bid(202)
    paper.on_trade(TradeUpdate("BTCUSDT", 2, 2, 598_000, 10_000, True, 0, 0))  # fills every bid: none open
    assert bid(203).status == "NEW"


async def test_an_order_past_the_open_orders_limit_reaches_the_strategy_as_a_refusal(btcusdt):
    import dataclasses

    ins = dataclasses.replace(btcusdt, max_num_orders=3)  # the instrument's limit, not a constant
    clock = TestClock()
    paper = PaperVenue({"BTCUSDT": ins}, clock, latency_ms=0)
    engine = ExecutionEngine(ExecutionConfig(("BTCUSDT",), PositionLimits(0, 1000)), {"BTCUSDT": ins}, clock,
                             {Mode.SIMULATION: paper}, lambda t, m: None, mode=Mode.SIMULATION)
    paper.on_book(BookUpdate("BTCUSDT", 1, BookState.LIVE, True, [(600000, 2000)], [(600001, 500)], 1, 0, 0))
    await engine.start()
    outcomes = [await engine.submit(request(price="59990.00", qty="0.001", instrument=ins)) for _ in range(4)]
    assert [o.accepted for o in outcomes] == [True, True, True, False]
    refusal = outcomes[3].rejection
    assert refusal.code is RejectCode.VENUE_REJECTED and refusal.venue_code == -2025
    assert refusal.message == "Reach max open order limit."
