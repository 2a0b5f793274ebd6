"""Execution's safety promises, attacked: halt means halted, limits count what is in flight, flatten
goes through the order path until flat, a halt survives a restart, orphans are reaped.

The venue is scripted (tests/execution/scripted_venue.py): acknowledgements arrive when the test says,
so bursts and interleavings are exact; hypothesis drives random interleavings of submit, ack, fill,
cancel and halt, and after every step checks what the venue has received.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celeris.domain.clock import TestClock
from celeris.domain.exposure import ExposureLimits
from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.modes import Mode
from celeris.domain.orders import OrderStatus
from celeris.domain.values import MONEY_SCALE, Side
from celeris.execution.engine import FLATTEN_OWNER, ExecutionEngine
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.domain.messages import OrderRequest, RejectCode
from celeris.execution.store import FileHaltState, MemoryHotState
from tests.execution.scripted_venue import ScriptedVenue
from tests.sim.conftest import live_venue  # noqa: F401

USDT = 10**MONEY_SCALE
PRICE = 600000  # 60,000.0 in 0.1 ticks


def make_engine(btcusdt, venue, *, limit_usdt=10_000, clock=None, hot=None, **config):
    clock = clock or TestClock(1_700_000_000 * 10**9)

    async def no_sleep(_s):
        await asyncio.sleep(0)

    engine = ExecutionEngine(
        ExecutionConfig(("BTCUSDT",), PositionLimits(0, 10_000),
                        exposure=ExposureLimits(max_position_notional=limit_usdt * USDT), **config),
        {"BTCUSDT": btcusdt}, clock, {Mode.LIVE: venue}, lambda t, m: None, hot or MemoryHotState(),
        mode=Mode.LIVE, sleep=no_sleep)
    engine.on_mark("BTCUSDT", PRICE)
    venue.engine = engine
    return engine


class SlowRisk:
    """A risk manager that answers only when the test releases it (an order waits in its pre-trade check)."""

    def __init__(self, release: asyncio.Event) -> None:
        self.release = release

    async def check(self, request, mark):
        from celeris.domain.risk import Approved

        await self.release.wait()
        return Approved()


def buy(rid, qty_steps, price=PRICE, owner="mom"):
    return OrderRequest(rid, "BTCUSDT", Side.BUY, OrderType.LIMIT, qty_steps, price, TimeInForce.GTC,
                        strategy_id=owner)


async def settle_loop(n=20):
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_burst_with_acknowledgements_delayed_cannot_exceed_the_position_limit(btcusdt):
    """Eight 0.15 BTC orders (9,000 USDT each) under 10,000 USDT, all sent before any is acknowledged."""
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue)
    await engine.start()
    tasks = [asyncio.ensure_future(engine.submit(buy(f"b{i}", 150))) for i in range(8)]
    await settle_loop()
    assert len(venue.placed) == 1  # the other seven were refused while the first was still in flight
    for placed in venue.placed:
        placed.ack.set()
    outcomes = await asyncio.gather(*tasks)
    accepted = [o for o in outcomes if o.accepted]
    assert len(accepted) == 1
    assert {o.rejection.code for o in outcomes if not o.accepted} == {RejectCode.POSITION_LIMIT}
    assert "in-flight" in next(o for o in outcomes if not o.accepted).rejection.message
    # Filled, the position itself now holds the headroom: a new buy is refused, a sell is not.
    venue.fill(venue.placed[0], 150, PRICE)
    await engine.settle()
    assert engine.positions["BTCUSDT"].qty_steps == 150
    assert not (await engine.submit(buy("after-fill", 100))).accepted
    sell = OrderRequest("s1", "BTCUSDT", Side.SELL, OrderType.LIMIT, 150, PRICE + 10, strategy_id="mom")
    pending = asyncio.ensure_future(engine.submit(sell))
    await settle_loop()
    venue.placed[-1].ack.set()
    assert (await pending).accepted
    await engine.stop()


async def test_the_kill_switch_race_a_buy_during_the_flatten_is_refused(btcusdt):
    """Long 0.1 BTC, halt(flatten=True), and a strategy BUY 0.5 submitted while the flatten order is out."""
    venue = ScriptedVenue()
    venue.positions_steps["BTCUSDT"] = 100
    engine = make_engine(btcusdt, venue, limit_usdt=1_000_000)
    await engine.start()
    engine.positions["BTCUSDT"].qty_steps = 100
    halt = asyncio.ensure_future(engine.halt("test", "tester", flatten=True))
    await settle_loop()
    assert venue.placed and venue.placed[-1].order.reduce_only  # the flatten order is on its way
    buy_during = asyncio.ensure_future(engine.submit(buy("late-buy", 500)))
    await settle_loop()
    for placed in venue.placed:
        placed.ack.set()
    outcome = await buy_during
    await halt
    assert not outcome.accepted and outcome.rejection.code is RejectCode.HALTED
    assert all(p.order.reduce_only for p in venue.placed)
    assert venue.positions_steps["BTCUSDT"] == 0
    assert engine.halted  # still halted after the flatten
    await engine.stop()


class SlowHaltStore(MemoryHotState):
    """Writing the halt flag takes a while (a slow Redis): the gate must already be closed meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    async def set_halt(self, halted, reason):
        await self.written.wait()
        await super().set_halt(halted, reason)


