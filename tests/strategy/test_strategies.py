"""Built-in strategies on deterministic data, aggregation, the risk filter and order planning."""

from fractions import Fraction

import pytest

from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.signals import BookTop, FillReport, Signal, Urgency
from celeris.domain.values import MONEY_SCALE, Side
from celeris.strategies.market_maker import MarketMaker
from celeris.strategies.mean_reversion import MeanReversion
from celeris.strategies.momentum import Momentum
from celeris.strategy.aggregation import Method, aggregate
from celeris.strategy.filters import AccountView, FilterLimits, plan_order, risk_filter


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


def test_market_maker_quotes_both_sides_and_skews_with_inventory():
    mm = MarketMaker()
    mm.initialize({"params": {"requote_every": 1, "max_inventory_steps": 100, "inventory_unit_steps": 10,
                              "skew_ticks_per_unit": 1}})
    (bid, ask) = mm.on_market_data(top(600000, 600002))
    assert (bid.side, bid.price_hint_ticks, ask.side, ask.price_hint_ticks) == (Side.BUY, 600000, Side.SELL, 600002)
    assert bid.urgency is Urgency.PASSIVE
    mm.on_order_fill(FillReport("BTCUSDT", "c", Side.BUY, 30, 600000, 0, True, 0))  # long 30 steps
    (bid, ask) = mm.on_market_data(top(600000, 600010))
    assert bid.price_hint_ticks == 599997 and ask.price_hint_ticks == 600007  # both shifted down 3 ticks
    assert bid.strength < ask.strength  # less eager to add to a long
    mm.on_order_fill(FillReport("BTCUSDT", "c", Side.BUY, 70, 600000, 0, True, 0))  # at the inventory cap
    signals = mm.on_market_data(top(600000, 600010))
    assert [s.side for s in signals] == [Side.SELL]
    short = MarketMaker()
    short.initialize({"params": {"requote_every": 1}})
    short.on_order_fill(FillReport("BTCUSDT", "c", Side.SELL, 20, 600000, 0, True, 0))
    (bid, ask) = short.on_market_data(top(600000, 600001))
    assert bid.price_hint_ticks == 600000 and ask.price_hint_ticks == 600003  # never crosses the ask


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
