"""The account monitor's alert conditions: daily drawdown, margin ratio (the cross account's, and each
isolated position's own), position size, total exposure and proximity to the liquidation price (all by
the venue's leverage brackets, through the ledger).

Owns `AlertThresholds` (configured in real units, percentages and whole USDT, as settings give them;
held as integers: ppm and money units) and `evaluate`, which turns the ledger and the PnL statistics into
the alerts to raise. Pure; suppression and rate limits are celeris.domain.alerts.AlertLog's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from celeris.account.ledger import AccountLedger
from celeris.account.pnl import PnlStats
from celeris.domain.ratios import (MONEY_PER_UNIT, PPM, format_ppm_pct, pct_to_ppm, ratio_ppm, whole_to_money,
                                   whole_to_ppm)


@dataclass
class AlertThresholds:
    daily_drawdown_pct: Any = 5
    margin_ratio: Any = Decimal("0.5")
    """Binance's ratio (maintenance margin / margin balance); 1 is liquidation."""
    max_position_usdt: Any = 50_000
    max_total_exposure_usdt: Any = 200_000
    liquidation_proximity_pct: Any = 5
    per_type_per_minute: int = 10
    suppress_s: float = 60.0
    # The same limits as integers, derived once (the configuration edge): ppm and money units.
    daily_drawdown_ppm: int = field(init=False)
    margin_ratio_ppm: int = field(init=False)
    max_position: int = field(init=False)
    max_total_exposure: int = field(init=False)
    liquidation_proximity_ppm: int = field(init=False)

    def __post_init__(self) -> None:
        self.daily_drawdown_ppm = pct_to_ppm(self.daily_drawdown_pct)
        self.margin_ratio_ppm = whole_to_ppm(self.margin_ratio)
        self.max_position = whole_to_money(self.max_position_usdt)
        self.max_total_exposure = whole_to_money(self.max_total_exposure_usdt)
        self.liquidation_proximity_ppm = pct_to_ppm(self.liquidation_proximity_pct)


class AlertSpec(NamedTuple):
    category: str
    severity: str
    kind: str
    message: str


def _usdt(units: int) -> str:
    return f"{units // MONEY_PER_UNIT:,}"


def evaluate(ledger: AccountLedger, stats: PnlStats, t: AlertThresholds) -> list[AlertSpec]:
    out = []
    equity = ledger.equity()
    dd = stats.daily_drawdown_ppm(equity)
    if dd is not None and dd > t.daily_drawdown_ppm:
        out.append(AlertSpec("pnl", "critical", "daily_drawdown", f"daily drawdown {format_ppm_pct(dd)} % exceeds "
                                                                  f"{format_ppm_pct(t.daily_drawdown_ppm)} %"))
    ratio = ledger.margin_ratio_ppm()
    if ratio >= t.margin_ratio_ppm:
        # Critical half-way between the threshold and liquidation (a ratio of 1).
        severity = "critical" if ratio >= (PPM + t.margin_ratio_ppm) // 2 else "warning"
        out.append(AlertSpec("risk", severity, "margin_ratio",
                             f"margin ratio {format_ppm_pct(ratio, 1)} % (liquidation at 100 %)"))
    exposure = 0
    for key, pos in ledger.positions.items():
        if not pos.qty_steps:
            continue
        symbol = key[0]
        notional = ledger.notional(key)
        exposure += notional
        if notional > t.max_position:
            out.append(AlertSpec("position", "warning", f"position_size:{symbol}",
                                 f"{symbol} position notional {_usdt(notional)} USDT over {_usdt(t.max_position)}"))
        if key in ledger.isolated:  # an isolated position is liquidated on its own ratio
            own = ledger.position_margin_ratio_ppm(key)
            if own >= t.margin_ratio_ppm:
                severity = "critical" if own >= (PPM + t.margin_ratio_ppm) // 2 else "warning"
                out.append(AlertSpec("risk", severity, f"margin_ratio:{symbol}", f"{symbol} isolated margin ratio "
                                     f"{format_ppm_pct(own, 1)} % (liquidation at 100 %)"))
        liq = ledger.liquidation_ticks(key)
        mark = ledger.marks.get(symbol)
        if liq and mark and ratio_ppm(abs(mark - liq), mark, round_up=False) < t.liquidation_proximity_ppm:
            ins = pos.instrument
            out.append(AlertSpec("risk", "critical", f"liquidation:{symbol}",
                                 f"{symbol} mark {ins.format_price(mark)} within "
                                 f"{format_ppm_pct(t.liquidation_proximity_ppm)} % of the liquidation price "
                                 f"{ins.format_price(liq)}"))
    if exposure > t.max_total_exposure:
        out.append(AlertSpec("position", "warning", "total_exposure", f"total exposure {_usdt(exposure)} USDT"))
    return out
