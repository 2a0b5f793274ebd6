"""Risk metrics of a USD-M futures account, and the post-trade state of a proposed order. Pure, integers.

Definitions (ARCHITECTURE.md §8, SPEC.md §c.1 with the settled contradictions):
- equity = wallet balance + unrealized PnL at the mark;
- margin ratio = Binance's: total maintenance margin (by leverage bracket) / margin balance (1 means liquidation);
- leverage = gross notional / equity;
- daily drawdown = (equity at 00:00 UTC - equity) / equity at 00:00 UTC (0 when up);
- peak drawdown = (peak equity - equity) / peak equity;
- concentration per symbol = |notional| / equity;
- available margin = equity - initial margin of positions (notional / leverage) - open-order margin.
A proposed order is simulated as filled at its price (or the mark) with futures margin, never as a
spot purchase that spends its notional.

Units: money is integer units (MONEY_SCALE), ratios are integer ppm of 1 rounded up (a limit is never
passed by rounding; 1 % = 10_000 ppm), the initial margin is rounded up. A ratio over a non-positive
equity is INFINITE_RATIO_PPM. The real-unit properties (equity, margin_ratio, leverage, ..._pct) are
the exporting edge: exact Decimals for the APIs, the dashboard and the policy rules, whose thresholds
are written in real units ("10", "0.8").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Mapping

from celeris.domain.instruments import Instrument
from celeris.domain.margin import BracketTable
from celeris.domain.positions import INFINITE_RATIO_PPM, Position, fee_ppm
from celeris.domain.ratios import money_decimal, ppm_decimal, ppm_pct_decimal, ratio_ppm
from celeris.domain.risk import Scope
from celeris.domain.values import Side

DEFAULT_TAKER_FEE_PPM = 400
"""0.04 %: Binance's base taker fee for USD-M futures."""
DEFAULT_LEVERAGE = 20


@dataclass
class AccountSnapshot:
    wallet: int
    """Money units."""
    positions: dict[str, Position]
    marks: dict[str, int]
    """Mark prices in ticks."""
    leverage: dict[str, int]
    open_order_margin: int = 0
    ts_ns: int = 0
    brackets: Mapping[str, BracketTable] = field(default_factory=dict)
    """The venue's leverage brackets; a symbol without them uses exchangeInfo's flat maintenance rate."""


@dataclass
class RiskMetrics:
    equity_units: int
    margin_ratio_ppm: int
    leverage_ppm: int
    daily_drawdown_ppm: int
    peak_drawdown_ppm: int
    available_margin_units: int
    notional_units: dict[str, int] = field(default_factory=dict)
    concentration_ppm: dict[str, int] = field(default_factory=dict)
    orders_per_minute: dict[str, int] = field(default_factory=dict)
    daily_pnl_units: int = 0

    # -- the exporting edge: exact Decimals in real units and percent ------------------------------
    @property
    def equity(self) -> Decimal:
        return money_decimal(self.equity_units)

    @property
    def margin_ratio(self) -> Decimal:
        return ppm_decimal(self.margin_ratio_ppm)

    @property
    def leverage(self) -> Decimal:
        return ppm_decimal(self.leverage_ppm)

    @property
    def daily_drawdown_pct(self) -> Decimal:
        return ppm_pct_decimal(self.daily_drawdown_ppm)

    @property
    def peak_drawdown_pct(self) -> Decimal:
        return ppm_pct_decimal(self.peak_drawdown_ppm)

    @property
    def available_margin(self) -> Decimal:
        return money_decimal(self.available_margin_units)

    @property
    def daily_pnl(self) -> Decimal:
        return money_decimal(self.daily_pnl_units)

    @property
    def notional(self) -> dict[str, Decimal]:
        return {s: money_decimal(v) for s, v in self.notional_units.items()}

    @property
    def concentration_pct(self) -> dict[str, Decimal]:
        return {s: ppm_pct_decimal(v) for s, v in self.concentration_ppm.items()}

    def as_policy_inputs(self, strategy_orders: dict[str, int] | None = None) -> dict[tuple[Scope, str, str], Decimal]:
        """Metric values keyed (scope, scope_id, metric) for domain.risk.evaluate, exact, in the policies'
        units (USDT, ratios of 1, percent, counts).

        Account-scoped policies on per-symbol metrics see the worst symbol.
        """
        out: dict[tuple[Scope, str, str], Decimal] = {
            (Scope.ACCOUNT, "", "equity_usdt"): self.equity,
            (Scope.ACCOUNT, "", "margin_ratio"): self.margin_ratio,
            (Scope.ACCOUNT, "", "leverage"): self.leverage,
            (Scope.ACCOUNT, "", "daily_drawdown_pct"): self.daily_drawdown_pct,
            (Scope.ACCOUNT, "", "peak_drawdown_pct"): self.peak_drawdown_pct,
            (Scope.ACCOUNT, "", "available_margin_usdt"): self.available_margin,
            (Scope.ACCOUNT, "", "total_exposure_usdt"): money_decimal(sum(self.notional_units.values())),
            (Scope.ACCOUNT, "", "daily_loss_usdt"): money_decimal(max(0, -self.daily_pnl_units)),
        }
        for symbol, ppm in self.concentration_ppm.items():
            out[(Scope.SYMBOL, symbol, "concentration_pct")] = ppm_pct_decimal(ppm)
        for symbol, units in self.notional_units.items():
            out[(Scope.SYMBOL, symbol, "position_notional_usdt")] = money_decimal(units)
        for symbol, count in self.orders_per_minute.items():
            out[(Scope.SYMBOL, symbol, "orders_per_minute")] = Decimal(count)
        if self.concentration_ppm:
            out[(Scope.ACCOUNT, "", "concentration_pct")] = ppm_pct_decimal(max(self.concentration_ppm.values()))
        if self.notional_units:
            out[(Scope.ACCOUNT, "", "position_notional_usdt")] = money_decimal(max(self.notional_units.values()))
        if self.orders_per_minute:
            out[(Scope.ACCOUNT, "", "orders_per_minute")] = Decimal(max(self.orders_per_minute.values()))
        for strategy, count in (strategy_orders or {}).items():
            out[(Scope.STRATEGY, strategy, "orders_per_minute")] = Decimal(count)
        return out


