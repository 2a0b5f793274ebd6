"""The simulator's own position arithmetic: one-way USD-M positions, PnL, fees and liquidation price.

Owns what the venue computes about a position: average entry from the exact open cost, realized PnL when
a fill reduces or flips it (rounded half-even to 1e-8 per fill), unrealized PnL and maintenance margin at
the mark (by leverage tier, brackets.py, which also owns the liquidation price) and the commission of a fill. Written
independently of celeris.domain.positions (the connector's own books), so the account tests compare two
computations rather than one computation with itself. Money is integer units at MONEY_SCALE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from celeris.domain.values import MONEY_SCALE, Side, fraction_to_units
from celeris.exchange_sim import brackets
from celeris.exchange_sim.contract import Contract


def fill_commission(contract: Contract, price_ticks: int, qty_steps: int, rate: Fraction) -> int:
    """Commission in money units for one fill: notional x rate, rounded half-even to 1e-8."""
    return fraction_to_units(contract.notional_exact(price_ticks, qty_steps) * rate, MONEY_SCALE)


@dataclass(slots=True)
class SimPosition:
    """A one-way (BOTH) position: signed size in steps and the exact cost of what is open."""

    instrument: Contract
    qty_steps: int = 0
    """Signed: positive long, negative short."""
    cost: Fraction = field(default_factory=Fraction)
    """Exact sum of price_ticks x qty_steps over the open size (>= 0)."""
    realized_pnl: int = 0
    """Money units realized so far, each fill rounded on its own as the venue reports it."""

    @property
    def entry_price(self) -> Fraction:
        """Average entry price in quote units (0 when flat)."""
        if not self.qty_steps:
            return Fraction(0)
        return self.instrument.price_fraction(1) * self.cost / abs(self.qty_steps)

    def apply_fill(self, side: Side, qty_steps: int, price_ticks: int) -> int:
        """Apply one fill; returns the money units it realized. A flip closes the old side first."""
        if qty_steps <= 0:
            raise ValueError("fill quantity must be positive")
        signed = qty_steps if side is Side.BUY else -qty_steps
        if not self.qty_steps or (self.qty_steps > 0) == (signed > 0):
            self.qty_steps += signed
            self.cost += price_ticks * qty_steps
            return 0
        held = abs(self.qty_steps)
        closing = min(qty_steps, held)
        closed_cost = self.cost * closing / held
        long = self.qty_steps > 0
        # A long closes by selling: gains exit - entry; a short gains entry - exit.
        gain_ticksteps = (price_ticks * closing - closed_cost) if long else (closed_cost - price_ticks * closing)
        realized = fraction_to_units(gain_ticksteps * self.instrument.tick_step_value, MONEY_SCALE)
        self.realized_pnl += realized
        remaining = held - closing
        opening = qty_steps - closing
        if remaining:
            self.qty_steps = remaining if long else -remaining
            self.cost -= closed_cost
        elif opening:
            self.qty_steps = opening if side is Side.BUY else -opening
            self.cost = Fraction(price_ticks * opening)
        else:
            self.qty_steps = 0
            self.cost = Fraction(0)
        return realized

    def unrealized_pnl(self, mark_ticks: int) -> int:
        """Money units gained if the position were closed at the mark."""
        if not self.qty_steps:
            return 0
        at_mark = mark_ticks * abs(self.qty_steps)
        gain = (at_mark - self.cost) if self.qty_steps > 0 else (self.cost - at_mark)
        return fraction_to_units(gain * self.instrument.tick_step_value, MONEY_SCALE)

    def notional(self, mark_ticks: int) -> int:
        """Absolute notional at the mark, money units."""
        return self.instrument.notional(mark_ticks, abs(self.qty_steps))

    def maint_margin(self, mark_ticks: int) -> int:
        """Maintenance margin at the mark by the symbol's leverage tier (brackets.py), money units."""
        if not self.qty_steps:
            return 0
        return brackets.maint_margin(brackets.table(self.instrument.symbol), self.notional(mark_ticks))

    def entry_value(self) -> int:
        """|size| x average entry, money units, half-even: the exact cost in tick-steps times their value."""
        ins = self.instrument
        num = self.cost.numerator * ins.tick_units * ins.step_units * 10**MONEY_SCALE
        den = self.cost.denominator * 10**ins.notional_scale
        return brackets.half_even(num, den)
