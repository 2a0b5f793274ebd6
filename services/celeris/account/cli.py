"""`celeris account run`: the account monitor service."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Iterator

from pydantic import Field

from celeris.runtime.service_cli import (add_service_command, connect_venue, open_stores, serve_then_close,
                                         store_closers)
from celeris.runtime.settings import ServiceSettings


class AccountSettings(ServiceSettings):
    """Account monitor settings (CELERIS_* environment variables or --set key=value)."""

    component: str = "account"
    reconcile_interval_s: float = Field(5.0, gt=0)
    halt_mismatch_pct: float = Field(5.0, gt=0)
    risk_target: str = ""
    """host:port of the risk manager (its emergency stop halts trading on a mismatch)."""
    execution_target: str = ""
    """Used to halt execution directly when no risk manager runs."""
    alert_daily_drawdown_pct: float = Field(5.0, gt=0)
    alert_margin_ratio: float = Field(0.5, gt=0, le=1)
    alert_max_position_usdt: int = Field(50_000, gt=0)
    alert_liquidation_proximity_pct: float = Field(5.0, gt=0)
    snapshot_interval_s: float = Field(5.0, gt=0)


def register(sub: Any) -> None:
    add_service_command(sub, "account", "account monitor: balances, positions, PnL, reconciliation, alerts",
                        AccountSettings, serve)


def _fraction(value: float) -> Fraction:
    return Fraction(str(value))


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
                                     ("win_rate_pct", "win_rate_pct", "Winning closing trades"),
                                     ("max_drawdown_pct", "max_drawdown_pct", "Maximum drawdown"),
                                     ("equity_usdt", "equity", "Wallet + unrealized")):
            yield GaugeMetricFamily(name, help_text, value=float(pnl[key] or 0))
        yield GaugeMetricFamily("sharpe_ratio", "Sharpe ratio over the window", value=float(pnl["sharpe_ratio"] or 0))
        yield GaugeMetricFamily("margin_ratio", "Maintenance margin / margin balance",
                                value=float(self.monitor.margin_ratio()))
        yield CounterMetricFamily("reconciliation_mismatch_count", "Discrepancies found with the venue",
                                  value=self.monitor.recon.mismatches)
        yield CounterMetricFamily("reconciliation_runs", "Reconciliations run", value=self.monitor.recon.runs)


async def serve(settings: AccountSettings) -> None:
    from celeris.account import servicer
    from celeris.account.engine import AccountConfig, AccountMonitor, AlertThresholds, GrpcHalter, RestVenueReader
    from celeris.account.persistence import AccountPersistence
    from celeris.domain.modes import Mode
    from celeris.runtime import control, grpc_server, metrics
    from celeris.runtime.clock import SystemClock
    from celeris.venues.binance.userstream import UserDataStream

    clock = SystemClock()
    registry = metrics.new_registry()
    rest, instruments = await connect_venue(settings, clock)
    halter = GrpcHalter(settings.risk_target, settings.execution_target) \
        if settings.risk_target or settings.execution_target else None
    mode_now = [Mode(settings.mode)]
    reader: Any = RestVenueReader(rest, instruments)
    paper_source = None
    if settings.execution_target:  # simulation mode judges the paper account, in the execution process
        from celeris.paper_account import ExecutionPaperAccount, ModeRouted
        paper_source = ExecutionPaperAccount(settings.execution_target, instruments)
        reader = ModeRouted(lambda: mode_now[0], paper_source, reader)
    monitor = AccountMonitor(instruments, clock, reader, halter, AccountConfig(
        reconcile_interval_s=settings.reconcile_interval_s, halt_mismatch_pct=_fraction(settings.halt_mismatch_pct),
        thresholds=AlertThresholds(daily_drawdown_pct=_fraction(settings.alert_daily_drawdown_pct),
                                   margin_ratio=_fraction(settings.alert_margin_ratio),
                                   max_position_usdt=Fraction(settings.alert_max_position_usdt),
                                   liquidation_proximity_pct=_fraction(settings.alert_liquidation_proximity_pct))))
    registry.register(AccountCollector(monitor))
    def venue_event(event: Any) -> None:
        if mode_now[0] is not Mode.SIMULATION:
            monitor.on_user_event(event)

    def paper_event(event: Any) -> None:
        if mode_now[0] is Mode.SIMULATION:
            monitor.on_user_event(event)

    stream = UserDataStream(rest, settings.venue_ws_url, venue_event, monitor.reconcile)
    await monitor.start()
    await stream.start()
    fills_client = None
    if paper_source is not None:
        from celeris.execution.client import ExecutionClient
        from celeris.paper_account import paper_fill_events
        fills_client = ExecutionClient(settings.execution_target, instruments)
        fills_client.stream_fills(paper_fill_events(paper_source, instruments, paper_event))
    redis_client, pool = await open_stores(settings)
    persistence = AccountPersistence(monitor, pool, redis_client, settings.snapshot_interval_s)
    persistence.start()
    ctl = control.ComponentControl("account", clock, mode=Mode(settings.mode),
                                   details=lambda: {"reconciliations": str(monitor.recon.runs),
                                                    "mismatches": str(monitor.recon.mismatches)})

    async def on_mode(mode: Mode) -> None:
        mode_now[0] = mode
        await monitor.reconcile(initial=True)  # another account is traded from now on

    ctl.on_mode.append(on_mode)
    follower: Any = None  # held: the event loop keeps only weak references to tasks
    if settings.execution_target:
        from celeris.paper_account import follow_execution_mode
        from celeris.transport.tasks import supervised

        async def reconcile_for(mode: Mode) -> None:
            await monitor.reconcile(initial=True)

        follower = supervised("account-follow-execution-mode", lambda: follow_execution_mode(
            settings.execution_target, mode_now, reconcile_for))
    bound = grpc_server.create_server([servicer.registrar(monitor), control.registrar(ctl)], settings.grpc_host,
                                      settings.grpc_port)
    runner, _ = await metrics.start_metrics_server(
        registry, settings.grpc_host, settings.metrics_port,
        lambda: {"status": "ok" if stream.connected else "degraded", "service": "account",
                 "user_stream_connected": stream.connected, "reconciliations": monitor.recon.runs,
                 "mismatches": monitor.recon.mismatches})

    async def drain() -> None:
        if fills_client is not None:
            await fills_client.close()
        await stream.stop()
        await monitor.stop()
        await persistence.stop()

    await serve_then_close(bound, drain, settings, [
        runner.cleanup, rest.close, *store_closers(redis_client, pool)])
