"""Maintenance margin by leverage bracket and the venue's liquidation price (celeris.domain.margin).

The worked example is issue 18's: with the flat 2.5 % of exchangeInfo a long of 1 BTC at 60,000 on a
10,000 USDT cross wallet liquidates at 51,282; with Binance's real BTCUSDT brackets (tests/support/
leverage_brackets.py says where they come from) it liquidates at 50,201. Each figure is checked against a
hand computation written independently in Decimal. The properties are the ones the venue's formulas
promise: a maintenance margin continuous across bracket boundaries, a margin balance equal to the
maintenance margin at the liquidation price (to one tick), monotonic in the wallet, and cross margin
equal to isolated margin with the other positions' net folded into the wallet.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from celeris.domain import margin
from celeris.domain.margin import RATE_ONE, BracketTable, LeverageBracket
from celeris.domain.positions import Position, flat_brackets, liquidation_ticks, margin_ratio_ppm, tick_step_value
from celeris.domain.values import MONEY_SCALE, Side
from celeris.venues.binance.account import parse_leverage_brackets
from tests.support import leverage_brackets

U = 10**MONEY_SCALE
BTC = parse_leverage_brackets(leverage_brackets.BODY_STRINGS)["BTCUSDT"]


def long_position(ins, qty_steps: int, price_ticks: int) -> Position:
    pos = Position(ins)
    pos.apply_fill(Side.BUY if qty_steps > 0 else Side.SELL, abs(qty_steps), price_ticks)
    return pos


def hand_long_liquidation(qty: str, entry: str, wallet: str, rows) -> Decimal:
    """Binance's formula by hand, trying each bracket: LP = (q EP - WB - cum) / (q (1 - MMR))."""
    q, ep, wb = Decimal(qty), Decimal(entry), Decimal(wallet)
    for _, _, floor, cap, rate, cum in rows:
        lp = (q * ep - wb - Decimal(cum)) / (q * (1 - Decimal(rate)))
        if floor <= q * lp <= cap:
            return lp
    raise AssertionError("no bracket holds the root")


# -- the worked example ------------------------------------------------------------------------------------

def test_the_parsed_table_is_binances(btcusdt):
    assert [b.maint_rate for b in BTC.brackets][:3] == [400_000, 500_000, 1_000_000]  # 0.4 %, 0.5 %, 1 %
    assert BTC.brackets[2].maint_amount == 1300 * U and BTC.brackets[-1].notional_cap == 500_000_000 * U
    assert parse_leverage_brackets(leverage_brackets.BODY_NUMBERS)["BTCUSDT"] == BTC
    # one object instead of a list when asked for one symbol
    assert parse_leverage_brackets(leverage_brackets.BODY_NUMBERS[0])["BTCUSDT"] == BTC


@pytest.mark.parametrize("qty, entry, wallet, flat, bracketed", [
    # 1 BTC: notional 60,000 and 50,201 at liquidation, both in bracket 2 (0.5 %, cum 50)
    ("1", "60000", "10000", "51282.1", "50201.0"),
    # 0.1 BTC: bracket 1 (0.4 %, cum 0): 5,000 / 0.0996
    ("0.1", "60000", "1000", "51282.1", "50200.8"),
    # 0.9 BTC: 54,000 now (bracket 2) but 45,181 at liquidation (bracket 1): the bracket of the notional AT
    # the liquidation price is the one to use; bracket 2's would give 50,195.4
    ("0.9", "60000", "9000", "51282.1", "50200.8"),
])
def test_issue_18_liquidation_prices(btcusdt, qty, entry, wallet, flat, bracketed):
    steps, ticks = btcusdt.qty(qty), btcusdt.price(entry)
    pos = long_position(btcusdt, steps, ticks)
    w = int(Decimal(wallet)) * U
    assert btcusdt.format_price(liquidation_ticks(pos, w)) == btcusdt.format_price(btcusdt.price(flat))
    got = liquidation_ticks(pos, w, brackets=BTC)
    assert btcusdt.format_price(got) == btcusdt.format_price(btcusdt.price(bracketed))
    hand = hand_long_liquidation(qty, entry, wallet, leverage_brackets.ROWS)
    assert abs(hand - Decimal(btcusdt.format_price(got))) <= Decimal("0.05")  # half a 0.10 tick


def test_bracket_two_would_be_wrong_for_the_09_btc_long(btcusdt):
    only_bracket_2 = BracketTable("BTCUSDT", (LeverageBracket(1, 100, 0, 10**30, 500_000, 50 * U),))
    pos = long_position(btcusdt, btcusdt.qty("0.9"), btcusdt.price("60000"))
    assert btcusdt.format_price(liquidation_ticks(pos, 9000 * U, brackets=only_bracket_2)) == "50195.40"


