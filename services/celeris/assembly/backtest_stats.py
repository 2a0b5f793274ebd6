"""What a backtest records as it runs, and the statistics a quant reads from it.

Owns the `Tape` (every order placed and its owner, every fill, the mid price each time it moved, the equity
on a 1 s grid of the capture's clock) and `statistics()`: Sharpe and Sortino, maximum drawdown, turnover,
fill ratio, maker share, markouts and the breakdown per strategy. Money stays in integer units (MONEY_SCALE)
and leaves as decimal strings; the ratios are statistics and are floats, rounded so the JSON is the same
byte for byte on every run. The definitions travel with the numbers (`DEFINITIONS`).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

from celeris.domain.instruments import Instrument
from celeris.domain.orders import Order
from celeris.domain.positions import Position
from celeris.domain.messages import Fill
from celeris.domain.values import Side, money_str

NS_PER_S = 1_000_000_000
SECONDS_PER_YEAR = 365 * 86_400
"""Crypto perpetuals trade every second of the year: no trading-day calendar."""
MARKOUT_HORIZONS_S = (1, 10, 60)
DIGITS = 6
"""Significant digits of a float statistic in the JSON (well above what the sample supports)."""

ANNUALISATION = (f"per-second returns of the 1 s equity curve (PnL change / starting wallet), mean/stdev x "
                 f"sqrt({SECONDS_PER_YEAR:,} seconds per year, 24/7 trading)")
DEFINITIONS = {
    "sharpe": "mean / standard deviation (population) of the per-second returns, annualised as `annualisation`",
    "sortino": "mean / downside deviation (root mean square of min(return, 0) over every second), annualised "
               "alike",
    "max_drawdown_usdt": "largest fall of equity (wallet change + unrealized at the mid) from a running peak, "
                         "on the 1 s curve and at the end",
    "turnover_usdt": "sum of |price x quantity| of every fill",
    "turnover_x_wallet": "turnover_usdt / the starting wallet",
    "fill_ratio": "filled quantity / quantity of every order the venue accepted (by quantity, not count; an "
                  "order amended up counts at its largest quantity, so the ratio is at most 1)",
    "maker_share": "filled quantity as maker / all filled quantity",
    "markouts": "after each fill, the mid price h seconds later minus the fill price, signed in the fill's "
                "favour (a buy gains when the mid rises), averaged over the fills with h seconds of capture "
                "after them; in USDT per unit and in bps of the fill price",
    "pnl": "net = realized - fees + funding + unrealized at the last mid; per strategy without funding "
           "(funding is settled on the account, not on an order)",
}


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{DIGITS}g}")


@dataclass
class _Placed:
    strategy: str
    qty_steps: int


@dataclass
class Tape:
    """Fed by the bus (orders, fills) and by the backtest loop (mids, equity samples)."""

    instrument: Instrument
    start_wallet: int
    placed: dict[str, _Placed] = field(default_factory=dict)
    last_order: dict[str, Order] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    mid_ts: list[int] = field(default_factory=list)
    mid2: list[int] = field(default_factory=list)
    """Twice the mid price in ticks (bid + ask: an integer even at a half tick), when it changed."""
    equity_ts: list[int] = field(default_factory=list)
    equity: list[int] = field(default_factory=list)
    """Money units: wallet change + unrealized PnL at the mid."""

    def on_order(self, order: Order) -> None:
        cid = order.client_order_id
        placed = self.placed.get(cid)
        if placed is None:
            if order.venue_order_id:  # the venue accepted it (it has an id there)
                self.placed[cid] = _Placed(order.strategy_id, order.qty_steps)
        elif order.qty_steps > placed.qty_steps:  # amended up: the ratio is of the most it ever asked for
            placed.qty_steps = order.qty_steps
        self.last_order[cid] = order

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def on_mid(self, ts_ns: int, bid_ticks: int, ask_ticks: int) -> None:
        value = bid_ticks + ask_ticks
        if not self.mid2 or self.mid2[-1] != value:
            self.mid_ts.append(ts_ns)
            self.mid2.append(value)

    def sample(self, ts_ns: int, equity_units: int) -> None:
        self.equity_ts.append(ts_ns)
        self.equity.append(equity_units)

    def open_orders(self) -> list[Order]:
        return [o for o in self.last_order.values() if o.is_open]

    def mid2_at(self, ts_ns: int) -> int | None:
        """Twice the mid in force at ts (the last change at or before it)."""
        i = bisect.bisect_right(self.mid_ts, ts_ns) - 1
        return self.mid2[i] if i >= 0 else None


def _ratio(num: int, den: int) -> float | None:
    return _round(num / den) if den else None


def _returns_stats(equity: list[int], capital: int) -> dict[str, float | None]:
    returns = [(b - a) / capital for a, b in zip(equity, equity[1:])]
    if len(returns) < 2:
        return {"sharpe": None, "sortino": None, "seconds": len(returns)}
    mean = sum(returns) / len(returns)
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    scale = math.sqrt(SECONDS_PER_YEAR)
    return {"sharpe": _round(mean / std * scale) if std > 0 else None,
            "sortino": _round(mean / downside * scale) if downside > 0 else None,
            "seconds": len(returns)}


def max_drawdown(equity: list[int]) -> int:
    peak, worst = None, 0
    for value in equity:
        peak = value if peak is None or value > peak else peak
        worst = max(worst, peak - value)
    return worst


def markouts(tape: Tape, fills: list[Fill], end_ns: int) -> dict[str, Any]:
    ins = tape.instrument
    tick = float(ins.price_fraction(1))
    out: dict[str, Any] = {}
    for h in MARKOUT_HORIZONS_S:
        moves_ticks: list[float] = []
        moves_bps: list[float] = []
        for fill in fills:
            at = fill.ts_event_ns + h * NS_PER_S
            if at > end_ns:
                continue  # the capture ends before the horizon: no markout
            mid2 = tape.mid2_at(at)
            if mid2 is None:
                continue
            move = (mid2 / 2 - fill.price_ticks) * (1 if fill.side is Side.BUY else -1)
            moves_ticks.append(move)
            moves_bps.append(move / fill.price_ticks * 10_000)
        n = len(moves_ticks)
        out[f"{h}s"] = {"fills": n,
                        "mean_usdt": _round(sum(moves_ticks) / n * tick) if n else None,
                        "mean_bps": _round(sum(moves_bps) / n) if n else None}
    return out


def _book(tape: Tape, fills: list[Fill], placed_qty: int, orders: int, final_mid_ticks: int | None) -> dict[str, Any]:
    """orders, fills, pnl and the flow figures of one set of fills (the whole run or one strategy)."""
    ins = tape.instrument
    position = Position(ins)
    filled = maker = turnover = 0
    for fill in fills:
        position.apply_fill(fill.side, fill.qty_steps, fill.price_ticks, fill.margin_commission)
        filled += fill.qty_steps
        maker += fill.qty_steps if fill.is_maker else 0
        turnover += ins.notional(fill.price_ticks, fill.qty_steps)
    unrealized = position.unrealized_pnl(final_mid_ticks) if final_mid_ticks is not None else 0
    return {"orders": orders, "fills": len(fills),
            "pnl_usdt": money_str(position.realized_pnl - position.fees_paid + unrealized),
            "realized_usdt": money_str(position.realized_pnl), "fees_usdt": money_str(position.fees_paid),
            "unrealized_usdt": money_str(unrealized), "position": ins.format_qty(position.qty_steps),
            "turnover_usdt": money_str(turnover),
            "fill_ratio": _ratio(filled, placed_qty), "maker_share": _ratio(maker, filled),
            "_turnover": turnover}


def statistics(tape: Tape, end_ns: int, final_mid_ticks: int | None) -> dict[str, Any]:
    """The `stats` object of the result (and `per_strategy`)."""
    whole = _book(tape, tape.fills, sum(p.qty_steps for p in tape.placed.values()), len(tape.placed),
                  final_mid_ticks)
    curve = _returns_stats(tape.equity, tape.start_wallet)
    drawdown = max_drawdown(tape.equity)
    per_strategy: dict[str, Any] = {}
    for name in sorted({p.strategy for p in tape.placed.values()} | {f.strategy_id for f in tape.fills}):
        placed = [p for p in tape.placed.values() if p.strategy == name]
        fills = [f for f in tape.fills if f.strategy_id == name]
        book = _book(tape, fills, sum(p.qty_steps for p in placed), len(placed), final_mid_ticks)
        book.pop("_turnover")
        book["markouts"] = markouts(tape, fills, end_ns)
        per_strategy[name or "(none)"] = book
    stats = {
        "annualisation": ANNUALISATION,
        "sharpe": curve["sharpe"], "sortino": curve["sortino"], "curve_seconds": curve["seconds"],
        "max_drawdown_usdt": money_str(drawdown),
        "max_drawdown_pct_of_wallet": _round(drawdown * 100 / tape.start_wallet),
        "turnover_usdt": whole["turnover_usdt"],
        "turnover_x_wallet": _round(whole["_turnover"] / tape.start_wallet),
        "fill_ratio": whole["fill_ratio"], "maker_share": whole["maker_share"],
        "markouts": markouts(tape, tape.fills, end_ns),
        "definitions": DEFINITIONS,
    }
    return {"stats": stats, "per_strategy": per_strategy}


