"""The risk API's figures survive the wire exactly, including the "infinite" ratios of a non-positive
equity (10^15 ppm), which overflowed protobuf's int64 mantissa at MONEY_SCALE and failed the call."""

from decimal import Decimal

from hypothesis import given, strategies as st

from celeris.domain.margin import INFINITE_RATIO_PPM
from celeris.risk.metrics import RiskMetrics
from celeris.risk.servicer import dec, metrics_pb
from celeris.runtime.convert import decimal_str

ppm = st.one_of(st.integers(min_value=-INFINITE_RATIO_PPM, max_value=INFINITE_RATIO_PPM),
                st.sampled_from([INFINITE_RATIO_PPM, 0, 1, -1]))


@given(margin=ppm, leverage=ppm, daily=ppm, peak=ppm, conc=ppm)
def test_every_ratio_and_percentage_decodes_to_its_exact_value(margin, leverage, daily, peak, conc):
    m = RiskMetrics(equity_units=-5, margin_ratio_ppm=margin, leverage_ppm=leverage, daily_drawdown_ppm=daily,
                    peak_drawdown_ppm=peak, available_margin_units=0, concentration_ppm={"BTCUSDT": conc})
    pb = metrics_pb(m, 1)  # raised ValueError (value out of range) before
    assert Decimal(decimal_str(pb.margin_ratio)) == m.margin_ratio
    assert Decimal(decimal_str(pb.leverage)) == m.leverage
    assert Decimal(decimal_str(pb.daily_drawdown_pct)) == m.daily_drawdown_pct
    assert Decimal(decimal_str(pb.peak_drawdown_pct)) == m.peak_drawdown_pct
    assert Decimal(decimal_str(pb.concentration_pct["BTCUSDT"])) == m.concentration_pct["BTCUSDT"]


@given(st.decimals(min_value=Decimal("-1e16"), max_value=Decimal("1e16"), places=8, allow_nan=False))
def test_a_violation_value_of_any_size_encodes(value):
    out = Decimal(decimal_str(dec(value)))
    if abs(value) * 10**8 <= 2**63 - 1:
        assert out == value
    else:  # fewer decimals: the error is under one part in 10^17 of the value
        assert abs(out - value) <= abs(value) * Decimal("1e-17")