async def test_an_order_already_in_its_risk_check_when_the_halt_comes_is_not_sent(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    hot = SlowHaltStore()
    engine = make_engine(btcusdt, venue, hot=hot)
    release = asyncio.Event()

    engine.risk = SlowRisk(release)
    await engine.start()
    pending = asyncio.ensure_future(engine.submit(buy("in-check", 10)))
    await settle_loop()
    halt = asyncio.ensure_future(engine.halt("halt while checking", "tester"))
    await settle_loop()
    release.set()  # the check answers while the halt is still writing its flag
    outcome = await pending
    hot.written.set()
    await halt
    assert not outcome.accepted and outcome.rejection.code is RejectCode.HALTED
    assert venue.placed == []
    await engine.stop()


async def test_a_halt_waits_for_sends_already_past_the_gate_then_cancels_them(btcusdt):
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue)
    await engine.start()
    pending = asyncio.ensure_future(engine.submit(buy("on-the-wire", 10)))
    await settle_loop()
    assert len(venue.placed) == 1
    halt = asyncio.ensure_future(engine.halt("halt", "tester"))
    await settle_loop()
    assert not halt.done()  # waiting for the send that passed the gate before the halt
    venue.placed[0].ack.set()
    assert (await pending).accepted
    canceled = await halt
    assert canceled == 1 and venue.placed[0].status == "CANCELED"
    assert engine.open_orders() == []
    await engine.stop()


async def test_flatten_slices_to_the_market_max_and_repeats_until_flat(btcusdt):
    import dataclasses

    small = dataclasses.replace(btcusdt, market_max_qty_steps=40)
    venue = ScriptedVenue(auto_ack=True)
    venue.positions_steps["BTCUSDT"] = -100
    engine = make_engine(small, venue)
    await engine.start()
    await engine.halt("flatten", "tester", flatten=True)
    flatten_orders = [p for p in venue.placed if p.order.strategy_id == FLATTEN_OWNER]
    assert [p.order.qty_steps for p in flatten_orders] == [40, 40, 20]
    assert all(p.order.reduce_only and p.order.side is Side.BUY for p in flatten_orders)
    assert venue.positions_steps["BTCUSDT"] == 0
    # Idempotent: a second halt finds nothing to do.
    before = len(venue.placed)
    await engine.halt("again", "tester", flatten=True)
    assert len(venue.placed) == before
    await engine.stop()


async def test_flatten_follows_up_when_the_venue_fills_only_part_and_alerts_after_the_timeout(btcusdt):
    clock = TestClock(1_700_000_000 * 10**9)
    venue = ScriptedVenue(auto_ack=True)
    venue.positions_steps["BTCUSDT"] = 100
    engine = make_engine(btcusdt, venue, clock=clock, flatten_timeout_s=30, flatten_poll_s=1)
    sleeps = []

    async def clocked_sleep(s):
        sleeps.append(s)
        clock.advance(int(s * 1e9))
        await asyncio.sleep(0)

    engine._sleep = clocked_sleep
    original_fill = venue.fill

    def stingy_fill(placed, qty, price):  # a venue that fills only 10 steps of each flatten order
        original_fill(placed, min(qty, 10), price)

    venue.fill = stingy_fill
    await engine.start()
    flat = await engine._flatten()
    assert flat is False
    assert venue.positions_steps["BTCUSDT"] > 0
    assert len([p for p in venue.placed if p.order.reduce_only]) > 1  # it came back and tried again
    assert any(sev == "critical" and "did not finish" in msg for _, sev, msg in engine.alerts)
    await engine.stop()


