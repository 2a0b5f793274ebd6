"""Binance USD-M maintenance margin by leverage bracket, and the venue's liquidation price, in integers.

Owns `LeverageBracket` (one row of GET /fapi/v1/leverageBracket), `BracketTable` (a symbol's rows) and
the arithmetic the venue does with them: maintenance margin = notional x rate - cum for the bracket the
notional falls in (floor < notional <= cap), the margin ratio, and the one-way liquidation price for
cross margin (the other positions' maintenance margin and unrealized PnL count) and isolated margin
(the isolated wallet alone), with the bracket chosen for the notional AT the liquidation price, found by
trying each bracket in turn as the venue does.

Units: money is integer units of 10**-MONEY_SCALE (1e-8 USDT); rates are integer parts of RATE_ONE
(10**8, so 0.4 % is 400_000 and 0.65 % is 650_000); prices are ticks; sizes are steps. The value of one
tick on one step is an exact integer ratio (TickStepValue). Rounding, stated once for every figure here:
maintenance margin rounds notional x rate half to even to 1e-8 before cum is subtracted (cum is exact);
the liquidation price is the exact rational root, rounded half to even to the tick; ratios round up
(a limit is never passed by rounding). No float and no Fraction: every division is an integer division
with the rounding written out.

`cum` is what makes the step of rate at a bracket boundary continuous: cum_k = cum_(k-1) + floor_k x
(rate_k - rate_(k-1)), so both brackets give the same maintenance margin at their common boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Rational
from typing import Iterable, Sequence

from celeris.domain.ratios import PPM
from celeris.domain.values import MONEY_SCALE

RATE_SCALE = 8
RATE_ONE = 10**RATE_SCALE
"""Rates (maintenance margin ratio) are integer parts of 10**8."""

INFINITE_RATIO_PPM = 10**9 * PPM
"""What a ratio over a non-positive margin balance is reported as (the venue's "infinite")."""


def div_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half to even (any signs, denominator != 0)."""
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    quotient, rest = divmod(numerator, denominator)
    twice = 2 * rest
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


def div_up(numerator: int, denominator: int) -> int:
    """Ceiling of numerator / denominator (denominator > 0)."""
    return -(-numerator // denominator)


@dataclass(frozen=True, slots=True)
class LeverageBracket:
    """One notional tier: notional_floor < notional <= notional_cap (money units)."""

    bracket: int
    initial_leverage: int
    """The highest leverage a position whose notional reaches this tier may use."""
    notional_floor: int
    notional_cap: int
    maint_rate: int
    """Maintenance margin ratio in parts of RATE_ONE."""
    maint_amount: int
    """`cum`, money units: subtracted from notional x rate."""

    def maint_margin(self, notional: int) -> int:
        """notional x rate (half-even to 1e-8) - cum, money units (may be < 0 outside the tier)."""
        return div_half_even(notional * self.maint_rate, RATE_ONE) - self.maint_amount


@dataclass(frozen=True, slots=True)
class BracketTable:
    """A symbol's brackets, contiguous from a floor of 0, rates rising, leverage falling."""

    symbol: str
    brackets: tuple[LeverageBracket, ...]
    from_venue: bool = True
    """False for the one-bracket stand-in built from exchangeInfo's maintMarginPercent (see `flat`)."""

    def __post_init__(self) -> None:
        if not self.brackets:
            raise ValueError(f"{self.symbol}: no leverage brackets")
        previous = None
        for b in self.brackets:
            if not 0 <= b.maint_rate < RATE_ONE or b.initial_leverage < 1 or b.notional_cap <= b.notional_floor:
                raise ValueError(f"{self.symbol}: bracket {b.bracket} is malformed")
            if previous is None:
                if b.notional_floor != 0:
                    raise ValueError(f"{self.symbol}: the first bracket must start at a notional of 0")
            elif (b.notional_floor != previous.notional_cap or b.maint_rate < previous.maint_rate
                  or b.initial_leverage > previous.initial_leverage):
                raise ValueError(f"{self.symbol}: bracket {b.bracket} does not follow bracket {previous.bracket}")
            previous = b

    @classmethod
    def flat(cls, symbol: str, rate: int, max_leverage: int = 125) -> BracketTable:
        """The fallback when the venue's brackets are unknown (paper without a venue, before the first read):
        one unbounded bracket at exchangeInfo's maintMarginPercent, cum 0. It overstates the maintenance
        margin of a small position (2.5 % where BTCUSDT's first bracket is 0.4 %)."""
        return cls(symbol, (LeverageBracket(1, max_leverage, 0, 10**30, rate, 0),), from_venue=False)

    def bracket_for(self, notional: int) -> LeverageBracket:
        """The tier holding |notional| (floor < n <= cap); beyond the last cap, the last tier."""
        n = abs(notional)
        for b in self.brackets:
            if n <= b.notional_cap:
                return b
        return self.brackets[-1]

    def maint_margin(self, notional: int) -> int:
        """Maintenance margin of a position of this |notional| (money units), never negative."""
        return max(self.bracket_for(notional).maint_margin(abs(notional)), 0) if notional else 0

    def max_notional(self, leverage: int) -> int:
        """maxNotionalValue at this leverage: the cap of the last tier whose initial leverage allows it
        (0 when the leverage is above every tier's)."""
        return max((b.notional_cap for b in self.brackets if b.initial_leverage >= leverage), default=0)

    @property
    def max_leverage(self) -> int:
        return self.brackets[0].initial_leverage


def rate_from_fraction(rate: Rational) -> int:
    """An exchangeInfo rate kept as an exact rational (Instrument.maint_margin_rate) in parts of RATE_ONE."""
    return div_half_even(rate.numerator * RATE_ONE, rate.denominator)


@dataclass(frozen=True, slots=True)
class TickStepValue:
    """Money units of one tick on one step, as an exact integer ratio numerator / denominator."""

    numerator: int
    denominator: int

    @classmethod
    def of(cls, tick_units: int, price_scale: int, step_units: int, qty_scale: int) -> TickStepValue:
        return cls(tick_units * step_units * 10**MONEY_SCALE, 10 ** (price_scale + qty_scale))


def margin_ratio_ppm(maint_margin: int, margin_balance: int) -> int:
    """Binance's margin ratio, maintenance margin / margin balance, in ppm rounded up (1_000_000 is
    liquidation); INFINITE_RATIO_PPM over a non-positive balance with a margin to keep, 0 without one."""
    if margin_balance <= 0:
        return INFINITE_RATIO_PPM if maint_margin else 0
    return div_up(maint_margin * PPM, margin_balance)


def liquidation_ticks(table: BracketTable, value: TickStepValue, *, qty_steps: int, entry_value: int,
                      wallet: int, other_maint: int = 0, other_unrealized: int = 0) -> int | None:
    """The venue's one-way liquidation price in ticks (half-even); None when flat; 0 when never liquidated.

    With s = +1 long / -1 short, q = |size|, EP the entry, B the bracket of the notional at LP:
        LP = (WB - TMM_others + UPNL_others + cum_B - s q EP) / (q MMR_B - s q)
    where WB is the cross wallet (cross) or the isolated wallet (isolated: use `isolated_liquidation_ticks`).
    In money units, with E = q x EP (`entry_value`) and A = WB - TMM + UPNL + cum, the notional at LP is
        N = R (A - s E) / (MMR - s R)         (R = RATE_ONE)
    and each bracket is tried until N falls inside it (exactly, by cross-multiplication); as the margin
    balance minus the maintenance margin is strictly monotonic in the price, one bracket holds the root
    (two at a shared boundary, where cum makes them agree).
    """
    if not qty_steps:
        return None
    s = 1 if qty_steps > 0 else -1
    q = abs(qty_steps)
    chosen: tuple[int, int] | None = None
    fallback: tuple[int, int] | None = None
    last = len(table.brackets) - 1
    for i, b in enumerate(table.brackets):
        n_num = RATE_ONE * (wallet - other_maint + other_unrealized + b.maint_amount - s * entry_value)
        n_den = b.maint_rate - s * RATE_ONE
        if n_den < 0:
            n_num, n_den = -n_num, -n_den
        above_floor = i == 0 or n_num >= b.notional_floor * n_den
        below_cap = i == last or n_num <= b.notional_cap * n_den
        if above_floor and below_cap:
            chosen = (n_num, n_den)
            break
        if above_floor or fallback is None:
            fallback = (n_num, n_den)  # a table whose cum is not continuous: the last tier reached
    n_num, n_den = chosen or fallback  # type: ignore[misc]
    if n_num <= 0:
        return 0  # a long the wallet covers down to a price of zero
    # P (ticks) = N / (q x tick-step value)
    return div_half_even(n_num * value.denominator, n_den * q * value.numerator)


def isolated_liquidation_ticks(table: BracketTable, value: TickStepValue, *, qty_steps: int, entry_value: int,
                               isolated_wallet: int) -> int | None:
    """`liquidation_ticks` of an isolated position: its isolated wallet alone, no other position counts."""
    return liquidation_ticks(table, value, qty_steps=qty_steps, entry_value=entry_value, wallet=isolated_wallet)


def total_maint_margin(items: Iterable[tuple[BracketTable, int]]) -> int:
    """Sum of each (table, |notional|) pair's maintenance margin."""
    return sum(table.maint_margin(notional) for table, notional in items)


def brackets_in_order(brackets: Sequence[LeverageBracket]) -> tuple[LeverageBracket, ...]:
    """The venue lists brackets by number; keep that order whatever order they arrive in."""
    return tuple(sorted(brackets, key=lambda b: b.bracket))
