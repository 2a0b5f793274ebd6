"""The strategy SDK through the strategy engine: exact orders at the gateway, refusals to the strategy,
its own position and PnL, timers on a TestClock, observation mode, the pre-trade filter counting its
orders in flight, and a failing callback contained."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celeris.domain import sdk
from celeris.domain.clock import TestClock
from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.modes import Mode
from celeris.domain.sdk_types import OrderRefused, OrderState
from celeris.domain.values import MONEY_SCALE, Side
from celeris.strategy.filters import FilterLimits
from tests.strategy.fakes import ControlledGateway, book, engine_with, settle


class Recorder(sdk.Strategy):
    """Runs the test's `script(self, event)` on each callback and records what it was told."""

    name = "recorder"
    depth = 2

    def __init__(self):
        self.events: list = []
        self.script = lambda s, event: None

    def on_start(self):
        self.events.append(("start",))
        self.script(self, "start")

    def on_book(self, book):
        self.events.append(("book", book))
        self.script(self, "book")

    def on_order(self, update):
        self.events.append(("order", update.event, update.order))
        self.script(self, update)

    def on_fill(self, fill):
        self.events.append(("fill", fill))

    def on_timer(self, name):
        self.events.append(("timer", name, self.now_ns))

    def updates(self):
        return [(e[1], e[2].state) for e in self.events if e[0] == "order"]


def strategy(engine, name="a") -> Recorder:
    return engine.runners[name].strategy


async def test_place_cancel_amend_reach_the_gateway_exactly(btcusdt):
    engine = engine_with(btcusdt, ("a", Recorder, {}))
    gw = engine.gateway
    ids = {}

    def script(s, event):
        if event == "start":
            ids["bid"] = s.place("BTCUSDT", Side.BUY, "60000.10", "0.010", post_only=True)
            ids["ask"] = s.place("BTCUSDT", Side.SELL, Decimal("60001.0"), "0.005", tif=TimeInForce.IOC,
                                 reduce_only=True)
            ids["fok"] = s.place("BTCUSDT", Side.BUY, "59000", Decimal("0.002"), tif=TimeInForce.FOK)
            ids["mkt"] = s.place("BTCUSDT", Side.SELL, None, "0.001", reduce_only=True)

    strategy(engine).script = script
    engine.on_book(book(1))
    await settle()
    by_id = {r.client_order_id: r for r in gw.submitted}
    assert list(by_id) == [ids["bid"], ids["ask"], ids["fok"], ids["mkt"]]
    bid, ask, fok, mkt = (by_id[ids[k]] for k in ("bid", "ask", "fok", "mkt"))
    assert (bid.side, bid.order_type, bid.price_ticks, bid.qty_steps, bid.time_in_force, bid.reduce_only) == \
        (Side.BUY, OrderType.LIMIT, 600001, 10, TimeInForce.GTX, False)
    assert (ask.side, ask.price_ticks, ask.qty_steps, ask.time_in_force, ask.reduce_only) == \
        (Side.SELL, 600010, 5, TimeInForce.IOC, True)
    assert (fok.price_ticks, fok.qty_steps, fok.time_in_force) == (590000, 2, TimeInForce.FOK)
    assert (mkt.order_type, mkt.price_ticks, mkt.qty_steps, mkt.reduce_only) == (OrderType.MARKET, None, 1, True)
    assert all(r.strategy_id == "a" for r in gw.submitted)
    assert {o.client_order_id for o in strategy(engine).orders()} == set(ids.values())
    assert all(o.state is OrderState.WORKING for o in strategy(engine).orders())

    s = strategy(engine)
    s.amend(ids["bid"], price="59999.90", qty="0.020")
    s.cancel(ids["ask"])
    s.cancel(ids["ask"])  # twice: one cancel goes out
    engine._drain(engine.runners["a"])
    await settle()
    (amend,) = gw.amended
    assert (amend.client_order_id, amend.price_ticks, amend.qty_steps) == (ids["bid"], 599999, 20)
    assert gw.canceled == [ids["ask"]]
    assert s.order(ids["bid"]).price_ticks == 599999 and s.order(ids["bid"]).qty_steps == 20
    assert s.order(ids["ask"]) is None
    assert ("amended", OrderState.WORKING) in s.updates() and ("canceled", OrderState.CANCELED) in s.updates()
    # The amendment is reserved at its new terms: the ledger counts 20 steps for the bid.
    assert engine.owned.ledger.symbols["BTCUSDT"].pending(Side.BUY) == 20 + 2


