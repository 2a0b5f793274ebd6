"""The SDK's execution-algorithm actions at their edge, through the strategy engine and a gateway the test
controls: what is refused at once in the callback (off the grid, floats, a missing horizon), what the
engine refuses like an order (observation mode, halted, no price yet) with nothing sent, cancel_algo,
a strategy that leaves taking its parents with it, and the ids chosen before the start."""

from __future__ import annotations

import json

import pytest
from celeris.domain import sdk
from celeris.domain.algo_orders import ChildStyle
from celeris.domain.algos import AlgoState, StopReason
from celeris.domain.clock import NS_PER_S, TestClock
from celeris.domain.modes import Mode
from celeris.domain.sdk_types import OrderRefused
from celeris.domain.values import Side
from celeris.strategy.component import StrategyComponent
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategy.fakes import ControlledGateway, book, engine_with, settle

S = NS_PER_S
T0 = 10**18


class Scripted(sdk.Strategy):
    """Runs `script(self)` on the first book; keeps what it raised and what it was told."""

    name = "scripted"
    script = staticmethod(lambda self: self.twap(self.symbol, Side.BUY, "0.040", duration_ns=4 * S, slices=4))

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.raised: list[OrderRefused] = []
        self.told: list = []
        self.read_inside: list = []

    def on_book(self, book) -> None:
        if self.ids or self.raised:
            return
        try:
            algo_id = type(self).script(self)
            self.ids.append(algo_id)
            self.read_inside.append(self.algo(algo_id))
        except OrderRefused as exc:
            self.raised.append(exc)

    def on_algo(self, progress) -> None:
        self.told.append(progress)


def scripted(script):
    return type("S", (Scripted,), {"script": staticmethod(script)})


async def started(btcusdt, cls=Scripted, **kw):
    gateway = kw.pop("gateway", None) or ControlledGateway()
    engine = engine_with(btcusdt, ("a", cls, {}), gateway=gateway, clock=TestClock(T0), **kw)
    engine.on_book(book(1))
    await settle()
    return engine, gateway, engine.runners["a"].strategy


async def test_a_twap_goes_out_as_the_strategy_s_children(btcusdt):
    engine, gateway, strategy = await started(btcusdt)
    [algo_id] = strategy.ids
    assert strategy.read_inside == [None]  # still queued inside the callback that started it
    assert algo_id == f"a-twap-{T0}-1"  # chosen at once: name, clock, sequence
    assert [(r.strategy_id, r.qty_steps, r.side) for r in gateway.submitted] == [("a", 10, Side.BUY)]
    assert strategy.algo(algo_id).state is AlgoState.RUNNING and strategy.algos() == (algo_id,)
    assert strategy.told[-1].state is AlgoState.RUNNING
    assert engine.owned.working[gateway.submitted[0].client_order_id].owners == ("a",)


@pytest.mark.parametrize("script, message", [
    (lambda s: s.twap(s.symbol, Side.BUY, "0.0005", duration_ns=S, slices=2), "off the step grid"),
    (lambda s: s.twap(s.symbol, Side.BUY, 0.04, duration_ns=S, slices=2), "not float"),
    (lambda s: s.twap(s.symbol, Side.BUY, "0.040", slices=2), "needs a horizon"),
    (lambda s: s.twap(s.symbol, Side.BUY, "0.040", duration_ns=S, end_ns=T0 + S, slices=2), "not both"),
    (lambda s: s.twap(s.symbol, Side.BUY, "0.040", duration_ns=S, slices=0), "at least one slice"),
    (lambda s: s.twap(s.symbol, "BUY", "0.040", duration_ns=S, slices=2), "Side.BUY"),
    (lambda s: s.twap(s.symbol, Side.BUY, "0.040", duration_ns=S, slices=2, limit_price="60000.05"),
     "off the tick grid"),
    (lambda s: s.vwap(s.symbol, Side.BUY, "0.040", duration_ns=S, profile=[1, 0.5]), "whole volumes"),
    (lambda s: s.vwap(s.symbol, Side.BUY, "0.040", duration_ns=S, profile=[0, 0]), "some volume"),
    (lambda s: s.pov(s.symbol, Side.BUY, "0.040", rate_bps=0), "POV rate"),
    (lambda s: s.pov(s.symbol, Side.BUY, "0.040", rate_bps=10, min_child_qty="0.0001"), "off the step grid"),
    (lambda s: s.iceberg(s.symbol, Side.BUY, "0.040", "60000.0", "0.0015"), "off the step grid"),
    (lambda s: s.iceberg(s.symbol, Side.BUY, "0.040", "60000.0", "0"), "display"),
    (lambda s: s.twap("ETHUSDT", Side.BUY, "0.040", duration_ns=S, slices=2), "unknown symbol"),
    (lambda s: s.cancel_algo("a-twap-1-1"), "not an execution algorithm of"),
    (lambda s: s.twap(s.symbol, Side.BUY, "0.040", duration_ns=S, slices=2, style="cross"), "ChildStyle"),
])
async def test_a_bad_parent_is_refused_in_the_callback_and_nothing_is_queued(btcusdt, script, message):
    engine, gateway, strategy = await started(btcusdt, scripted(script))
    assert len(strategy.raised) == 1 and message in str(strategy.raised[0]), strategy.raised
    assert strategy.ids == [] and strategy.algos() == () and gateway.submitted == [] and engine.algos.algos == {}


