from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeris.domain.positions import Position, fee, liquidation_ticks, margin_ratio_ppm
from celeris.domain.values import MONEY_SCALE, Side

TAKER = Fraction(4, 10_000)


def test_open_add_reduce_close(btcusdt):
    pos = Position(btcusdt)
    pos.apply_fill(Side.BUY, 10, 600_000)  # 0.010 @ 60000.0
    pos.apply_fill(Side.BUY, 10, 620_000)  # 0.010 @ 62000.0
    assert pos.entry_price == 61_000
    result = pos.apply_fill(Side.SELL, 5, 630_000)  # close 0.005 @ 63000
    assert result.realized_pnl == 10 * 10**MONEY_SCALE  # (63000-61000) x 0.005 = 10 USDT
    assert pos.qty_steps == 15 and pos.entry_price == 61_000
    assert pos.unrealized_pnl(600_000) == -15 * 10**MONEY_SCALE  # (60000-61000) x 0.015
    pos.apply_fill(Side.SELL, 15, 610_000)
    assert pos.qty_steps == 0 and pos.cost == 0 and pos.realized_pnl == 10 * 10**MONEY_SCALE


def test_flip_closes_then_opens_at_the_fill_price(btcusdt):
    pos = Position(btcusdt)
    pos.apply_fill(Side.SELL, 10, 600_000)
    result = pos.apply_fill(Side.BUY, 25, 590_000)
    assert result.closed_steps == 10 and result.opened_steps == 15
    assert result.realized_pnl == 10 * 10**MONEY_SCALE  # short 0.010 from 60000 to 59000
    assert pos.qty_steps == 15 and pos.entry_price == 59_000 and pos.side is Side.BUY


def test_fee(btcusdt):
    # 0.010 BTC x 60000 = 600 USDT x 0.04 % = 0.24 USDT
    assert fee(btcusdt, 600_000, 10, TAKER) == 24_000_000


fills = st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 50),
                           st.integers(550_000, 650_000)), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(fills)
def test_realized_plus_unrealized_equals_cash_flow(btcusdt, trades):
    """Whatever the path, realized (exact) + unrealized at P equals the cash flow of closing at P."""
    pos = Position(btcusdt)
    cash = Fraction(0)
    tickstep = Fraction(10 * 1, 10**5)  # one tick (0.1) x one step (0.001) in USDT
    for side, qty, price in trades:
        pos.apply_fill(side, qty, price)
        cash -= side.sign * qty * price * tickstep
    mark = 600_000
    close_value = pos.qty_steps * mark * tickstep
    unrealized_exact = (pos.qty_steps * mark - (pos.cost if pos.qty_steps > 0 else -pos.cost)) * tickstep
    assert pos.realized_exact + unrealized_exact == cash + close_value
    assert abs(pos.unrealized_pnl(mark) - unrealized_exact * 10**MONEY_SCALE) <= Fraction(1, 2)
    assert pos.cost >= 0 and (pos.qty_steps != 0 or pos.cost == 0)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 100), st.integers(550_000, 650_000), st.integers(550_000, 650_000),
       st.lists(st.integers(1, 20), min_size=1, max_size=10))
def test_closing_in_pieces_realizes_exactly_the_round_trip(btcusdt, qty, entry, exit_, pieces):
    pos = Position(btcusdt)
    pos.apply_fill(Side.BUY, qty, entry)
    remaining = qty
    for piece in pieces:
        if remaining == 0:
            break
        piece = min(piece, remaining)
        pos.apply_fill(Side.SELL, piece, exit_)
        remaining -= piece
    if remaining:
        pos.apply_fill(Side.SELL, remaining, exit_)
    assert pos.qty_steps == 0
    assert pos.realized_exact == Fraction((exit_ - entry) * qty * 10, 10**5)
    # Each piece rounds to 1e-8; the sum stays within half a unit per piece.
    assert abs(pos.realized_pnl - pos.realized_exact * 10**MONEY_SCALE) <= len(pieces) + 1


def test_margin_ratio_binance_definition(btcusdt):
    """Without the venue's brackets: exchangeInfo's flat 2.5 % (the brackets are tested in test_margin.py)."""
    pos = Position(btcusdt)
    pos.apply_fill(Side.BUY, 1000, 600_000)  # 1 BTC @ 60000
    wallet = 3000 * 10**MONEY_SCALE
    # maint = 60000 x 2.5 % = 1500; margin balance = 3000 + 0 -> 50 %
    assert margin_ratio_ppm(wallet, [(pos, 600_000)]) == 500_000
    # at 59000: maint 1475, balance 3000 - 1000 = 2000 -> 73.75 %
    assert margin_ratio_ppm(wallet, [(pos, 590_000)]) == 737_500
    assert margin_ratio_ppm(wallet, []) == 0


def test_liquidation_price_matches_the_venue_formula_and_margin_ratio_one(btcusdt):
    wallet = 3000 * 10**MONEY_SCALE
    pos = Position(btcusdt)
    pos.apply_fill(Side.BUY, 1000, 600_000)
    lp = liquidation_ticks(pos, wallet)
    # long: (3000 - 60000) / (0.025 - 1) = 58461.538... -> 58461.5 on the 0.10 tick
    assert lp == 584_615
    # At the liquidation price the margin ratio is 100 % to within a tick.
    assert margin_ratio_ppm(wallet, [(pos, lp + 1)]) < 10**6 <= margin_ratio_ppm(wallet, [(pos, lp - 1)])
    short = Position(btcusdt)
    short.apply_fill(Side.SELL, 1000, 600_000)
    assert liquidation_ticks(short, wallet) > 600_000
    assert liquidation_ticks(Position(btcusdt), wallet) is None


def test_bad_fill_refused(btcusdt):
    with pytest.raises(ValueError):
        Position(btcusdt).apply_fill(Side.BUY, 0, 1)