async def test_an_order_off_the_grid_is_refused_to_the_strategy(btcusdt):
    engine = engine_with(btcusdt, ("a", Recorder, {}))
    refused = []

    def script(s, event):
        if event != "start":
            return
        for price, qty in (("60000.05", "0.001"), ("60000.10", "0.0005"), (60000.1, "0.001"), (600001, "0.001"),
                           ("abc", "0.001"), ("60000.10", "0")):
            try:
                s.place("BTCUSDT", Side.BUY, price, qty)
            except OrderRefused as exc:
                refused.append(str(exc))
        with pytest.raises(OrderRefused, match="not a working order"):
            s.cancel("cel-a-nope")
        with pytest.raises(OrderRefused, match="unknown symbol"):
            s.place("DOGEUSDT", Side.BUY, "1", "1")

    strategy(engine).script = script
    engine.on_book(book(1))
    await settle()
    assert len(refused) == 6
    assert "off the tick grid (0.10)" in refused[0] and "60000.05" in refused[0]
    assert "off the step grid (0.001)" in refused[1]
    assert "not float" in refused[2] and "not int" in refused[3]
    assert engine.gateway.submitted == [] and strategy(engine).orders() == ()
    assert engine.runners["a"].errors == 0  # caught by the strategy: no error of its own


async def test_each_strategy_has_its_own_position_and_pnl_on_the_same_symbol(btcusdt):
    engine = engine_with(btcusdt, ("a", Recorder, {}), ("b", Recorder, {}))
    gw = engine.gateway
    ids = {}
    strategy(engine, "a").script = lambda s, e: e == "start" and ids.setdefault(
        "a", s.place("BTCUSDT", Side.BUY, "60000.00", "0.010"))
    strategy(engine, "b").script = lambda s, e: e == "start" and ids.setdefault(
        "b", s.place("BTCUSDT", Side.SELL, "60001.00", "0.004"))
    engine.on_book(book(1))
    await settle()
    gw.fill(engine, ids["a"], 10, fee=24_000_000)  # 0.24 USDT
    gw.fill(engine, ids["b"], 4)
    a, b = strategy(engine, "a"), strategy(engine, "b")
    assert a.position("BTCUSDT") == 10 and b.position() == -4
    assert engine.positions["BTCUSDT"].qty_steps == 6  # the symbol's, for comparison
    sell = a.place("BTCUSDT", Side.SELL, "60010.00", "0.010")
    engine._drain(engine.runners["a"])
    await settle()
    gw.fill(engine, sell, 10)
    # a bought 0.010 at 60000 and sold at 60010: +0.10 USDT realized, 0.24 fees; b's short is not a's.
    assert a.pnl().realized == 10_000_000 and a.pnl().fees == 24_000_000 and a.position() == 0
    assert b.pnl().realized == 0 and b.position() == -4
    assert b.pnl().unrealized == (600010 - 600005) * 4 * 10**MONEY_SCALE // 10**4  # mid 60000.50 vs 60001
    fills_a = [e[1] for e in a.events if e[0] == "fill"]
    assert [f.qty_steps for f in fills_a] == [10, 10] and [f.side for f in fills_a] == [Side.BUY, Side.SELL]
    assert ("filled", OrderState.FILLED) in a.updates() and a.orders() == ()
    assert [e for e in b.events if e[0] == "fill"][0][1].client_order_id == ids["b"]


async def test_timers_fire_on_the_test_clock(btcusdt):
    clock = TestClock(10**18)
    engine = engine_with(btcusdt, ("a", Recorder, {}), clock=clock)
    strategy(engine).script = lambda s, e: e == "start" and s.set_timer("q", 100_000_000)
    engine.on_book(book(1))  # on_start: the timer is set for +100 ms
    timers = lambda: [e for e in strategy(engine).events if e[0] == "timer"]
    clock.advance(ms=99)
    assert engine.run_timers() == 0
    clock.advance(ms=1)
    assert engine.run_timers() == 1 and timers()[-1] == ("timer", "q", 10**18 + 100_000_000)
    clock.advance(ms=250)  # 3.5 intervals behind: once, the missed beats skipped
    engine.on_book(book(2))  # market data drives the timers (a backtest's event clock)
    assert len(timers()) == 2
    clock.advance(ms=49)
    assert engine.run_timers() == 0
    clock.advance(ms=1)  # next beat at +400 ms
    assert engine.run_timers() == 1
    strategy(engine).cancel_timer("q")
    clock.advance(s=10)
    assert engine.run_timers() == 0 and len(timers()) == 3
    with pytest.raises(OrderRefused):
        strategy(engine).set_timer("bad", 0)


