"""The backtest's statistics on hand-made tapes (every figure checked against a value worked by hand), a sweep
point applied to the settings, and capture detection on anything hypothesis writes (a capture's symbol or
CaptureError, never another exception)."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from celeris.assembly import backtest_stats as bs
from celeris.assembly.backtest import BacktestError, BacktestSettings, with_point
from celeris.domain.messages import Fill
from celeris.domain.values import MONEY_SCALE, Side
from celeris.marketdata import capture
from tests.conftest import CAPTURE_60S

MONEY = 10**MONEY_SCALE
S = bs.NS_PER_S


def fill(ts_s: float, side: Side, price: int, qty: int = 1, maker: bool = True, who: str = "a") -> Fill:
    return Fill("BTCUSDT", f"c{ts_s}", 1, 1, side, price, qty, 0, maker, 0, who, "simulation", int(ts_s * S))


def test_markouts_are_signed_in_the_fills_favour(btcusdt):
    tape = bs.Tape(btcusdt, 100_000 * MONEY)
    tape.on_mid(0, 600_000, 600_002)  # mid 600_001 ticks
    tape.on_mid(1 * S, 600_010, 600_012)  # +10 ticks after 1 s
    tape.on_mid(5 * S, 599_990, 599_992)  # -10 ticks from 5 s on
    fills = [fill(0, Side.BUY, 600_001), fill(0, Side.SELL, 600_001)]
    m = bs.markouts(tape, fills, end_ns=20 * S)
    tick = float(btcusdt.price_fraction(1))
    assert m["1s"]["fills"] == 2 and m["1s"]["mean_usdt"] == 0.0  # +10 for the buy, -10 for the sell
    buy = bs.markouts(tape, fills[:1], end_ns=20 * S)
    assert buy["1s"]["mean_usdt"] == pytest.approx(10 * tick) and buy["10s"]["mean_usdt"] == pytest.approx(-10 * tick)
    assert buy["1s"]["mean_bps"] == pytest.approx(10 / 600_001 * 10_000, rel=1e-5)
    sell = bs.markouts(tape, fills[1:], end_ns=20 * S)
    assert sell["10s"]["mean_usdt"] == pytest.approx(10 * tick)
    assert buy["60s"] == {"fills": 0, "mean_usdt": None, "mean_bps": None}  # the capture ends before 60 s


def test_drawdown_sharpe_and_sortino_by_hand(btcusdt):
    assert bs.max_drawdown([0, 5, 3, 8, 1, 4]) == 7 and bs.max_drawdown([0, 1, 2]) == 0
    assert bs.max_drawdown([-3, -5]) == 2
    capital = 100 * MONEY
    equity = [0, 2 * MONEY, 1 * MONEY, 3 * MONEY]  # returns 0.02, -0.01, 0.02
    r = [0.02, -0.01, 0.02]
    mean = sum(r) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / 3)
    downside = math.sqrt(0.01 ** 2 / 3)
    got = bs._returns_stats(equity, capital)
    year = math.sqrt(365 * 86_400)
    assert got["sharpe"] == pytest.approx(mean / std * year, rel=1e-5)
    assert got["sortino"] == pytest.approx(mean / downside * year, rel=1e-5)
    flat = bs._returns_stats([5, 5, 5], capital)
    assert flat["sharpe"] is None and flat["sortino"] is None  # no variation: no ratio (not infinity)


def test_fill_ratio_maker_share_turnover_and_per_strategy(btcusdt):
    from celeris.domain.orders import Order
    from celeris.domain.instruments import OrderType

    tape = bs.Tape(btcusdt, 100_000 * MONEY)
    for cid, who, qty in (("o1", "a", 4), ("o2", "b", 6)):
        order = Order(cid, "BTCUSDT", Side.BUY, OrderType.LIMIT, qty, 600_000, strategy_id=who)
        tape.on_order(order)  # not at the venue yet: not placed
        order.venue_order_id = 1
        tape.on_order(order)
    tape.on_order(Order("o3", "BTCUSDT", Side.BUY, OrderType.LIMIT, 9, 600_000, strategy_id="a"))  # refused
    tape.on_fill(fill(1, Side.BUY, 600_000, qty=3, maker=True, who="a"))
    tape.on_fill(fill(2, Side.BUY, 600_000, qty=2, maker=False, who="b"))
    out = bs.statistics(tape, end_ns=10 * S, final_mid_ticks=600_000)
    s = out["stats"]
    assert s["fill_ratio"] == 0.5 and s["maker_share"] == 0.6  # 5 of 10 placed; 3 of 5 as maker
    assert s["turnover_usdt"] == bs.money_str(btcusdt.notional(600_000, 5))
    assert out["per_strategy"]["a"]["orders"] == 1 and out["per_strategy"]["a"]["fill_ratio"] == 0.75
    assert out["per_strategy"]["b"]["maker_share"] == 0.0 and out["per_strategy"]["b"]["fills"] == 1


def test_an_order_amended_up_counts_at_its_largest_quantity(btcusdt):
    from celeris.domain.instruments import OrderType
    from celeris.domain.orders import Order

    tape = bs.Tape(btcusdt, 100_000 * MONEY)
    order = Order("o1", "BTCUSDT", Side.BUY, OrderType.LIMIT, 2, 600_000, strategy_id="a", venue_order_id=1)
    tape.on_order(order)
    for qty in (5, 3):  # amended up to 5, then down to 3; 5 fill in all
        order.qty_steps = qty
        tape.on_order(order)
    tape.on_fill(fill(1, Side.BUY, 600_000, qty=5))
    assert bs.statistics(tape, end_ns=10 * S, final_mid_ticks=600_000)["stats"]["fill_ratio"] == 1.0


def test_a_sweep_point_sets_backtest_settings_or_strategy_parameters():
    base = BacktestSettings(strategies=({"name": "a", "type": "momentum", "symbol": "BTCUSDT", "order_size": "0.001",
                                         "params": {"lookback": 30}},
                                        {"name": "b", "type": "market_making", "symbol": "BTCUSDT",
                                         "order_size": "0.001"}))
    point = with_point(base, {"latency_ms": "2.5", "seed": "4", "queue_model": "power", "a.lookback": "10",
                              "threshold_bps": "1.5", "b.order_size": "0.002"})
    assert (point.latency_ms, point.seed, point.queue_model) == (2.5, 4, "power")
    a, b = point.strategies
    assert a["params"] == {"lookback": 10, "threshold_bps": "1.5"} and a["order_size"] == "0.001"
    assert b["params"] == {"threshold_bps": "1.5"} and b["order_size"] == "0.002"
    assert base.strategies[0]["params"] == {"lookback": 30}  # the base is left as it was
    for bad in ({"c.lookback": "1"}, {"latency_ms": "-1"}, {"seed": "x"}):
        with pytest.raises(BacktestError):
            with_point(base, bad)


def test_the_real_capture_is_one():
    info = capture.inspect(CAPTURE_60S)
    assert info.symbol == "BTCUSDT" and info.compressed


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=3000),
    st.binary(max_size=3000).map(lambda b: gzip.compress(b, mtime=0)),
    st.lists(st.sampled_from([b"1 {", b'1 {"stream": "a", "data": {', b'"s": "BTCUSDT"', b"}", b"}}", b"\n",
                              b'{"lastUpdateId": 1}', b"\xff", b" ", b"[", b"17"]), max_size=30).map(b"".join),
))
def test_inspect_names_a_symbol_or_refuses_in_one_line(tmp_path: Path, data: bytes):
    path = tmp_path / "f"
    path.write_bytes(data)
    try:
        info = capture.inspect(path)
    except capture.CaptureError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    assert info.symbol.isalnum()
    try:
        list(capture.lines(info))  # what inspect let through can be read, or is refused as damaged
    except capture.CaptureError as exc:
        assert "\n" not in str(exc)
