"""The strategy engine's own risk filter and order generation (FR-SE-005, FR-SE-006). Pure.

The filter refuses a signal that would break a per-symbol position limit, the total exposure, the
order frequency, the daily loss or the drawdown limit, with the reason. Order generation turns an
approved signal into an order request: passive/normal urgency become a post-only limit at the touch
(or the strategy's price hint), aggressive may take (IOC at the far touch); size is the configured order
size times strength, rounded down to the venue's step, at least the minimum quantity and notional.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from celeris.domain.exposure import ExposureLimits
from celeris.domain.instruments import Instrument, OrderType, TimeInForce
from celeris.domain.signals import BookTop, Signal, Urgency
from celeris.domain.values import MONEY_SCALE, Side


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


@dataclass(frozen=True)
class OrderPlan:
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    qty_steps: int
    price_ticks: int | None


def plan_order(signal: Signal, top: BookTop, ins: Instrument, order_size_steps: int) -> OrderPlan | None:
    """The order a signal asks for, or None when it rounds to nothing tradable."""
    if signal.qty_steps is not None:
        qty = signal.qty_steps
        if qty <= 0 or qty > ins.max_qty_steps:
            return None
    else:
        qty = int(order_size_steps * signal.strength)
        qty = max(qty, ins.min_qty_steps)
    if signal.urgency is Urgency.AGGRESSIVE:
        price = top.ask_ticks if signal.side is Side.BUY else top.bid_ticks
        tif = TimeInForce.IOC
    else:
        touch = top.bid_ticks if signal.side is Side.BUY else top.ask_ticks
        price = signal.price_hint_ticks if signal.price_hint_ticks is not None else touch
        # Post-only must not cross: never above the ask to buy, never below the bid to sell.
        price = min(price, top.ask_ticks - 1) if signal.side is Side.BUY else max(price, top.bid_ticks + 1)
        tif = TimeInForce.GTX
    if price <= 0:
        return None
    if ins.min_notional and ins.notional(price, qty) < ins.min_notional and not signal.reduce_only:
        unit = ins.notional(price, 1)
        qty = -(-ins.min_notional // unit) if unit else qty
        while ins.notional(price, qty) < ins.min_notional:  # rounding of the unit notional
            qty += 1
    if qty > ins.max_qty_steps:
        return None
    return OrderPlan(signal.side, OrderType.LIMIT, tif, qty, price)
