"""The worked example of docs/strategies.md (examples/strategies/fixed_spread.py), loaded from its directory
as a plugin and run through the strategy engine on a TestClock over the real capture's first seconds,
filled by the simulation-mode execution engine and paper venue (as a backtest drives them): it quotes
every 100 ms of capture time exactly where its rules say, the orders reach execution exactly, its own
position is the account's, and two runs give the same orders and fills."""

from __future__ import annotations

import asyncio
from pathlib import Path

from celeris.domain.clock import TestClock
from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.modes import Mode
from celeris.domain.sdk_types import OrderState
from celeris.domain.topics import book_topic, fill_topic, mark_topic, order_topic, trade_topic
from celeris.domain.values import Side
from celeris.execution.engine import ExecutionEngine
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.execution.paper import PaperVenue
from celeris.marketdata.core import MarketDataCore, Sink
from celeris.marketdata.verify import _open, bundled_instruments
from celeris.strategy.engine import StrategyConfig, StrategyEngine
from celeris.strategy.filters import FilterLimits
from celeris.strategy.plugins import PluginRegistry
from celeris.transport.bus import InProcessBus
from tests.conftest import CAPTURE_60S, ROOT

EXAMPLES = ROOT / "examples" / "strategies"
SECONDS = 15


class Recording:
    """Execution as the strategy engine's gateway, with every request kept."""

    def __init__(self, execution: ExecutionEngine) -> None:
        self.execution = execution
        self.submitted: list = []
        self.canceled: list[str] = []

    async def submit(self, request):
        self.submitted.append(request)
        return await self.execution.submit(request)

    async def cancel(self, request_id, symbol, client_order_id="", venue_order_id=0):
        self.canceled.append(client_order_id)
        return await self.execution.cancel(request_id, symbol, client_order_id, venue_order_id)


async def backtest(path: Path, seconds: int, params: dict) -> dict:
    symbol = "BTCUSDT"
    instruments = {symbol: bundled_instruments()[symbol]}
    clock = TestClock(start_ns=0)
    bus = InProcessBus()
    paper = PaperVenue(instruments, clock, latency_ms=0)
    execution = ExecutionEngine(ExecutionConfig((symbol,), PositionLimits(0, 10_000)), instruments, clock,
                                {Mode.SIMULATION: paper}, bus.publish, mode=Mode.SIMULATION)
    gateway = Recording(execution)
    registry = PluginRegistry(EXAMPLES)
    assert "fixed_spread" in registry.classes, registry.load_errors
    engine = StrategyEngine([StrategyConfig("fs", "fixed_spread", symbol, "0.001", params)], instruments, clock,
                            gateway, bus.publish, mode=Mode.SIMULATION, registry=registry,
                            limits=FilterLimits(max_orders_per_minute=100_000))  # 20 orders a second
    strategy = engine.runners["fs"].strategy
    requotes: list = []
    timer = strategy.on_timer

    def on_timer(name):  # what it saw and what it placed, each requote
        before = {o.client_order_id for o in strategy.orders()}
        timer(name)
        placed = [o for o in strategy.orders() if o.client_order_id not in before]
        requotes.append((clock.now_ns(), strategy.book, strategy.position(), placed))

    strategy.on_timer = on_timer
    core = MarketDataCore(list(instruments.values()), clock,
                          Sink(book=lambda u: bus.publish(book_topic(u.symbol), u),
                               trade=lambda t: bus.publish(trade_topic(t.symbol), t),
                               mark=lambda m: bus.publish(mark_topic(m.symbol), m)))
    bus.subscribe(book_topic(symbol), paper.on_book)
    bus.subscribe(book_topic(symbol), engine.on_book)
    bus.subscribe(trade_topic(symbol), paper.on_trade)
    bus.subscribe(trade_topic(symbol), engine.on_trade)
    bus.subscribe(mark_topic(symbol), paper.on_mark)
    bus.subscribe(mark_topic(symbol), engine.on_mark)
    bus.subscribe(fill_topic(symbol), engine.on_fill)
    bus.subscribe(order_topic(symbol), engine.on_order_update)
    await execution.start()
    core.start()
    positions, first_ns = [], 0
    with _open(path) as fh:
        for line in fh:
            stamp, _, raw = line.partition(b" ")
            ts = int(stamp)
            first_ns = first_ns or ts
            if ts - first_ns > seconds * 1_000_000_000:
                break
            clock.set(max(ts, clock.now_ns()))
            if raw.startswith(b'{"lastUpdateId"'):
                core.on_snapshot(symbol, raw, ts)
            else:
                core.on_message(raw, ts)
            await asyncio.sleep(0)  # the orders decided on this message go out before the next one
            positions.append(strategy.position())
    await execution.settle()
    result = {"requotes": requotes, "submitted": gateway.submitted, "canceled": gateway.canceled,
              "positions": positions, "strategy": strategy, "paper": paper, "engine": engine,
              "span_ns": clock.now_ns() - first_ns}
    await engine.stop()
    await execution.stop()
    return result


