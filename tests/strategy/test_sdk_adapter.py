"""Signal-style strategies on the SDK (celeris.domain.sdk_signals.SignalAdapter): their signals become
their own orders as the engine planned them (post-only at the touch, IOC at the far touch, exact-size
reduce-only exits), a passive quote per side replaced when it moves and withdrawn when left out, a
reversal or a time-to-live cancels a directional order (on the TestClock), and they are told their own
position. The built-in momentum runs this way."""

from __future__ import annotations

from celeris.domain.clock import TestClock
from celeris.domain.instruments import TimeInForce
from celeris.domain.sdk_signals import SignalAdapter
from celeris.domain.signals import Signal, Urgency
from celeris.domain.values import Side
from celeris.strategies.momentum import Momentum
from tests.strategy.fakes import book, engine_with, settle


class Scripted(SignalAdapter):
    name = "scripted_adapter"

    def initialize(self, config):
        super().initialize(config)
        self.next: list = []
        self.positions: list[int] = []
        self.fills: list[int] = []

    def on_market_data(self, data):
        out, self.next = self.next, []
        return out

    def on_order_fill(self, fill):
        self.fills.append(fill.qty_steps)

    def on_position_update(self, position):
        self.positions.append(position.qty_steps)


def sig(side, urgency=Urgency.PASSIVE, price=None, strength=1.0, **kw):
    return Signal("BTCUSDT", side, strength, "x", 0, urgency, price, **kw)


async def step(engine, seq, *signals, bid=600000, ask=600010):
    engine.runners["a"].strategy.next = list(signals)
    engine.on_book(book(seq, bid, ask))
    await settle()


async def test_quotes_are_replaced_when_they_move_and_withdrawn_when_left_out(btcusdt):
    engine = engine_with(btcusdt, ("a", Scripted, {}))
    gw = engine.gateway
    await step(engine, 1, sig(Side.BUY, price=599990), sig(Side.SELL, price=600020, strength=0.5))
    bid, ask = gw.submitted
    assert (bid.price_ticks, bid.qty_steps, bid.time_in_force) == (599990, 10, TimeInForce.GTX)
    assert (ask.price_ticks, ask.qty_steps, ask.time_in_force) == (600020, 5, TimeInForce.GTX)
    await step(engine, 2, sig(Side.BUY, price=599990), sig(Side.SELL, price=600020, strength=0.5))
    assert len(gw.submitted) == 2  # unchanged
    await step(engine, 3, sig(Side.SELL, price=600030, strength=0.5))  # the ask moves, the bid is left out
    assert set(gw.canceled) == {bid.client_order_id, ask.client_order_id}
    assert gw.submitted[-1].price_ticks == 600030
    await step(engine, 4)  # a round without a word: its quote stays
    assert len(gw.canceled) == 2 and len(engine.runners["a"].strategy.orders()) == 1


async def test_directional_orders_reverse_expire_and_exit_exactly(btcusdt):
    clock = TestClock(10**18)
    engine = engine_with(btcusdt, ("a", Scripted, {}), clock=clock)
    gw = engine.gateway
    await step(engine, 1, sig(Side.BUY, Urgency.AGGRESSIVE))
    take = gw.submitted[0]
    assert (take.price_ticks, take.time_in_force, take.qty_steps) == (600010, TimeInForce.IOC, 10)
    await step(engine, 2, sig(Side.SELL, Urgency.NORMAL))  # reversed: the buy goes
    assert gw.canceled == [take.client_order_id]
    join = gw.submitted[1]
    assert (join.side, join.price_ticks, join.time_in_force) == (Side.SELL, 600010, TimeInForce.GTX)
    clock.advance(s=4)
    engine.run_timers()
    await settle()
    assert join.client_order_id not in gw.canceled
    clock.advance(s=2)  # past its time to live (checked every second)
    engine.run_timers()
    await settle()
    assert join.client_order_id in gw.canceled
    await step(engine, 3, sig(Side.BUY, Urgency.AGGRESSIVE, qty_steps=7, reduce_only=True))
    exit_ = gw.submitted[-1]
    assert (exit_.qty_steps, exit_.reduce_only, exit_.time_in_force) == (7, True, TimeInForce.IOC)
    gw.fill(engine, exit_.client_order_id, 7)
    s = engine.runners["a"].strategy
    assert s.fills == [7] and s.positions == [7] and s.position() == 7  # its own position, told


async def test_the_builtin_momentum_trades_through_the_sdk(btcusdt):
    engine = engine_with(btcusdt, ("a", Momentum, {"lookback": 3, "cooldown": 0, "threshold_bps": 0.1}))
    for i in range(8):
        engine.on_book(book(i + 1, 600000 + 10 * i, 600010 + 10 * i))
        await settle()
    gw = engine.gateway
    assert gw.submitted and all(r.side is Side.BUY and r.strategy_id == "a" for r in gw.submitted)
    assert engine.runners["a"].signals == len(gw.submitted) and engine.stats["signals"] >= len(gw.submitted)
    assert {o.client_order_id for o in engine.runners["a"].strategy.orders()} <= {r.client_order_id
                                                                                   for r in gw.submitted}