async def test_a_halt_survives_a_restart_until_a_person_resumes(btcusdt, tmp_path):
    path = tmp_path / "halt.json"
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue, hot=FileHaltState(MemoryHotState(), path))
    await engine.start()
    await engine.halt("risk breach", "risk-manager")
    await engine.stop()
    # The process dies; a new one with the same state file comes back halted.
    venue2 = ScriptedVenue(auto_ack=True)
    engine2 = make_engine(btcusdt, venue2, hot=FileHaltState(MemoryHotState(), path))
    await engine2.start()
    assert engine2.halted and "risk breach" in engine2.halt_reason
    assert (await engine2.submit(buy("after-restart", 10))).rejection.code is RejectCode.HALTED
    assert venue2.placed == []
    with pytest.raises(ValueError):
        await engine2.resume("")
    await engine2.resume("alice", "checked")
    assert engine2.audit_log[-1]["action"] == "resume" and engine2.audit_log[-1]["by"] == "alice"
    await engine2.stop()
    engine3 = make_engine(btcusdt, ScriptedVenue(auto_ack=True), hot=FileHaltState(MemoryHotState(), path))
    await engine3.start()
    assert not engine3.halted
    await engine3.stop()


async def test_orders_of_an_owner_whose_lease_ran_out_are_reaped(btcusdt):
    clock = TestClock(1_700_000_000 * 10**9)
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue, clock=clock, owner_lease_s=5)
    await engine.start()
    engine.renew_owners(["mm", "mom"])
    assert (await engine.submit(buy("mm-1", 10, owner="mm"))).accepted
    assert (await engine.submit(buy("mom-1", 10, owner="mom"))).accepted
    assert (await engine.submit(buy("manual-1", 10, owner=""))).accepted
    clock.advance(3 * 10**9)
    engine.renew_owners(["mom"])  # mm stopped renewing (crashed)
    assert await engine.reap_orphans() == 0
    clock.advance(3 * 10**9)
    assert await engine.reap_orphans() == 1
    open_owners = sorted(o.strategy_id for o in engine.open_orders())
    assert open_owners == ["manual", "mom"]  # an order without an owner is a person's: never reaped
    engine.release_owner("mom")  # disabled: its orders go at once
    assert await engine.reap_orphans() == 1
    await engine.stop()


async def test_a_strategy_cannot_use_the_flatten_owner_or_place_while_halted_with_reduce_only(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    venue.positions_steps["BTCUSDT"] = 50
    engine = make_engine(btcusdt, venue)
    await engine.start()
    engine.positions["BTCUSDT"].qty_steps = 50
    spoof = OrderRequest("spoof", "BTCUSDT", Side.BUY, OrderType.MARKET, 500, strategy_id=FLATTEN_OWNER)
    assert (await engine.submit(spoof)).rejection.code is RejectCode.INVALID_REQUEST
    await engine.halt("stop", "tester")
    reduce = OrderRequest("reduce", "BTCUSDT", Side.SELL, OrderType.MARKET, 50, reduce_only=True, strategy_id="mom")
    assert (await engine.submit(reduce)).rejection.code is RejectCode.HALTED
    assert venue.placed == []
    await engine.stop()


# -- random interleavings --------------------------------------------------------------------------

OPS = st.lists(st.one_of(
    st.tuples(st.just("submit"), st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 120)),
    st.tuples(st.just("ack"), st.integers(0, 30)),
    st.tuples(st.just("fill"), st.integers(0, 30), st.integers(1, 120)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("halt"), st.booleans()),
    st.tuples(st.just("run"),),
), min_size=1, max_size=40)


