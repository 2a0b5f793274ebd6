"""The shared domain helpers: nearest-rank percentile, integer Sharpe ratio, integer ratios, alerts."""

import math
import statistics
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeris.domain.alerts import AlertLog
from celeris.domain.clock import TestClock
from celeris.domain.ratios import format_ppm_pct, money_decimal, pct_to_ppm, ratio_ppm, whole_to_money, whole_to_ppm
from celeris.domain.stats import percentile, sharpe_ratio_micro


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([4, 1, 3, 2], 0.5) == 2
    assert percentile(range(1, 101), 0.99) == 99
    assert percentile(range(1, 101), 1) == 100
    assert percentile([7], 0.99) == 7 and percentile([3, 1], 0) == 1


@given(st.lists(st.integers(-10**9, 10**9), min_size=1), st.floats(0.01, 1))
def test_percentile_is_an_observed_sample_with_q_of_them_at_or_below(samples, q):
    p = percentile(samples, q)
    assert p in samples
    assert sum(1 for s in samples if s <= p) >= q * len(samples) - 1e-9


@given(st.lists(st.integers(-10**6, 10**6), min_size=2, max_size=50))
def test_sharpe_matches_mean_over_sample_deviation(returns):
    ratio = sharpe_ratio_micro(returns)
    if len(set(returns)) == 1:
        assert ratio is None
        return
    expected = statistics.mean(returns) / statistics.stdev(returns)
    assert ratio is not None and math.isclose(ratio / 1e6, expected, abs_tol=2e-6, rel_tol=1e-9)


def test_ratios_are_integers_rounded_up_and_configured_values_exact():
    assert ratio_ppm(1, 3) == 333_334 and ratio_ppm(1, 3, round_up=False) == 333_333
    assert ratio_ppm(-1, 3) == -333_333
    with pytest.raises(ValueError):
        ratio_ppm(1, 0)
    assert whole_to_ppm(Fraction(1, 2)) == whole_to_ppm("0.5") == whole_to_ppm(Decimal("0.5")) == 500_000
    assert pct_to_ppm(5) == pct_to_ppm("5") == 50_000 and pct_to_ppm(Fraction("2.5")) == 25_000
    assert whole_to_money(50_000) == 50_000 * 10**8
    assert money_decimal(123) == Decimal("0.00000123") and format_ppm_pct(19_608) == "1.96"


def test_alert_log_suppresses_repeats_caps_types_and_acknowledges():
    clock = TestClock()
    seen = []
    log = AlertLog("account", clock, suppress_s=60, per_type_per_minute=3, id_prefix="acct")
    log.on_alert.append(seen.append)
    first = log.raise_alert("risk", "critical", "near liquidation", key="liquidation:BTCUSDT")
    assert first is not None and first.id == "acct-1" and first.source == "account" and first.kind == first.key
    assert log.raise_alert("risk", "critical", "again", key="liquidation:BTCUSDT") is None  # within 60 s
    for symbol in ("ETHUSDT", "SOLUSDT", "XRPUSDT"):
        log.raise_alert("risk", "critical", symbol, key=f"liquidation:{symbol}")
    assert [a.key for a in log.alerts][-1] == "liquidation:SOLUSDT"  # the type's cap: 3 a minute
    clock.advance(s=61)
    assert log.raise_alert("risk", "critical", "later", key="liquidation:BTCUSDT") is not None
    assert seen == log.alerts
    assert log.acknowledge("acct-1", "dana").acknowledged_by == "dana" and log.acknowledge("x", "d") is None
    with pytest.raises(ValueError):
        log.raise_alert("risk", "loud", "x", key="k")


def test_risk_log_has_no_type_cap():
    log = AlertLog("risk", TestClock(), suppress_s=300)
    assert all(log.raise_alert("risk", "warning", str(i), key=f"k:{i}") for i in range(50))
