"""The paper venue's latency on the event clock, attacked: an order is matched at its arrival, against the
book as it is then; answers come back after the response latency; nothing waits on the wall clock; the
same data and seed give the same fills; recorded latencies load and interpolate."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings, strategies as st

from celeris.domain.book import BookState
from celeris.domain.clock import NS_PER_MS, TestClock
from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.messages import BookUpdate, Execution, TradeUpdate
from celeris.domain.orders import Order
from celeris.domain.values import Side
from celeris.execution import latency_models
from celeris.execution.paper import PaperVenue
from celeris.marketdata.verify import bundled_instruments
from celeris.venues.binance import errors

INS = bundled_instruments()["BTCUSDT"]
BID, ASK = 600_000, 600_001
T0 = 1_000 * NS_PER_MS


class Session:
    """A paper venue on a test clock, driven the way a backtest drives it: set the clock, feed an event."""

    def __init__(self, latency_ms: float = 5, response_ms: float | None = None, **kw) -> None:
        self.clock = TestClock(start_ns=T0)
        self.paper = PaperVenue({"BTCUSDT": INS}, self.clock, latency_ms=latency_ms,
                                response_latency_ms=response_ms, **kw)
        self.events: list = []
        self.n = 0
        self.paper.on_book(self._update(True, [(BID, 2_000), (BID - 1, 1_000)], [(ASK, 500), (ASK + 1, 3_000)]))

    async def start(self) -> "Session":
        async def reconnect() -> None:
            return None
        await self.paper.start(self.events.append, reconnect)
        return self

    def _update(self, snapshot, bids, asks) -> BookUpdate:
        self.n += 1
        return BookUpdate("BTCUSDT", self.n, BookState.LIVE, snapshot, bids, asks, self.n, self.clock.now_ns(), 0)

    def at(self, ms: float) -> "Session":
        self.clock.set(T0 + int(ms * NS_PER_MS))
        return self

    def book(self, bids=(), asks=()) -> None:
        self.paper.on_book(self._update(False, list(bids), list(asks)))

    def sell(self, price: int, qty: int) -> None:
        self.n += 1
        self.paper.on_trade(TradeUpdate("BTCUSDT", self.n, self.n, price, qty, True, self.clock.now_ns(), 0))

    def place(self, cid: str, qty: int, price: int | None = BID, side=Side.BUY, tif=TimeInForce.GTC):
        kind = OrderType.LIMIT if price is not None else OrderType.MARKET
        return asyncio.ensure_future(self.paper.place(Order(cid, "BTCUSDT", side, kind, qty, price, tif)))

    def seen(self, execution: Execution) -> list:
        return [e for e in self.events if e.execution is execution]


async def test_an_order_does_not_fill_on_a_trade_before_its_arrival():
    s = await Session(latency_ms=5).start()
    task = s.place("late", 1_000, price=BID)
    await asyncio.sleep(0)
    s.at(3).sell(BID - 1, 700)  # through our price, but our order is still on the wire
    assert s.paper.fills == []
    s.at(6).book(asks=[(ASK + 7, 1)])  # the clock passes the arrival (5 ms): the order is at the venue now
    assert "late" in s.paper.orders and s.paper.orders["late"].status == "NEW"
    s.at(7).sell(BID - 1, 700)
    assert [f.last_qty_steps for f in s.paper.fills] == [700]
    assert s.paper.fills[0].ts_event_ns == T0 + 7 * NS_PER_MS
    assert not task.done()  # the answer left the venue at 5 ms and takes 5 ms back
    s.at(11).book(asks=[(ASK + 7, 2)])
    await asyncio.sleep(0)
    assert task.done() and task.result().status in ("NEW", "PARTIALLY_FILLED")


async def test_an_order_is_matched_against_the_book_at_its_arrival():
    s = await Session(latency_ms=5).start()
    queued = s.place("q", 10, price=BID)
    post_only = s.place("gtx", 10, price=ASK - 1, tif=TimeInForce.GTX)  # passive when sent
    await asyncio.sleep(0)
    s.at(2).book(bids=[(BID, 4_321)], asks=[(ASK, 0), (ASK - 1, 50)])  # before arrival: the level and ask move
    s.at(9).book(asks=[(ASK + 9, 1)])
    s.at(12).book(asks=[(ASK + 9, 2)])
    assert s.paper.orders["q"].queue_ahead == 4_321  # the queue as it was at arrival, not at sending
    with pytest.raises(errors.OrderRejected) as err:
        await post_only  # it would take liquidity at arrival: refused as the venue refuses it
    assert err.value.code == -5022
    await queued


async def test_an_event_stamped_at_the_arrival_time_happens_before_the_order():
    s = await Session(latency_ms=5, response_ms=0).start()
    task = s.place("tie", 100, price=BID - 1)
    await asyncio.sleep(0)
    s.at(5).sell(BID - 2, 100)  # exactly at the arrival: applied first, the order does not see it
    s.at(6).book(asks=[(ASK + 9, 1)])
    await task
    assert s.paper.fills == []


async def test_fills_reach_the_client_after_the_response_latency():
    s = await Session(latency_ms=1, response_ms=4).start()
    task = s.place("r", 300, price=BID - 1)
    await asyncio.sleep(0)
    s.at(2).book(asks=[(ASK + 9, 1)])
    s.at(6).book(asks=[(ASK + 9, 2)])  # NEW left the venue at 1 ms, reaches us at 5 ms
    await task
    assert [e.ts_event_ns for e in s.seen(Execution.NEW)] == [T0 + NS_PER_MS]
    s.at(10).sell(BID - 2, 100)  # a fill at the venue at 10 ms
    assert len(s.paper.fills) == 1 and s.seen(Execution.TRADE) == []
    s.at(13.9).book(asks=[(ASK + 9, 3)])
    assert s.seen(Execution.TRADE) == []
    s.at(14.1).book(asks=[(ASK + 9, 4)])
    assert [e.last_qty_steps for e in s.seen(Execution.TRADE)] == [100]


async def test_a_cancel_in_flight_lets_a_fill_happen_first():
    s = await Session(latency_ms=5, response_ms=0).start()
    placed = s.place("c", 300, price=BID - 1)
    await asyncio.sleep(0)
    s.at(6).book(asks=[(ASK + 9, 1)])
    await placed
    cancel = asyncio.ensure_future(s.paper.cancel("BTCUSDT", "c"))
    await asyncio.sleep(0)
    s.at(8).sell(BID - 2, 120)  # before the cancel reaches the venue at 11 ms
    s.at(12).book(asks=[(ASK + 9, 2)])
    state = await cancel
    assert state.status == "CANCELED" and state.executed_steps == 120


async def test_draining_finishes_what_is_in_flight_and_later_requests_at_once():
    s = await Session(latency_ms=50).start()
    task = s.place("d", 10, price=BID - 3)
    await asyncio.sleep(0)
    assert not task.done() and s.paper.in_flight == 1
    s.paper.drain()
    await asyncio.sleep(0)
    assert task.done() and task.result().status == "NEW"
    assert s.paper.orders["d"].status == "NEW"
    state = await asyncio.wait_for(s.paper.cancel("BTCUSDT", "d"), 1)  # no data will come: it still completes
    assert state.status == "CANCELED"


async def test_at_the_end_of_the_data_nothing_happens_after_the_last_line():
    """drain(end): what arrived by the end happens at its time; an order still on the wire never reaches the
    venue (a marketable one does not fill against the last book), answers sent before the end arrive now."""
    s = await Session(latency_ms=50).start()
    early = s.place("early", 10, price=BID - 3)  # arrives at 50 ms, its answer comes back at 100 ms
    await asyncio.sleep(0)
    s.at(40)
    late = s.place("late", 300, price=None)  # a market order, would arrive at 90 ms: the data ends at 60
    algo = asyncio.ensure_future(s.paper.place(Order("stop", "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, 10,
                                                     None, stop_price_ticks=BID - 50)))
    await asyncio.sleep(0)
    s.at(60).book(asks=[(ASK + 9, 1)])
    s.paper.drain(T0 + 60 * NS_PER_MS)
    await asyncio.sleep(0)
    assert early.done() and early.result().status == "NEW"  # it reached the venue at 50 ms
    assert not late.done() and not algo.done()  # in flight: the engine still sees them as sent (reported)
    assert s.paper.end_in_flight() == 2
    await asyncio.sleep(0)
    assert late.result().status == "CANCELED" and late.result().executed_steps == 0
    assert algo.result().status == "CANCELED"
    assert "late" not in s.paper.orders and s.paper.fills == [] and s.paper.algo == {}
    # After the end: a new order is answered at once and never rests; a cancel is done at the end's time.
    after = await asyncio.wait_for(s.place("after", 300, price=None), 1)
    assert after.status == "CANCELED" and s.paper.fills == [] and "after" not in s.paper.orders
    state = await asyncio.wait_for(s.paper.cancel("BTCUSDT", "early"), 1)
    assert state.status == "CANCELED"
    assert max(e.ts_event_ns for e in s.events) <= T0 + 60 * NS_PER_MS


async def test_an_amendment_the_data_ended_before_is_refused_not_done_later():
    s = await Session(latency_ms=5).start()
    placed = s.place("a", 10, price=BID - 3)
    await asyncio.sleep(0)
    s.at(20).book(asks=[(ASK + 9, 1)])
    await placed
    order = Order("a", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, BID - 3)
    amend = asyncio.ensure_future(s.paper.amend(order, 10, ASK + 5))  # would cross: take liquidity at arrival
    await asyncio.sleep(0)
    s.paper.drain(T0 + 21 * NS_PER_MS)
    s.paper.end_in_flight()
    with pytest.raises(errors.OrderRejected):
        await amend
    assert s.paper.orders["a"].price == BID - 3 and s.paper.fills == []


async def turn() -> None:
    """One turn of the event loop, without asyncio.sleep."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.call_soon(done.set_result, None)
    await done


