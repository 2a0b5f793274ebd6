"""Positions and PnL of one-way USD-M perpetuals, and Binance's margin ratio and liquidation price.

Owns the arithmetic of a position: average entry from the exact cost of what is open, realized PnL when
a fill reduces or flips it, unrealized PnL at the mark price, fees, and the account-level figures the
venue publishes (margin ratio = maintenance margin / margin balance; liquidation price by the venue's
formula for cross and isolated margin, through the leverage brackets of celeris.domain.margin). Cost is
kept as an exact rational so that a position opened and closed in any number of pieces realizes exactly
(exit - entry) x qty; every figure leaves this module as an integer (money units, ticks, ppm), so the
engines keeping positions here (account, risk) never hold a rational or a float themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from fractions import Fraction
from decimal import Decimal
from numbers import Rational
from typing import Iterable, Mapping

from celeris.domain import margin

from celeris.domain.instruments import Instrument
from celeris.domain.margin import INFINITE_RATIO_PPM
from celeris.domain.ratios import PPM
from celeris.domain.values import MONEY_SCALE, Side, fraction_to_units, parse_decimal

__all__ = ["INFINITE_RATIO_PPM", "Brackets", "FillResult", "Position", "fee", "fee_ppm", "flat_brackets",
           "liquidation_ticks", "margin_ratio_ppm", "position_at_entry", "price_to_ticks", "tick_step_value"]


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

    def maint_margin(self, mark_ticks: int, brackets: margin.BracketTable | None = None) -> int:
        """Maintenance margin at the mark, money units: notional x rate - cum of the bracket the notional
        falls in. Without the venue's brackets (paper without a venue, before the first read) it falls back
        to exchangeInfo's flat maintMarginPercent (`flat_brackets`), which overstates small positions."""
        if not self.qty_steps:
            return 0
        return (brackets or flat_brackets(self.instrument)).maint_margin(self.notional(mark_ticks))

    def entry_value(self) -> int:
        """|size| x average entry in money units, half-even to 1e-8 (the `q x EP` of the venue's formulas)."""
        v = tick_step_value(self.instrument)
        return margin.div_half_even(self.cost.numerator * v.numerator, self.cost.denominator * v.denominator)

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


def flat_brackets(instrument: Instrument) -> margin.BracketTable:
    """The one-bracket stand-in at exchangeInfo's maintMarginPercent, for when the venue's brackets are unknown."""
    return _flat(instrument.symbol, margin.rate_from_fraction(instrument.maint_margin_rate))


@lru_cache(maxsize=1024)
def _flat(symbol: str, rate: int) -> margin.BracketTable:
    return margin.BracketTable.flat(symbol, rate)


def tick_step_value(instrument: Instrument) -> margin.TickStepValue:
    p, q = instrument.price_grid, instrument.qty_grid
    return margin.TickStepValue.of(p.step_units, p.scale, q.step_units, q.scale)


Brackets = Mapping[str, margin.BracketTable]
"""symbol -> the venue's leverage brackets; a symbol missing falls back to `flat_brackets`."""


def margin_ratio_ppm(wallet_balance: int, positions: Iterable[tuple[Position, int]],
                     brackets: Brackets | None = None) -> int:
    """Binance's cross margin ratio (total maintenance margin / margin balance) in ppm, rounded up
    (INFINITE_RATIO_PPM over a non-positive margin balance). `positions` pairs each with its mark in ticks."""
    maint = 0
    upnl = 0
    for position, mark in positions:
        maint += position.maint_margin(mark, (brackets or {}).get(position.symbol))
        upnl += position.unrealized_pnl(mark)
    return margin.margin_ratio_ppm(maint, wallet_balance + upnl)


def liquidation_ticks(position: Position, wallet_balance: int, other_maint_margin: int = 0,
                      other_unrealized_pnl: int = 0, brackets: margin.BracketTable | None = None) -> int | None:
    """The venue's cross-margin liquidation price of one position in ticks (half-even), None when flat.

    Money-unit inputs: the cross wallet and the other positions' maintenance margin and unrealized PnL
    (for an isolated position pass its isolated wallet and zeros). The bracket is the one of the notional at
    the liquidation price (celeris.domain.margin.liquidation_ticks); without the venue's brackets, the flat
    exchangeInfo rate (`flat_brackets`).
    """
    if not position.qty_steps:
        return None
    ins = position.instrument
    return margin.liquidation_ticks(brackets or flat_brackets(ins), tick_step_value(ins),
                                    qty_steps=position.qty_steps, entry_value=position.entry_value(),
                                    wallet=wallet_balance, other_maint=other_maint_margin,
                                    other_unrealized=other_unrealized_pnl)
