"""target_position counts the orders in flight: a burst of calls while the acknowledgements are held back
never sends more than the target, in any interleaving of calls, acknowledgements, partial fills and
cancels (hypothesis drives the interleaving with a gateway the test controls)."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from celeris.domain import sdk
from celeris.domain.sdk_types import OrderState
from celeris.domain.values import Side
from tests.strategy.fakes import ControlledGateway, book, engine_with, settle


class Targeter(sdk.Strategy):
    name = "targeter"

    def __init__(self):
        self.target = 0
        self.placed: list[str] = []

    def on_book(self, book):
        self.placed += self.target_position_steps("BTCUSDT", self.target, 600000)


def worst(engine, side: Side) -> int:
    """The strategy's position if every working order on `side` filled."""
    s = engine.runners["t"].strategy
    return s.position() + side.sign * sum(o.remaining_steps for o in s.orders() if o.side is side)


async def test_a_burst_with_held_acknowledgements_sends_the_target_once(btcusdt):
    engine = engine_with(btcusdt, ("t", Targeter, {}), gateway=ControlledGateway(hold=True))
    s = engine.runners["t"].strategy
    s.target = 7
    for seq in range(1, 6):
        engine.on_book(book(seq))
        await settle()
    assert [r.qty_steps for r in engine.gateway.submitted] == [7]
    (cid,) = engine.gateway.held()
    engine.gateway.ack(cid)
    await settle()
    engine.gateway.fill(engine, cid, 3)
    engine.on_book(book(6))
    await settle()
    assert len(engine.gateway.submitted) == 1 and s.position() == 3  # 4 still working: nothing more
    s.target = 2  # now beyond it: the working buy goes, and the sell of the one step over goes with it
    engine.on_book(book(7))
    await settle()
    assert engine.gateway.canceled == [cid]
    (sell,) = engine.gateway.submitted[1:]
    assert (sell.side, sell.qty_steps, sell.reduce_only) == (Side.SELL, 1, True)  # 3 -> 2, only reducing
    engine.on_book(book(8))
    await settle()
    assert len(engine.gateway.submitted) == 2  # the sell in flight counts
    s.target = -4  # through zero: 3 + 4 + ... the sell of 1 counts
    engine.on_book(book(9))
    await settle()
    assert [(r.side, r.qty_steps, r.reduce_only) for r in engine.gateway.submitted[2:]] == [(Side.SELL, 6, False)]


STEP = st.one_of(st.just(("call",)), st.tuples(st.just("ack"), st.integers(0, 5)),
                 st.tuples(st.just("fill"), st.integers(0, 5), st.integers(1, 9)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.integers(-25, 25).filter(bool), steps=st.lists(STEP, min_size=1, max_size=40))
def test_target_position_never_overshoots(btcusdt, target, steps):
    asyncio.run(_interleave(btcusdt, target, steps))


async def _interleave(btcusdt, target, steps):
    gateway = ControlledGateway(hold=True)
    engine = engine_with(btcusdt, ("t", Targeter, {}), gateway=gateway)
    s = engine.runners["t"].strategy
    s.target = target
    side = Side.BUY if target > 0 else Side.SELL
    seq = 0
    for step in steps:
        seq = await _step(engine, gateway, s, step, seq)
        assert side.sign * s.position() <= abs(target)
        assert side.sign * worst(engine, side) <= abs(target), (s.orders(), s.position())
        sent = sum(r.qty_steps for r in gateway.submitted)
        assert sent <= abs(target)  # only one side, and never more than the target in all
    # The same worst case as the engine's own ledger (what the pre-trade filter counts).
    ledger = engine.owned.ledger.symbols["BTCUSDT"]
    assert ledger.pending(side) == sum(o.remaining_steps for o in s.orders())


async def _step(engine, gateway, s, step, seq):
    if step[0] == "call":
        seq += 1
        engine.on_book(book(seq))
    elif step[0] == "target":  # a new target, acted on at once
        s.target = step[1]
        seq += 1
        engine.on_book(book(seq))
    elif step[0] == "ack" and gateway.held():
        gateway.ack(gateway.held()[step[1] % len(gateway.held())])
    elif step[0] == "fill":
        working = [o for o in s.orders() if o.state in (OrderState.WORKING, OrderState.PENDING_CANCEL)
                   and o.client_order_id not in gateway.held()]
        if working:
            order = working[step[1] % len(working)]
            if gateway.orders[order.client_order_id].is_open:
                gateway.fill(engine, order.client_order_id, min(step[2], order.remaining_steps))
    await settle()
    return seq


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.one_of(st.tuples(st.just("target"), st.integers(-12, 12)), STEP), min_size=1, max_size=30))
@example(steps=[("target", 5), ("target", -3), ("target", 5)])
def test_an_order_target_position_places_never_takes_the_worst_case_past_the_target(btcusdt, steps):
    """The target moves (a cancelled order may still fill, so what is already working can exceed a new
    target); what target_position adds never does: orders being cancelled still count."""
    asyncio.run(_moving(btcusdt, steps))


async def _moving(btcusdt, steps):
    gateway = ControlledGateway(hold=True)
    engine = engine_with(btcusdt, ("t", Targeter, {}), gateway=gateway)
    s = engine.runners["t"].strategy
    seq = 0
    for step in steps:
        before = len(gateway.submitted)
        seq = await _step(engine, gateway, s, step, seq)
        for request in gateway.submitted[before:]:
            sign = request.side.sign
            assert sign * worst(engine, request.side) <= sign * s.target, (request, s.orders(), s.position())
