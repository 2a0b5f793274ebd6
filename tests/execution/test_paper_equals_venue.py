"""Paper = venue: one order sequence through execution, once against the paper venue and once against the
simulator (over real sockets), gives the same answers — in particular a reduce-only order is clamped to
the position at fill time and expires once the position is gone, on both."""

from __future__ import annotations

import asyncio

from celeris.domain.book import BookState
from celeris.domain.clock import TestClock
from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.modes import Mode
from celeris.domain.values import Side
from celeris.execution.engine import ExecutionEngine
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.domain.messages import OrderRequest
from celeris.execution.paper import PaperVenue
from celeris.domain.messages import BookUpdate
from tests.execution.conftest import Harness, wait_for
from tests.sim.conftest import live_venue  # noqa: F401


def sequence(ins, far_ask):
    """(request, what to wait for afterwards)."""
    q = ins.qty
    return [
        OrderRequest("s1", "BTCUSDT", Side.BUY, OrderType.MARKET, q("0.010")),
        OrderRequest("s2", "BTCUSDT", Side.SELL, OrderType.LIMIT, q("0.030"), far_ask, TimeInForce.GTC,
                     reduce_only=True),  # larger than the position: rests, clamped as it fills
        OrderRequest("s3", "BTCUSDT", Side.BUY, OrderType.MARKET, q("0.001"), reduce_only=True),  # would add
        OrderRequest("s4", "BTCUSDT", Side.SELL, OrderType.MARKET, q("0.004")),
        OrderRequest("s5", "BTCUSDT", Side.SELL, OrderType.MARKET, q("0.050"), reduce_only=True),  # clamped
    ]


async def run(engine, requests, position_of):
    answers = []
    for request in requests:
        outcome = await engine.submit(request)
        await asyncio.sleep(0.05)
        await engine.settle()
        answers.append((request.request_id, outcome.accepted, outcome.rejection.venue_code if outcome.rejection
                        else 0, outcome.order.is_open if outcome.order is not None else None))
    assert await wait_for(lambda: not engine.open_orders(), timeout=5), engine.open_orders()
    await engine.settle()
    orders = {engine.request_of[cid]: o for cid, o in engine.orders.items()}
    summary = {rid: (o.status.value, o.filled_steps) for rid, o in orders.items()}
    return answers, summary, await position_of()


async def test_one_sequence_same_answers_on_paper_and_on_the_venue(live_venue):  # noqa: F811
    live = await Harness(live_venue).start()
    ins = live.ins()
    try:
        far_ask = live.best(False) + 20_000
        venue_result = await run(live.engine, sequence(ins, far_ask),
                                 lambda: _venue_position(live_venue, live))
        # The paper venue on the venue's own book at this moment.
        bids, asks = live_venue.engine.books["BTCUSDT"].depth(20)
        clock = TestClock(10**18)

        async def no_sleep(_s):
            return None

        paper = PaperVenue({"BTCUSDT": ins}, clock, latency_ms=0, sleep=no_sleep)
        paper.on_book(BookUpdate("BTCUSDT", 1, BookState.LIVE, True, bids, asks, 1, 0, 0))
        engine = ExecutionEngine(ExecutionConfig(("BTCUSDT",), PositionLimits(0, 1000)), {"BTCUSDT": ins}, clock,
                                 {Mode.SIMULATION: paper}, lambda t, m: None, mode=Mode.SIMULATION)
        await engine.start()

        async def paper_position():
            return paper.account_positions["BTCUSDT"].qty_steps

        paper_result = await run(engine, sequence(ins, far_ask), paper_position)
        await engine.stop()
    finally:
        await live.stop()
    answers, summary, position = venue_result
    assert answers == paper_result[0]
    assert answers[1] == ("s2", True, 0, True)  # resting, not expired
    assert answers[2] == ("s3", False, -2022, None)
    assert summary == paper_result[1], (summary, paper_result[1])
    assert summary["s2"][1] == 0 and summary["s5"][1] == ins.qty("0.006")  # clamped, never a flip
    assert position == paper_result[2] == 0


async def _venue_position(venue, harness):
    return venue.engine.accounts[next(iter(venue.engine.accounts))].positions["BTCUSDT"].qty_steps