async def _interleave(btcusdt, ops):
    limit_usdt = 5_000  # 0.083 BTC at 60,000
    limit_steps = 83
    venue = ScriptedVenue()
    engine = make_engine(btcusdt, venue, limit_usdt=limit_usdt)
    await engine.start()
    tasks = []
    halted = False
    for n, op in enumerate(ops):
        kind = op[0]
        if kind == "submit":
            side, qty = op[1], op[2]
            price = PRICE if side is Side.BUY else PRICE + 10
            tasks.append(asyncio.ensure_future(engine.submit(OrderRequest(
                f"r{n}", "BTCUSDT", side, OrderType.LIMIT, qty, price, strategy_id="s"))))
        elif kind == "ack" and venue.placed:
            venue.placed[op[1] % len(venue.placed)].ack.set()
        elif kind == "fill" and venue.placed:
            placed = venue.placed[op[1] % len(venue.placed)]
            if placed.ack.is_set():
                venue.fill(placed, op[2], placed.order.price_ticks or PRICE)
        elif kind == "cancel" and venue.placed:
            order = venue.placed[op[1] % len(venue.placed)].order
            tasks.append(asyncio.ensure_future(engine.cancel(f"c{n}", "BTCUSDT", order.client_order_id)))
        elif kind == "halt":
            halted = True
            tasks.append(asyncio.ensure_future(engine.halt("random halt", "hypothesis", flatten=op[1])))
        await settle_loop(5)
        # What the venue holds, counting every order it has received as if it filled, is within the limit
        # (fills at the order price; the position valued at the reference price the engine uses).
        for side in (Side.BUY, Side.SELL):
            assert abs(venue.worst_case_steps("BTCUSDT", side)) <= limit_steps
        # Nothing that could add exposure was written to the venue while the engine was halted.
        assert all(not p.halted_at_write or p.order.reduce_only for p in venue.placed)
    for placed in venue.placed:
        placed.ack.set()
    for _ in range(50):
        await settle_loop(5)
        for placed in venue.placed:
            placed.ack.set()
        if all(t.done() for t in tasks):
            break
    for task in tasks:
        if not task.done():
            task.cancel()
    assert all(not p.halted_at_write or p.order.reduce_only for p in venue.placed), \
        "an exposure-increasing order reached the venue while halted"
    if halted:
        assert engine.halted
    await engine.stop()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_random_interleavings_keep_the_limit_and_the_halt(btcusdt, ops):
    asyncio.run(_interleave(btcusdt, ops))


async def test_a_new_order_cannot_be_cancelled_into_the_venue(btcusdt):
    """Cancelled while still in its pre-trade checks: it never leaves, and it stops counting."""
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    release = asyncio.Event()

    engine.risk = SlowRisk(release)
    await engine.start()
    pending = asyncio.ensure_future(engine.submit(buy("to-cancel", 10)))
    await settle_loop()
    order = next(iter(engine.orders.values()))
    assert order.status is OrderStatus.NEW
    assert (await engine.cancel("c", "BTCUSDT", order.client_order_id)).accepted
    release.set()
    assert not (await pending).accepted
    assert venue.placed == [] and engine.open_orders() == []
    await engine.stop()


async def test_a_venue_auth_failure_halts_without_deadlocking_the_halt(btcusdt):
    """The venue answers 401 (key revoked): execution halts itself from inside the send, which holds that
    order's lock; the halt must still finish, and later halts and resumes must answer."""
    from celeris.venues.binance import errors

    class AuthFailVenue(ScriptedVenue):
        async def place(self, order, on_write=None):
            raise errors.AuthenticationFailed(-2015, "Invalid API-key, IP, or permissions for action.", 401)

    venue = AuthFailVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    outcome = await asyncio.wait_for(engine.submit(buy("b1", 10)), 3)
    assert not outcome.accepted and engine.halted
    await asyncio.wait_for(engine.halt("operator halt", "ops", flatten=True), 5)
    await asyncio.wait_for(engine.resume("ops"), 5)
    assert not engine.halted and not engine._halt_lock.locked()
    await engine.stop()


async def test_a_halt_after_a_resume_that_waited_for_a_running_halt_stands(btcusdt):
    venue = ScriptedVenue()
    venue.positions_steps["BTCUSDT"] = 100
    engine = make_engine(btcusdt, venue)
    await engine.start()
    engine.positions["BTCUSDT"].qty_steps = 100
    first = asyncio.ensure_future(engine.halt("first", "ops", flatten=True))
    await settle_loop()
    resume = asyncio.ensure_future(engine.resume("alice", "false alarm"))
    await settle_loop()
    second = asyncio.ensure_future(engine.halt("risk breach", "risk-monitor"))  # requested after the resume
    await settle_loop()
    for placed in venue.placed:
        placed.ack.set()
    await asyncio.gather(first, resume, second)
    assert engine.halted and (await engine.hot.get_halt())[0]
    assert "resume-superseded" in [a["action"] for a in engine.audit_log]  # the later halt wins
    venue.auto_ack = True
    assert (await asyncio.wait_for(engine.submit(buy("after", 10)), 5)).rejection.code is RejectCode.HALTED
    await engine.stop()