def test_maintenance_margin_and_ratio_by_bracket(btcusdt):
    pos = long_position(btcusdt, btcusdt.qty("1"), btcusdt.price("60000"))
    mark = btcusdt.price("60000")
    assert pos.maint_margin(mark, BTC) == 250 * U  # 60,000 x 0.5 % - 50
    assert pos.maint_margin(mark) == 1500 * U  # the flat fallback: 60,000 x 2.5 %
    assert margin_ratio_ppm(10_000 * U, [(pos, mark)], {"BTCUSDT": BTC}) == 25_000  # 250 / 10,000
    assert margin_ratio_ppm(10_000 * U, [(pos, mark)]) == 150_000


def test_max_notional_by_leverage():
    assert BTC.max_notional(125) == 50_000 * U
    assert BTC.max_notional(101) == 50_000 * U
    assert BTC.max_notional(100) == 250_000 * U
    assert BTC.max_notional(20) == 20_000_000 * U
    assert BTC.max_notional(1) == 500_000 * U * 1000
    assert BTC.max_notional(126) == 0


def test_malformed_tables_are_refused():
    with pytest.raises(ValueError):
        BracketTable("X", ())
    with pytest.raises(ValueError):  # a gap between tiers
        BracketTable("X", (LeverageBracket(1, 50, 0, 10, 1000, 0), LeverageBracket(2, 20, 11, 20, 2000, 0)))
    with pytest.raises(ValueError):  # a falling rate
        BracketTable("X", (LeverageBracket(1, 50, 0, 10, 2000, 0), LeverageBracket(2, 20, 10, 20, 1000, 0)))
    with pytest.raises(ValueError):  # a rate of 100 %
        BracketTable("X", (LeverageBracket(1, 50, 0, 10, RATE_ONE, 0),))


# -- properties ------------------------------------------------------------------------------------------

