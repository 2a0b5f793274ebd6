"""Built-in strategies on deterministic data, aggregation, the risk filter and order planning."""

from fractions import Fraction

import pytest

from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.signals import BookTop, Signal, Urgency
from celeris.domain.values import MONEY_SCALE, Side
from celeris.strategies.market_maker import MarketMaker
from celeris.strategies.mean_reversion import MeanReversion
from celeris.strategies.momentum import Momentum
from celeris.strategy.aggregation import Method, aggregate
from celeris.strategy.filters import AccountView, FilterLimits, plan_order, risk_filter
from tests.strategy.fakes import book, engine_with, settle


def top(bid, ask=None, ts=0, symbol="BTCUSDT"):
    return BookTop(symbol, ts, bid, 1000, ask if ask is not None else bid + 1, 1000)


def run(strategy, bids):
    out = []
    for i, bid in enumerate(bids):
        out.extend(strategy.on_market_data(top(bid, ts=i)))
    return out


def test_momentum_buys_a_rise_and_sells_a_fall_with_cooldown():
    m = Momentum()
    m.initialize({"params": {"lookback": 10, "threshold_bps": 2, "cooldown": 5}})
    flat = run(m, [600000] * 20)
    assert flat == []
    rising = run(m, [600000 + 20 * i for i in range(20)])  # +0.1 % over 10 updates
    assert rising and all(s.side is Side.BUY for s in rising)
    assert 0 < rising[0].strength <= 1
    steep = Momentum()
    steep.initialize({"params": {"lookback": 10, "threshold_bps": 2, "cooldown": 5}})
    fast = run(steep, [600000 + 100 * i for i in range(20)])  # far beyond twice the threshold
    assert fast[0].urgency is Urgency.AGGRESSIVE and fast[0].strength == 1.0
    assert len(rising) <= 20 // 5 + 1  # the cooldown spaces them
    m2 = Momentum()
    m2.initialize({"params": {"lookback": 10, "threshold_bps": 2, "cooldown": 5}})
    falling = run(m2, [600000 - 20 * i for i in range(20)])
    assert falling and all(s.side is Side.SELL for s in falling)
    with pytest.raises(ValueError):
        Momentum().initialize({"params": {"lookback": 1}})


async def test_market_maker_quotes_both_sides_and_skews_with_inventory(btcusdt):
    """The market maker is an SDK strategy: its quotes are its own orders, its inventory its own fills.
    (It emitted passive signals with price hints before; the prices and sizes asked for are the same.)"""
    params = {"requote_every": 1, "max_inventory_steps": 50, "inventory_unit_steps": 10, "skew_ticks_per_unit": 1}
    engine = engine_with(btcusdt, ("mm", MarketMaker, params), order_size="0.100")  # a flat quote: 50 steps
    gw, mm = engine.gateway, engine.runners["mm"].strategy

    def quotes():
        return {o.side: (o.price_ticks, o.remaining_steps, o.time_in_force) for o in mm.orders()}

    engine.on_book(book(1, 600000, 600002))
    await settle()
    assert quotes() == {Side.BUY: (600000, 50, TimeInForce.GTX), Side.SELL: (600002, 50, TimeInForce.GTX)}
    bid = next(o.client_order_id for o in mm.orders() if o.side is Side.BUY)
    gw.fill(engine, bid, 30)  # long 30 steps: both quotes shift down 3 ticks, the bid shrinks
    engine.on_book(book(2, 600000, 600010))
    await settle()
    assert quotes() == {Side.BUY: (599997, 20, TimeInForce.GTX), Side.SELL: (600007, 50, TimeInForce.GTX)}
    assert [(a.client_order_id, a.qty_steps, a.price_ticks) for a in gw.amended][0] == (bid, 50, 599997)
    gw.fill(engine, bid, 20)  # long 50: at the cap, the bid is withdrawn
    engine.on_book(book(3, 600000, 600010))
    await settle()
    assert quotes() == {Side.SELL: (600005, 50, TimeInForce.GTX)} and mm.position() == 50
    assert mm.get_state()["inventory_steps"] == 50

    short = engine_with(btcusdt, ("mm", MarketMaker, {"requote_every": 1, "inventory_unit_steps": 2}))
    s = short.runners["mm"].strategy
    short.on_book(book(1, 600000, 600001))
    await settle()
    ask = next(o.client_order_id for o in s.orders() if o.side is Side.SELL)
    short.gateway.fill(short, ask, 5)  # short 5 steps: both quotes shift up 2 ticks
    short.on_book(book(2, 600000, 600001))
    await settle()
    assert s.position() == -5
    assert {o.side: o.price_ticks for o in s.orders()} == {Side.BUY: 600000, Side.SELL: 600003}  # never crosses


