"""Every order has an owner: the strategy engine keeps each strategy's working orders and lets none linger.

A recording gateway stands in for execution: it acknowledges what it is told to, and the tests look at
what was cancelled and why (a withdrawn quote, a reversed intent, a time-to-live, a disabled or reloaded
strategy), at what the filter counts while orders are in flight, at aggregation keeping two-sided
quotes, and at each strategy's own position when a fill is shared.
"""

from __future__ import annotations

import asyncio

from celeris.domain.book import BookState
from celeris.domain.clock import TestClock
from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.modes import Mode
from celeris.domain.orders import Order, OrderEvent
from celeris.domain.signals import Signal, Urgency
from celeris.domain.values import MONEY_SCALE, Side
from celeris.domain.messages import Fill, Outcome
from celeris.domain.messages import BookUpdate
from celeris.strategy.aggregation import Method
from celeris.strategy.engine import StrategyConfig, StrategyEngine
from celeris.strategy.filters import FilterLimits
from celeris.strategy.plugins import PluginRegistry


class RecordingGateway:
    """Execution as the engine sees it: orders acknowledged (resting) unless held; cancels recorded."""

    def __init__(self, hold: bool = False) -> None:
        self.hold = hold
        self.submitted = []
        self.canceled = []
        self.released = []
        self.renewed = []
        self.gates: list[asyncio.Event] = []

    async def submit(self, request):
        self.submitted.append(request)
        if self.hold:
            gate = asyncio.Event()
            self.gates.append(gate)
            await gate.wait()
        order = Order(request.client_order_id, request.symbol, request.side, request.order_type, request.qty_steps,
                      request.price_ticks, request.time_in_force, request.reduce_only, strategy_id=request.strategy_id)
        order.apply(OrderEvent.SUBMIT)
        order.apply(OrderEvent.ACCEPT)
        return Outcome(request.request_id, True, order)

    async def cancel(self, request_id, symbol, client_order_id="", venue_order_id=0):
        self.canceled.append((request_id.split("-")[0], client_order_id))
        req = next(r for r in self.submitted if r.client_order_id == client_order_id)
        order = Order(client_order_id, symbol, req.side, req.order_type, req.qty_steps, req.price_ticks)
        order.apply(OrderEvent.SUBMIT)
        order.apply(OrderEvent.CANCEL)
        return Outcome(request_id, True, order)

    def renew_owners(self, owners, lease_s):
        self.renewed.append(tuple(owners))

    def release_owner(self, owner):
        self.released.append(owner)


class Scripted:
    """A strategy that says what the test tells it to, once per book update."""

    name = "scripted"

    def __init__(self):
        self.next: list[Signal] = []
        self.fills = []
        self.positions = []

    def initialize(self, config):
        self.symbol = config["symbol"]

    def on_market_data(self, data):
        out, self.next = self.next, []
        return out

    def on_order_fill(self, fill):
        self.fills.append(fill)

    def on_position_update(self, position):
        self.positions.append(position.qty_steps)

    def get_state(self):
        return {}


def book(seq, bid=600000, ask=600010):
    return BookUpdate("BTCUSDT", seq, BookState.LIVE, seq == 1, [(bid, 5000)], [(ask, 5000)], seq, 0, 0)


def signal(strategy, side, urgency=Urgency.PASSIVE, price=None, strength=1.0, **kw):
    return Signal("BTCUSDT", side, strength, strategy, 0, urgency, price, **kw)


def make(btcusdt, names=("a",), gateway=None, clock=None, limits=None, **kw):
    registry = PluginRegistry()
    registry.register("scripted", Scripted)
    configs = [StrategyConfig(n, "scripted", "BTCUSDT", "0.010") for n in names]
    engine = StrategyEngine(configs, {"BTCUSDT": btcusdt}, clock or TestClock(10**18), gateway or RecordingGateway(),
                            lambda t, m: None, mode=Mode.LIVE, registry=registry, limits=limits, **kw)
    return engine


async def run(engine, seq, *signals_by_name):
    for name, signals in signals_by_name:
        engine.runners[name].strategy.next = list(signals)
    engine.on_book(book(seq))
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_quote_the_strategy_stops_giving_is_cancelled(btcusdt):
    """A market maker at its inventory cap quotes only the ask: its resting bid must go."""
    engine = make(btcusdt)
    gw = engine.gateway
    await run(engine, 1, ("a", [signal("a", Side.BUY, price=599990), signal("a", Side.SELL, price=600020)]))
    assert len(gw.submitted) == 2 and len(engine.quotes) == 2
    bid = next(r for r in gw.submitted if r.side is Side.BUY)
    await run(engine, 2, ("a", [signal("a", Side.SELL, price=600020)]))  # same ask, no bid
    assert gw.canceled == [("withdrawn", bid.client_order_id)]
    assert [k[2] for k in engine.quotes] == [Side.SELL]
    await run(engine, 3)  # a round without a word from it: its quotes stay
    assert len(gw.canceled) == 1