async def test_the_fixed_spread_example_quotes_by_its_rules_on_the_capture():
    params = {"half_spread_ticks": 20, "qty": "0.001", "max_position": "0.003", "interval_ms": 100}
    run = await backtest(CAPTURE_60S, SECONDS, params)
    requotes, submitted = run["requotes"], run["submitted"]
    # Every 100 ms of capture time (a timer that fell behind fires once): ~10 a second.
    beats = run["span_ns"] // 100_000_000
    assert beats * 0.9 <= len(requotes) <= beats + 1, (len(requotes), beats)
    by_id = {r.client_order_id: r for r in submitted}
    sides_seen = set()
    for _, book, position, placed in requotes:
        if book is None:
            assert placed == []
            continue
        expected = {}
        if position < 3:
            expected[Side.BUY] = book.best_bid_ticks - 20
        if position > -3:
            expected[Side.SELL] = book.best_ask_ticks + 20
        assert {o.side: o.price_ticks for o in placed} == expected
        for order in placed:
            request = by_id[order.client_order_id]  # it reached execution exactly as placed
            assert (request.order_type, request.time_in_force, request.qty_steps, request.price_ticks,
                    request.strategy_id) == (OrderType.LIMIT, TimeInForce.GTX, 1, expected[order.side], "fs")
            sides_seen.add(order.side)
    assert sides_seen == {Side.BUY, Side.SELL}
    # Each requote cancels the previous quotes: at most two are working at any time.
    assert len(run["strategy"].orders()) <= 2
    assert all(o.state is not OrderState.REJECTED for o in run["strategy"].orders())
    # Its own position is the account's (it is the only strategy), within its limit (+1 step: a quote may
    # fill while its cancel is on the way).
    paper_position = run["paper"].account_positions["BTCUSDT"].qty_steps
    assert run["strategy"].position() == paper_position
    assert max(abs(p) for p in run["positions"]) <= 3 + 1
    assert run["strategy"].fills > 0, "no quote filled in the capture's first seconds"


async def test_the_example_backtest_is_deterministic():
    params = {"half_spread_ticks": 5, "qty": "0.001", "max_position": "0.002", "interval_ms": 250}
    a = await backtest(CAPTURE_60S, 8, params)
    b = await backtest(CAPTURE_60S, 8, params)
    key = lambda run: [(r.client_order_id, r.side, r.price_ticks, r.qty_steps) for r in run["submitted"]]  # noqa: E731
    assert key(a) == key(b) and a["canceled"] == b["canceled"] and a["positions"] == b["positions"]
    assert a["strategy"].pnl() == b["strategy"].pnl()


async def test_the_docs_snippets_run_as_written(btcusdt):
    """docs/strategies.md's section 2 strategy and section 4 test, executed from the page itself."""
    import re
    import sys
    import types

    from celeris.domain.clock import TestClock
    from tests.strategy.fakes import ControlledGateway, book, engine_with, settle

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "strategies.md").read_text(), re.S)
    module = types.ModuleType("docs_strategies_snippet")  # a module, so the Params' type hints resolve
    sys.modules[module.__name__] = module
    exec(compile(blocks[0], "docs/strategies.md#2", "exec"), module.__dict__)  # noqa: S102 - our own page
    skewer = module.Skewer
    test_ns = {"Skewer": skewer, "TestClock": TestClock, "ControlledGateway": ControlledGateway, "book": book,
               "engine_with": engine_with, "settle": settle}
    exec(compile(blocks[2].replace("from celeris.domain.clock import TestClock\n", "")
                 .replace("from tests.strategy.fakes import ControlledGateway, book, engine_with, settle\n", ""),
                 "docs/strategies.md#4", "exec"), test_ns)  # noqa: S102
    await test_ns["test_it_quotes_inside_its_edge"](btcusdt)
    with __import__("pytest").raises(ValueError, match=r"skewer: params\.edge_ticks: 0 is below the minimum 1"):
        engine_with(btcusdt, ("s", skewer, {"edge_ticks": 0}))