def test_mean_reversion_fades_a_spike():
    mr = MeanReversion()
    mr.initialize({"params": {"window": 20, "entry_z": 2.0, "cooldown": 1}})
    noise = [600000 + (i % 3) for i in range(40)]
    assert run(mr, noise) == []
    spike = mr.on_market_data(top(600050))
    assert spike and spike[0].side is Side.SELL and spike[0].urgency is Urgency.PASSIVE
    dip = run(mr, [600000 + (i % 3) for i in range(5)] + [599950])
    assert dip[-1].side is Side.BUY


def sig(side, strength, name, urgency=Urgency.NORMAL):
    return Signal("BTCUSDT", side, strength, name, 0, urgency, 600000, name)


def test_aggregation_methods():
    signals = [sig(Side.BUY, 0.8, "a"), sig(Side.BUY, 0.4, "b"), sig(Side.SELL, 0.9, "c")]
    majority = aggregate(signals, Method.MAJORITY)
    assert majority.signal.side is Side.BUY and majority.contributors == ("a", "b")
    assert majority.signal.strength == pytest.approx(0.6)
    assert aggregate(signals, Method.MAJORITY, voters=5) is None  # 2 of 5 is no majority
    weighted = aggregate(signals, Method.WEIGHTED, weights={"c": 3.0})
    assert weighted.signal.side is Side.SELL and weighted.contributors == ("c",)
    first = aggregate(signals, Method.FIRST_ABOVE, threshold=0.85)
    assert first.signal.strategy == "c"
    assert aggregate(signals, Method.FIRST_ABOVE, threshold=0.95) is None
    assert aggregate([], Method.MAJORITY) is None


def view(positions=None, daily=0, dd=Fraction(0), orders=0, marks=None):
    marks = {"BTCUSDT": 600000, "ETHUSDT": 300000} if marks is None else marks
    return AccountView(positions or {}, marks, daily, dd, orders)


@pytest.mark.parametrize("kwargs,qty,reason", [
    ({}, 10, None),
    ({"orders": 60}, 10, "order frequency"),
    ({"daily": -1001 * 10**MONEY_SCALE}, 10, "daily loss"),
    ({"dd": Fraction(25)}, 10, "drawdown"),
    ({}, 200, "position limit"),  # 0.2 BTC = 12,000 USDT > 10,000
    ({"positions": {"ETHUSDT": 150_000}}, 10, "total exposure"),  # 150 ETH = 45,000 + 600
    ({"positions": {"BTCUSDT": 200}}, 10, "position limit"),
    ({"marks": {}}, 10, "no price"),
])
def test_risk_filter(btcusdt, kwargs, qty, reason):
    from tests.conftest import load_sample
    from celeris.domain.instruments import Instrument

    info = load_sample("nautilus/py_http_futures_market_exchange_info.json")
    instruments = {s["symbol"]: Instrument.from_exchange_info(s) for s in info["symbols"][:2]}
    got = risk_filter(sig(Side.BUY, 1, "a"), qty, btcusdt, instruments, view(**kwargs), FilterLimits())
    assert (got is None) if reason is None else (reason in got)


def test_reducing_a_position_passes_the_position_limit(btcusdt):
    got = risk_filter(sig(Side.SELL, 1, "a"), 10, btcusdt, {"BTCUSDT": btcusdt},
                      view(positions={"BTCUSDT": 200}), FilterLimits())
    assert got is None


def test_order_plans_follow_urgency_and_sizing(btcusdt):
    t = top(600000, 600003)
    passive = plan_order(sig(Side.BUY, 0.5, "a", Urgency.PASSIVE), t, btcusdt, 100)
    assert (passive.order_type, passive.time_in_force, passive.price_ticks, passive.qty_steps) == \
        (OrderType.LIMIT, TimeInForce.GTX, 600000, 50)
    aggressive = plan_order(sig(Side.BUY, 1, "a", Urgency.AGGRESSIVE), t, btcusdt, 100)
    assert aggressive.time_in_force is TimeInForce.IOC and aggressive.price_ticks == 600003
    crossing_hint = Signal("BTCUSDT", Side.SELL, 1, "a", 0, Urgency.PASSIVE, 599990)
    assert plan_order(crossing_hint, t, btcusdt, 10).price_ticks == 600001  # post-only never crosses
    tiny = plan_order(sig(Side.BUY, 0.01, "a", Urgency.NORMAL), t, btcusdt, 1)
    assert btcusdt.notional(tiny.price_ticks, tiny.qty_steps) >= btcusdt.min_notional  # raised to min notional