async def test_observation_mode_logs_and_sends_nothing(btcusdt):
    engine = engine_with(btcusdt, ("a", Recorder, {}), mode=Mode.OBSERVATION)
    strategy(engine).script = lambda s, e: e == "start" and s.place("BTCUSDT", Side.BUY, "60000.00", "0.010")
    engine.on_book(book(1))
    await settle()
    assert engine.gateway.submitted == []
    assert strategy(engine).updates() == [("rejected", OrderState.REJECTED)]
    rejected = [e[2] for e in strategy(engine).events if e[0] == "order"][0]
    assert "observation" in rejected.reason and strategy(engine).orders() == ()


async def test_the_filter_counts_sdk_orders_in_flight(btcusdt):
    """Limit 1,000 USDT; each 0.010 BTC buy is 600 USDT: the second is refused while the first is unacknowledged."""
    engine = engine_with(btcusdt, ("a", Recorder, {}), gateway=ControlledGateway(hold=True),
                         limits=FilterLimits(max_position_usdt=1_000 * 10**MONEY_SCALE))
    s = strategy(engine)
    s.script = lambda s, e: e == "start" and [s.place("BTCUSDT", Side.BUY, "60000.00", "0.010") for _ in range(2)]
    engine.on_book(book(1))
    await settle()
    assert len(engine.gateway.submitted) == 1
    reasons = [e[2].reason for e in s.events if e[0] == "order" and e[1] == "rejected"]
    assert len(reasons) == 1 and reasons[0].startswith("position limit")
    assert len(s.orders()) == 1 and s.orders()[0].state is OrderState.PENDING
    # A sell reduces the worst case: it passes; a reduce-only order skips the limit.
    s.place("BTCUSDT", Side.SELL, "60010.00", "0.010")
    engine._drain(engine.runners["a"])
    await settle()
    assert len(engine.gateway.submitted) == 2


async def test_a_cancel_before_the_acknowledgement_goes_out_when_it_comes(btcusdt):
    engine = engine_with(btcusdt, ("a", Recorder, {}), gateway=ControlledGateway(hold=True))
    s = strategy(engine)
    s.script = lambda s, e: e == "start" and s.place("BTCUSDT", Side.BUY, "60000.00", "0.010")
    engine.on_book(book(1))
    await settle()
    (cid,) = engine.gateway.held()
    s.cancel(cid)
    engine._drain(engine.runners["a"])
    await settle()
    assert engine.gateway.canceled == []  # not yet: execution has not answered the placement
    engine.gateway.ack(cid)
    await settle()
    assert engine.gateway.canceled == [cid]
    assert s.orders() == () and s.updates()[-1] == ("canceled", OrderState.CANCELED)
    assert engine.owned.working == {}


async def test_a_refused_order_and_a_refused_amend_are_told_to_the_strategy(btcusdt):
    engine = engine_with(btcusdt, ("a", Recorder, {}))
    s = strategy(engine)
    engine.gateway.refuse_next = "Order would immediately match and take."
    s.script = lambda s, e: e == "start" and s.place("BTCUSDT", Side.BUY, "60000.00", "0.010", post_only=True)
    engine.on_book(book(1))
    await settle()
    assert s.updates() == [("rejected", OrderState.REJECTED)] and engine.owned.working == {}
    rejected = [e[2] for e in s.events if e[0] == "order"][0]
    assert "immediately match" in rejected.reason

    class NoAmend(ControlledGateway):
        amend = None

    engine = engine_with(btcusdt, ("a", Recorder, {}), gateway=NoAmend())
    s = strategy(engine)
    s.script = lambda s, e: e == "start" and s.place("BTCUSDT", Side.BUY, "60000.00", "0.010")
    engine.on_book(book(1))
    await settle()
    (order,) = s.orders()
    with pytest.raises(OrderRefused, match="off the tick grid"):
        s.amend(order.client_order_id, price="60000.01")
    s.amend(order.client_order_id, qty="0.020")
    engine._drain(engine.runners["a"])
    await settle()
    assert s.updates()[-1] == ("amend_rejected", OrderState.WORKING)
    assert s.order(order.client_order_id).qty_steps == 10  # the old terms stand
    assert engine.owned.ledger.symbols["BTCUSDT"].pending(Side.BUY) == 10