@settings(max_examples=40, deadline=None)
@given(qty=st.decimals(min_value="0.0001", max_value="1", places=4))
def test_only_quantities_on_the_step_grid_make_a_parent(btcusdt, qty):
    ins = btcusdt
    engine = engine_with(btcusdt, ("a", Scripted, {}), clock=TestClock(T0))
    strategy = engine.runners["a"].strategy
    strategy.bind(strategy.ctx)
    on_grid = (qty * 1000) == (qty * 1000).to_integral_value()
    try:
        strategy.twap("BTCUSDT", Side.SELL, qty, duration_ns=S, slices=1)
    except OrderRefused:
        assert not on_grid
    else:
        assert on_grid and strategy.ctx.intents[-1].parent.qty_steps == ins.qty_grid.parse(format(qty, "f"))


@pytest.mark.parametrize("how, reason", [("observation", "observation mode"), ("halted", "halted")])
async def test_the_engine_refuses_a_parent_like_an_order_and_sends_nothing(btcusdt, how, reason):
    gateway = ControlledGateway()
    engine = engine_with(btcusdt, ("a", Scripted, {}), gateway=gateway, clock=TestClock(T0),
                         mode=Mode.OBSERVATION if how == "observation" else Mode.LIVE)
    engine.halted = how == "halted"
    engine.on_book(book(1))
    for seq in range(2, 6):
        engine.clock.advance(s=1)
        engine.on_book(book(seq))
    await settle()
    strategy = engine.runners["a"].strategy
    [algo_id] = strategy.ids
    assert gateway.submitted == [] and engine.owned.working == {}
    progress = strategy.algo(algo_id)
    assert progress.state is AlgoState.FINISHED and progress.stop_reason is StopReason.REFUSED
    assert progress.leftover_steps == 40 and progress.filled_steps == 0
    assert [(p.state, p.stop_reason) for p in strategy.told] == [(AlgoState.FINISHED, StopReason.REFUSED)]
    [report] = engine.algo_reports()
    assert reason in report["refused_reason"] and report["stop_reason"] == "refused"
    assert json.loads(json.dumps(report)) == report


async def test_a_parent_started_before_any_price_is_refused(btcusdt):
    class Early(Scripted):
        def on_start(self):
            self.ids.append(self.twap(self.symbol, Side.BUY, "0.040", duration_ns=4 * S, slices=4))

    gateway = ControlledGateway()
    engine = engine_with(btcusdt, ("a", Early, {}), gateway=gateway, clock=TestClock(T0))
    from celeris.domain.messages import TradeUpdate
    engine.on_trade(TradeUpdate("BTCUSDT", 1, 1, 600000, 10, False, T0, T0))  # on_start, no book yet
    engine.on_book(book(1))
    await settle()
    assert gateway.submitted == []
    assert "no price" in engine.algo_reports()[0]["refused_reason"]


async def test_cancel_algo_stops_it_and_cancels_its_child(btcusdt):
    engine, gateway, strategy = await started(btcusdt)
    [algo_id] = strategy.ids
    child = gateway.submitted[0].client_order_id
    strategy.cancel_algo(algo_id)  # outside a callback: queued, executed at the next drain
    engine._drain(engine.runners["a"])
    await settle()
    assert child in gateway.canceled and not gateway.orders[child].is_open
    progress = strategy.algo(algo_id)
    assert progress.state is AlgoState.FINISHED and progress.stop_reason is StopReason.CANCELED
    engine.clock.advance(s=3)
    engine.on_book(book(2))
    await settle()
    assert len(gateway.submitted) == 1 and engine.owned.working == {}
    strategy.cancel_algo(algo_id)  # a finished one: a no-op
    engine._drain(engine.runners["a"])