async def test_an_order_count_429_does_not_stop_cancels_and_the_halt_still_cancels(live_venue):  # noqa: F811
    """The venue refuses new orders (-1015, 300 per 10 s): a halt's cancels and reads must still go out."""
    from tests.execution.conftest import Harness, request

    h = await Harness(live_venue).start()
    try:
        ins = h.ins()
        resting = [await h.engine.submit(request(price=ins.format_price(h.best(True) - 200 - i), instrument=ins))
                   for i in range(3)]
        assert all(o.accepted for o in resting)
        live_venue.faults.order_429 = 5
        refused = await h.engine.submit(request(price=ins.format_price(h.best(True) - 300), instrument=ins))
        assert not refused.accepted
        canceled = await asyncio.wait_for(h.engine.halt("rate limited", "test"), 10)
        assert canceled == 3 and h.engine.open_orders() == []
        account = live_venue.engine.accounts[next(iter(live_venue.engine.accounts))]
        assert not [o for o in account.orders.values() if o.is_open]
    finally:
        await h.stop()


@pytest.mark.parametrize("switch_to", [Mode.OBSERVATION, Mode.SIMULATION])
async def test_a_halt_after_a_mode_switch_still_flattens_the_live_position(btcusdt, switch_to):
    live, paper = ScriptedVenue(auto_ack=True), ScriptedVenue(auto_ack=True)
    live.positions_steps["BTCUSDT"] = 51
    paper.positions_steps["BTCUSDT"] = -7
    engine = ExecutionEngine(ExecutionConfig(("BTCUSDT",), PositionLimits(0, 10_000)), {"BTCUSDT": btcusdt},
                             TestClock(10**18), {Mode.LIVE: live, Mode.SIMULATION: paper}, lambda t, m: None,
                             mode=Mode.LIVE)
    engine.on_mark("BTCUSDT", PRICE)
    await engine.start()
    assert (await engine.submit(buy("live-1", 10))).accepted  # it traded live before the demotion
    await engine.set_mode(switch_to)
    if switch_to is Mode.SIMULATION:
        assert (await engine.submit(buy("paper-1", 10))).accepted
    await engine.halt("after a demotion", "operator", flatten=True)
    assert live.positions_steps["BTCUSDT"] == 0
    # The paper account is flattened when it was traded; untouched otherwise.
    assert paper.positions_steps["BTCUSDT"] == (0 if switch_to is Mode.SIMULATION else -7)
    flatten = [p for p in live.placed + paper.placed if p.order.strategy_id == FLATTEN_OWNER]
    assert flatten and all(p.order.reduce_only for p in flatten)
    assert engine.last_halt_flat
    await engine.stop()


async def test_a_cancel_answer_that_overtakes_its_fill_events_loses_no_fill(btcusdt):
    """0.140 of a 0.150 bid fills at the venue; the cancel's REST answer (CANCELED, executed 0.140) arrives
    before the stream's TRADE event. The fill must still count, so a second 0.150 bid is refused."""
    from celeris.domain.messages import Execution, VenueOrderEvent

    class LateStreamVenue(ScriptedVenue):
        def __init__(self):
            super().__init__(auto_ack=True)
            self.held, self.hold = [], False

        def _emit(self, placed, execution, qty=0, price=0):
            if self.hold and execution is Execution.TRADE:
                o = placed.order
                self.held.append(VenueOrderEvent(o.symbol, o.client_order_id, placed.venue_id, execution, o.side,
                                                 qty, price, next(self._trades), 0, False, 0, 0, o.order_type.value,
                                                 o.qty_steps, o.price_ticks or 0, o.reduce_only))
                return
            super()._emit(placed, execution, qty, price)

    venue = LateStreamVenue()
    engine = make_engine(btcusdt, venue, limit_usdt=10_000)
    await engine.start()
    first = await engine.submit(buy("q1", 150, PRICE - 10))
    venue.hold = True
    venue.fill(venue.placed[0], 140, PRICE - 10)
    assert (await engine.cancel("c1", "BTCUSDT", first.order.client_order_id)).accepted
    for event in venue.held:
        venue._on_event(event)
    await engine.settle()
    assert engine.positions["BTCUSDT"].qty_steps == 140 and engine.stats.illegal_transitions == 0
    assert first.order.status is OrderStatus.CANCELED and first.order.filled_steps == 140
    second = await engine.submit(buy("q2", 150, PRICE - 10))
    assert not second.accepted and second.rejection.code is RejectCode.POSITION_LIMIT
    await engine.stop()


