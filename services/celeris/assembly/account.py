"""Builds the account monitor from AccountSettings: the account it follows (the venue's user data stream,
or the paper venue's fills in simulation mode), reconciliation, persistence, its metrics and its gRPC
service. Ports: `halter` (what a reconciliation mismatch halts), `paper_account` and `paper_events`
(the paper venue's account and a way to subscribe to its fills) and `mode_of`."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Iterator

from celeris.assembly.ports import Built
from celeris.assembly.settings import AccountSettings
from celeris.assembly.wiring import Wiring
from celeris.domain.modes import Mode


class AccountCollector:
    """Prometheus view with the spec's business metric names."""

    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        pnl = self.monitor.pnl()
        for name, key, help_text in (("pnl_usdt", "total", "Total PnL"), ("realized_pnl_usdt", "realized", "Realized"),
                                     ("unrealized_pnl_usdt", "unrealized", "Unrealized at the mark"),
                                     ("daily_pnl_usdt", "daily", "PnL since 00:00 UTC"),
                                     ("trading_pnl_usdt", "trading_pnl", "Realized by fills, before fees"),
                                     ("funding_pnl_usdt", "funding", "Funding received (negative: paid)"),
                                     ("fees_usdt", "fees", "Fees valued in USDT (a non-USDT fee at a known price)"),
                                     ("win_rate_pct", "win_rate_pct", "Winning closing trades"),
                                     ("max_drawdown_pct", "max_drawdown_pct", "Maximum drawdown"),
                                     ("equity_usdt", "equity", "Wallet + unrealized")):
            # Prometheus samples are floats: this is the documented edge where money leaves integers.
            yield GaugeMetricFamily(name, help_text, value=float(pnl[key] or 0))
        fees = GaugeMetricFamily("fees_asset", "Fees paid per asset, in the asset's own units", labels=["asset"])
        valued = GaugeMetricFamily("fees_asset_usdt", "Fees paid per asset valued in USDT (absent: no price known)",
                                   labels=["asset"])
        for asset, amount, value in self.monitor.fees_per_asset():
            fees.add_metric([asset], float(amount))
            if value is not None:
                valued.add_metric([asset], float(value))
        yield fees
        yield valued
        funding = GaugeMetricFamily("funding_pnl_symbol_usdt", "Funding received per symbol (\"\": not yet named)",
                                    labels=["symbol"])
        for symbol, amount in self.monitor.funding_per_symbol():
            funding.add_metric([symbol], float(amount))
        yield funding
        yield GaugeMetricFamily("sharpe_ratio", "Sharpe ratio over the window", value=float(pnl["sharpe_ratio"] or 0))
        yield GaugeMetricFamily("margin_ratio", "Maintenance margin / margin balance",
                                value=float(self.monitor.margin_ratio()))
        yield CounterMetricFamily("reconciliation_mismatch_count", "Discrepancies found with the venue",
                                  value=self.monitor.recon.mismatches)
        yield CounterMetricFamily("reconciliation_runs", "Reconciliations run", value=self.monitor.recon.runs)


def account_config(settings: AccountSettings) -> Any:
    from celeris.account.engine import AccountConfig, AlertThresholds

    def exact(value: float) -> Fraction:  # a setting's decimal as written, never its binary float
        return Fraction(str(value))

    return AccountConfig(
        reconcile_interval_s=settings.reconcile_interval_s, halt_mismatch_pct=exact(settings.halt_mismatch_pct),
        thresholds=AlertThresholds(daily_drawdown_pct=exact(settings.alert_daily_drawdown_pct),
                                   margin_ratio=exact(settings.alert_margin_ratio),
                                   max_position_usdt=Fraction(settings.alert_max_position_usdt),
                                   liquidation_proximity_pct=exact(settings.alert_liquidation_proximity_pct)))


def build_account(settings: AccountSettings, w: Wiring, halter: Any, paper_account: Any,
                  paper_events: Callable[[Callable[[Any], None]], None] | None, mode_of: Callable[[], Mode]) -> Built:
    from celeris.account import servicer
    from celeris.account.component import AccountComponent
    from celeris.account.engine import AccountMonitor, RestVenueReader
    from celeris.account.persistence import AccountPersistence
    from celeris.assembly.paper_account import ModeRouted
    from celeris.venues.binance.userstream import UserDataStream

    venue_reader = RestVenueReader(w.rest, w.instruments)
    reader: Any = venue_reader
    if paper_account is not None:  # simulation mode judges the paper account
        reader = ModeRouted(mode_of, paper_account, reader)
    # The venue's leverage brackets in every mode (paper trades the venue's symbols); unreadable (no key) ->
    # exchangeInfo's flat rate.
    monitor = AccountMonitor(w.instruments, w.clock, reader, halter, account_config(settings), brackets=venue_reader)
    w.registry.register(AccountCollector(monitor))

    def venue_event(event: Any) -> None:  # the venue's stream counts while its account is the one traded
        if mode_of() is not Mode.SIMULATION:
            monitor.on_user_event(event)

    def paper_event(event: Any) -> None:
        if mode_of() is Mode.SIMULATION:
            monitor.on_user_event(event)

    if paper_events is not None:
        paper_events(paper_event)
    stream = UserDataStream(w.rest, settings.venue_ws_url, venue_event, monitor.reconcile)
    persistence = AccountPersistence(monitor, w.pool, w.redis, settings.snapshot_interval_s)
    component = AccountComponent(monitor, Mode(settings.mode), stream)
    start = component.start

    async def start_with_persistence() -> None:
        await start()
        persistence.start()

    component.start = start_with_persistence  # type: ignore[method-assign]
    return Built(component, [servicer.registrar(monitor)], component.health, [persistence.stop],
                 {"monitor": monitor, "stream": stream})
