"""The account monitor: balances, positions and PnL that always agree with the venue.

Owns the orchestration: the account read from the venue at start and adopted, the user data stream
applied (ACCOUNT_UPDATE to the ledger, ORDER_TRADE_UPDATE to the PnL statistics), reconciliation with
the venue's REST view every interval (the venue wins; every discrepancy logged, counted, alerted; above
the halt threshold, 5 % by default, trading is halted through the Halter port), funding payments the
stream left without a symbol named from the venue's income history (a FundingIncomeReader), and alerts
raised through the shared celeris.domain.alerts log. The rules live beside it, all in integers: account/ledger.py
(balances, positions, marks), account/pnl.py (PnL statistics), account/reconciliation.py (what differs),
account/alert_rules.py (alert conditions). The public figures below (equity(), pnl(), margin_ratio(),
marks, ...) are the exporting edge: exact Decimals in real units, never used to decide anything here.
Adapters are elsewhere: account/venue_reader.py (REST), celeris/clients/halter.py (gRPC).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Protocol

from celeris.account import alert_rules, reconciliation
from celeris.account.alert_rules import AlertThresholds
from celeris.account.ledger import AccountLedger, PositionKey, VenueAccount
from celeris.account.pnl import UNATTRIBUTED, PnlStats
from celeris.account.reconciliation import ReconStats
from celeris.account.venue_reader import RestVenueReader
from celeris.domain.alerts import Alert, AlertLog
from celeris.domain.clock import NS_PER_S, Clock
from celeris.domain.funding import MARGIN_ASSET, asset_scale, asset_units
from celeris.domain.instruments import Instrument
from celeris.domain.margin import BracketTable
from celeris.domain.ratios import format_ppm_pct, money_decimal, pct_to_ppm, ppm_decimal, ppm_pct_decimal
from celeris.domain.values import MONEY_SCALE, to_units
from celeris.transport.tasks import supervised
from celeris.venues.binance import codec

log = logging.getLogger(__name__)

__all__ = ["AccountConfig", "AccountMonitor", "Alert", "AlertThresholds", "BracketSource", "FundingIncomeReader",
           "Halter", "PositionKey", "ReconStats", "RestVenueReader", "VenueAccount", "VenueReader"]


class VenueReader(Protocol):
    async def account(self) -> VenueAccount: ...


class FundingIncomeReader(Protocol):
    """A VenueReader that can also read the venue's FUNDING_FEE income history (GET /fapi/v1/income), as
    (id, symbol, money units). `funding_polled`: read it every round (no stream tells of funding, as for a
    paper venue in another process), not only while a stream payment lacks its symbol."""

    funding_polled: bool

    async def funding_income(self, start_ms: int) -> list[tuple[int, str, int]]: ...


class Halter(Protocol):
    async def halt(self, reason: str) -> None: ...


class BracketSource(Protocol):
    """The venue's leverage brackets (GET /fapi/v1/leverageBracket), all symbols or one."""

    async def leverage_brackets(self, symbol: str | None = None) -> dict[str, BracketTable]: ...


@dataclass
class AccountConfig:
    reconcile_interval_s: float = 5.0
    halt_mismatch_pct: Any = 5
    """A percentage (int, Fraction, Decimal or decimal string); held as ppm in halt_mismatch_ppm."""
    qty_tolerance_steps: int = 0
    balance_tolerance: int = 1000
    """Money units (0.00001 USDT) a balance may differ by without counting as a discrepancy."""
    confirm_delay_s: float = 0.3
    """A mismatch is read again after this long before it counts: a fill may be in flight."""
    sharpe_window: int = 288
    """Equity samples (one per reconciliation) in the Sharpe ratio's window."""
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    halt_mismatch_ppm: int = field(init=False)

    def __post_init__(self) -> None:
        self.halt_mismatch_ppm = pct_to_ppm(self.halt_mismatch_pct)


def _delegate(part: str, name: str) -> property:
    """An attribute of the monitor that lives in one of its parts (kept for the monitor's API)."""
    def get(self: Any) -> Any:
        return getattr(getattr(self, part), name)

    def set_(self: Any, value: Any) -> None:
        setattr(getattr(self, part), name, value)
    return property(get, set_)