async def test_directional_orders_expire_and_are_cancelled_when_the_intent_reverses(btcusdt):
    clock = TestClock(10**18)
    engine = make(btcusdt, clock=clock, order_ttl_s=5)
    gw = engine.gateway
    await run(engine, 1, ("a", [signal("a", Side.BUY, Urgency.NORMAL)]))
    first = gw.submitted[0]
    assert first.time_in_force is TimeInForce.GTX and first.strategy_id == "a"
    await run(engine, 2, ("a", [signal("a", Side.SELL, Urgency.NORMAL)]))  # reversed
    assert ("reversed", first.client_order_id) in gw.canceled
    second = gw.submitted[1]
    clock.advance(s=4)
    engine.upkeep()
    await run(engine, 3)
    assert ("ttl", second.client_order_id) not in gw.canceled
    clock.advance(s=2)
    engine.upkeep()
    await run(engine, 4)
    assert ("ttl", second.client_order_id) in gw.canceled
    assert engine.owned.working == {}
    assert gw.renewed and gw.renewed[-1] == ("a",)  # the lease is renewed while it lives


async def test_disabling_or_reloading_a_strategy_cancels_its_orders_and_releases_it(btcusdt):
    engine = make(btcusdt, names=("a", "b"))
    gw = engine.gateway
    await run(engine, 1, ("a", [signal("a", Side.BUY, price=599990)]), ("b", [signal("b", Side.SELL, price=600020)]))
    a_order, b_order = gw.submitted
    engine.disable("a")
    await run(engine, 2)
    assert ("owner", a_order.client_order_id) in gw.canceled and gw.released == ["a"]
    assert [r.owners for r in engine.owned.working.values()] == [("b",)]
    engine.reload("b")
    await run(engine, 3)
    assert ("reload", b_order.client_order_id) in gw.canceled and engine.owned.working == {}


async def test_the_filter_counts_orders_still_in_flight(btcusdt):
    """Limit 1,000 USDT; each 0.010 BTC buy is 600 USDT: the second is refused before the first is acknowledged."""
    engine = make(btcusdt, names=("a", "b"), gateway=RecordingGateway(hold=True),
                  limits=FilterLimits(max_position_usdt=1_000 * 10**MONEY_SCALE))
    gw = engine.gateway
    await run(engine, 1, ("a", [signal("a", Side.BUY, Urgency.NORMAL)]), ("b", [signal("b", Side.BUY, Urgency.NORMAL)]))
    assert len(gw.submitted) == 1 and engine.stats["filtered"] == 1
    for gate in gw.gates:
        gate.set()
    await run(engine, 2)
    await run(engine, 3, ("b", [signal("b", Side.SELL, Urgency.NORMAL)]))  # the other side is not limited by it
    assert len(gw.submitted) == 2


async def test_aggregation_keeps_two_sided_quotes_and_splits_a_shared_fill(btcusdt):
    engine = make(btcusdt, names=("mm", "m1", "m2"), aggregation={"BTCUSDT": Method.WEIGHTED})
    gw = engine.gateway
    await run(engine, 1, ("mm", [signal("mm", Side.BUY, price=599990), signal("mm", Side.SELL, price=600020)]),
              ("m1", [signal("m1", Side.BUY, Urgency.AGGRESSIVE)]), ("m2", [signal("m2", Side.BUY, Urgency.AGGRESSIVE)]))
    by_owner = {(r.strategy_id, r.side) for r in gw.submitted}
    # The market maker's bid and ask both go out, each its own; the two directional votes are one order.
    assert ("mm", Side.BUY) in by_owner and ("mm", Side.SELL) in by_owner and ("m1+m2", Side.BUY) in by_owner
    shared = next(r for r in gw.submitted if r.strategy_id == "m1+m2")
    engine.on_fill(Fill("BTCUSDT", shared.client_order_id, 1, 1, Side.BUY, 600010, 10, 200, False, 0, "m1+m2",
                        "live", 0))
    assert engine.owned.position_of("m1", "BTCUSDT").qty_steps == 5
    assert engine.owned.position_of("m2", "BTCUSDT").qty_steps == 5
    assert engine.owned.position_of("mm", "BTCUSDT").qty_steps == 0
    assert engine.runners["m1"].strategy.positions[-1] == 5  # told its own position, not the symbol's
    assert engine.runners["mm"].strategy.positions == []


