"""Execution's memory stays bounded: closed orders are dropped after their retention, and dropping them
never lets an order be placed twice or a late event be taken for somebody else's order."""

import asyncio

import pytest

from celeris.domain.book import BookState
from celeris.domain.clock import TestClock
from celeris.domain.instruments import TimeInForce
from celeris.domain.messages import BookUpdate, Execution, RejectCode, VenueOrderEvent
from celeris.domain.modes import Mode
from celeris.domain.values import Side
from celeris.execution.engine import ExecutionEngine
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.execution.paper import PaperVenue
from celeris.execution.store import MemoryHotState
from tests.execution.conftest import request

RETENTION_S = 60.0


def build(btcusdt, clock, hot):
    instruments = {"BTCUSDT": btcusdt}
    paper = PaperVenue(instruments, clock, latency_ms=0)
    paper.on_book(BookUpdate("BTCUSDT", 1, BookState.LIVE, True, [(600000, 2000)], [(600001, 500)], 1, 0, 0))
    config = ExecutionConfig(("BTCUSDT",), PositionLimits(0, 100_000), closed_order_retention_s=RETENTION_S,
                             idempotency_ttl_s=3600)
    return ExecutionEngine(config, instruments, clock, {Mode.SIMULATION: paper}, lambda t, m: None,
                           hot, mode=Mode.SIMULATION)


async def place_ioc(engine, ins, rid):
    # A bid below the best ask, immediate-or-cancel: it expires at once, closed without a fill.
    return await engine.submit(request(price="59000.0", qty="0.001", tif=TimeInForce.IOC, instrument=ins,
                                       request_id=rid))


async def closed(engine, outcome):
    for _ in range(100):
        if not outcome.order.is_open:
            return True
        await asyncio.sleep(0)
    return False


async def test_closed_orders_leave_memory_and_hot_state_after_their_retention(btcusdt):
    clock, hot = TestClock(start_ns=10**18), MemoryHotState()
    engine = build(btcusdt, clock, hot)
    await engine.start()
    for minute in range(10):
        for k in range(20):
            outcome = await place_ioc(engine, btcusdt, f"r-{minute}-{k}")
            assert outcome.accepted and await closed(engine, outcome)
        await engine.settle()
        clock.advance(int(RETENTION_S * 1e9))
    # Without retention this would hold 200 orders; with it, at most the last retention window's.
    assert len(engine.orders) <= 40
    assert len(engine.order_mode) == len(engine.orders) and len(engine.request_of) == len(engine.orders)
    assert len(hot.orders) <= 40 + 20  # hot state forgets on the next persist
    assert engine.retention.pruned >= 160
    await engine.stop()


async def test_a_reused_id_after_its_order_was_dropped_is_never_placed_again(btcusdt):
    clock, hot = TestClock(start_ns=10**18), MemoryHotState()
    engine = build(btcusdt, clock, hot)
    await engine.start()
    first = await place_ioc(engine, btcusdt, "retry-me")
    assert first.accepted and await closed(engine, first)
    cid = first.order.client_order_id
    clock.advance(int(RETENTION_S * 1e9) + 1)
    await place_ioc(engine, btcusdt, "another")  # any new order prunes
    assert cid not in engine.orders
    placed_before = engine.stats.accepted
    # The same request again: answered from the idempotency store, not placed.
    again = await place_ioc(engine, btcusdt, "retry-me")
    assert again.request_id == "retry-me" and engine.stats.accepted == placed_before
    # The same request once its stored answer is gone (e.g. Redis evicted it): refused, still not placed.
    hot.answers.clear()
    reuse = await place_ioc(engine, btcusdt, "retry-me")
    assert not reuse.accepted and reuse.rejection.code is RejectCode.DUPLICATE_CLIENT_ORDER_ID
    assert engine.stats.accepted == placed_before and cid not in engine.orders
    await engine.stop()


async def test_a_late_event_of_a_dropped_order_is_not_adopted_as_a_foreign_order(btcusdt):
    clock, hot = TestClock(start_ns=10**18), MemoryHotState()
    engine = build(btcusdt, clock, hot)
    await engine.start()
    first = await place_ioc(engine, btcusdt, "late")
    assert await closed(engine, first)
    order = first.order
    clock.advance(int(RETENTION_S * 1e9) + 1)
    await place_ioc(engine, btcusdt, "prune")
    assert order.client_order_id not in engine.orders
    adopted = engine.stats.adopted
    engine.on_venue_event(VenueOrderEvent(
        symbol="BTCUSDT", client_order_id=order.client_order_id, venue_order_id=order.venue_order_id or 99,
        side=Side.BUY, execution=Execution.TRADE, order_status="FILLED", last_qty_steps=1, last_price_ticks=590000,
        trade_id=424242, orig_qty_steps=1, price_ticks=590000, order_type="LIMIT", ts_event_ns=clock.now_ns()))
    await engine.settle()
    assert engine.stats.adopted == adopted and order.client_order_id not in engine.orders
    assert engine.positions["BTCUSDT"].qty_steps == 0
    await engine.stop()


@pytest.mark.parametrize("restart", [True])
async def test_a_restart_does_not_bring_dropped_orders_back(btcusdt, restart):
    clock, hot = TestClock(start_ns=10**18), MemoryHotState()
    engine = build(btcusdt, clock, hot)
    await engine.start()
    for k in range(30):
        assert await closed(engine, await place_ioc(engine, btcusdt, f"a-{k}"))
    clock.advance(int(RETENTION_S * 1e9) + 1)
    assert await closed(engine, await place_ioc(engine, btcusdt, "b"))
    await engine.settle()
    await engine.stop()
    again = build(btcusdt, clock, hot)
    await again.start()
    assert len(again.orders) <= 2
    await again.stop()


async def test_memory_hot_state_is_bounded_and_keeps_the_newest():
    hot = MemoryHotState(answers_kept=10, trades_kept=50)
    for i in range(25):
        await hot.put_answer(f"r{i}", {"i": i}, 86_400)
    assert len(hot.answers) == 10 and await hot.get_answer("r24") == {"i": 24} and await hot.get_answer("r14") is None
    await hot.put_answer("r15", {"i": 15}, 86_400)  # re-put: the newest again, the oldest goes
    await hot.put_answer("r25", {"i": 25}, 86_400)
    assert await hot.get_answer("r15") == {"i": 15} and await hot.get_answer("r16") is None
    for t in range(200):
        assert await hot.add_trade("BTCUSDT", t)
        assert not await hot.add_trade("BTCUSDT", t)  # a duplicate fill event right after: refused
    assert len(hot.trades) == 50 and not await hot.add_trade("BTCUSDT", 199)
    assert await hot.add_trade("ETHUSDT", 199)  # per symbol
