"""Risk formulas against hand-computed cases and invariants, in integers (money units, ppm)."""

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from celeris.domain.positions import Position
from celeris.domain.values import MONEY_SCALE, Side
from celeris.risk.metrics import AccountSnapshot, compute, post_trade

M = 10**MONEY_SCALE
PPM = 10**6


def ceil_ppm(numerator, denominator):
    return -(-numerator * PPM // denominator)


def snapshot(btcusdt, qty_steps=1000, entry_ticks=600_000, mark=610_000, wallet=10_000, leverage=10):
    pos = Position(btcusdt, qty_steps, Fraction(abs(qty_steps) * entry_ticks))
    return AccountSnapshot(wallet * M, {"BTCUSDT": pos}, {"BTCUSDT": mark}, {"BTCUSDT": leverage})


def test_hand_computed_long(btcusdt):
    # 1 BTC long from 60,000, mark 61,000, wallet 10,000, leverage 10
    m = compute(snapshot(btcusdt), 12_000 * M, 12_500 * M)
    assert m.equity_units == 11_000 * M and m.equity == 11_000
    assert m.margin_ratio_ppm == ceil_ppm(1525, 11_000)  # maint 61,000 x 2.5 % / margin balance
    assert m.leverage_ppm == ceil_ppm(61_000, 11_000)
    assert m.concentration_ppm["BTCUSDT"] == ceil_ppm(61_000, 11_000)
    assert m.available_margin_units == (11_000 - 6_100) * M
    assert m.daily_drawdown_ppm == ceil_ppm(1_000, 12_000)
    assert m.peak_drawdown_ppm == ceil_ppm(1_500, 12_500)
    assert m.daily_pnl_units == -1_000 * M
    # The exporting edge: exact decimals of the integers.
    assert str(m.margin_ratio) == "0.138637" and m.daily_drawdown_pct == m.daily_drawdown_ppm / Fraction(10**4)


def test_hand_computed_short_and_flat(btcusdt):
    m = compute(snapshot(btcusdt, qty_steps=-2000, entry_ticks=600_000, mark=590_000, wallet=5_000), None, None)
    assert m.equity_units == (5_000 + 2 * 1_000) * M  # a short gains when the price falls
    assert m.daily_drawdown_ppm == 0 and m.peak_drawdown_ppm == 0
    flat = compute(AccountSnapshot(1_000 * M, {}, {}, {}), None, None)
    assert flat.margin_ratio_ppm == 0 and flat.leverage_ppm == 0 and flat.available_margin_units == 1_000 * M


def test_post_trade_uses_futures_margin_not_spot_cash(btcusdt):
    before = snapshot(btcusdt, qty_steps=0, wallet=1_000, mark=600_000)
    after = post_trade(before, btcusdt, Side.BUY, 1000, 600_000)  # 60,000 notional on a 1,000 wallet
    # Spot-style accounting would make the wallet -59,000; futures keep it minus the fee only.
    assert after.wallet == 1_000 * M - 24 * M  # taker fee 0.04 %
    m = compute(after, None, None)
    assert m.leverage_ppm > 50 * PPM and m.available_margin_units < 0


@settings(max_examples=200, deadline=None)
@given(st.integers(-5000, 5000), st.integers(500_000, 700_000), st.integers(500_000, 700_000),
       st.integers(1_000, 1_000_000))
def test_invariants(btcusdt, qty, entry, mark, wallet):
    snap = snapshot(btcusdt, qty_steps=qty, entry_ticks=entry, mark=mark, wallet=wallet)
    m = compute(snap, None, None)
    gross = m.notional_units.get("BTCUSDT", 0)
    assert all(isinstance(v, int) for v in (m.equity_units, m.margin_ratio_ppm, m.leverage_ppm,
                                             m.available_margin_units))
    if m.equity_units > 0:
        # Rounded up, by less than one ppm.
        assert 0 <= m.leverage_ppm * m.equity_units - gross * PPM < m.equity_units
        maint = snap.positions["BTCUSDT"].maint_margin(mark)
        assert 0 <= m.margin_ratio_ppm * m.equity_units - maint * PPM < m.equity_units
    if qty:
        bigger = compute(post_trade(snap, btcusdt, Side.BUY if qty > 0 else Side.SELL, 100, mark, 0), None, None)
        assert bigger.leverage_ppm >= m.leverage_ppm or m.equity_units <= 0
        back = post_trade(post_trade(snap, btcusdt, Side.BUY, 100, mark, 0), btcusdt, Side.SELL, 100, mark, 0)
        assert back.positions["BTCUSDT"].qty_steps == qty
        assert abs(compute(back, None, None).equity_units - m.equity_units) <= 1


def test_margin_ratio_by_the_venues_brackets_and_through_a_proposed_order(btcusdt):
    """With Binance's BTCUSDT brackets the same long keeps 61,000 x 0.5 % - 50 = 255, not 1,525; a proposed
    order's post-trade state keeps the brackets (its notional may move the position into the next tier)."""
    from celeris.venues.binance.account import parse_leverage_brackets
    from tests.support import leverage_brackets

    tables = parse_leverage_brackets(leverage_brackets.BODY_NUMBERS)
    snap = snapshot(btcusdt)
    snap.brackets = tables
    assert compute(snap, None, None).margin_ratio_ppm == ceil_ppm(255, 11_000)
    after = post_trade(snap, btcusdt, Side.BUY, 4000, 610_000)  # +4 BTC: 305,000 notional, tier 3 (1 %, cum 1,300)
    assert after.brackets is tables
    # maint 305,000 x 1 % - 1,300 = 1,750 over 11,000 less the 0.04 % taker fee on 244,000 (97.6)
    assert compute(after, None, None).margin_ratio_ppm == ceil_ppm(17_500, 109_024)
