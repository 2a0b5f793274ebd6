"""The strategy engine's own risk filter and order generation (FR-SE-005, FR-SE-006). Pure.

The filter refuses a signal that would break a per-symbol position limit, the total exposure, the
order frequency, the daily loss or the drawdown limit, with the reason. Order generation turns an
approved signal into an order request: passive/normal urgency become a post-only limit at the touch
(or the strategy's price hint), aggressive may take (IOC at the far touch); size is the configured order
size times strength, rounded down to the venue's step, at least the minimum quantity and notional
(`plan_order`, in celeris.domain.signals since the SDK's signal adapter plans the same way).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from celeris.domain.exposure import ExposureLimits
from celeris.domain.instruments import Instrument
from celeris.domain.signals import OrderPlan, Signal, plan_order
from celeris.domain.values import MONEY_SCALE


@dataclass(frozen=True)
class FilterLimits:
    max_position_usdt: int = 10_000 * 10**MONEY_SCALE
    max_total_exposure_usdt: int = 50_000 * 10**MONEY_SCALE
    max_orders_per_minute: int = 60
    max_daily_loss_usdt: int = 1_000 * 10**MONEY_SCALE
    max_drawdown_pct: Fraction = Fraction(20)


def filter_limits(exposure: ExposureLimits, orders_per_second: int, base: FilterLimits | None = None) -> FilterLimits:
    """The strategy filter's limits from the system's exposure limits (the same numbers as execution's)."""
    base = base or FilterLimits()
    return FilterLimits(
        max_position_usdt=exposure.max_position_notional or base.max_position_usdt,
        max_total_exposure_usdt=exposure.max_total_notional or base.max_total_exposure_usdt,
        max_orders_per_minute=max(1, orders_per_second * 60),
        max_daily_loss_usdt=exposure.max_daily_loss or base.max_daily_loss_usdt,
        max_drawdown_pct=base.max_drawdown_pct)


@dataclass(frozen=True)
class AccountView:
    """What the filter needs to know: positions (steps), marks (ticks), PnL today and drawdown."""

    positions: dict[str, int]
    marks: dict[str, int]
    daily_pnl: int
    drawdown_pct: Fraction
    orders_last_minute: int


def risk_filter(signal: Signal, qty_steps: int, ins: Instrument, instruments: dict[str, Instrument],
                view: AccountView, limits: FilterLimits) -> str | None:
    """None when the signal may become an order, else the reason it may not."""
    if view.orders_last_minute >= limits.max_orders_per_minute:
        return f"order frequency: {view.orders_last_minute} orders in the last minute"
    if -view.daily_pnl >= limits.max_daily_loss_usdt:
        return "daily loss limit reached"
    if view.drawdown_pct >= limits.max_drawdown_pct:
        return f"drawdown {float(view.drawdown_pct):.1f} % at or over the limit"
    mark = view.marks.get(signal.symbol)
    if mark is None:
        return f"no price for {signal.symbol}"
    current = view.positions.get(signal.symbol, 0)
    after = current + signal.side.sign * qty_steps
    if abs(after) > abs(current):
        if ins.notional(mark, abs(after)) > limits.max_position_usdt:
            return f"position limit: {ins.format_qty(abs(after))} {signal.symbol} is over the limit"
        exposure = sum(instruments[s].notional(view.marks.get(s, 0), abs(q)) for s, q in view.positions.items()
                       if s != signal.symbol and s in instruments)
        if exposure + ins.notional(mark, abs(after)) > limits.max_total_exposure_usdt:
            return "total exposure limit"
    return None


__all__ = ["AccountView", "FilterLimits", "OrderPlan", "filter_limits", "plan_order", "risk_filter"]