async def test_the_event_clock_never_waits_on_the_wall(monkeypatch):
    s = await Session(latency_ms=500).start()  # half a second each way, passed in no wall time at all

    async def no_wall(_s):
        raise AssertionError("the paper venue slept on the wall clock")

    monkeypatch.setattr(asyncio, "sleep", no_wall)
    task = s.place("w", 10, price=BID)
    await turn()
    assert not task.done()
    s.at(2_000).book(asks=[(ASK + 9, 1)])  # arrival at 500 ms, answer back at 1,000 ms: both passed
    await turn()
    assert task.done() and task.result().status == "NEW"


async def test_simulation_mode_still_passes_latency_on_its_sleep():
    slept: list[float] = []

    async def sleep(s):
        slept.append(s)

    s = await Session(latency_ms=7, sleep=sleep).start()
    state = await s.place("sim", 10, price=BID)  # no market event needed: the wall sleep moved it
    assert state.status == "NEW" and slept[:2] == [0.007, 0.007]


# -- determinism -------------------------------------------------------------------------------------
SCRIPT = st.lists(st.tuples(st.sampled_from(["order", "level", "trade", "cancel"]), st.integers(0, 2),
                            st.integers(1, 3_000)), min_size=1, max_size=25)


async def run(script, queue_model: str, seed: int, latency_ms: float = 3) -> list[tuple]:
    s = await Session(latency_ms=latency_ms, queue_model=queue_model, seed=seed).start()
    tasks = []
    for i, (kind, level, qty) in enumerate(script):
        s.at(i + 1)
        price = BID - level
        if kind == "order":
            tasks.append(s.place(f"o{i}", qty, price=price))
        elif kind == "cancel" and tasks:
            tasks.append(asyncio.ensure_future(s.paper.cancel("BTCUSDT", f"o{i % len(tasks)}")))
        elif kind == "level":
            s.book(bids=[(price, qty)])
        elif kind == "trade":
            s.sell(price, qty)
        await asyncio.sleep(0)
    s.paper.drain()
    await asyncio.gather(*tasks, return_exceptions=True)
    return [(e.client_order_id, e.execution.value, e.last_qty_steps, e.last_price_ticks, e.ts_event_ns)
            for e in s.events]


