"""The integer pre-trade check: the account picture as plain integers, one order's post-trade metrics, and
policies compiled to integer comparisons. No Fraction, no Decimal, no float on this path.

Owns `Book` (built from an AccountSnapshot at each refresh: per symbol the size, the exact open cost as an
integer ratio, the mark, and its unrealized PnL, maintenance margin, notional and initial margin; and the
account totals), `Book.after` (the same figures once one order filled at its price as taker: only the
order's symbol is recomputed, the totals move by its difference) and `CompiledPolicy` (a policy's
threshold `mantissa / 10**scale` in real units compared exactly with a metric in its integer unit by
cross-multiplication: value x 10**scale op mantissa x unit).

The rules are those of risk/metrics.py (`compute(post_trade(...))`), rounding included: money half-even to
1e-8 per position, ratios in ppm rounded up, initial margin rounded up. tests/risk/test_precheck.py checks
agreement with an independent Decimal reference, at the limit boundaries too.
"""

from __future__ import annotations

import operator
from typing import Callable, Iterable

from celeris.domain.instruments import Instrument
from celeris.domain.margin import BracketTable, div_half_even
from celeris.domain.positions import INFINITE_RATIO_PPM, flat_brackets
from celeris.domain.ratios import PPM, PPM_PER_PCT, MONEY_PER_UNIT
from celeris.domain.risk import Policy, Scope
from celeris.domain.values import MONEY_SCALE, parse_decimal

DEFAULT_LEVERAGE = 20

# Metric codes: the account figures are computed for every check into a tuple indexed by these.
EQUITY, MARGIN_RATIO, LEVERAGE, DAILY_DD, PEAK_DD, AVAILABLE, EXPOSURE, DAILY_LOSS, CONC_MAX, NOTIONAL_MAX, \
    OPM_MAX = range(11)
_ACCOUNT_CODES = {"equity_usdt": EQUITY, "margin_ratio": MARGIN_RATIO, "leverage": LEVERAGE,
                  "daily_drawdown_pct": DAILY_DD, "peak_drawdown_pct": PEAK_DD, "available_margin_usdt": AVAILABLE,
                  "total_exposure_usdt": EXPOSURE, "daily_loss_usdt": DAILY_LOSS, "concentration_pct": CONC_MAX,
                  "position_notional_usdt": NOTIONAL_MAX, "orders_per_minute": OPM_MAX}
UNIT = {"equity_usdt": MONEY_PER_UNIT, "available_margin_usdt": MONEY_PER_UNIT, "total_exposure_usdt": MONEY_PER_UNIT,
        "daily_loss_usdt": MONEY_PER_UNIT, "position_notional_usdt": MONEY_PER_UNIT, "margin_ratio": PPM,
        "leverage": PPM, "daily_drawdown_pct": PPM_PER_PCT, "peak_drawdown_pct": PPM_PER_PCT,
        "concentration_pct": PPM_PER_PCT, "orders_per_minute": 1}