class AccountMonitor:
    def __init__(self, instruments: dict[str, Instrument], clock: Clock, reader: VenueReader,
                 halter: Halter | None = None, config: AccountConfig | None = None,
                 brackets: BracketSource | None = None) -> None:
        """`brackets`: where the venue's leverage brackets are read (at start and when a symbol's leverage
        changes); without one (paper without a venue) maintenance margin, margin ratio and liquidation prices
        use exchangeInfo's flat maintMarginPercent, which overstates them for small positions."""
        self.instruments = instruments
        self.bracket_source = brackets
        self.clock = clock
        self.reader = reader
        self.halter = halter
        self.config = config or AccountConfig()
        self.ledger = AccountLedger(instruments)
        self.stats = PnlStats(self.config.sharpe_window)
        self.recon = ReconStats()
        t = self.config.thresholds
        self.alert_log = AlertLog("account", clock, t.suppress_s, t.per_type_per_minute, id_prefix="acct")
        self.alert_log.on_alert.append(self._announce)
        self.on_change: list[Callable[[set[str]], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._last_failure_log_ns = -10**18
        self.halted = False
        self.events = 0
        self._income_from_ms: int | None = None
        """Where the funding income history is read from while a stream payment has no symbol."""

    wallet = _delegate("ledger", "wallet")
    positions = _delegate("ledger", "positions")
    leverage = _delegate("ledger", "leverage")
    realized = _delegate("stats", "realized")
    fees = _delegate("stats", "fees")
    funding = _delegate("stats", "funding")
    wins = _delegate("stats", "wins")
    losses = _delegate("stats", "losses")
    realized_by_symbol = _delegate("stats", "realized_by_symbol")
    fees_by_asset = _delegate("stats", "fees_by_asset")
    funding_by_symbol = _delegate("stats", "funding_by_symbol")
    balances = _delegate("ledger", "balances")
    alerts = _delegate("alert_log", "alerts")
    on_alert = _delegate("alert_log", "on_alert")

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.refresh_brackets()
        await self.reconcile(initial=True)
        self._task = supervised("account-reconcile", self._loop)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def refresh_brackets(self, symbol: str | None = None) -> bool:
        """Read the venue's leverage brackets into the ledger; on failure keep what we had (or the flat
        fallback) and say so: the figures are then conservative, never a reason not to run."""
        if self.bracket_source is None:
            return False
        try:
            tables = await self.bracket_source.leverage_brackets(symbol)
        except Exception as exc:
            log.warning("could not read the leverage brackets (%s); keeping %s", getattr(exc, "msg", "") or repr(exc),
                        "the previous ones" if self.ledger.brackets else "exchangeInfo's flat maintenance rate")
            return False
        self.ledger.brackets.update(tables)
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.reconcile_interval_s)
            try:
                await self.reconcile()
            except Exception as exc:
                reason = getattr(exc, "msg", "") or repr(exc)
                now = self.clock.now_ns()
                if now - self._last_failure_log_ns > 60 * NS_PER_S:  # once a minute, not every round
                    self._last_failure_log_ns = now
                    if hasattr(exc, "retry_after_s"):
                        log.warning("reconciliation paused by the venue's rate limit: %s", reason)
                    else:
                        log.exception("reconciliation failed this round")
                self.alert("system", "error", "reconciliation", f"could not read the account: {reason[:160]}")

    # -- the user data stream ---------------------------------------------------------------------
    def on_user_event(self, event: codec.UserEvent) -> None:
        self.events += 1
        if isinstance(event, codec.AccountUpdate):
            changed, funding = self.ledger.apply_account_update(event)
            for symbol, amount in funding:
                self.stats.record_funding(symbol, amount)
                if symbol == UNATTRIBUTED and amount and self._income_from_ms is None:
                    self._income_from_ms = event.T - 60_000  # the venue's record may be stamped a little earlier
            if changed:
                self._changed(changed | {"pnl"})
        elif isinstance(event, codec.OrderTradeUpdate):
            o = event.o
            if o.x not in ("TRADE", "CALCULATED") or o.s not in self.instruments:
                return
            asset = o.N or MARGIN_ASSET  # a BNB commission is BNB, not USDT (Binance's fee discount)
            self.stats.record_trade(o.s, to_units(o.rp, MONEY_SCALE), asset_units(o.n, asset) if o.n else 0, asset)
            self._changed({"pnl"})

    def on_mark(self, symbol: str, mark_price: str) -> None:
        self.ledger.set_mark(symbol, mark_price)

    def _changed(self, sections: set[str]) -> None:
        for observer in self.on_change:
            try:
                observer(sections)
            except Exception:
                log.exception("account observer failed")

    # -- figures: the exporting edge (exact Decimals in real units) --------------------------------
    @property
    def marks(self) -> dict[str, Decimal]:
        """Mark prices in real units (the ledger keeps ticks: ledger.marks)."""
        out = {}
        for symbol, ticks in self.ledger.marks.items():
            grid = self.instruments[symbol].price_grid
            out[symbol] = Decimal(grid.units(ticks)).scaleb(-grid.scale)
        return out

    def mark_ticks(self, symbol: str) -> int | None:
        return self.ledger.marks.get(symbol)

    def unrealized(self, key: PositionKey) -> Decimal:
        return money_decimal(self.ledger.unrealized(key))

    def notional(self, key: PositionKey) -> Decimal:
        return money_decimal(self.ledger.notional(key))

    def unrealized_total(self) -> Decimal:
        return money_decimal(self.ledger.unrealized_total())

    def equity(self) -> Decimal:
        return money_decimal(self.ledger.equity())

    def maint_margin(self) -> Decimal:
        return money_decimal(self.ledger.maint_margin())

    def available_balance(self) -> Decimal:
        return money_decimal(self.ledger.available_balance())

    def margin_ratio(self) -> Decimal:
        """Maintenance margin / margin balance (1 is liquidation), to 1 ppm rounded up."""
        return ppm_decimal(self.ledger.margin_ratio_ppm())

    def liquidation_price(self, key: PositionKey) -> Decimal | None:
        ticks = self.ledger.liquidation_ticks(key)
        if ticks is None:
            return None
        grid = self.instruments[key[0]].price_grid
        return Decimal(grid.units(ticks)).scaleb(-grid.scale)

    def pnl(self) -> dict[str, Decimal | None]:
        return self.stats.export(self.ledger.unrealized_total(), self.ledger.equity(), self.ledger.price_of)

    def fees_per_asset(self) -> list[tuple[str, Decimal, Decimal | None]]:
        """(asset, fees in its own units, their USDT value or None without a known price), by asset."""
        _, valued = self.stats.fees_valued(self.ledger.price_of)
        return [(asset, Decimal(units).scaleb(-asset_scale(asset)),
                 money_decimal(valued[asset]) if valued[asset] is not None else None)
                for asset, units in sorted(self.stats.fees_by_asset.items())]

    def funding_per_symbol(self) -> list[tuple[str, Decimal]]:
        return [(symbol, money_decimal(units)) for symbol, units in sorted(self.stats.funding_by_symbol.items())]

    def balances_per_asset(self) -> list[tuple[str, Decimal]]:
        """Wallet balances of the assets other than USDT, in their own units."""
        return [(asset, Decimal(units).scaleb(-asset_scale(asset)))
                for asset, units in sorted(self.ledger.balances.items())]

    def sharpe(self) -> Decimal | None:
        micro = self.stats.sharpe_micro()
        return ppm_decimal(micro) if micro is not None else None

    @property
    def max_drawdown(self) -> Decimal:
        return money_decimal(self.stats.max_drawdown)

    @property
    def max_drawdown_pct(self) -> Decimal:
        return ppm_pct_decimal(self.stats.max_drawdown_ppm)

    # -- reconciliation -----------------------------------------------------------------------------
    async def reconcile(self, initial: bool = False) -> list[str]:
        """Compare with the venue; the venue wins. Returns the discrepancies found (empty when equal)."""
        venue = await self.reader.account()
        self.ledger.update_marks(venue.marks)
        changed = [s for s, lev in venue.leverage.items() if self.ledger.leverage.get(s, lev) != lev]
        self.ledger.leverage.update(venue.leverage)
        missed = await self._attribute_funding(initial)
        if missed and self.ledger.wallet + missed == venue.wallet:
            self.ledger.wallet = venue.wallet  # the wallet moved by exactly the funding learned now: explained
        for symbol in changed:  # a leverage change: the venue's tiers for the symbol are read again
            await self.refresh_brackets(symbol)
        if initial:
            self.ledger.adopt(venue)
            self.stats.sample_equity(self.clock.now_ns(), self.ledger.equity())
            self._changed({"balances", "positions", "pnl"})
            return []
        found, worst = self._compare(venue)
        if found:
            await asyncio.sleep(self.config.confirm_delay_s)  # an event may have been on its way
            venue = await self.reader.account()
            self.ledger.update_marks(venue.marks)
            found, worst = self._compare(venue)
        self.recon.runs += 1
        self.recon.last_run_ns = self.clock.now_ns()
        self.recon.last_discrepancies = found
        if found:
            limit = self.config.halt_mismatch_ppm
            self.recon.mismatches += len(found)
            self.recon.worst_ppm = max(self.recon.worst_ppm, worst)
            for text in found:
                log.warning("reconciliation: %s (the venue wins)", text)
            severity = "critical" if worst > limit else "error"
            self.alert("system", severity, "reconciliation", f"{len(found)} discrepancies with the venue, worst "
                                                             f"{format_ppm_pct(worst)} %: {found[0]}")
            self.ledger.adopt(venue)
            self._changed({"balances", "positions", "pnl"})
            if worst > limit and not self.halted:
                await self._halt(f"reconciliation mismatch {format_ppm_pct(worst)} % > {format_ppm_pct(limit)} %")
        self.stats.sample_equity(self.clock.now_ns(), self.ledger.equity())
        self.check_alerts()
        return found

    async def _attribute_funding(self, initial: bool) -> int:
        """Name the symbols of the stream's unattributed funding payments from the venue's income history
        (every round from a polled reader); returns the funding it learned that no stream event had told."""
        read = getattr(self.reader, "funding_income", None)
        polled = bool(getattr(self.reader, "funding_polled", False))
        if read is None or (self._income_from_ms is None and not polled):
            return 0
        try:
            records = await read(self._income_from_ms or 0)
        except Exception as exc:  # the figures wait for the next round; reconciliation goes on
            log.warning("could not read the funding income history: %s", getattr(exc, "msg", "") or repr(exc))
            return 0
        if initial:  # paid before we started: already in the wallet adopted now, not ours to count
            self.stats.funding_income_ids.update(record[0] for record in records)
            return 0
        known = len(self.stats.funding_income_ids)
        missed = self.stats.apply_funding_income(records)
        if UNATTRIBUTED not in self.stats.funding_by_symbol:
            self._income_from_ms = None
        if len(self.stats.funding_income_ids) != known:
            self._changed({"pnl"})
        return missed

    def _compare(self, venue: VenueAccount) -> tuple[list[str], int]:
        return reconciliation.compare(self.ledger, venue, self.config.qty_tolerance_steps,
                                      self.config.balance_tolerance)

    async def _halt(self, reason: str) -> None:
        self.halted = True
        self.recon.halts += 1
        self.alert("risk", "critical", "reconciliation_halt", f"trading halted: {reason}")
        if self.halter is not None:
            try:
                await self.halter.halt(reason)
            except Exception:
                log.exception("could not halt trading")

    # -- alerts ------------------------------------------------------------------------------------
    def check_alerts(self) -> None:
        for spec in alert_rules.evaluate(self.ledger, self.stats, self.config.thresholds):
            self.alert(spec.category, spec.severity, spec.kind, spec.message)

    def alert(self, category: str, severity: str, kind: str, message: str) -> Alert | None:
        """Raise an alert unless the same kind fired within the suppression window or its per-minute cap."""
        return self.alert_log.raise_alert(category, severity, message, key=kind)

    def _announce(self, alert: Alert) -> None:
        log.warning("account alert [%s] %s", alert.severity, alert.message)
        self._changed({"alerts"})

    def acknowledge(self, alert_id: str, by: str) -> Alert | None:
        alert = self.alert_log.acknowledge(alert_id, by)
        if alert is not None:
            self._changed({"alerts"})
        return alert