async def test_stopping_the_engine_cancels_everything_it_owns(btcusdt):
    engine = make(btcusdt)
    gw = engine.gateway
    await run(engine, 1, ("a", [signal("a", Side.BUY, price=599990), signal("a", Side.SELL, price=600020)]))
    await engine.stop()
    assert {c for _, c in gw.canceled} == {r.client_order_id for r in gw.submitted}
    assert engine.owned.working == {}


def test_momentum_and_mean_reversion_exit_with_reduce_only_orders():
    from celeris.domain.signals import BookTop
    from celeris.strategies.mean_reversion import MeanReversion
    from celeris.strategies.momentum import Momentum

    mom = Momentum()
    mom.initialize({"symbol": "BTCUSDT", "params": {"lookback": 2, "threshold_bps": 0.1, "cooldown": 0,
                                                     "max_hold_updates": 50}})
    mom.position = 30
    out = []
    for bid in (600000, 600100, 600200, 600100, 600000):  # up, then down: reversed against a long
        out += mom.on_market_data(BookTop("BTCUSDT", 0, bid, 1, bid + 10, 1))
    exits = [s for s in out if s.reduce_only]
    assert exits and exits[0].side is Side.SELL and exits[0].qty_steps == 30
    held = Momentum()
    held.initialize({"symbol": "BTCUSDT", "params": {"lookback": 50, "max_hold_updates": 5, "cooldown": 0}})
    held.position = -7
    out = [s for _ in range(6) for s in held.on_market_data(BookTop("BTCUSDT", 0, 600000, 1, 600010, 1))]
    assert out and out[0].reduce_only and out[0].side is Side.BUY and out[0].qty_steps == 7

    mr = MeanReversion()
    mr.initialize({"symbol": "BTCUSDT", "params": {"window": 5, "entry_z": 1.0, "cooldown": 0}})
    mids = [600000, 600010, 599990, 600000, 600010]
    for m in mids:
        mr.on_market_data(BookTop("BTCUSDT", 0, m, 1, m + 10, 1))
    mr.position = 12  # bought the dip
    out = mr.on_market_data(BookTop("BTCUSDT", 0, 600020, 1, 600030, 1))  # back above the mean
    assert out and out[0].reduce_only and out[0].side is Side.SELL and out[0].qty_steps == 12


async def test_an_exit_signal_becomes_a_reduce_only_order_of_the_exact_size(btcusdt):
    engine = make(btcusdt)
    gw = engine.gateway
    await run(engine, 1, ("a", [signal("a", Side.SELL, Urgency.AGGRESSIVE, qty_steps=7, reduce_only=True)]))
    request = gw.submitted[0]
    assert request.reduce_only and request.qty_steps == 7 and request.order_type is OrderType.LIMIT
    assert request.time_in_force is TimeInForce.IOC


def test_a_fill_arriving_after_its_order_closed_is_still_its_owners(btcusdt):
    # The cancel's answer closed the record, then the venue's fill of that order arrived (they raced):
    # the owners are still credited, split by contribution as before; a signal strategy lost it before.
    from celeris.strategy.owned import RECENT_CAPACITY, OwnedOrders, WorkingRecord

    owned = OwnedOrders({"BTCUSDT": btcusdt})
    owned.reserve(WorkingRecord("c1", ("a", "b"), (3, 1), "BTCUSDT", Side.BUY, 4, 600000, False, 0))
    assert owned.closed("c1") is not None
    shares = owned.fill("c1", "BTCUSDT", Side.BUY, 4, 600000, 0)
    assert [(o, q) for o, q, _ in shares] == [("a", 3), ("b", 1)]
    assert owned.position_of("a", "BTCUSDT").qty_steps == 3 and owned.position_of("b", "BTCUSDT").qty_steps == 1
    assert "c1" not in owned.working and owned.ledger.symbols["BTCUSDT"] is not None
    # Bounded: the oldest closed records go first.
    for k in range(RECENT_CAPACITY + 5):
        owned.reserve(WorkingRecord(f"x{k}", ("a",), (1,), "BTCUSDT", Side.SELL, 1, 600100, False, 0))
        owned.closed(f"x{k}")
    assert len(owned.recently_closed) == RECENT_CAPACITY and "c1" not in owned.recently_closed
    assert owned.fill("c1", "BTCUSDT", Side.BUY, 1, 600000, 0) == []
