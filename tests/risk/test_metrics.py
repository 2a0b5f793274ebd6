"""Risk formulas against hand-computed cases and invariants."""

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from celeris.domain.positions import Position
from celeris.domain.values import MONEY_SCALE, Side
from celeris.risk.metrics import AccountSnapshot, compute, post_trade

M = 10**MONEY_SCALE


def snapshot(btcusdt, qty_steps=1000, entry_ticks=600_000, mark=610_000, wallet=10_000, leverage=10):
    pos = Position(btcusdt, qty_steps, Fraction(abs(qty_steps) * entry_ticks))
    return AccountSnapshot(wallet * M, {"BTCUSDT": pos}, {"BTCUSDT": mark}, {"BTCUSDT": leverage})


def test_hand_computed_long(btcusdt):
    # 1 BTC long from 60,000, mark 61,000, wallet 10,000, leverage 10
    m = compute(snapshot(btcusdt), Fraction(12_000), Fraction(12_500))
    assert m.equity == 11_000
    assert m.margin_ratio == Fraction(1525, 11_000)  # maint 61,000 x 2.5 % / margin balance
    assert m.leverage == Fraction(61_000, 11_000)
    assert m.concentration_pct["BTCUSDT"] == Fraction(61_000 * 100, 11_000)
    assert m.available_margin == 11_000 - 6_100
    assert m.daily_drawdown_pct == Fraction(1_000 * 100, 12_000)
    assert m.peak_drawdown_pct == Fraction(1_500 * 100, 12_500)
    assert m.daily_pnl == -1_000


def test_hand_computed_short_and_flat(btcusdt):
    m = compute(snapshot(btcusdt, qty_steps=-2000, entry_ticks=600_000, mark=590_000, wallet=5_000), None, None)
    assert m.equity == 5_000 + 2 * 1_000  # a short gains when the price falls
    assert m.daily_drawdown_pct == 0 and m.peak_drawdown_pct == 0
    flat = compute(AccountSnapshot(1_000 * M, {}, {}, {}), None, None)
    assert flat.margin_ratio == 0 and flat.leverage == 0 and flat.available_margin == 1_000


def test_post_trade_uses_futures_margin_not_spot_cash(btcusdt):
    before = snapshot(btcusdt, qty_steps=0, wallet=1_000, mark=600_000)
    after = post_trade(before, btcusdt, Side.BUY, 1000, 600_000)  # 60,000 notional on a 1,000 wallet
    # Spot-style accounting would make the wallet -59,000; futures keep it minus the fee only.
    assert after.wallet == 1_000 * M - 24 * M  # taker fee 0.04 %
    m = compute(after, None, None)
    assert m.leverage > 50 and m.available_margin < 0


@settings(max_examples=200, deadline=None)
@given(st.integers(-5000, 5000), st.integers(500_000, 700_000), st.integers(500_000, 700_000),
       st.integers(1_000, 1_000_000))
def test_invariants(btcusdt, qty, entry, mark, wallet):
    snap = snapshot(btcusdt, qty_steps=qty, entry_ticks=entry, mark=mark, wallet=wallet)
    m = compute(snap, None, None)
    gross = m.notional.get("BTCUSDT", Fraction(0))
    if m.equity > 0:
        assert m.leverage * m.equity == gross
        assert m.margin_ratio * m.equity == (snap.positions["BTCUSDT"].maint_margin(mark) / Fraction(M))
    if qty:
        bigger = compute(post_trade(snap, btcusdt, Side.BUY if qty > 0 else Side.SELL, 100, mark, Fraction(0)),
                         None, None)
        assert bigger.leverage >= m.leverage or m.equity <= 0
        back = post_trade(post_trade(snap, btcusdt, Side.BUY, 100, mark, Fraction(0)), btcusdt, Side.SELL, 100, mark,
                          Fraction(0))
        assert back.positions["BTCUSDT"].qty_steps == qty
        assert abs(compute(back, None, None).equity - m.equity) <= Fraction(1, M)
