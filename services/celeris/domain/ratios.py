"""Ratios and whole-unit constants as integers, and the one exact conversion to decimals for exports.

Owns the integer forms engines compute with instead of floats or rationals: a ratio is an integer count
of parts per million of 1 (ppm: 5 % is 50_000, a margin ratio of 0.5 is 500_000), rounded up by
default so a limit is never passed by rounding; `MONEY_PER_UNIT` is how many money units make one whole
unit of the margin asset (10**MONEY_SCALE). `money_decimal` / `ppm_decimal` are the documented
exporting edge: exact `Decimal`s for JSON, gRPC and Prometheus, never used to decide anything.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from celeris.domain.values import MONEY_SCALE

PPM = 10**6
"""Parts per million of 1."""
PPM_PER_PCT = PPM // 100
"""1 % in ppm."""
MONEY_PER_UNIT = 10**MONEY_SCALE
"""Money units in one whole unit of the margin asset (1 USDT = 10**8 units)."""
_MONEY_DIVISOR = Decimal(MONEY_PER_UNIT)
_PPM_DIVISOR = Decimal(PPM)


def ratio_ppm(numerator: int, denominator: int, *, round_up: bool = True) -> int:
    """numerator / denominator in ppm, rounded up (toward +infinity) unless round_up is False (then down).

    The denominator must be positive; callers decide what a non-positive one means for their figure.
    """
    if denominator <= 0:
        raise ValueError("ratio of a non-positive denominator")
    scaled = numerator * PPM
    return -(-scaled // denominator) if round_up else scaled // denominator


def whole_to_ppm(value: Any) -> int:
    """A configured ratio of 1 (an int, Fraction, Decimal or decimal string: "0.5") -> ppm, half-even.

    For settings and thresholds given in real units (the configuration edge); exact for any value with at
    most 6 decimals.
    """
    return round((Decimal(value) if isinstance(value, str) else value) * PPM)


def pct_to_ppm(value: Any) -> int:
    """A configured percentage (5, Fraction(5), "2.5") -> ppm of 1 (5 % -> 50_000), half-even."""
    return round((Decimal(value) if isinstance(value, str) else value) * PPM_PER_PCT)


def whole_to_money(value: Any) -> int:
    """A configured amount in whole units (50_000, Fraction, Decimal, "12.5") -> money units, half-even."""
    return round((Decimal(value) if isinstance(value, str) else value) * MONEY_PER_UNIT)


def money_decimal(units: int | None) -> Decimal:
    """Money units -> an exact Decimal of whole units (0 for None), for exports."""
    return Decimal(units or 0) / _MONEY_DIVISOR


def ppm_decimal(ppm: int | None) -> Decimal:
    """ppm -> an exact Decimal ratio of 1, for exports."""
    return Decimal(ppm or 0) / _PPM_DIVISOR


def ppm_pct_decimal(ppm: int | None) -> Decimal:
    """ppm -> an exact Decimal percentage (50_000 -> 5), for exports."""
    return Decimal(ppm or 0) / Decimal(PPM_PER_PCT)


def format_ppm_pct(ppm: int, decimals: int = 2) -> str:
    """ppm as a percentage with `decimals` decimals, half-even: 19_608 -> "1.96"."""
    return str(ppm_pct_decimal(ppm).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN))
