"""The simulated venue's leverage brackets: its tiers, their maintenance margin and the liquidation price.

Owns the tier tables the simulator serves at GET /fapi/v1/leverageBracket and computes with: BTCUSDT's are
Binance's real ones (a recorded ccxt answer, public repository boolean404/heikin-ashi-trading-bot,
json/fapiPrivate_get_leverage_bracket.py); ETHUSDT's and any other symbol's are shaped like them (not
recorded). The venue keeps only floors, caps, rates and leverages and derives each tier's `cum` itself by
the rule that keeps maintenance margin continuous at a tier boundary, cum_k = cum_(k-1) + floor_k x
(rate_k - rate_(k-1)); for BTCUSDT this reproduces the recorded cum exactly. Written independently of
celeris.domain.margin (the connector's), so the two computations check each other.

Money is integer units at MONEY_SCALE; rates are integer parts of RATE_DENOMINATOR (10**8). Maintenance
margin: the position's notional (already rounded to 1e-8) x rate, half-even to 1e-8, minus cum. The
liquidation price is an exact ratio of integers, printed with 8 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celeris.domain.values import MONEY_SCALE

RATE_DENOMINATOR = 10**8
_UNIT = 10**MONEY_SCALE


@dataclass(frozen=True, slots=True)
class Tier:
    number: int
    max_leverage: int
    floor: int
    """Money units: the tier holds floor < notional <= cap."""
    cap: int
    rate: int
    """Maintenance margin ratio, parts of RATE_DENOMINATOR."""
    cum: int
    """Maintenance amount, money units (derived, see the module docstring)."""


def _tiers(rows: list[tuple[int, int, int]]) -> tuple[Tier, ...]:
    """(max leverage, cap in USDT, rate in parts of 10**8) per tier, lowest first -> tiers with cum."""
    out: list[Tier] = []
    floor = cum = previous_rate = 0
    for number, (leverage, cap, rate) in enumerate(rows, start=1):
        cum += floor * (rate - previous_rate) // RATE_DENOMINATOR
        out.append(Tier(number, leverage, floor, cap * _UNIT, rate, cum))
        floor, previous_rate = cap * _UNIT, rate
    return tuple(out)


TABLES: dict[str, tuple[Tier, ...]] = {
    "BTCUSDT": _tiers([(125, 50_000, 400_000), (100, 250_000, 500_000), (50, 3_000_000, 1_000_000),
                       (20, 20_000_000, 2_500_000), (10, 40_000_000, 5_000_000), (5, 100_000_000, 10_000_000),
                       (4, 120_000_000, 12_500_000), (3, 200_000_000, 15_000_000), (2, 300_000_000, 25_000_000),
                       (1, 500_000_000, 50_000_000)]),
    # ETHUSDT-like (shape of Binance's, not a recording).
    "ETHUSDT": _tiers([(125, 10_000, 400_000), (100, 100_000, 500_000), (75, 500_000, 650_000),
                       (50, 1_000_000, 1_000_000), (20, 2_000_000, 2_000_000), (10, 5_000_000, 5_000_000),
                       (5, 10_000_000, 10_000_000), (4, 20_000_000, 12_500_000), (3, 40_000_000, 15_000_000),
                       (2, 80_000_000, 25_000_000), (1, 100_000_000, 50_000_000)]),
}
_OTHER = _tiers([(75, 5_000, 650_000), (50, 25_000, 1_000_000), (25, 100_000, 2_000_000),
                 (20, 250_000, 2_500_000), (10, 1_000_000, 5_000_000), (5, 2_000_000, 10_000_000),
                 (4, 5_000_000, 12_500_000), (2, 10_000_000, 25_000_000), (1, 20_000_000, 50_000_000)])


def half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator (denominator > 0) rounded half to even: the venue's rounding of money."""
    whole, rest = divmod(numerator, denominator)
    return whole + (1 if 2 * rest > denominator or (2 * rest == denominator and whole % 2) else 0)


def table(symbol: str) -> tuple[Tier, ...]:
    return TABLES.get(symbol, _OTHER)


def tier_of(tiers: tuple[Tier, ...], notional: int) -> Tier:
    """The tier holding |notional|; past the last cap, the last tier."""
    return next((t for t in tiers if abs(notional) <= t.cap), tiers[-1])


def maint_margin(tiers: tuple[Tier, ...], notional: int) -> int:
    """Maintenance margin of a position of this notional, money units (0 when flat)."""
    if not notional:
        return 0
    t = tier_of(tiers, notional)
    return max(half_even(abs(notional) * t.rate, RATE_DENOMINATOR) - t.cum, 0)


def max_notional(tiers: tuple[Tier, ...], leverage: int) -> int:
    """maxNotionalValue at this leverage (money units): the top cap among tiers allowing it."""
    allowed = [t.cap for t in tiers if t.max_leverage >= leverage]
    return allowed[-1] if allowed else 0


def liquidation_notional(tiers: tuple[Tier, ...], *, long: bool, entry_value: int, collateral: int) -> tuple[int, int]:
    """The notional at which margin balance meets maintenance margin, as an exact ratio (numerator, denominator).

    `entry_value` is |size| x entry price and `collateral` the wallet counted for the position (the cross wallet
    less the other positions' maintenance margin plus their unrealized PnL; an isolated position's own wallet),
    both money units. Tier by tier, from the top down, the venue solves
        long:  collateral + N - entry = N x rate - cum   ->  N = (entry - collateral - cum) / (1 - rate)
        short: collateral + entry - N = N x rate - cum   ->  N = (collateral + entry + cum) / (1 + rate)
    and keeps the tier whose range holds N (the root is unique: the balance moves by the full notional, the
    margin by a fraction of it). A non-positive N means the position is never liquidated.
    """
    for t in reversed(tiers):
        if long:
            num = (entry_value - collateral - t.cum) * RATE_DENOMINATOR
            den = RATE_DENOMINATOR - t.rate
        else:
            num = (collateral + entry_value + t.cum) * RATE_DENOMINATOR
            den = RATE_DENOMINATOR + t.rate
        above_floor = num > t.floor * den or t is tiers[0]
        within_cap = num <= t.cap * den or t is tiers[-1]
        if above_floor and within_cap:
            return num, den
    return num, den  # tiers whose cum breaks continuity hold no root: the lowest tier's answer


def wire_entry(symbol: str, tiers: tuple[Tier, ...]) -> dict[str, Any]:
    """One element of the leverageBracket answer, in the venue's spelling (JSON numbers)."""
    return {"symbol": symbol, "notionalCoef": 1.0, "brackets": [
        {"bracket": t.number, "initialLeverage": t.max_leverage, "notionalCap": t.cap // _UNIT,
         "notionalFloor": t.floor // _UNIT, "maintMarginRatio": _number(t.rate, RATE_DENOMINATOR),
         "cum": _number(t.cum, _UNIT)} for t in tiers]}


def _number(units: int, denominator: int) -> float:
    """The venue prints these as JSON numbers; exact decimal text first, then the float it parses to."""
    whole, rest = divmod(units, denominator)
    digits = len(str(denominator)) - 1
    return float(f"{whole}.{rest:0{digits}d}")