@pytest.mark.parametrize("model", ["risk_averse", "power", "log"])
@settings(max_examples=40, deadline=None)
@given(script=SCRIPT, seed=st.integers(0, 2**31))
def test_same_data_and_seed_give_the_same_fills(model, script, seed):
    assert asyncio.run(run(script, model, seed)) == asyncio.run(run(script, model, seed))


CANCELS = [("order", 0, 500)] + [("level", 2, 1)] * 4 + \
          [("level", 0, q) for q in (2_600, 2_300, 2_150, 1_900, 1_700, 1_650, 1_333)] + [("trade", 0, 170)] * 12


@pytest.mark.parametrize("model,varies", [("risk_averse", False), ("power", True), ("log", True)])
def test_a_different_seed_may_give_different_fills_only_for_the_probabilistic_models(model, varies):
    """Cancels split between ahead of and behind us by a draw: the seed moves the queue, so the fills."""
    outcomes = {tuple(asyncio.run(run(CANCELS, model, seed))) for seed in range(12)}
    assert (len(outcomes) > 1) is varies


# -- recorded latencies ------------------------------------------------------------------------------
ROWS = [(T0, 2_000_000, 3_000_000), (T0 + 10 * NS_PER_MS, 6_000_000, 1_000_000)]


def test_latency_file_csv_and_jsonl_load_the_same(tmp_path):
    csv_file = tmp_path / "lat.csv"
    csv_file.write_text("timestamp_ns,entry_ns,response_ns\n" + "".join(f"{t},{e},{r}\n" for t, e, r in ROWS))
    jsonl = tmp_path / "lat.jsonl"
    jsonl.write_text(json.dumps(dict(zip(latency_models.FIELDS, ROWS[0]))) + "\n" + json.dumps(list(ROWS[1])) + "\n")
    for path in (csv_file, jsonl):
        model = latency_models.load_latency_file(path)
        assert model.entry_ns(T0 - 1) == 2_000_000 and model.entry_ns(T0 + 5 * NS_PER_MS) == 4_000_000
        assert model.response_ns(T0 + 5 * NS_PER_MS) == 2_000_000 and model.response_ns(T0 + 99 * NS_PER_MS) == 1_000_000


