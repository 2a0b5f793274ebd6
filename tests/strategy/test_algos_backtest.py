"""Execution algorithms in a backtest: the real market data core, execution engine and paper venue on a
TestClock over the first lines of the real capture (wired as `celeris replay` wires them), with the
AlgoRunner on the bus in the strategy engine's place. The same runner and gateway port as paper and live:
only the clock and the venue differ.

Shown here: a TWAP's children go out on its schedule in capture time, owned by the strategy at execution,
fill the parent, and the slippage it reports is the fills' against the arrival mid, recomputed from
execution's own fills; the run is deterministic; a halt at execution cancels the working child and the
next child's halted refusal stops the parent for good."""

from __future__ import annotations

from typing import Any

from celeris.domain.algo_orders import (
    ChildStyle,
    ParentOrder,
    PovParams,
    TwapParams,
    VwapParams,
)
from celeris.domain.algos import AlgoState, StopReason
from celeris.domain.clock import NS_PER_S, TestClock
from celeris.domain.messages import (
    OrderRequest,
    client_order_id_for,
    owner_tag_of,
    venue_tag,
)
from celeris.domain.modes import Mode
from celeris.domain.topics import book_topic, fill_topic, order_topic, trade_topic
from celeris.domain.values import Side
from celeris.execution.engine import ExecutionEngine
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.execution.paper import PaperVenue
from celeris.marketdata.core import MarketDataCore, Sink
from celeris.marketdata.verify import _open, bundled_instruments
from celeris.strategy.algo_profile import capture_profile, capture_trades
from celeris.strategy.algos import AlgoRunner
from celeris.transport.bus import InProcessBus

from tests.conftest import DATA

CAPTURE = DATA / "hftbacktest_usdm_btcusdt_20240808.gz"
SYMBOL = "BTCUSDT"
OWNER = "twapper"
S = NS_PER_S


async def run_capture(make_parent, lines: int = 5000, at_ns: dict[int, Any] | None = None) -> dict[str, Any]:
    """Feed the capture's first `lines` through the engines; start the parent on the first live top.
    `at_ns`: {offset from the start: async callable(execution)} run once the clock passes it."""
    instruments = {SYMBOL: bundled_instruments()[SYMBOL]}
    clock = TestClock(start_ns=0)
    bus = InProcessBus()
    paper = PaperVenue(instruments, clock, latency_ms=0)
    execution = ExecutionEngine(ExecutionConfig((SYMBOL,), PositionLimits(0, 10_000)), instruments, clock,
                                {Mode.SIMULATION: paper}, bus.publish, mode=Mode.SIMULATION)
    sent: list[tuple[int, OrderRequest]] = []
    runner = AlgoRunner(instruments, clock, execution, on_child_sent=lambda owner, r: sent.append((clock.now_ns(), r)))
    core = MarketDataCore(list(instruments.values()), clock,
                          Sink(book=lambda u: bus.publish(book_topic(u.symbol), u),
                               trade=lambda t: bus.publish(trade_topic(t.symbol), t)))
    fills = []
    bus.subscribe(book_topic(SYMBOL), paper.on_book)
    bus.subscribe(book_topic(SYMBOL), runner.on_book)
    bus.subscribe(trade_topic(SYMBOL), paper.on_trade)
    bus.subscribe(trade_topic(SYMBOL), runner.on_trade)
    bus.subscribe(fill_topic(SYMBOL), runner.on_fill)
    bus.subscribe(fill_topic(SYMBOL), fills.append)
    bus.subscribe(order_topic(SYMBOL), runner.on_order_update)
    await execution.start()
    core.start()
    algo_id, start_ns, arrival_top = None, 0, None
    pending = dict(at_ns or {})
    with _open(CAPTURE) as fh:
        for n, line in enumerate(fh):
            if n >= lines:
                break
            stamp, _, raw = line.partition(b" ")
            ts = int(stamp)
            if ts > clock.now_ns():
                clock.set(ts)
            if raw.startswith(b'{"lastUpdateId"'):
                core.on_snapshot(SYMBOL, raw, ts)
            else:
                core.on_message(raw, ts)
            if algo_id is None and SYMBOL in runner.tops:
                start_ns, arrival_top = clock.now_ns(), runner.tops[SYMBOL]
                algo_id = runner.start(make_parent(start_ns), OWNER)
            for offset in [o for o in pending if start_ns and clock.now_ns() >= start_ns + o]:
                await pending.pop(offset)(execution)
            await runner.settle()
            await execution.settle()
    await runner.settle()
    await execution.settle()
    result = {"report": runner.report(algo_id), "progress": runner.progress(algo_id), "sent": sent,
              "start_ns": start_ns, "arrival_top": arrival_top, "fills": fills, "execution": execution,
              "position": paper.account_positions[SYMBOL].qty_steps, "instrument": instruments[SYMBOL]}
    await execution.stop()
    return result


def twap(start_ns: int) -> ParentOrder:
    return ParentOrder(SYMBOL, Side.BUY, 50, start_ns, start_ns + 10 * S, TwapParams(10))