async def test_the_book_comes_at_the_declared_depth(btcusdt):
    engine = engine_with(btcusdt, ("a", Recorder, {}))
    engine.on_book(book(1, levels=5))
    (view,) = [e[1] for e in strategy(engine).events if e[0] == "book"]
    assert view.bids == ((600000, 1000), (599999, 1001)) and view.asks == ((600010, 2000), (600011, 2001))
    assert view.best_bid_ticks == 600000 and view.spread_ticks == 10


async def test_an_exception_in_a_callback_is_contained(btcusdt):
    class Faulty(Recorder):
        name = "faulty"

        def on_book(self, book):
            raise RuntimeError("boom")

    engine = engine_with(btcusdt, ("bad", Faulty, {}), ("good", Recorder, {}), max_consecutive_errors=3)
    engine.runners["good"].strategy.script = lambda s, e: e == "book" and s.place(
        "BTCUSDT", Side.BUY, "60000.00", "0.001")
    for i in range(5):
        engine.on_book(book(i + 1))
    await settle()
    bad = engine.runners["bad"]
    assert not bad.enabled and bad.errors == 3 and "boom" in bad.disabled_reason
    assert len(engine.gateway.submitted) == 5  # the healthy one kept running
    assert len([e for e in strategy(engine, "good").events if e[0] == "book"]) == 5


async def test_a_callback_that_always_raises_is_disabled_though_the_others_succeed_in_between(btcusdt):
    from celeris.domain.messages import TradeUpdate

    class BadBook(Recorder):
        name = "bad-book"

        def on_book(self, book):
            raise RuntimeError("boom")

    engine = engine_with(btcusdt, ("bad", BadBook, {}), max_consecutive_errors=3)
    for i in range(3):
        engine.on_book(book(i + 1))
        engine.on_trade(TradeUpdate("BTCUSDT", i + 1, 77, 600005, 3, True, 5, 6))  # on_trade works
    await settle()
    bad = engine.runners["bad"]
    assert not bad.enabled and bad.errors == 3 and "on_book" in bad.disabled_reason


async def test_a_callback_that_recovers_ends_its_run_of_errors(btcusdt):
    class Flaky(Recorder):
        name = "flaky"
        calls = 0

        def on_book(self, book):
            self.calls += 1
            if self.calls % 3:  # two errors, one success, again and again
                raise RuntimeError("flaky")

    engine = engine_with(btcusdt, ("f", Flaky, {}), max_consecutive_errors=3)
    for i in range(12):
        engine.on_book(book(i + 1))
    await settle()
    runner = engine.runners["f"]
    assert runner.enabled and runner.errors == 8


async def test_a_strategy_answering_its_own_refusals_forever_is_stopped(btcusdt):
    class Loop(Recorder):
        name = "loop"

        def on_order(self, update):
            self.place("BTCUSDT", Side.BUY, "60000.00", "0.001")

    engine = engine_with(btcusdt, ("loop", Loop, {}), mode=Mode.OBSERVATION, max_consecutive_errors=1)
    engine.runners["loop"].strategy.script = lambda s, e: e == "start" and s.place(
        "BTCUSDT", Side.BUY, "60000.00", "0.001")
    engine.on_book(book(1))
    assert not engine.runners["loop"].enabled and "rounds" in engine.runners["loop"].disabled_reason


async def test_trades_and_marks_reach_the_strategy(btcusdt):
    from celeris.domain.messages import MarkUpdate, TradeUpdate

    class Watcher(Recorder):
        name = "watcher"

        def on_trade(self, trade):
            self.events.append(("trade", trade))

        def on_mark(self, mark):
            self.events.append(("mark", mark))

    engine = engine_with(btcusdt, ("w", Watcher, {}))
    engine.on_trade(TradeUpdate("BTCUSDT", 1, 77, 600005, 3, True, 5, 6))
    engine.on_mark(MarkUpdate("BTCUSDT", "60000.12345678", "59999.9", "0.00010000", 1_700_000_000_000, 9))
    trade, mark = (e[1] for e in strategy(engine, "w").events if e[0] in ("trade", "mark"))
    assert (trade.trade_id, trade.price_ticks, trade.qty_steps, trade.aggressor) == (77, 600005, 3, Side.SELL)
    assert mark.mark_price == Decimal("60000.12345678") and mark.funding_rate == Decimal("0.0001")
    assert mark.next_funding_ns == 1_700_000_000_000 * 1_000_000


