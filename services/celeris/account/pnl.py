"""PnL statistics of the account: realized, fees, funding, win rate, daily PnL, drawdown, Sharpe ratio.

Owns the counters the user data stream feeds (realized PnL and commission of each ORDER_TRADE_UPDATE,
funding payments) and the equity samples taken at each reconciliation (equity at 00:00 UTC for the daily
PnL, peak equity and the maximum drawdown, the Sharpe ratio's window). Everything is an integer: money
units, ratios in ppm; `export` turns them into exact Decimals for the APIs (the exporting edge).
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from celeris.domain.clock import utc_day_start_ns
from celeris.domain.ratios import money_decimal, ppm_decimal, ppm_pct_decimal, ratio_ppm
from celeris.domain.stats import sharpe_ratio_micro

RETURN_SCALE = 10**9
"""Per-sample equity returns are integers of 1e-9 (a 1 USDT move on 1e9 USDT still counts)."""


class PnlStats:
    def __init__(self, sharpe_window: int) -> None:
        self.realized = 0
        self.fees = 0
        self.funding = 0
        self.wins = 0
        self.losses = 0
        self.realized_by_symbol: dict[str, int] = {}
        self.day_start_ns = 0
        self.day_start_equity: int | None = None
        self.peak_equity: int | None = None
        self.max_drawdown = 0
        self.max_drawdown_ppm = 0
        self.equity_samples: deque[int] = deque(maxlen=sharpe_window + 1)

    def record_trade(self, symbol: str, realized: int, commission: int) -> None:
        """One fill's realized PnL and commission (money units); a closing fill counts as a win or a loss."""
        self.realized += realized
        self.fees += commission
        self.realized_by_symbol[symbol] = self.realized_by_symbol.get(symbol, 0) + realized
        if realized > 0:
            self.wins += 1
        elif realized < 0:
            self.losses += 1

    def sample_equity(self, now_ns: int, equity: int) -> None:
        day = utc_day_start_ns(now_ns)
        if day != self.day_start_ns or self.day_start_equity is None:
            self.day_start_ns, self.day_start_equity = day, equity
        self.peak_equity = max(self.peak_equity if self.peak_equity is not None else equity, equity)
        drawdown = self.peak_equity - equity
        if drawdown > self.max_drawdown:
            self.max_drawdown = drawdown
            self.max_drawdown_ppm = ratio_ppm(drawdown, self.peak_equity) if self.peak_equity > 0 else 0
        self.equity_samples.append(equity)

    # -- figures ----------------------------------------------------------------------------------
    def daily(self, equity: int) -> int:
        return equity - self.day_start_equity if self.day_start_equity is not None else 0

    def daily_drawdown_ppm(self, equity: int) -> int | None:
        """Loss since 00:00 UTC over the equity then, ppm (None before the first positive sample)."""
        if not self.day_start_equity or self.day_start_equity <= 0:
            return None
        return ratio_ppm(self.day_start_equity - equity, self.day_start_equity)

    def win_rate_ppm(self) -> int:
        closed = self.wins + self.losses
        return ratio_ppm(self.wins, closed, round_up=False) if closed else 0

    def sharpe_micro(self) -> int | None:
        """Mean over standard deviation of per-sample equity returns in the window, in millionths (not
        annualised); None with fewer than two returns or no variation."""
        samples = list(self.equity_samples)
        returns = [(b - a) * RETURN_SCALE // a for a, b in zip(samples, samples[1:]) if a > 0]
        return sharpe_ratio_micro(returns)

    def export(self, unrealized: int, equity: int) -> dict[str, Decimal | None]:
        """The figures as exact Decimals in whole units and percent (the API's shape)."""
        sharpe = self.sharpe_micro()
        return {
            "realized": money_decimal(self.realized), "unrealized": money_decimal(unrealized),
            "total": money_decimal(self.realized + unrealized - self.fees),
            "daily": money_decimal(self.daily(equity)),
            "fees": money_decimal(self.fees), "funding": money_decimal(self.funding),
            "win_rate_pct": ppm_pct_decimal(self.win_rate_ppm()),
            "max_drawdown": money_decimal(self.max_drawdown), "max_drawdown_pct": ppm_pct_decimal(self.max_drawdown_ppm),
            "sharpe_ratio": ppm_decimal(sharpe) if sharpe is not None else None,
            "equity": money_decimal(equity),
        }

