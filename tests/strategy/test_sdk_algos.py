"""An SDK strategy's execution algorithms in a backtest: a strategy calls self.twap / self.iceberg, and the
real strategy engine (its own AlgoRunner), execution engine and paper venue run it on a TestClock over the
first lines of the real capture, wired as a backtest wires them. Shown here: the children are the
strategy's at execution and its own position is what they filled; the report's slippage is the fills'
against the arrival mid, recomputed from execution's own fills; a halt at execution, and the strategy
component's halt, stop the parent and leave no child working; an iceberg never shows more than its
display; the run is deterministic."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from celeris.domain import sdk
from celeris.domain.algo_orders import ChildStyle
from celeris.domain.algos import AlgoState, StopReason
from celeris.domain.clock import NS_PER_S, TestClock
from celeris.domain.messages import client_order_id_for, owner_tag_of, venue_tag
from celeris.domain.modes import Mode
from celeris.domain.topics import book_topic, fill_topic, order_topic, trade_topic
from celeris.domain.values import Side
from celeris.execution.engine import ExecutionEngine
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.execution.paper import PaperVenue
from celeris.marketdata.core import MarketDataCore, Sink
from celeris.marketdata.verify import _open, bundled_instruments
from celeris.strategy.algo_profile import capture_profile
from celeris.strategy.component import StrategyComponent
from celeris.strategy.engine import StrategyConfig, StrategyEngine
from celeris.strategy.filters import FilterLimits
from celeris.strategy.plugins import PluginRegistry
from celeris.transport.bus import InProcessBus

from tests.conftest import DATA
from tests.strategy.test_docs_example import Recording

CAPTURE = DATA / "hftbacktest_usdm_btcusdt_20240808.gz"
SYMBOL = "BTCUSDT"
S = NS_PER_S


class Twapper(sdk.Strategy):
    """Buys 0.050 BTC over 10 s in 10 slices, started on the first book (the capture's first event is a
    trade: on_start comes before there is a price, and a parent without one is refused as an order is);
    records what it is told."""

    name = "twapper"
    style = ChildStyle.CROSS

    def __init__(self) -> None:
        self.algo_id = ""
        self.told: list[Any] = []

    def on_book(self, book) -> None:
        if not self.algo_id:
            self.algo_id = self.twap(self.symbol, Side.BUY, "0.050", duration_ns=10 * S, slices=10,
                                     style=self.style)

    def on_algo(self, progress) -> None:
        self.told.append(progress)


class PassiveTwapper(Twapper):
    style = ChildStyle.PASSIVE


class Icebergger(Twapper):
    """Rests 0.050 BTC at the first best bid, 0.005 shown at a time."""

    def on_book(self, book) -> None:
        if not self.algo_id:
            self.algo_id = self.iceberg(self.symbol, Side.BUY, "0.050", self.price_of(self.symbol, book.best_bid_ticks),
                                        "0.005")


async def backtest(cls: type, lines: int = 4000, at_ns: dict[int, Any] | None = None,
                   each_line: Any = None) -> dict[str, Any]:
    """The capture's first `lines` through the engines. `at_ns`: {offset from the algo's start: async
    callable(run)} run once the clock passes it; `each_line(run)` after every line."""
    instruments = {SYMBOL: bundled_instruments()[SYMBOL]}
    clock = TestClock(start_ns=0)
    bus = InProcessBus()
    paper = PaperVenue(instruments, clock, latency_ms=0)
    execution = ExecutionEngine(ExecutionConfig((SYMBOL,), PositionLimits(0, 10_000)), instruments, clock,
                                {Mode.SIMULATION: paper}, bus.publish, mode=Mode.SIMULATION)
    gateway = Recording(execution)
    registry = PluginRegistry()
    registry.register(cls.name, cls)
    engine = StrategyEngine([StrategyConfig("alg", cls.name, SYMBOL, "0.001", {})], instruments, clock, gateway,
                            bus.publish, mode=Mode.SIMULATION, registry=registry,
                            limits=FilterLimits(max_orders_per_minute=100_000))
    component = StrategyComponent(engine)
    strategy = engine.runners["alg"].strategy
    core = MarketDataCore(list(instruments.values()), clock,
                          Sink(book=lambda u: bus.publish(book_topic(u.symbol), u),
                               trade=lambda t: bus.publish(trade_topic(t.symbol), t)))
    fills: list = []
    bus.subscribe(book_topic(SYMBOL), paper.on_book)
    bus.subscribe(book_topic(SYMBOL), engine.on_book)
    bus.subscribe(trade_topic(SYMBOL), paper.on_trade)
    bus.subscribe(trade_topic(SYMBOL), engine.on_trade)
    bus.subscribe(fill_topic(SYMBOL), engine.on_fill)
    bus.subscribe(fill_topic(SYMBOL), fills.append)
    bus.subscribe(order_topic(SYMBOL), engine.on_order_update)
    await execution.start()
    core.start()
    run: dict[str, Any] = {"engine": engine, "execution": execution, "component": component, "strategy": strategy,
                           "gateway": gateway, "fills": fills, "paper": paper, "clock": clock, "start_ns": 0,
                           "arrival": None, "sent": []}
    pending = dict(at_ns or {})
    with _open(CAPTURE) as fh:
        for n, line in enumerate(fh):
            if n >= lines:
                break
            stamp, _, raw = line.partition(b" ")
            clock.set(max(int(stamp), clock.now_ns()))
            before = len(gateway.submitted)
            if raw.startswith(b'{"lastUpdateId"'):
                core.on_snapshot(SYMBOL, raw, int(stamp))
            else:
                core.on_message(raw, int(stamp))
            if run["arrival"] is None and strategy.ctx.algo_ids:
                # The engine's own top when the strategy started it: the arrival price to judge it by.
                run["start_ns"], run["arrival"] = clock.now_ns(), engine.top(SYMBOL)
            for offset in [o for o in pending if run["start_ns"] and clock.now_ns() >= run["start_ns"] + o]:
                await pending.pop(offset)(run)
            await engine.algos.settle()
            await execution.settle()
            run["sent"].extend((clock.now_ns(), r) for r in gateway.submitted[before:])
            if each_line is not None:
                each_line(run)
    await engine.algos.settle()
    await execution.settle()
    run["reports"] = engine.algo_reports()
    run["open"] = execution.open_orders()
    await component.stop()
    await execution.stop()
    return run


def expected_slippage_bps(side: Side, fills: list, arrival) -> Decimal:
    mid = Decimal(arrival.bid_ticks + arrival.ask_ticks) / 2
    qty = sum(f.qty_steps for f in fills)
    average = Decimal(sum(f.price_ticks * f.qty_steps for f in fills)) / qty
    return (side.sign * (average - mid) / mid * 10_000).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


async def test_a_strategy_s_twap_runs_through_the_engines_on_the_capture():
    run = await backtest(Twapper)
    strategy, execution = run["strategy"], run["execution"]
    progress = strategy.algo(strategy.algo_id)
    assert progress.state is AlgoState.FINISHED and progress.stop_reason is StopReason.FILLED
    assert progress.filled_steps == 50
    # Its children, one a second, are the strategy's own at execution and in the engine.
    assert [r.qty_steps for _, r in run["sent"]] == [5] * 10
    for i, (t, _) in enumerate(run["sent"]):
        assert run["start_ns"] + i * S <= t < run["start_ns"] + i * S + S // 2, f"child {i}"
    for _, request in run["sent"]:
        order = execution.orders[request.client_order_id]
        assert order.strategy_id == "alg" and owner_tag_of(order.client_order_id) == venue_tag("alg")
        assert request.client_order_id == client_order_id_for(request.request_id, "alg")
    assert strategy.position() == 50 == run["paper"].account_positions[SYMBOL].qty_steps
    assert run["open"] == [] and run["engine"].owned.working == {}
    # Told as it went, last of all that it finished filled.
    assert strategy.told[-1].state is AlgoState.FINISHED and strategy.told[-1].filled_steps == 50
    assert [p.filled_steps for p in strategy.told] == sorted(p.filled_steps for p in strategy.told)
    # The report: JSON as it is, decimal strings, slippage recomputed from execution's own fills.
    [report] = run["reports"]
    assert json.loads(json.dumps(report)) == report
    fills = [f for f in run["fills"] if f.strategy_id == "alg"]
    assert sum(f.qty_steps for f in fills) == 50
    arrival = run["arrival"]
    assert Decimal(report["arrival_price"]) == Decimal(arrival.bid_ticks + arrival.ask_ticks) / 2 / 10
    assert abs(Decimal(report["slippage_bps"]) - expected_slippage_bps(Side.BUY, fills, arrival)) <= Decimal("0.01")
    assert (report["owner"], report["side"], report["qty"], report["filled"], report["leftover"]) == \
        ("alg", "BUY", "0.050", "0.050", "0.000")
    average = Decimal(sum(f.price_ticks * f.qty_steps for f in fills)) / 50 / 10
    assert abs(Decimal(report["average_price"]) - average) < Decimal("0.00001")


async def test_the_backtest_is_deterministic():
    first, second = await backtest(Twapper, lines=3000), await backtest(Twapper, lines=3000)
    assert first["reports"] == second["reports"]
    assert [(t, r.request_id, r.qty_steps, r.price_ticks) for t, r in first["sent"]] == \
        [(t, r.request_id, r.qty_steps, r.price_ticks) for t, r in second["sent"]]


async def test_a_halt_at_execution_stops_the_strategy_s_algo():
    async def halt(run):
        await run["execution"].halt("test halt", "test")

    run = await backtest(PassiveTwapper, at_ns={int(3.5 * S): halt})
    strategy = run["strategy"]
    progress = strategy.algo(strategy.algo_id)
    assert progress.state is AlgoState.FINISHED and progress.stop_reason is StopReason.HALTED
    assert run["open"] == [] and run["engine"].owned.working == {}
    after = [r for t, r in run["sent"] if t >= run["start_ns"] + int(3.5 * S)]
    assert len(after) == 1 and run["execution"].stats.reject_codes == {"HALTED": 1}  # refused, not retried
    assert strategy.position() == progress.filled_steps < 50
    assert run["reports"][0]["stop_reason"] == "halted"
    assert strategy.told[-1].state is AlgoState.FINISHED


async def test_the_strategy_component_s_halt_stops_it_and_nothing_more_goes():
    async def halt(run):
        await run["component"].halt("operator", "test", False)
        await run["engine"].algos.settle()
        run["open_after_halt"] = run["execution"].open_orders()
        run["halted_at"] = run["clock"].now_ns()

    run = await backtest(PassiveTwapper, at_ns={int(3.5 * S): halt})
    strategy = run["strategy"]
    progress = strategy.algo(strategy.algo_id)
    assert progress.stop_reason is StopReason.HALTED and progress.state is AlgoState.FINISHED
    assert run["open_after_halt"] == [] and run["open"] == []
    assert [r for t, r in run["sent"] if t >= run["halted_at"]] == []
    assert run["execution"].stats.reject_codes == {}  # nothing was even tried
    assert progress.leftover_steps == 50 - progress.filled_steps > 0


async def test_an_iceberg_never_shows_more_than_its_display():
    shown: list[int] = []

    def watch(run):
        shown.append(sum(o.remaining_steps for o in run["execution"].open_orders()))

    run = await backtest(Icebergger, lines=6000, each_line=watch)
    strategy = run["strategy"]
    progress = strategy.algo(strategy.algo_id)
    assert max(shown) == 5 and all(s <= 5 for s in shown)
    assert all(r.qty_steps <= 5 for _, r in run["sent"])
    assert len({r.price_ticks for _, r in run["sent"]}) == 1  # all at its price
    assert progress.filled_steps > 0, "the iceberg never filled in the capture's first lines"
    assert strategy.position() == progress.filled_steps
    assert len(run["sent"]) >= 2  # replenished


class Vwapper(Twapper):
    """Sells 0.100 BTC over 10 s along the capture's own recorded volume profile (look-ahead here, so that
    every bucket's target is exactly known; a real run takes yesterday's, time_of_day=True)."""

    profile: tuple[int, ...] = ()

    def on_book(self, book) -> None:
        if not self.algo_id:
            ins = self.instrument(self.symbol)
            type(self).profile = capture_profile(CAPTURE, ins, self.now_ns, self.now_ns + 10 * S, 10, max_lines=5000)
            self.algo_id = self.vwap(self.symbol, Side.SELL, "0.100", duration_ns=10 * S, profile=self.profile)


async def test_a_strategy_s_vwap_follows_the_recorded_profile():
    run = await backtest(Vwapper, lines=5000)
    strategy, profile = run["strategy"], Vwapper.profile
    assert len(set(profile)) > 5
    assert strategy.algo(strategy.algo_id).filled_steps == 100 and strategy.position() == -100
    total, running = sum(profile), 0
    for bucket, volume in enumerate(profile):
        running += volume
        sent = sum(r.qty_steps for t, r in run["sent"] if t < run["start_ns"] + (bucket + 1) * S)
        assert sent == 100 * running // total, f"bucket {bucket}"
    [report] = run["reports"]
    fills = [f for f in run["fills"] if f.strategy_id == "alg"]
    assert abs(Decimal(report["slippage_bps"]) - expected_slippage_bps(Side.SELL, fills, run["arrival"])) <= \
        Decimal("0.01")