@st.composite
def tables(draw):
    """Random tables whose cum follows the venue's rule."""
    n = draw(st.integers(1, 6))
    caps = sorted(draw(st.sets(st.integers(1, 10**9), min_size=n, max_size=n)))
    rates = sorted(draw(st.lists(st.integers(1, RATE_ONE // 2), min_size=n, max_size=n)))
    rows, cum, floor, previous_rate = [], 0, 0, 0
    for i, (cap, rate) in enumerate(zip(caps, rates)):
        cum += floor * U * (rate - previous_rate) // RATE_ONE if i else 0
        rows.append(LeverageBracket(i + 1, 125 - i, floor * U, cap * U, rate, cum))
        floor, previous_rate = cap, rate
    assume(all((r.notional_floor * (r.maint_rate - p.maint_rate)) % RATE_ONE == 0
               for p, r in zip(rows, rows[1:])))  # cum exact in money units
    return BracketTable("X", tuple(rows))


@settings(max_examples=300, deadline=None)
@given(table=st.one_of(st.just(BTC), tables()), data=st.data())
def test_maint_margin_is_continuous_at_every_boundary(table, data):
    for lower, upper in zip(table.brackets, table.brackets[1:]):
        edge = upper.notional_floor
        assert lower.maint_margin(edge) == upper.maint_margin(edge)  # what cum guarantees
        delta = data.draw(st.integers(-10**6, 10**6))
        n = max(edge + delta, 0)
        # one money unit of notional moves the margin by at most one unit (rate < 1, plus rounding)
        assert 0 <= table.maint_margin(n + 1) - table.maint_margin(n) <= 1


def _balance_minus_maint(pos, mark, wallet, other_maint, other_upnl, table):
    return wallet + other_upnl + pos.unrealized_pnl(mark) - pos.maint_margin(mark, table) - other_maint


sizes = st.integers(1, 400_000)  # steps of 0.001 BTC: up to 400 BTC, through several brackets
prices = st.integers(100_000, 1_500_000)  # ticks of 0.10: 10,000 to 150,000


@settings(max_examples=400, deadline=None)
@given(qty=sizes, long=st.booleans(), entry=prices, wallet=st.integers(0, 10**8), other_maint=st.integers(0, 10**6),
       other_upnl=st.integers(-10**6, 10**6))
def test_at_the_liquidation_price_margin_balance_equals_maintenance(btcusdt, qty, long, entry, wallet, other_maint,
                                                                     other_upnl):
    pos = long_position(btcusdt, qty if long else -qty, entry)
    w, tm, up = wallet * U, other_maint * U, other_upnl * U
    lp = liquidation_ticks(pos, w, tm, up, brackets=BTC)
    assert lp is not None and lp >= 0
    f = lambda p: _balance_minus_maint(pos, p, w, tm, up, BTC)  # noqa: E731
    if lp == 0:  # never liquidated: a long the wallet covers to zero (or a short already gone)
        assert f(1) >= -1 if long else f(1) <= 1
        return
    # the root lies within half a tick of lp: the sign changes across lp - 1 .. lp + 1
    below, above = f(lp - 1), f(lp + 1)
    if long:
        assert below <= 1 and above >= -1
    else:
        assert below >= -1 and above <= 1


@settings(max_examples=300, deadline=None)
@given(qty=sizes, long=st.booleans(), entry=prices, wallet=st.integers(0, 10**7), more=st.integers(1, 10**7))
def test_liquidation_price_moves_away_as_the_wallet_grows(btcusdt, qty, long, entry, wallet, more):
    pos = long_position(btcusdt, qty if long else -qty, entry)
    poorer, richer = (liquidation_ticks(pos, w * U, brackets=BTC) for w in (wallet, wallet + more))
    assert (richer <= poorer) if long else (richer >= poorer)


@settings(max_examples=300, deadline=None)
@given(qty=sizes, long=st.booleans(), entry=prices, wallet=st.integers(0, 10**7), other_maint=st.integers(0, 10**6),
       other_upnl=st.integers(-10**6, 10**6))
def test_cross_is_isolated_with_the_other_positions_folded_in(btcusdt, qty, long, entry, wallet, other_maint,
                                                              other_upnl):
    pos = long_position(btcusdt, qty if long else -qty, entry)
    value, ev = tick_step_value(btcusdt), pos.entry_value()
    cross = margin.liquidation_ticks(BTC, value, qty_steps=pos.qty_steps, entry_value=ev, wallet=wallet * U,
                                     other_maint=other_maint * U, other_unrealized=other_upnl * U)
    isolated = margin.isolated_liquidation_ticks(BTC, value, qty_steps=pos.qty_steps, entry_value=ev,
                                                 isolated_wallet=wallet * U)
    # isolated margin ignores the other positions; cross margin counts their net as more (or less) wallet
    assert cross == margin.isolated_liquidation_ticks(BTC, value, qty_steps=pos.qty_steps, entry_value=ev,
                                                      isolated_wallet=(wallet + other_upnl - other_maint) * U)
    net = other_upnl - other_maint
    if net > 0:  # the others' profit holds the position up: liquidated further away
        assert (cross <= isolated) if long else (cross >= isolated)
    elif net < 0:
        assert (cross >= isolated) if long else (cross <= isolated)


def test_flat_fallback_is_exchange_infos_rate(btcusdt):
    table = flat_brackets(btcusdt)
    assert not table.from_venue and table.brackets[0].maint_rate == 2_500_000 and BTC.from_venue


@given(n=st.integers(-10**30, 10**30), d=st.integers(1, 10**20))
def test_half_even_division(n, d):
    q = margin.div_half_even(n, d)
    assert abs(2 * (n - q * d)) <= d
    if abs(2 * (n - q * d)) == d:
        assert q % 2 == 0
    assert margin.div_half_even(n, -d) == margin.div_half_even(-n, d)


@pytest.mark.parametrize("rate, expected", [(0.004, 400_000), ("0.004", 400_000), (1e-05, 1_000),
                                            ("0.00650000000000000011", 650_000), (0.1667, 16_670_000)])
def test_rates_as_the_venue_spells_them_become_exact_integers(rate, expected):
    body = {"symbol": "X", "brackets": [{"bracket": 1, "initialLeverage": 20, "notionalCap": 5000, "notionalFloor": 0,
                                         "maintMarginRatio": rate, "cum": 0}]}
    assert parse_leverage_brackets(body)["X"].brackets[0].maint_rate == expected


def test_a_table_with_a_gap_is_refused_at_the_edge():
    body = {"symbol": "X", "brackets": [
        {"bracket": 1, "initialLeverage": 20, "notionalCap": 5000, "notionalFloor": 0, "maintMarginRatio": 0.01, "cum": 0},
        {"bracket": 2, "initialLeverage": 10, "notionalCap": 9000, "notionalFloor": 6000, "maintMarginRatio": 0.02,
         "cum": 50}]}
    with pytest.raises(ValueError):
        parse_leverage_brackets(body)
