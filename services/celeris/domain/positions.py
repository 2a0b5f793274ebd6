"""Positions and PnL of one-way USD-M perpetuals, and Binance's margin ratio and liquidation price.

Owns the arithmetic of a position: average entry from the exact cost of what is open, realized PnL when
a fill reduces or flips it, unrealized PnL at the mark price, fees, and the account-level figures the
venue publishes (margin ratio = maintenance margin / margin balance; liquidation price by the venue's
formula for cross and isolated margin). Cost is kept as an exact rational so that a position opened
and closed in any number of pieces realizes exactly (exit - entry) x qty; every figure leaves this module
as an integer (money units, ticks, ppm), so the engines keeping positions here (account, risk) never
hold a rational or a float themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from decimal import Decimal
from numbers import Rational
from typing import Iterable

from celeris.domain.instruments import Instrument
from celeris.domain.ratios import PPM, ratio_ppm
from celeris.domain.values import MONEY_SCALE, Side, fraction_to_units, parse_decimal

INFINITE_RATIO_PPM = 10**9 * PPM
"""What a ratio over a non-positive margin balance is reported as (the venue's "infinite")."""


def fee(instrument: Instrument, price_ticks: int, qty_steps: int, rate: Fraction) -> int:
    """Commission in money units for a fill: notional x rate, rounded half-even to 1e-8."""
    notional = instrument.price_fraction(price_ticks) * instrument.qty_fraction(qty_steps)
    return fraction_to_units(notional * rate, MONEY_SCALE)


def fee_ppm(instrument: Instrument, price_ticks: int, qty_steps: int, rate_ppm: int) -> int:
    """`fee` with the rate in integer ppm (400 = 0.04 %)."""
    return fee(instrument, price_ticks, qty_steps, Fraction(rate_ppm, PPM))


@dataclass(frozen=True, slots=True)
class FillResult:
    realized_pnl: int
    """Money units realized by this fill (before fees)."""
    closed_steps: int
    opened_steps: int


@dataclass(slots=True)
class Position:
    """A one-way (BOTH) position: signed size in steps, exact open cost, realized PnL and fees."""

    instrument: Instrument
    qty_steps: int = 0
    """Signed: positive long, negative short."""
    cost: Fraction = field(default_factory=Fraction)
    """Exact sum of price_ticks x qty_steps of the open size (always >= 0)."""
    realized_pnl: int = 0
    fees_paid: int = 0
    realized_exact: Fraction = field(default_factory=Fraction)
    """Realized PnL in real units, unrounded (for invariants and audits)."""

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def side(self) -> Side | None:
        if self.qty_steps == 0:
            return None
        return Side.BUY if self.qty_steps > 0 else Side.SELL

    @property
    def entry_price(self) -> Fraction:
        """Average entry price in real units (0 when flat)."""
        if self.qty_steps == 0:
            return Fraction(0)
        avg_ticks = self.cost / abs(self.qty_steps)
        return avg_ticks * self.instrument.price_grid.step_units / 10**self.instrument.price_grid.scale

    def entry_price_units(self, scale: int = MONEY_SCALE) -> int:
        """Average entry price as integer units of 10**-scale, half-even (0 when flat): for exports."""
        return fraction_to_units(self.entry_price, scale)

    def apply_fill(self, side: Side, qty_steps: int, price_ticks: int, fee_paid: int = 0) -> FillResult:
        """Apply one fill; returns the PnL it realized. Flips close the old side first."""
        if qty_steps <= 0:
            raise ValueError("fill quantity must be positive")
        self.fees_paid += fee_paid
        signed = side.sign * qty_steps
        if self.qty_steps == 0 or (self.qty_steps > 0) == (signed > 0):
            self.qty_steps += signed
            self.cost += price_ticks * qty_steps
            return FillResult(0, 0, qty_steps)
        open_abs = abs(self.qty_steps)
        closed = min(qty_steps, open_abs)
        direction = 1 if self.qty_steps > 0 else -1
        closed_cost = self.cost * closed / open_abs
        pnl_tickstep = direction * (price_ticks * closed - closed_cost)
        pnl = pnl_tickstep * self._tickstep_value()
        self.realized_exact += pnl
        realized = fraction_to_units(pnl, MONEY_SCALE)
        self.realized_pnl += realized
        self.cost -= closed_cost
        self.qty_steps += side.sign * closed
        opened = qty_steps - closed
        if self.qty_steps == 0:
            self.cost = Fraction(0)
        if opened:
            self.qty_steps = side.sign * opened
            self.cost = Fraction(price_ticks * opened)
        return FillResult(realized, closed, opened)

    def unrealized_pnl(self, mark_ticks: int) -> int:
        """Money units of PnL if closed at the mark price."""
        if self.qty_steps == 0:
            return 0
        direction = 1 if self.qty_steps > 0 else -1
        pnl = direction * (mark_ticks * abs(self.qty_steps) - self.cost) * self._tickstep_value()
        return fraction_to_units(pnl, MONEY_SCALE)

    def notional(self, mark_ticks: int) -> int:
        """Absolute notional at the mark price, money units."""
        return self.instrument.notional(mark_ticks, abs(self.qty_steps))

    def maint_margin(self, mark_ticks: int, maint_amount: int = 0) -> int:
        """Maintenance margin at the mark: notional x MMR - maintenance amount (money units)."""
        notional = self.instrument.price_fraction(mark_ticks) * self.instrument.qty_fraction(abs(self.qty_steps))
        raw = fraction_to_units(notional * self.instrument.maint_margin_rate, MONEY_SCALE) - maint_amount
        return max(raw, 0) if self.qty_steps else 0

    def _tickstep_value(self) -> Fraction:
        ins = self.instrument
        return Fraction(ins.price_grid.step_units * ins.qty_grid.step_units,
                        10 ** (ins.price_grid.scale + ins.qty_grid.scale))


def _real(price: str | Rational | Decimal) -> Fraction:
    if isinstance(price, str):
        mantissa, scale = parse_decimal(price)
        return Fraction(mantissa, 10**scale)
    return Fraction(price)


def _ticks_exact(instrument: Instrument, price: str | Rational | Decimal) -> Fraction:
    return _real(price) * 10**instrument.price_grid.scale / instrument.price_grid.step_units


def price_to_ticks(instrument: Instrument, price: str | Rational | Decimal) -> int:
    """A price (decimal string or exact rational) -> the nearest tick, half-even.

    For mark prices, which the venue publishes finer than the tick (8 decimals): the PnL at the rounded
    mark differs from the venue's by at most half a tick times the size.
    """
    return round(_ticks_exact(instrument, price))


def position_at_entry(instrument: Instrument, qty_steps: int, entry_price: str | Rational | Decimal) -> Position:
    """A position as a venue reports it: signed size and average entry price (decimal string or rational).

    The entry is an average, off the tick grid in general, so the cost keeps it exactly.
    """
    return Position(instrument, qty_steps, abs(qty_steps) * _ticks_exact(instrument, entry_price))


def margin_ratio_ppm(wallet_balance: int, positions: Iterable[tuple[Position, int]]) -> int:
    """`margin_ratio` in ppm, rounded up (INFINITE_RATIO_PPM over a non-positive margin balance)."""
    maint = 0
    upnl = 0
    for position, mark in positions:
        maint += position.maint_margin(mark)
        upnl += position.unrealized_pnl(mark)
    margin_balance = wallet_balance + upnl
    if margin_balance <= 0:
        return INFINITE_RATIO_PPM if maint else 0
    return ratio_ppm(maint, margin_balance)


def liquidation_ticks(position: Position, wallet_balance: int, other_maint_margin: int = 0,
                      other_unrealized_pnl: int = 0) -> int | None:
    """`liquidation_price` of a position in ticks (half-even), from money-unit inputs; None when flat."""
    if not position.qty_steps:
        return None
    ins = position.instrument
    unit = Fraction(1, 10**MONEY_SCALE)
    price = liquidation_price(wallet_balance=wallet_balance * unit, qty=ins.qty_fraction(position.qty_steps),
                              entry_price=position.entry_price, maint_margin_rate=ins.maint_margin_rate,
                              other_maint_margin=other_maint_margin * unit,
                              other_unrealized_pnl=other_unrealized_pnl * unit)
    return None if price is None else price_to_ticks(ins, price)


def margin_ratio(wallet_balance: int, positions: Iterable[tuple[Position, int]]) -> Fraction:
    """Binance's account margin ratio: total maintenance margin / margin balance.

    `positions` pairs each position with its mark price in ticks. 1 (100 %) means liquidation; a flat
    account has ratio 0. A non-positive margin balance is reported as an infinite ratio's stand-in, 1e9.
    """
    maint = 0
    upnl = 0
    for position, mark in positions:
        maint += position.maint_margin(mark)
        upnl += position.unrealized_pnl(mark)
    margin_balance = wallet_balance + upnl
    if margin_balance <= 0:
        return Fraction(10**9) if maint else Fraction(0)
    return Fraction(maint, margin_balance)


def liquidation_price(
    *,
    wallet_balance: Fraction,
    qty: Fraction,
    entry_price: Fraction,
    maint_margin_rate: Fraction,
    maint_amount: Fraction = Fraction(0),
    other_maint_margin: Fraction = Fraction(0),
    other_unrealized_pnl: Fraction = Fraction(0),
) -> Fraction | None:
    """The venue's one-way liquidation price, in real units (None when flat or never liquidated).

    LP = (WB - TMM1 + UPNL1 + cumB - side x |pos| x EP) / (|pos| x MMR - side x |pos|)
    with WB the cross wallet balance (cross) or the isolated wallet (isolated, where the other
    positions' TMM1 and UPNL1 are zero), `qty` signed (positive long).
    """
    if qty == 0:
        return None
    side = 1 if qty > 0 else -1
    size = abs(qty)
    numerator = (wallet_balance - other_maint_margin + other_unrealized_pnl + maint_amount
                 - side * size * entry_price)
    denominator = size * maint_margin_rate - side * size
    if denominator == 0:
        return None
    price = numerator / denominator
    return price if price > 0 else Fraction(0)
