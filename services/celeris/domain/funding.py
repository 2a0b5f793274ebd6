"""Funding and fee assets in integers: the funding payment of a position, and amounts in assets other
than the margin asset (a BNB commission) kept in that asset's own units.

Owns the arithmetic the paper venue, the replay report and the account share: a funding payment is
position notional at the mark x the funding rate, paid by longs to shorts when the rate is positive (and
the other way when it is negative), rounded half-even to the money unit (1e-8 USDT) as the venue reports
it; a fee in another asset is an integer at that asset's scale and becomes money only through a known
price of that asset in the margin asset. No float and no Fraction: every product is an integer, one
half-even division at the end.
"""

from __future__ import annotations

from celeris.domain.instruments import Instrument
from celeris.domain.values import MONEY_SCALE, parse_decimal, to_units

MARGIN_ASSET = "USDT"
"""The asset money units (MONEY_SCALE) count."""

ASSET_SCALES = {"USDT": MONEY_SCALE, "BNB": 8, "BNFCR": 8, "USDC": 8, "FDUSD": 8, "BTC": 8, "ETH": 8}
"""Integer scale of each asset's amounts (the venue reports balances and commissions to 8 decimals)."""

DEFAULT_ASSET_SCALE = 8


def asset_scale(asset: str) -> int:
    return ASSET_SCALES.get(asset, DEFAULT_ASSET_SCALE)


def asset_units(text: str, asset: str) -> int:
    """A decimal amount of `asset` -> integer units at that asset's scale (rounding refused)."""
    return to_units(text, asset_scale(asset))


def div_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half to even, in integers (denominator > 0)."""
    q, r = divmod(numerator, denominator)
    twice = 2 * r
    if twice > denominator or (twice == denominator and q % 2):
        q += 1
    return q


def funding_payment(instrument: Instrument, qty_steps: int, mark_price: str, rate: str) -> int:
    """Money units the holder of `qty_steps` (signed: negative is short) receives at a funding time with
    the mark at `mark_price` and the funding rate `rate` (the venue's decimal strings, e.g. "61800.12345678"
    and "0.00010000"; the mark is finer than the tick, so it is taken exactly, never rounded to a tick).

    Positive rate: a long pays (negative result), a short receives; negative rate the other way round.
    """
    mark_mantissa, mark_scale = parse_decimal(mark_price)
    rate_mantissa, rate_scale = parse_decimal(rate)
    raw = mark_mantissa * instrument.qty_grid.units(qty_steps) * rate_mantissa
    scale = mark_scale + instrument.qty_grid.scale + rate_scale
    if scale <= MONEY_SCALE:
        return -raw * 10 ** (MONEY_SCALE - scale)
    return -div_half_even(raw, 10 ** (scale - MONEY_SCALE))


def asset_to_money(units: int, asset: str, price_units: int, price_scale: int) -> int:
    """An amount of `asset` (its own units) in money units at a price of the asset in the margin asset
    (price_units at 10**-price_scale, e.g. a BNBUSDT mark), rounded half-even."""
    if asset == MARGIN_ASSET:
        return units
    scale = asset_scale(asset) + price_scale
    raw = units * price_units
    if scale <= MONEY_SCALE:
        return raw * 10 ** (MONEY_SCALE - scale)
    return div_half_even(raw, 10 ** (scale - MONEY_SCALE))
