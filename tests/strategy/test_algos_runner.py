"""The execution-algorithm driver (celeris.strategy.algos) on a TestClock through a fake order gateway:
children owned by the parent's strategy, the TWAP schedule in clock time, a halt (refused children, or
the runner's own halt) stopping every parent and cancelling its child, a submit without an answer, the
report, and the recorded volume profile read from the real capture."""

from __future__ import annotations

import asyncio

import pytest
from celeris.domain.algo_orders import (
    ChildStyle,
    IcebergParams,
    ParentOrder,
    TwapParams,
)
from celeris.domain.algos import AlgoState, StopReason
from celeris.domain.clock import NS_PER_S, TestClock
from celeris.domain.messages import (
    Fill,
    Outcome,
    RejectCode,
    Rejection,
    client_order_id_for,
    owner_tag_of,
    venue_tag,
)
from celeris.domain.orders import Order, OrderEvent
from celeris.domain.values import Side
from celeris.strategy.algo_profile import capture_profile, capture_trades
from celeris.strategy.algos import AlgoRunner

from tests.conftest import DATA
from tests.strategy.algo_model import btcusdt

INS = btcusdt()
BID, ASK = 618_000, 618_001
S = NS_PER_S
T0 = 1_700_000_000 * S
CAPTURE = DATA / "hftbacktest_usdm_btcusdt_20240808.gz"


class FakeGateway:
    """Execution as the runner sees it: accepts (resting) unless halted or told to fail; cancels close."""

    def __init__(self) -> None:
        self.halted = False
        self.fail = False
        self.submitted = []
        self.canceled = []
        self.orders: dict[str, Order] = {}
        self.gate: asyncio.Event | None = None
        """Set: submits wait for it (an answer still on its way)."""

    async def submit(self, request):
        self.submitted.append(request)
        await asyncio.sleep(0)  # the answer comes later than the call
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("no answer")
        if self.halted:
            return Outcome(request.request_id, False, rejection=Rejection(RejectCode.HALTED, "trading halted: test"))
        order = Order(request.client_order_id, request.symbol, request.side, request.order_type, request.qty_steps,
                      request.price_ticks, request.time_in_force, request.reduce_only, strategy_id=request.strategy_id)
        order.apply(OrderEvent.SUBMIT)
        order.apply(OrderEvent.ACCEPT)
        self.orders[order.client_order_id] = order
        return Outcome(request.request_id, True, order)

    async def cancel(self, request_id, symbol, client_order_id="", venue_order_id=0):
        self.canceled.append(client_order_id)
        await asyncio.sleep(0)
        order = self.orders.get(client_order_id)
        if order is None:
            return Outcome(request_id, False, rejection=Rejection(RejectCode.UNKNOWN_ORDER, "unknown order"))
        if order.is_open:
            order.apply(OrderEvent.CANCEL)
        return Outcome(request_id, True, order)

    def fill_open(self, runner: AlgoRunner, clock: TestClock, price: int, qty: int | None = None) -> None:
        """Fill every open order (all of it, or `qty`), as execution publishes it: the fill, then the order."""
        for order in [o for o in self.orders.values() if o.is_open]:
            q = min(qty or order.qty_steps, order.qty_steps - order.filled_steps)
            order.fill(q, price, clock.now_ns())
            runner.on_fill(Fill(order.symbol, order.client_order_id, 1, len(self.submitted), order.side, price, q,
                                0, False, 0, order.strategy_id, "simulation", clock.now_ns()))
            runner.on_order_update(order)


def twap(qty=100, slices=5, side=Side.BUY, style=ChildStyle.CROSS, seconds=5) -> ParentOrder:
    return ParentOrder("BTCUSDT", side, qty, T0, T0 + seconds * S, TwapParams(slices, style))


async def started(gateway, parent=None, owner="alpha"):
    clock = TestClock(T0)
    runner = AlgoRunner({"BTCUSDT": INS}, clock, gateway)
    runner.on_top("BTCUSDT", BID, 5, ASK, 5)
    algo_id = runner.start(parent or twap(), owner)
    await runner.settle()
    return clock, runner, algo_id