@pytest.mark.parametrize("text", ["1,2\n", "a,b,c\n", "1,-2,3\n", ""])
def test_a_bad_latency_file_is_refused(tmp_path, text):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError):
        latency_models.load_latency_file(path)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 10**12), st.integers(0, 10**9), st.integers(0, 10**9)),
                     min_size=1, max_size=10, unique_by=lambda r: r[0]),
       ts=st.integers(-10**6, 2 * 10**12))
def test_interpolated_latency_stays_between_its_neighbours(rows, ts):
    model = latency_models.InterpolatedLatency(rows)
    ordered = sorted(rows)
    below = [r for r in ordered if r[0] <= ts] or ordered[:1]
    above = [r for r in ordered if r[0] >= ts] or ordered[-1:]
    lo, hi = below[-1], above[0]
    for i, value in ((1, model.entry_ns(ts)), (2, model.response_ns(ts))):
        assert isinstance(value, int) and min(lo[i], hi[i]) <= value <= max(lo[i], hi[i])


async def test_recorded_latencies_drive_the_venue(tmp_path):
    path = tmp_path / "lat.csv"
    path.write_text("".join(f"{t},{e},{r}\n" for t, e, r in ROWS))
    s = await Session(latency_ms=0, latency_file=path).start()
    task = s.place("i", 10, price=BID)  # sent at T0: 2 ms there, 3 ms back
    await asyncio.sleep(0)
    s.at(1.9).book(asks=[(ASK + 9, 1)])
    assert "i" not in s.paper.orders
    s.at(2.1).book(asks=[(ASK + 9, 2)])
    assert "i" in s.paper.orders and not task.done()
    s.at(5.1).book(asks=[(ASK + 9, 3)])
    await asyncio.sleep(0)
    assert task.done()


@pytest.mark.parametrize("model", ["power", "log"])
def test_the_same_seed_gives_the_same_fills_where_the_seed_matters(model):
    for seed in (0, 5, 2**31):
        assert asyncio.run(run(CANCELS, model, seed)) == asyncio.run(run(CANCELS, model, seed))


async def test_simulation_mode_on_the_wall_clock_needs_no_market_event():
    """Live books, a real clock: a quiet market holds neither the order nor its fill back."""
    from celeris.runtime.clock import SystemClock
    from tests.support.waits import wait_for

    clock = SystemClock()
    paper = PaperVenue({"BTCUSDT": INS}, clock, latency_ms=20, sleep=asyncio.sleep)
    events: list = []

    async def reconnect() -> None:
        return None

    await paper.start(events.append, reconnect)
    paper.on_book(BookUpdate("BTCUSDT", 1, BookState.LIVE, True, [(BID, 5)], [(ASK, 5)], 1, 0, 0))
    sent = clock.now_ns()
    state = await paper.place(Order("wall", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, BID))
    assert state.status == "NEW" and clock.now_ns() - sent >= 40 * NS_PER_MS  # there and back on the wall
    paper.on_trade(TradeUpdate("BTCUSDT", 2, 2, BID - 1, 3, True, 0, 0))
    assert [e for e in events if e.execution is Execution.TRADE] == []  # still on its way back
    assert await wait_for(lambda: [e.last_qty_steps for e in events if e.execution is Execution.TRADE] == [3])