async def test_a_twap_on_the_real_capture_through_execution_and_the_paper_venue():
    result = await run_capture(twap)
    progress, start = result["progress"], result["start_ns"]
    assert progress.state is AlgoState.FINISHED and progress.stop_reason is StopReason.FILLED
    assert progress.filled_steps == 50 and result["position"] == 50
    # One child per slice, each due at start + i s, sent at the first capture event at or after it.
    times = [t for t, _ in result["sent"]]
    assert [r.qty_steps for _, r in result["sent"]] == [5] * 10
    for i, t in enumerate(times):
        assert start + i * S <= t < start + i * S + S // 2, f"child {i} at {(t - start) / 1e9:.3f} s"
    # Owned by the strategy at execution: its id as strategy_id, its tag in the venue's client order id.
    orders = [result["execution"].orders[r.client_order_id] for _, r in result["sent"]]
    assert all(o.strategy_id == OWNER and owner_tag_of(o.client_order_id) == venue_tag(OWNER) for o in orders)
    assert all(r.client_order_id == client_order_id_for(r.request_id, OWNER) for _, r in result["sent"])
    assert not result["execution"].open_orders()
    # Slippage recomputed from execution's fills against the mid of the top the parent started on.
    fills = [f for f in result["fills"] if f.strategy_id == OWNER]
    assert sum(f.qty_steps for f in fills) == 50
    bid, _, ask, _ = result["arrival_top"]
    quote = sum(f.price_ticks * f.qty_steps for f in fills)
    expected_ppm = round((2 * quote - (bid + ask) * 50) * 10**6 / ((bid + ask) * 50))
    assert progress.arrival_x2_ticks == bid + ask
    assert abs(progress.slippage_ppm - expected_ppm) <= 1
    assert result["report"]["slippage_bps"] == f"{progress.slippage_ppm / 100:.2f}"


async def test_a_vwap_follows_the_recorded_volume_profile_of_the_capture():
    # The profile of the very window traded (look-ahead, which a real run avoids with yesterday's capture
    # and time_of_day): here it makes the target of every bucket exactly known.
    ins = bundled_instruments()[SYMBOL]
    profiles = []

    def vwap(start_ns: int) -> ParentOrder:
        profiles.append(capture_profile(CAPTURE, ins, start_ns, start_ns + 10 * S, 10, max_lines=5000))
        return ParentOrder(SYMBOL, Side.SELL, 100, start_ns, start_ns + 10 * S, VwapParams(profiles[0]))

    result = await run_capture(vwap)
    profile, start = profiles[0], result["start_ns"]
    assert len(set(profile)) > 5  # a real, uneven profile
    assert result["progress"].filled_steps == 100 and result["position"] == -100
    total, running = sum(profile), 0
    for bucket, volume in enumerate(profile):
        running += volume
        sent = sum(r.qty_steps for t, r in result["sent"] if t < start + (bucket + 1) * S)
        assert sent == 100 * running // total, f"bucket {bucket}"


async def test_a_pov_trades_its_rate_of_the_capture_s_volume():
    ins = bundled_instruments()[SYMBOL]
    rate_bps, smallest = 10, 2

    def pov(start_ns: int) -> ParentOrder:
        return ParentOrder(SYMBOL, Side.BUY, 500, start_ns, start_ns + 15 * S, PovParams(rate_bps, 20, smallest))

    result = await run_capture(pov)
    start = result["start_ns"]
    trades = [(t, q) for t, q in capture_trades(CAPTURE, ins, max_lines=5000) if start <= t < start + 15 * S]
    for sent_at, _ in result["sent"]:  # never ahead of the rate when a child goes
        committed = sum(r.qty_steps for t, r in result["sent"] if t <= sent_at)
        target = sum(q for t, q in trades if t <= sent_at) * rate_bps // 10_000
        assert committed < target + smallest
    target = sum(q for _, q in trades) * rate_bps // 10_000
    assert target - smallest < result["progress"].filled_steps <= target
    assert result["progress"].stop_reason is StopReason.END_OF_HORIZON


async def test_the_backtest_is_deterministic():
    first, second = await run_capture(twap, lines=3000), await run_capture(twap, lines=3000)
    assert first["report"] == {**second["report"], "algo_id": first["report"]["algo_id"]}
    assert [(t - first["start_ns"], r.qty_steps, r.price_ticks) for t, r in first["sent"]] == \
        [(t - second["start_ns"], r.qty_steps, r.price_ticks) for t, r in second["sent"]]


async def test_a_halt_at_execution_stops_the_parent_and_no_child_is_retried():
    async def halt(execution):
        await execution.halt("test halt", "test")

    def passive(start_ns: int) -> ParentOrder:
        return ParentOrder(SYMBOL, Side.BUY, 50, start_ns, start_ns + 10 * S, TwapParams(10, ChildStyle.PASSIVE))

    result = await run_capture(passive, at_ns={int(3.5 * S): halt})
    progress, execution, start = result["progress"], result["execution"], result["start_ns"]
    assert progress.state is AlgoState.FINISHED and progress.stop_reason is StopReason.HALTED
    assert not execution.open_orders()
    after = [r for t, r in result["sent"] if t >= start + int(3.5 * S)]
    # The halt cancelled the working child; one child went after it (the next slice's, after the back-off
    # of a child closed short), was refused, and nothing more for the remaining ~14 s of data.
    assert len(after) == 1 and execution.stats.reject_codes == {"HALTED": 1}
    assert progress.children_refused == 1
    assert progress.filled_steps < 50 and progress.leftover_steps == 50 - progress.filled_steps
