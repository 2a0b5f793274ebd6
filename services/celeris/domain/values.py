"""Exact fixed-point numbers: decimal strings in, integer units inside, decimal strings out.

Owns the rules every price, quantity and amount in Celeris follows: a decimal string from the venue is
parsed exactly into an integer count of units at a known scale (never through float), prices live as
integer ticks and quantities as integer steps on an instrument's `Grid`, and money is an integer count
of 1e-8 units of the margin asset (the precision Binance reports balances in).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from fractions import Fraction

MONEY_SCALE = 8
"""Money (balances, PnL, fees, notional) is held as integer units of 10**-MONEY_SCALE."""

_DECIMAL_RE = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_POW10 = [10**i for i in range(40)]


class DecimalFormatError(ValueError):
    """A decimal string is malformed, or carries more precision than its destination allows."""


class OffGridError(ValueError):
    """A value is not a whole number of ticks/steps of its grid."""


class Side(enum.Enum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


def parse_decimal(text: str) -> tuple[int, int]:
    """Parse a decimal string into (mantissa, scale) exactly: "61800.20" -> (6180020, 2)."""
    if not isinstance(text, str) or _DECIMAL_RE.fullmatch(text) is None:
        raise DecimalFormatError(f"not a decimal string: {text!r}")
    whole, _, frac = text.partition(".")
    negative = whole.startswith("-")
    digits = (whole.lstrip("-") or "0") + frac
    mantissa = int(digits)
    return (-mantissa if negative else mantissa), len(frac)


def to_units(text: str, scale: int) -> int:
    """Parse a decimal string into integer units of 10**-scale, refusing to drop non-zero digits.

    The hot path of every parser: "61800.20" at scale 2 -> 6180020; "0.0100" at scale 3 -> 10;
    "0.0105" at scale 3 raises, because rounding a venue's number is never our call.
    """
    # The venue writes prices and quantities with exactly their precision ("61800.20", "2.634"): those
    # take a slicing fast path (a regex match costs more than the rest of the parse); anything else,
    # and any non-ASCII text, goes the general way below, which gives the same answer.
    if type(text) is str and 0 < scale < len(text) - 1 and text[-scale - 1] == "." and text.isascii():
        whole, frac = text[:-scale - 1], text[-scale:]
        if whole.isdigit() and frac.isdigit():
            return int(whole + frac)
    return to_units_general(text, scale)


def to_units_general(text: str, scale: int) -> int:
    """to_units for any decimal string (the reference its fast path is tested against)."""
    if not isinstance(text, str) or _DECIMAL_RE.fullmatch(text) is None:
        raise DecimalFormatError(f"not a decimal string: {text!r}")
    whole, _, frac = text.partition(".")
    if len(frac) > scale:
        if frac[scale:].strip("0"):
            raise DecimalFormatError(f"{text!r} has more than {scale} decimals")
        frac = frac[:scale]
    negative = whole.startswith("-")
    units = int((whole.lstrip("-") or "0") + frac.ljust(scale, "0"))
    return -units if negative else units


MAX_SCALE = 30
"""No value of ours has more decimals; a larger scale is refused instead of padding a huge string."""


def format_units(units: int, scale: int) -> str:
    """Format integer units of 10**-scale as a decimal string with exactly `scale` decimals."""
    if not 0 <= scale <= MAX_SCALE:
        raise DecimalFormatError(f"scale {scale} is out of range 0..{MAX_SCALE}")
    if scale == 0:
        return str(units)
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(scale + 1, "0")
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


def rescale(units: int, from_scale: int, to_scale: int) -> int:
    """Move integer units between scales; going coarser rounds half to even (banker's rounding)."""
    if to_scale >= from_scale:
        return units * _POW10[to_scale - from_scale]
    return round(Fraction(units, _POW10[from_scale - to_scale]))


def fraction_to_units(value: Fraction, scale: int) -> int:
    """Round an exact rational to integer units of 10**-scale, half to even."""
    return round(value * _POW10[scale])


def normalize(text: str) -> str:
    """Canonical form of a decimal string: no trailing zeros, no trailing dot ("1.2300" -> "1.23")."""
    mantissa, scale = parse_decimal(text)
    while scale > 0 and mantissa % 10 == 0:
        mantissa //= 10
        scale -= 1
    return format_units(mantissa, scale)


@dataclass(frozen=True, slots=True)
class Grid:
    """An increment such as a tick size or a step size: `step_units` units of 10**-scale.

    `scale` is the display precision (pricePrecision / quantityPrecision), which may be finer than the
    increment: BTCUSDT prices are shown with 2 decimals on a 0.10 tick, so its grid is Grid(10, 2).
    """

    step_units: int
    scale: int

    def __post_init__(self) -> None:
        if self.step_units <= 0 or self.scale < 0:
            raise ValueError(f"invalid grid {self.step_units}e-{self.scale}")

    @classmethod
    def of(cls, increment: str, scale: int | None = None) -> Grid:
        """Build from the venue's increment string, e.g. Grid.of("0.10", 2)."""
        mantissa, inc_scale = parse_decimal(increment)
        while inc_scale > 0 and mantissa % 10 == 0 and (scale is None or inc_scale > scale):
            mantissa //= 10
            inc_scale -= 1
        if scale is None:
            scale = inc_scale
        if inc_scale > scale:
            raise DecimalFormatError(f"increment {increment} is finer than precision {scale}")
        return cls(mantissa * _POW10[scale - inc_scale], scale)

    def parse(self, text: str) -> int:
        """Decimal string -> whole number of increments; raises OffGridError if between two."""
        units = to_units(text, self.scale)
        steps, rest = divmod(units, self.step_units)
        if rest:
            raise OffGridError(f"{text} is not a multiple of {self.increment}")
        return steps

    def format(self, steps: int) -> str:
        return format_units(steps * self.step_units, self.scale)

    def units(self, steps: int) -> int:
        """Increments -> integer units of 10**-scale."""
        return steps * self.step_units

    def floor(self, units: int) -> int:
        """Integer units -> whole increments, rounding toward minus infinity."""
        return units // self.step_units

    @property
    def increment(self) -> str:
        return format_units(self.step_units, self.scale)


def money(text: str) -> int:
    """A money decimal string -> integer units at MONEY_SCALE (rounding refused)."""
    return to_units(text, MONEY_SCALE)


def money_str(units: int, scale: int = MONEY_SCALE) -> str:
    """Integer money units -> decimal string with `scale` decimals (default 8, as the venue shows)."""
    return format_units(rescale(units, MONEY_SCALE, scale), scale)
