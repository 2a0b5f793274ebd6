"""Risk metrics of a USD-M futures account, and the post-trade state of a proposed order. Pure.

Definitions (ARCHITECTURE.md §8, SPEC.md §c.1 with the settled contradictions):
- equity = wallet balance + unrealized PnL at the mark;
- margin ratio = Binance's: total maintenance margin / margin balance (1 means liquidation);
- leverage = gross notional / equity;
- daily drawdown % = (equity at 00:00 UTC - equity) / equity at 00:00 UTC x 100 (0 when up);
- peak drawdown % = (peak equity - equity) / peak equity x 100;
- concentration % per symbol = |notional| / equity x 100;
- available margin = equity - initial margin of positions (notional / leverage) - open-order margin.
A proposed order is simulated as filled at its price (or the mark) with futures margin, never as a
spot purchase that spends its notional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from celeris.domain.instruments import Instrument
from celeris.domain.positions import Position, fee
from celeris.domain.risk import Scope
from celeris.domain.values import MONEY_SCALE, Side

MONEY = Fraction(1, 10**MONEY_SCALE)


@dataclass
class AccountSnapshot:
    wallet: int
    """Money units."""
    positions: dict[str, Position]
    marks: dict[str, int]
    leverage: dict[str, int]
    open_order_margin: int = 0
    ts_ns: int = 0


@dataclass
class RiskMetrics:
    equity: Fraction
    margin_ratio: Fraction
    leverage: Fraction
    daily_drawdown_pct: Fraction
    peak_drawdown_pct: Fraction
    available_margin: Fraction
    notional: dict[str, Fraction] = field(default_factory=dict)
    concentration_pct: dict[str, Fraction] = field(default_factory=dict)
    orders_per_minute: dict[str, int] = field(default_factory=dict)
    daily_pnl: Fraction = Fraction(0)

    def as_policy_inputs(self, strategy_orders: dict[str, int] | None = None) -> dict[tuple[Scope, str, str], Fraction]:
        """Metric values keyed (scope, scope_id, metric) for domain.risk.evaluate.

        Account-scoped policies on per-symbol metrics see the worst symbol.
        """
        out: dict[tuple[Scope, str, str], Fraction] = {
            (Scope.ACCOUNT, "", "equity_usdt"): self.equity,
            (Scope.ACCOUNT, "", "margin_ratio"): self.margin_ratio,
            (Scope.ACCOUNT, "", "leverage"): self.leverage,
            (Scope.ACCOUNT, "", "daily_drawdown_pct"): self.daily_drawdown_pct,
            (Scope.ACCOUNT, "", "peak_drawdown_pct"): self.peak_drawdown_pct,
            (Scope.ACCOUNT, "", "available_margin_usdt"): self.available_margin,
            (Scope.ACCOUNT, "", "total_exposure_usdt"): sum(self.notional.values(), Fraction(0)),
            (Scope.ACCOUNT, "", "daily_loss_usdt"): max(Fraction(0), -self.daily_pnl),
        }
        for symbol, value in self.concentration_pct.items():
            out[(Scope.SYMBOL, symbol, "concentration_pct")] = value
        for symbol, value in self.notional.items():
            out[(Scope.SYMBOL, symbol, "position_notional_usdt")] = value
        for symbol, value in self.orders_per_minute.items():
            out[(Scope.SYMBOL, symbol, "orders_per_minute")] = Fraction(value)
        if self.concentration_pct:
            out[(Scope.ACCOUNT, "", "concentration_pct")] = max(self.concentration_pct.values())
        if self.notional:
            out[(Scope.ACCOUNT, "", "position_notional_usdt")] = max(self.notional.values())
        if self.orders_per_minute:
            out[(Scope.ACCOUNT, "", "orders_per_minute")] = Fraction(max(self.orders_per_minute.values()))
        for strategy, value in (strategy_orders or {}).items():
            out[(Scope.STRATEGY, strategy, "orders_per_minute")] = Fraction(value)
        return out


def compute(snapshot: AccountSnapshot, day_start_equity: Fraction | None, peak_equity: Fraction | None,
            orders_per_minute: dict[str, int] | None = None) -> RiskMetrics:
    upnl = 0
    maint = 0
    initial = Fraction(0)
    notional: dict[str, Fraction] = {}
    for symbol, pos in snapshot.positions.items():
        if not pos.qty_steps:
            continue
        mark = snapshot.marks.get(symbol) or 0
        ins = pos.instrument
        upnl += pos.unrealized_pnl(mark)
        maint += pos.maint_margin(mark)
        value = ins.price_fraction(mark) * ins.qty_fraction(abs(pos.qty_steps))
        notional[symbol] = value
        initial += value / snapshot.leverage.get(symbol, 20)
    equity = (snapshot.wallet + upnl) * MONEY
    margin_balance = equity
    gross = sum(notional.values(), Fraction(0))
    margin_ratio = (maint * MONEY / margin_balance) if margin_balance > 0 else (Fraction(10**9) if maint else Fraction(0))
    leverage = gross / equity if equity > 0 else (Fraction(10**9) if gross else Fraction(0))
    concentration = {s: (v * 100 / equity if equity > 0 else Fraction(10**9)) for s, v in notional.items()}
    daily_dd = Fraction(0)
    daily_pnl = Fraction(0)
    if day_start_equity is not None and day_start_equity > 0:
        daily_pnl = equity - day_start_equity
        daily_dd = max(Fraction(0), (day_start_equity - equity) * 100 / day_start_equity)
    peak = max(peak_equity or equity, equity)
    peak_dd = (peak - equity) * 100 / peak if peak > 0 else Fraction(0)
    available = equity - initial - snapshot.open_order_margin * MONEY
    return RiskMetrics(equity, margin_ratio, leverage, daily_dd, peak_dd, available, notional, concentration,
                       dict(orders_per_minute or {}), daily_pnl)


def post_trade(snapshot: AccountSnapshot, instrument: Instrument, side: Side, qty_steps: int, price_ticks: int,
               taker_fee: Fraction = Fraction(4, 10_000)) -> AccountSnapshot:
    """The account as it would be if the order filled completely at `price_ticks` as taker."""
    positions = {}
    for symbol, pos in snapshot.positions.items():
        positions[symbol] = Position(pos.instrument, pos.qty_steps, pos.cost, pos.realized_pnl, pos.fees_paid,
                                     pos.realized_exact)
    pos = positions.setdefault(instrument.symbol, Position(instrument))
    commission = fee(instrument, price_ticks, qty_steps, taker_fee)
    result = pos.apply_fill(side, qty_steps, price_ticks, commission)
    marks = dict(snapshot.marks)
    marks.setdefault(instrument.symbol, price_ticks)
    return AccountSnapshot(snapshot.wallet + result.realized_pnl - commission, positions, marks, snapshot.leverage,
                           snapshot.open_order_margin, snapshot.ts_ns)