async def test_twap_children_go_out_on_the_clock_schedule_owned_by_the_strategy():
    gateway = FakeGateway()
    clock, runner, algo_id = await started(gateway, owner="alpha")
    sent_at = []
    for second in range(6):
        clock.set(T0 + second * S)
        before = len(gateway.submitted)
        runner.on_timer()
        await runner.settle()
        sent_at += [second] * (len(gateway.submitted) - before)
        gateway.fill_open(runner, clock, ASK)
        await runner.settle()
    assert sent_at == [1, 2, 3, 4]  # + the first at start (second 0, sent by start itself)
    assert [r.qty_steps for r in gateway.submitted] == [20] * 5
    for request in gateway.submitted:
        assert request.strategy_id == "alpha"
        assert request.client_order_id == client_order_id_for(request.request_id, "alpha")
        assert owner_tag_of(request.client_order_id) == venue_tag("alpha")
    assert len({r.request_id for r in gateway.submitted}) == 5
    progress = runner.progress(algo_id)
    assert progress.state is AlgoState.FINISHED and progress.filled_steps == 100


async def test_a_halted_refusal_stops_every_parent_and_cancels_their_children():
    gateway = FakeGateway()
    clock, runner, twap_id = await started(gateway, twap(style=ChildStyle.PASSIVE))
    ice_id = runner.start(ParentOrder("BTCUSDT", Side.SELL, 50, T0, 0, IcebergParams(10), ASK + 10), "beta")
    await runner.settle()
    assert len(gateway.submitted) == 2 and not gateway.canceled
    gateway.halted = True
    clock.advance(s=1)
    runner.on_timer()  # the TWAP's passive child is stale: cancelled, its rest re-sent, and refused
    await runner.settle()
    refused = gateway.submitted[2]
    assert refused.request_id.startswith(twap_id)
    assert set(gateway.canceled) == {gateway.submitted[0].client_order_id, gateway.submitted[1].client_order_id}
    for algo_id in (twap_id, ice_id):
        progress = runner.progress(algo_id)
        assert progress.state is AlgoState.FINISHED and progress.stop_reason is StopReason.HALTED, algo_id
    count = len(gateway.submitted)
    for _ in range(10):  # no retry loop: not on the clock, not on the book
        clock.advance(s=1)
        runner.on_timer()
        runner.on_top("BTCUSDT", BID, 5, ASK, 5)
        await runner.settle()
    assert len(gateway.submitted) == count


async def test_the_runner_halt_cancels_children_and_refuses_new_parents_until_resumed():
    gateway = FakeGateway()
    clock, runner, algo_id = await started(gateway, twap(style=ChildStyle.PASSIVE))
    runner.halt("risk said so")
    await runner.settle()
    assert gateway.canceled == [gateway.submitted[0].client_order_id]
    assert runner.progress(algo_id).stop_reason is StopReason.HALTED
    late = runner.start(twap(), "alpha")
    await runner.settle()
    assert runner.progress(late).state is AlgoState.FINISHED and len(gateway.submitted) == 1
    runner.resume()
    fresh = runner.start(ParentOrder("BTCUSDT", Side.BUY, 10, clock.now_ns(), clock.now_ns() + S, TwapParams(1)),
                         "alpha")
    await runner.settle()
    assert len(gateway.submitted) == 2 and runner.progress(fresh).state is AlgoState.RUNNING


async def test_a_submit_without_an_answer_stops_the_parent_and_its_child_is_cancelled_not_guessed():
    gateway = FakeGateway()
    gateway.fail = True
    _, runner, algo_id = await started(gateway)
    assert gateway.canceled == [gateway.submitted[0].client_order_id]
    progress = runner.progress(algo_id)
    # execution never heard of it: the cancel's "unknown order" closes it, nothing was filled.
    assert progress.state is AlgoState.FINISHED and progress.stop_reason is StopReason.REFUSED
    assert progress.outstanding_steps == 0


async def test_a_cancel_racing_its_submit_is_asked_again_not_taken_as_the_close():
    gateway = FakeGateway()
    gateway.gate = asyncio.Event()
    clock = TestClock(T0)
    runner = AlgoRunner({"BTCUSDT": INS}, clock, gateway)
    runner.on_top("BTCUSDT", BID, 5, ASK, 5)
    algo_id = runner.start(twap(style=ChildStyle.PASSIVE), "alpha")
    await asyncio.sleep(0)
    runner.cancel(algo_id)
    for _ in range(5):
        await asyncio.sleep(0)
    assert gateway.canceled == [gateway.submitted[0].client_order_id]  # "unknown order": still on its way
    assert runner.progress(algo_id).state is AlgoState.STOPPING
    gateway.gate.set()
    await runner.settle()
    assert runner.progress(algo_id).state is AlgoState.STOPPING  # accepted, open at execution: not closed
    clock.advance(s=1)
    runner.on_timer()
    await runner.settle()
    assert gateway.canceled == [gateway.submitted[0].client_order_id] * 2
    assert runner.progress(algo_id).state is AlgoState.FINISHED