async def test_a_strategy_that_leaves_takes_its_parents_with_it(btcusdt):
    engine, gateway, strategy = await started(btcusdt)
    [algo_id] = strategy.ids
    engine.disable("a")
    await settle()
    assert strategy.algo(algo_id).stop_reason is StopReason.CANCELED
    engine.clock.advance(s=3)
    engine.on_book(book(2))
    await settle()
    assert len(gateway.submitted) == 1 and not gateway.orders[gateway.submitted[0].client_order_id].is_open


async def test_the_component_halts_and_resumes_the_algorithms(btcusdt):
    engine, gateway, strategy = await started(btcusdt)
    component = StrategyComponent(engine)
    [algo_id] = strategy.ids
    await component.halt("operator", "me", False)
    await settle()
    assert strategy.algo(algo_id).stop_reason is StopReason.HALTED
    assert not any(o.is_open for o in gateway.orders.values()) and engine.owned.working == {}
    await component.resume("me")
    assert not engine.algos.halted and not engine.halted
    engine.clock.advance(s=3)
    engine.on_book(book(2))
    await settle()
    assert len(gateway.submitted) == 1  # a halted parent is never restarted
    # A new parent after the resume works.
    strategy.ids.append(strategy.iceberg("BTCUSDT", Side.SELL, "0.030", "60001.0", "0.010"))
    engine._drain(engine.runners["a"])
    await settle()
    assert [(r.qty_steps, r.price_ticks) for r in gateway.submitted[1:]] == [(10, 600010)]


async def test_the_component_s_stop_leaves_no_child_working(btcusdt):
    engine, gateway, strategy = await started(btcusdt, cls=scripted(
        lambda s: s.pov(s.symbol, Side.BUY, "0.040", rate_bps=10_000, style=ChildStyle.PASSIVE)))
    from celeris.domain.messages import TradeUpdate
    engine.on_trade(TradeUpdate("BTCUSDT", 1, 1, 600000, 20, False, T0, T0))
    await settle()
    assert gateway.submitted, "POV sent nothing on a trade"
    await StrategyComponent(engine).stop()
    assert not any(o.is_open for o in gateway.orders.values())
    assert strategy.algo(strategy.ids[0]).stop_reason is StopReason.CANCELED


async def test_a_parent_s_wake_up_is_an_engine_timer_on_its_clock(btcusdt):
    # A POV with a horizon, in a market without trades: it ends at its horizon on the engine's timer path
    # (a backtest advances its clock to next_timer_ns), no book or trade needed.
    engine, gateway, strategy = await started(btcusdt, cls=scripted(
        lambda s: s.pov(s.symbol, Side.BUY, "0.040", rate_bps=100, duration_ns=5 * S)))
    [algo_id] = strategy.ids
    assert engine.next_timer_ns() == T0 + 5 * S
    engine.clock.set(T0 + 5 * S)
    engine.run_timers()
    await settle()
    progress = strategy.algo(algo_id)
    assert progress.state is AlgoState.FINISHED and progress.stop_reason is StopReason.END_OF_HORIZON
    assert engine.next_timer_ns() is None and strategy.told[-1].state is AlgoState.FINISHED
    assert gateway.submitted == []  # no market volume, nothing to take part in


async def test_the_docs_algo_snippet_runs_as_written(btcusdt):
    """docs/strategies.md's section 8 snippet (the strategy and its test), executed from the page itself."""
    import re
    import sys
    import types

    from tests.conftest import ROOT

    text = (ROOT / "docs" / "strategies.md").read_text()
    section = text.split("## 8. Execution algorithms", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    module = types.ModuleType("docs_algos_snippet")
    sys.modules[module.__name__] = module
    exec(compile(block, "docs/strategies.md#8", "exec"), module.__dict__)  # noqa: S102 - our own page
    await module.test_it_hands_the_work_to_a_twap(btcusdt)


async def test_a_hot_reload_keeps_the_parents_and_the_fresh_instance_follows_them(btcusdt):
    engine, gateway, strategy = await started(btcusdt)
    [algo_id] = strategy.ids
    fresh = engine.reload("a").strategy
    assert fresh is not strategy and fresh.algos() == (algo_id,)
    child = gateway.submitted[0].client_order_id
    gateway.fill(engine, child, 10)
    await settle()
    assert fresh.algo(algo_id).filled_steps == 10 and fresh.position() == 10
    assert fresh.told and fresh.told[-1].filled_steps == 10 and not strategy.told[1:]