def _ratio(numerator: int, equity: int) -> int:
    """numerator / equity in ppm; over a non-positive equity, "infinite" unless there is nothing to divide."""
    if equity > 0:
        return ratio_ppm(numerator, equity)
    return INFINITE_RATIO_PPM if numerator else 0


def compute(snapshot: AccountSnapshot, day_start_equity: int | None, peak_equity: int | None,
            orders_per_minute: dict[str, int] | None = None) -> RiskMetrics:
    """The metrics of `snapshot`; equities are money units (None when not sampled yet)."""
    upnl = 0
    maint = 0
    initial = 0
    notional: dict[str, int] = {}
    for symbol, pos in snapshot.positions.items():
        if not pos.qty_steps:
            continue
        mark = snapshot.marks.get(symbol) or 0
        upnl += pos.unrealized_pnl(mark)
        maint += pos.maint_margin(mark, snapshot.brackets.get(symbol))
        value = pos.notional(mark)
        notional[symbol] = value
        leverage = snapshot.leverage.get(symbol, DEFAULT_LEVERAGE)
        initial += -(-value // leverage)  # rounded up: available margin is never overstated
    equity = snapshot.wallet + upnl
    gross = sum(notional.values())
    concentration = {s: (ratio_ppm(v, equity) if equity > 0 else INFINITE_RATIO_PPM) for s, v in notional.items()}
    daily_dd = 0
    daily_pnl = 0
    if day_start_equity is not None and day_start_equity > 0:
        daily_pnl = equity - day_start_equity
        daily_dd = max(0, ratio_ppm(day_start_equity - equity, day_start_equity))
    peak = max(peak_equity if peak_equity is not None else equity, equity)
    peak_dd = ratio_ppm(peak - equity, peak) if peak > 0 else 0
    available = equity - initial - snapshot.open_order_margin
    return RiskMetrics(equity, _ratio(maint, equity), _ratio(gross, equity), daily_dd, peak_dd, available, notional,
                       concentration, dict(orders_per_minute or {}), daily_pnl)


def post_trade(snapshot: AccountSnapshot, instrument: Instrument, side: Side, qty_steps: int, price_ticks: int,
               taker_fee_ppm: int = DEFAULT_TAKER_FEE_PPM) -> AccountSnapshot:
    """The account as it would be if the order filled completely at `price_ticks` as taker."""
    positions = {}
    for symbol, pos in snapshot.positions.items():
        positions[symbol] = Position(pos.instrument, pos.qty_steps, pos.cost, pos.realized_pnl, pos.fees_paid,
                                     pos.realized_exact)
    pos = positions.setdefault(instrument.symbol, Position(instrument))
    commission = fee_ppm(instrument, price_ticks, qty_steps, taker_fee_ppm)
    result = pos.apply_fill(side, qty_steps, price_ticks, commission)
    marks = dict(snapshot.marks)
    marks.setdefault(instrument.symbol, price_ticks)
    return AccountSnapshot(snapshot.wallet + result.realized_pnl - commission, positions, marks, snapshot.leverage,
                           snapshot.open_order_margin, snapshot.ts_ns, snapshot.brackets)


__all__ = ["AccountSnapshot", "DEFAULT_TAKER_FEE_PPM", "RiskMetrics", "compute", "post_trade"]
