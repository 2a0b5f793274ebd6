"""PnL statistics of the account: trading PnL, fees per asset, funding per symbol, win rate, daily PnL,
drawdown, Sharpe ratio.

Owns the counters the user data stream feeds (realized PnL and commission of each ORDER_TRADE_UPDATE,
with the commission's asset; funding payments, per symbol when the venue says which) and the equity samples
taken at each reconciliation (equity at 00:00 UTC for the daily PnL, peak equity and the maximum drawdown,
the Sharpe ratio's window). Everything is an integer: money units, a non-USDT fee in its asset's own units
(celeris.domain.funding asset_scale), ratios in ppm; `export` turns them into exact Decimals for the APIs.

A fee paid in BNB (Binance's fee discount) is not USDT: the USDT wallet and the USDT PnL are not reduced by
it. It is counted in BNB and valued in USDT only at a known price of BNB (a BNBUSDT mark); without one it
is reported apart and left out of the USDT totals, never added as if its units were USDT.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any, Callable

from celeris.domain.clock import utc_day_start_ns
from celeris.domain.funding import MARGIN_ASSET, asset_scale, asset_to_money
from celeris.domain.ratios import money_decimal, ppm_decimal, ppm_pct_decimal, ratio_ppm
from celeris.domain.stats import sharpe_ratio_micro

RETURN_SCALE = 10**9
"""Per-sample equity returns are integers of 1e-9 (a 1 USDT move on 1e9 USDT still counts)."""

UNATTRIBUTED = ""
"""The funding_by_symbol key of a payment the venue did not name a symbol for (cross margin's FUNDING_FEE
carries only the balance) until the income history names it."""

PriceOf = Callable[[str], "tuple[int, int] | None"]
"""asset -> its price in USDT as (units, scale), or None when no price is known."""


class PnlStats:
    def __init__(self, sharpe_window: int) -> None:
        self.trading = 0
        """Money units realized by fills (the venue's rp, before fees)."""
        self.fees_by_asset: dict[str, int] = {}
        """asset -> commission paid, in that asset's units."""
        self.funding_by_symbol: dict[str, int] = {}
        """symbol -> money units received (negative: paid); UNATTRIBUTED until the venue names it."""
        self.funding_income_ids: set[int] = set()
        self.wins = 0
        self.losses = 0
        self.trading_by_symbol: dict[str, int] = {}
        self.day_start_ns = 0
        self.day_start_equity: int | None = None
        self.peak_equity: int | None = None
        self.max_drawdown = 0
        self.max_drawdown_ppm = 0
        self.equity_samples: deque[int] = deque(maxlen=sharpe_window + 1)

    # -- figures in money units ----------------------------------------------------------------------
    @property
    def fees(self) -> int:
        """Commission paid in USDT (money units): what reduced the USDT wallet."""
        return self.fees_by_asset.get(MARGIN_ASSET, 0)

    @property
    def funding(self) -> int:
        return sum(self.funding_by_symbol.values())

    @property
    def realized(self) -> int:
        """Trading PnL + funding (money units, before fees): what moved the wallet besides commission."""
        return self.trading + self.funding

    @property
    def realized_by_symbol(self) -> dict[str, int]:
        out = dict(self.trading_by_symbol)
        for symbol, amount in self.funding_by_symbol.items():
            if symbol != UNATTRIBUTED:
                out[symbol] = out.get(symbol, 0) + amount
        return out

    # -- inputs -------------------------------------------------------------------------------------
    def record_trade(self, symbol: str, realized: int, commission: int, asset: str = MARGIN_ASSET) -> None:
        """One fill's realized PnL (money units) and commission (in `asset`'s units); a closing fill counts
        as a win or a loss."""
        self.trading += realized
        self.fees_by_asset[asset] = self.fees_by_asset.get(asset, 0) + commission
        self.trading_by_symbol[symbol] = self.trading_by_symbol.get(symbol, 0) + realized
        if realized > 0:
            self.wins += 1
        elif realized < 0:
            self.losses += 1

    def record_funding(self, symbol: str, amount: int) -> None:
        """A funding payment (money units received; negative: paid) on `symbol` (UNATTRIBUTED: unknown)."""
        if amount:
            self.funding_by_symbol[symbol] = self.funding_by_symbol.get(symbol, 0) + amount

    def apply_funding_income(self, records: list[tuple[int, str, int]]) -> int:
        """The venue's income history of FUNDING_FEE, as (tranId, symbol, money units): each record is
        taken once. It names the symbol of a payment the stream left unattributed (moving it there, the
        total unchanged) while the unattributed amount covers it; a payment the stream never told us of
        (it was down) is added; returns the sum of those added."""
        added = 0
        for tran_id, symbol, amount in records:
            if tran_id in self.funding_income_ids:
                continue
            self.funding_income_ids.add(tran_id)
            pending = self.funding_by_symbol.get(UNATTRIBUTED, 0)
            if amount and pending and (pending > 0) == (amount > 0) and abs(amount) <= abs(pending):
                self.funding_by_symbol[UNATTRIBUTED] = pending - amount
                if not self.funding_by_symbol[UNATTRIBUTED]:
                    del self.funding_by_symbol[UNATTRIBUTED]
            else:
                added += amount
            self.record_funding(symbol, amount)
        return added

    def fees_valued(self, price_of: PriceOf) -> tuple[int, dict[str, int | None]]:
        """(commission valued in USDT, money units; per asset its USDT value, None where no price is known)."""
        total, by_asset = 0, {}
        for asset, units in self.fees_by_asset.items():
            if asset == MARGIN_ASSET:
                value: int | None = units
            else:
                price = price_of(asset)
                value = asset_to_money(units, asset, *price) if price is not None else None
            by_asset[asset] = value
            total += value or 0
        return total, by_asset

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

    def export(self, unrealized: int, equity: int, price_of: PriceOf = lambda asset: None) -> dict[str, Any]:
        """The figures as exact Decimals in whole units and percent (the API's shape), flat.

        realized = trading_pnl + funding; usdt_pnl = realized + unrealized - fees_usdt (what the USDT wallet
        sees: a BNB commission does not reduce it); total = usdt_pnl - the non-USDT fees valued at a known
        price; fees = every fee valued in USDT. Per asset: fees_<asset> in that asset's units and, for a
        non-USDT asset, fees_<asset>_usdt (None without a price: reported apart, not in any total).
        """
        sharpe = self.sharpe_micro()
        valued, by_asset = self.fees_valued(price_of)
        usdt_pnl = self.realized + unrealized - self.fees
        out: dict[str, Any] = {
            "realized": money_decimal(self.realized), "unrealized": money_decimal(unrealized),
            "total": money_decimal(usdt_pnl - (valued - self.fees)),
            "usdt_pnl": money_decimal(usdt_pnl),
            "trading_pnl": money_decimal(self.trading),
            "daily": money_decimal(self.daily(equity)),
            "fees": money_decimal(valued), "fees_usdt": money_decimal(self.fees),
            "funding": money_decimal(self.funding),
            "win_rate_pct": ppm_pct_decimal(self.win_rate_ppm()),
            "max_drawdown": money_decimal(self.max_drawdown), "max_drawdown_pct": ppm_pct_decimal(self.max_drawdown_ppm),
            "sharpe_ratio": ppm_decimal(sharpe) if sharpe is not None else None,
            "equity": money_decimal(equity),
        }
        for asset, value in sorted(by_asset.items()):
            if asset == MARGIN_ASSET:
                continue
            key = f"fees_{asset.lower()}"
            out[key] = Decimal(self.fees_by_asset[asset]).scaleb(-asset_scale(asset))
            out[key + "_usdt"] = money_decimal(value) if value is not None else None
        return out