async def test_reserved_owners_cannot_be_spoofed_in_any_spelling(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    for owner in ("emergency-flatten", "EMERGENCY-FLATTEN", "Emergency Flatten", "emergency_flatten", "External"):
        outcome = await engine.submit(buy(f"spoof-{owner}", 10, owner=owner))
        assert outcome.rejection is not None and outcome.rejection.code is RejectCode.INVALID_REQUEST, owner
    plain = await engine.submit(buy("plain", 10, owner=""))
    assert plain.accepted and plain.order.strategy_id == "manual" and "-manual-" in plain.order.client_order_id
    await engine.stop()


async def test_in_simulation_mode_the_kill_switch_leaves_a_venue_it_never_traded_alone(btcusdt):
    """A person's own position on the live account: simulation's kill switch is the paper account's."""
    live, paper = ScriptedVenue(auto_ack=True), ScriptedVenue(auto_ack=True)
    live.positions_steps["BTCUSDT"] = 10
    paper.positions_steps["BTCUSDT"] = -7
    engine = ExecutionEngine(ExecutionConfig(("BTCUSDT",), PositionLimits(0, 10_000)), {"BTCUSDT": btcusdt},
                             TestClock(10**18), {Mode.LIVE: live, Mode.SIMULATION: paper}, lambda t, m: None,
                             mode=Mode.SIMULATION)
    engine.on_mark("BTCUSDT", PRICE)
    await engine.start()
    await engine.halt("drill", "tester", flatten=True)
    assert paper.positions_steps["BTCUSDT"] == 0 and live.positions_steps["BTCUSDT"] == 10 and not live.placed
    await engine.stop()


async def test_unreadable_positions_are_not_flat(btcusdt):
    from celeris.venues.binance import errors

    class Unreadable(ScriptedVenue):
        async def positions(self):
            raise errors.RateLimited(-1003, "banned", 418, 120)

    clock = TestClock(10**18)
    venue = Unreadable(auto_ack=True)
    engine = make_engine(btcusdt, venue, clock=clock, flatten_timeout_s=1, flatten_poll_s=0.5)

    async def clocked_sleep(s):
        clock.advance(int(s * 1e9))
        await asyncio.sleep(0)

    engine._sleep = clocked_sleep
    await engine.start()
    await engine.halt("ban", "tester", flatten=True)
    assert not engine.last_halt_flat and any("unreadable" in msg for _, _, msg in engine.alerts)
    engine._halt_follow_up.cancel()
    await engine.stop()


async def test_a_follow_up_started_without_flatten_flattens_when_a_later_halt_asks(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    venue.positions_steps["BTCUSDT"] = 100
    engine = make_engine(btcusdt, venue)
    await engine.start()
    engine._follow_up_halt(False)  # an earlier halt's retries, without flatten
    engine.halted = True
    engine._follow_up_halt(True)  # a later halt asks for the flatten
    await asyncio.wait_for(engine._halt_follow_up, 5)
    assert venue.positions_steps["BTCUSDT"] == 0
    await engine.stop()


async def test_owner_tags_that_read_as_reserved_and_foreign_client_ids_are_refused(btcusdt):
    venue = ScriptedVenue(auto_ack=True)
    engine = make_engine(btcusdt, venue)
    await engine.start()
    for owner in ("emergency-f", "Emergency-Fund", "emergency-flattening"):
        assert (await engine.submit(buy(f"s-{owner}", 10, owner=owner))).rejection.code is RejectCode.INVALID_REQUEST
    forged = OrderRequest("f1", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, PRICE, strategy_id="attacker",
                          client_order_id="cel-mm-btc-0123456789abcdef0123")
    assert (await engine.submit(forged)).rejection.code is RejectCode.INVALID_REQUEST
    from celeris.domain.messages import client_order_id_for
    own = OrderRequest("f2", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, PRICE, strategy_id="mm-btc",
                       client_order_id=client_order_id_for("f2", "mm-btc"))
    assert (await engine.submit(own)).accepted  # the derived id, as the strategy engine sends it
    await engine.stop()
