"""Execution algorithms beside the strategy engine (celeris.strategy.algo_hooks): a child is the SDK
strategy's own managed order in the engine — counted by its pre-trade filter while it works, left alone by
the time-to-live, cancelled by a halt of the strategies, its fills the strategy's own position and told to
its on_fill — and the parent's progress reaches the strategy's on_algo."""

from __future__ import annotations

from celeris.domain import sdk
from celeris.domain.algo_orders import ChildStyle, ParentOrder, TwapParams
from celeris.domain.algos import AlgoState, StopReason
from celeris.domain.clock import NS_PER_S, TestClock
from celeris.domain.messages import Fill
from celeris.domain.values import Side
from celeris.strategy.algo_hooks import engine_hooks
from celeris.strategy.algos import AlgoRunner

from tests.strategy.fakes import ControlledGateway, book, engine_with, settle

S = NS_PER_S
T0 = 10**18


class Parent(sdk.Strategy):
    """An SDK strategy that hands its work to an execution algorithm and records what it is told."""

    name = "parent"

    def __init__(self):
        self.fills = []
        self.algo = []

    def on_fill(self, fill):
        self.fills.append(fill)

    def on_algo(self, progress):
        self.algo.append((progress.state, progress.filled_steps))


def fill(engine, runner, gateway, cid, qty, price):
    """Execution's fill and order update, as the bus delivers them to both."""
    order = gateway.orders[cid]
    order.fill(qty, price)
    message = Fill(order.symbol, cid, 1, qty, order.side, price, qty, 0, True, 0, order.strategy_id, "live",
                   engine.clock.now_ns())
    for target in (engine, runner):
        target.on_fill(message)
        target.on_order_update(order)


async def test_a_child_is_the_strategy_s_own_order_in_the_engine(btcusdt):
    clock = TestClock(T0)
    gateway = ControlledGateway()
    engine = engine_with(btcusdt, ("a", Parent, {}), gateway=gateway, clock=clock, order_ttl_s=1.0)
    engine.on_book(book(1))  # the strategy starts
    runner = AlgoRunner({"BTCUSDT": btcusdt}, clock, gateway, **engine_hooks(engine))
    runner.on_book(book(1))
    parent = ParentOrder("BTCUSDT", Side.BUY, 40, T0, T0 + 4 * S, TwapParams(4, ChildStyle.PASSIVE))
    algo_id = runner.start(parent, "a")
    await settle()
    child = gateway.submitted[0]
    record = engine.owned.working[child.client_order_id]
    assert record.owners == ("a",) and record.managed and record.qty_steps == 10
    assert engine.account_view(Side.BUY).positions["BTCUSDT"] == 10  # the filter counts it while it works
    clock.advance(s=2)
    engine.upkeep()  # past the engine's time-to-live: a managed order is not its to cancel
    await settle()
    assert child.client_order_id not in gateway.canceled
    fill(engine, runner, gateway, child.client_order_id, 4, 600000)
    await settle()
    strategy = engine.runners["a"].strategy
    assert [f.qty_steps for f in strategy.fills] == [4]
    assert engine.owned.position_of("a", "BTCUSDT").qty_steps == 4
    assert strategy.algo[-1] == (AlgoState.RUNNING, 4)
    # A halt of the strategies cancels every order they own: the child too; the parent stops with it.
    await engine.cancel_quotes()
    runner.halt("strategies halted")
    await settle()
    assert child.client_order_id in gateway.canceled
    progress = runner.progress(algo_id)
    assert progress.state is AlgoState.FINISHED and progress.stop_reason is StopReason.HALTED
    assert strategy.algo[-1] == (AlgoState.FINISHED, 4)
    assert child.client_order_id not in engine.owned.working
    assert engine.account_view(Side.BUY).positions["BTCUSDT"] == 4


async def test_a_refused_child_no_longer_counts_in_the_engine(btcusdt):
    clock = TestClock(T0)
    gateway = ControlledGateway()
    engine = engine_with(btcusdt, ("a", Parent, {}), gateway=gateway, clock=clock)
    engine.on_book(book(1))
    runner = AlgoRunner({"BTCUSDT": btcusdt}, clock, gateway, **engine_hooks(engine))
    runner.on_book(book(1))
    gateway.refuse_next = "venue said no"  # no order update follows a refusal: only the runner knows
    runner.start(ParentOrder("BTCUSDT", Side.BUY, 40, T0, T0 + 4 * S, TwapParams(4)), "a")
    await settle()
    assert len(gateway.submitted) == 1 and engine.owned.working == {}
    assert engine.account_view(Side.BUY).positions["BTCUSDT"] == 0