async def test_a_fill_after_the_order_closed_here_is_still_the_strategys(btcusdt):
    """The venue filled the order while its cancel was on the way; the cancel's answer came first."""
    from celeris.domain.messages import Fill

    engine = engine_with(btcusdt, ("a", Recorder, {}), ("b", Recorder, {}))
    s = strategy(engine)
    s.script = lambda s, e: e == "start" and s.place("BTCUSDT", Side.BUY, "60000.00", "0.010")
    engine.on_book(book(1))
    await settle()
    (order,) = s.orders()
    s.cancel(order.client_order_id)
    engine._drain(engine.runners["a"])
    await settle()
    assert s.orders() == () and engine.owned.working == {}
    engine.on_fill(Fill("BTCUSDT", order.client_order_id, 1, 9, Side.BUY, 600000, 4, 0, True, 0, "a", "live", 0))
    assert s.position() == 4 and strategy(engine, "b").position() == 0
    assert [e[1].qty_steps for e in s.events if e[0] == "fill"] == [4]


async def test_a_halt_cancels_sdk_orders_tells_the_strategy_and_refuses_new_ones(btcusdt):
    engine = engine_with(btcusdt, ("a", Recorder, {}))
    s = strategy(engine)
    s.script = lambda s, e: e == "start" and s.place("BTCUSDT", Side.BUY, "60000.00", "0.010")
    engine.on_book(book(1))
    await settle()
    (order,) = s.orders()
    engine.halted = True  # what StrategyComponent.halt does, then it cancels every owned order
    await engine.cancel_quotes()
    assert engine.gateway.canceled == [order.client_order_id] and s.orders() == ()
    assert s.updates()[-1] == ("canceled", OrderState.CANCELED)
    s.place("BTCUSDT", Side.BUY, "60000.00", "0.010")
    engine._drain(engine.runners["a"])
    await settle()
    assert len(engine.gateway.submitted) == 1 and s.updates()[-1] == ("rejected", OrderState.REJECTED)


async def test_a_signal_strategys_order_is_filtered_by_an_sdk_reservation(btcusdt):
    """One ledger for both kinds: the SDK order in flight counts against the signal strategy's buy."""
    from celeris.domain.signals import Signal, Urgency
    from tests.strategy.test_ownership import Scripted

    engine = engine_with(btcusdt, ("a", Recorder, {}), ("sig", Scripted, {}), gateway=ControlledGateway(hold=True),
                         limits=FilterLimits(max_position_usdt=1_000 * 10**MONEY_SCALE))
    strategy(engine).script = lambda s, e: e == "start" and s.place("BTCUSDT", Side.BUY, "60000.00", "0.010")
    engine.on_book(book(1))
    await settle()
    engine.runners["sig"].strategy.next = [Signal("BTCUSDT", Side.BUY, 1.0, "sig", 0, Urgency.NORMAL)]
    engine.on_book(book(2))
    await settle()
    assert [r.strategy_id for r in engine.gateway.submitted] == ["a"] and engine.stats["filtered"] == 1


async def test_depth_none_is_the_whole_book(btcusdt):
    class Whole(Recorder):
        name = "whole"
        depth = None

    engine = engine_with(btcusdt, ("w", Whole, {}), ("a", Recorder, {}))
    engine.on_book(book(1, levels=5))
    whole = [e[1] for e in strategy(engine, "w").events if e[0] == "book"][0]
    top2 = [e[1] for e in strategy(engine, "a").events if e[0] == "book"][0]
    assert len(whole.bids) == len(whole.asks) == 5 and len(top2.bids) == 2