"""How many integer units of the metric make one unit of the policy's threshold."""
_OPS: dict[str, Callable[[int, int], bool]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt,
                                               ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


class CompiledPolicy:
    """`metric op threshold` over integers: holds(v) is v x mult op rhs (exact for any decimal threshold)."""

    __slots__ = ("policy", "scope", "scope_id", "metric", "code", "op", "mult", "rhs", "unit")

    def __init__(self, policy: Policy) -> None:
        mantissa, scale = parse_decimal(policy.threshold)
        self.policy = policy
        self.scope, self.scope_id, self.metric = policy.scope, policy.scope_id, policy.metric
        self.code = _ACCOUNT_CODES.get(policy.metric) if policy.scope is Scope.ACCOUNT else None
        self.op = _OPS[policy.operator]
        self.unit = UNIT[policy.metric]
        self.mult = 10**scale
        self.rhs = mantissa * self.unit

    def holds(self, value: int) -> bool:
        return self.op(value * self.mult, self.rhs)


def compile_policies(policies: Iterable[Policy]) -> tuple[CompiledPolicy, ...]:
    """Enabled policies in evaluation order (priority, stable), compiled."""
    return tuple(CompiledPolicy(p) for p in sorted(policies, key=lambda p: p.priority) if p.enabled)


class SymbolConsts:
    """Per-instrument constants: money units of one tick on one step as value_num / value_den."""

    __slots__ = ("instrument", "value_num", "value_den")

    def __init__(self, instrument: Instrument) -> None:
        p, q = instrument.price_grid, instrument.qty_grid
        self.instrument = instrument
        self.value_num = p.step_units * q.step_units * 10**MONEY_SCALE
        self.value_den = 10 ** (p.scale + q.scale)


class Leg:
    """One symbol's position in integers; cost = cost_num / cost_den tick-steps (exact, >= 0)."""

    __slots__ = ("consts", "qty", "cost_num", "cost_den", "mark", "upnl", "maint", "notional", "initial", "table",
                 "leverage")

    def __init__(self, consts: SymbolConsts, qty: int, cost_num: int, cost_den: int, mark: int,
                 table: BracketTable, leverage: int) -> None:
        self.consts, self.table, self.leverage = consts, table, leverage
        self.qty, self.cost_num, self.cost_den, self.mark = qty, cost_num, cost_den, mark
        self.upnl, self.maint, self.notional, self.initial = figures(consts, qty, cost_num, cost_den, mark, table,
                                                                     leverage)


def figures(c: SymbolConsts, qty: int, cost_num: int, cost_den: int, mark: int, table: BracketTable,
            leverage: int) -> tuple[int, int, int, int]:
    """(unrealized PnL, maintenance margin, notional, initial margin) in money units; zeros when flat."""
    if not qty:
        return 0, 0, 0, 0
    size = qty if qty > 0 else -qty
    pnl = div_half_even((mark * size * cost_den - cost_num) * c.value_num, cost_den * c.value_den)
    notional = div_half_even(mark * size * c.value_num, c.value_den)
    return (pnl if qty > 0 else -pnl), table.maint_margin(notional), notional, -(-notional // leverage)


class Book:
    """The account at the last refresh, in integers. Immutable once built (a check reads it, never writes)."""

    __slots__ = ("wallet", "open_order_margin", "legs", "upnl", "maint", "initial", "gross", "notionals", "marks",
                 "brackets", "leverage")

    def __init__(self, snapshot, consts: dict[str, SymbolConsts]) -> None:  # type: ignore[no-untyped-def]
        self.wallet = snapshot.wallet
        self.open_order_margin = snapshot.open_order_margin
        self.marks = snapshot.marks
        self.brackets = snapshot.brackets
        self.leverage = snapshot.leverage
        self.legs: dict[str, Leg] = {}
        for symbol, pos in snapshot.positions.items():
            c = consts.get(symbol) or SymbolConsts(pos.instrument)
            cost = pos.cost  # the account's exact rational: its integer parts, read once per refresh
            self.legs[symbol] = Leg(c, pos.qty_steps, cost.numerator, cost.denominator,
                                    snapshot.marks.get(symbol) or 0, _table(snapshot, c.instrument),
                                    snapshot.leverage.get(symbol, DEFAULT_LEVERAGE))
        live = [leg for leg in self.legs.values() if leg.qty]
        self.upnl = sum(leg.upnl for leg in live)
        self.maint = sum(leg.maint for leg in live)
        self.initial = sum(leg.initial for leg in live)
        self.gross = sum(leg.notional for leg in live)
        self.notionals = {s: leg.notional for s, leg in self.legs.items() if leg.qty}


def fill(qty: int, cost_num: int, cost_den: int, sign: int, q: int, price: int, value_num: int,
         value_den: int) -> tuple[int, int, int, int]:
    """Position.apply_fill in integers: (size, cost_num, cost_den, realized PnL in money units, half-even)."""
    signed = sign * q
    if qty == 0 or (qty > 0) == (signed > 0):
        return qty + signed, cost_num + price * q * cost_den, cost_den, 0
    open_abs = qty if qty > 0 else -qty
    closed = q if q < open_abs else open_abs
    den = cost_den * open_abs  # closed cost = cost_num x closed / den
    pnl = div_half_even((price * closed * den - cost_num * closed) * value_num, den * value_den)
    realized = pnl if qty > 0 else -pnl
    qty += sign * closed
    opened = q - closed
    if opened:
        return sign * opened, price * opened, 1, realized
    if qty == 0:
        return 0, 0, 1, realized
    return qty, cost_num * (open_abs - closed), den, realized


def _table(snapshot, instrument: Instrument) -> BracketTable:  # type: ignore[no-untyped-def]
    return snapshot.brackets.get(instrument.symbol) or flat_brackets(instrument)


__all__ = ["Book", "CompiledPolicy", "Leg", "SymbolConsts", "compile_policies", "figures", "INFINITE_RATIO_PPM"]