async def test_the_report_says_progress_and_slippage_against_arrival():
    gateway = FakeGateway()
    clock, runner, algo_id = await started(gateway, twap(qty=10, slices=1, side=Side.SELL))
    gateway.fill_open(runner, clock, BID - 62, qty=4)  # sold 6.2 below the arrival mid 61800.05
    await runner.settle()
    report = runner.report(algo_id)
    assert report["owner"] == "alpha" and report["kind"] == "twap" and report["side"] == "SELL"
    assert (report["filled"], report["remaining"]) == ("0.004", "0.006")
    assert report["arrival_price"] == "61800.050000"
    assert report["average_price"] == "61793.800000"
    assert report["slippage_bps"] == "1.01"  # a cost: positive
    clock.advance(s=5)
    runner.on_timer()
    await runner.settle()
    report = runner.report(algo_id)
    assert report["stop_reason"] == "end_of_horizon" and report["leftover"] == "0.006"


async def test_the_strategy_engine_can_follow_each_child_and_the_progress_through_the_hooks():
    gateway = FakeGateway()
    clock = TestClock(T0)
    sent, done, told = [], [], []
    runner = AlgoRunner({"BTCUSDT": INS}, clock, gateway,
                        on_child_sent=lambda o, r: sent.append((o, r.client_order_id)),
                        on_child_done=lambda o, c: done.append((o, c)),
                        on_progress=lambda o, p: told.append((o, p.state, p.filled_steps)))
    runner.on_top("BTCUSDT", BID, 5, ASK, 5)
    runner.start(twap(qty=10, slices=1), "alpha")
    await runner.settle()
    gateway.fill_open(runner, clock, ASK)
    await runner.settle()
    assert sent == done == [("alpha", gateway.submitted[0].client_order_id)]
    assert told == [("alpha", AlgoState.RUNNING, 0), ("alpha", AlgoState.FINISHED, 10)]


async def test_a_caller_may_name_the_parent_but_never_twice():
    gateway = FakeGateway()
    _, runner, _ = await started(gateway)
    named = runner.start(twap(), "alpha", algo_id="alpha-sdk-7")
    await runner.settle()
    assert named == "alpha-sdk-7" and gateway.submitted[-1].request_id.startswith("alpha-sdk-7-")
    with pytest.raises(ValueError):
        runner.start(twap(), "alpha", algo_id="alpha-sdk-7")
    with pytest.raises(ValueError):
        runner.start(twap(), "")


async def test_only_a_finished_parent_is_forgotten():
    gateway = FakeGateway()
    _clock, runner, algo_id = await started(gateway, twap(style=ChildStyle.PASSIVE))
    with pytest.raises(ValueError):
        runner.forget(algo_id)
    runner.cancel(algo_id)
    await runner.settle()
    assert [r["algo_id"] for r in runner.reports("alpha")] == [algo_id] and runner.reports("beta") == []
    runner.forget(algo_id)
    assert runner.reports() == [] and runner.children == {}


def test_the_recorded_volume_profile_is_the_capture_s_trade_quantities_per_bucket():
    trades = list(capture_trades(CAPTURE, INS, max_lines=5000))
    assert len(trades) > 100
    start, end = trades[0][0], trades[-1][0] + 1
    profile = capture_profile(CAPTURE, INS, start, end, 10, max_lines=5000)
    assert sum(profile) == sum(q for _, q in trades) and len(profile) == 10
    first = sum(q for ts, q in trades if ts < start + (end - start) // 10)
    assert profile[0] == first


def test_finished_parents_beyond_the_kept_number_are_forgotten_running_ones_never(monkeypatch):
    from celeris.strategy import algos

    monkeypatch.setattr(algos, "KEEP_FINISHED", 3)
    clock = TestClock(start_ns=T0)
    runner = AlgoRunner({"BTCUSDT": INS}, clock, FakeGateway())
    running = runner.start(twap(seconds=3600), "alpha")  # no top yet: it waits, unfinished
    refused = [runner.refuse(twap(), "alpha", f"r{i}") for i in range(10)]
    assert list(runner.algos) == [running, *refused[-3:]]
    assert runner.algos[running].algo.state is not AlgoState.FINISHED
    assert [r["algo_id"] for r in runner.reports()] == [running, *refused[-3:]]