async def test_an_order_cancelled_before_its_refusal_leaves_no_ghost(btcusdt):
    engine = engine_with(btcusdt, ("a", Recorder, {}), gateway=ControlledGateway(hold=True),
                         limits=FilterLimits(max_position_usdt=1_000 * 10**MONEY_SCALE))

    def script(s, event):
        if event == "start":
            for _ in range(2):  # the second is refused by the filter, after the cancel was asked
                s.cancel(s.place("BTCUSDT", Side.BUY, "60000.00", "0.010"))

    strategy(engine).script = script
    engine.on_book(book(1))
    await settle()
    s = strategy(engine)
    assert [o.state for o in s.orders()] == [OrderState.PENDING_CANCEL]  # the first, waiting for its ack
    engine.gateway.refuse_next = "refused"
    engine.gateway.hold = False
    s.cancel_all()
    engine.gateway.ack(engine.gateway.held()[0])
    await settle()
    assert s.orders() == () and engine.owned.working == {}
    assert ("rejected", OrderState.REJECTED) in s.updates()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(price=st.decimals(min_value=Decimal("1000"), max_value=Decimal("99999"), places=3),
       qty=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("5"), places=4),
       as_text=st.booleans())
def test_a_price_or_size_is_accepted_exactly_when_it_is_on_the_grid(btcusdt, price, qty, as_text):
    """BTCUSDT: tick 0.10, step 0.001. On the grid: the gateway gets exactly price/0.10 ticks and
    qty/0.001 steps; off it: OrderRefused, and nothing is sent."""
    on_grid = price % Decimal("0.1") == 0 and qty % Decimal("0.001") == 0
    got = {}

    def script(s, event):
        if event == "start":
            try:
                got["id"] = s.place("BTCUSDT", Side.BUY, str(price) if as_text else price,
                                    str(qty) if as_text else qty)
            except OrderRefused as exc:
                got["refused"] = str(exc)

    async def run():
        engine = engine_with(btcusdt, ("a", Recorder, {}), limits=FilterLimits(
            max_position_usdt=10**12 * 10**MONEY_SCALE, max_total_exposure_usdt=10**12 * 10**MONEY_SCALE))
        strategy(engine).script = script
        engine.on_book(book(1))
        await settle()
        return engine.gateway.submitted

    submitted = asyncio.run(run())
    if on_grid:
        (request,) = submitted
        assert request.client_order_id == got["id"]
        assert request.price_ticks == int(price / Decimal("0.1")) and request.qty_steps == int(qty / Decimal("0.001"))
    else:
        assert submitted == [] and "off the" in got["refused"] and "grid" in got["refused"]


async def test_the_owner_index_keeps_working_orders_and_only_the_last_closed_ones(btcusdt):
    engine = engine_with(btcusdt, ("a", Recorder, {}))
    engine.sdk_owner.capacity = 5
    placed = []

    def script(s, event):
        if event == "book":
            for order in s.orders():
                s.cancel(order.client_order_id)
            placed.append(s.place("BTCUSDT", Side.BUY, "60000.00", "0.001"))

    strategy(engine).script = script
    for i in range(20):
        engine.on_book(book(i + 1))
        await settle()
    assert len(placed) == 20 and len(engine.gateway.canceled) == 19
    assert list(engine.sdk_owner.working) == [placed[-1]]  # the one still working
    assert list(engine.sdk_owner.closed) == placed[-6:-1]  # the last 5 closed, oldest gone
    # A late fill of a recently closed order is still the strategy's own.
    fill = engine.gateway.fill(engine, placed[-1], 1)
    assert engine.sdk_owner.get(fill.client_order_id) == "a" and placed[-1] in engine.sdk_owner.closed


async def test_an_order_placed_on_a_book_carries_the_books_receipt_time(btcusdt):
    import dataclasses

    engine = engine_with(btcusdt, ("a", Recorder, {}))
    strategy(engine).script = lambda s, e: e == "book" and s.place("BTCUSDT", Side.BUY, "60000.00", "0.001")
    engine.clock.advance(5_000_000)
    engine.on_book(dataclasses.replace(book(1), ts_recv_ns=engine.clock.now_ns() - 4_000_000))
    await settle()
    (request,) = engine.gateway.submitted
    assert request.ts_signal_ns == engine.clock.now_ns() - 4_000_000  # the tick's, not the decision's time
    strategy(engine).script = lambda s, e: e == "start"
    engine.run_timers()  # outside a dispatch: the time it was decided
    assert engine.stimulus_ns == 0
