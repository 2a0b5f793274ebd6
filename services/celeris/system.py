"""The whole system in one process: the engines wired on the in-process bus (the `inproc` topology).

Owns building and tearing down one trading system: the simulator (unless a real venue is configured),
market data, the paper venue, execution with the risk manager's check, the strategy engine, the risk
manager, the account monitor, the dashboard server, and one gRPC server exposing every service so the
usual tools (`celeris control`, `celeris halt`) work against it. `celeris up` and the end-to-end tests
build it; nothing here decides anything a component does not already decide.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from fractions import Fraction
from typing import Any

from celeris.domain.book import BookState
from celeris.domain.instruments import Instrument
from celeris.domain.modes import Mode
from celeris.domain.risk import Approved, Denied
from celeris.domain.values import format_units, money_str, parse_decimal

MONEY = 10**8
ALERTED_REFUSALS = frozenset({"RATE_LIMIT", "POSITION_LIMIT", "EXPOSURE_LIMIT", "RISK_DENIED", "HALTED",
                              "CIRCUIT_OPEN", "INSUFFICIENT_MARGIN", "SUBMIT_FAILED"})
log = logging.getLogger("celeris.system")


class _InProcessRisk:
    """Execution's RiskCheck port, answered by the risk engine in the same process."""

    def __init__(self, risk: Any) -> None:
        self.risk = risk

    async def check(self, request: Any, mark_ticks: int | None) -> Approved | Denied:
        result = self.risk.check_order(request.request_id, request.symbol, request.side, request.qty_steps,
                                       request.price_ticks, request.reduce_only, request.strategy_id)
        return result.outcome


class _InProcessActions:
    """The emergency stop's actions: our execution engine halts, cancels and flattens through its own
    order path; the venue is only asked how many orders are open (and cancels them if execution fails)."""

    def __init__(self, execution: Any, venue_actions: Any) -> None:
        self.execution = execution
        self.venue = venue_actions

    async def open_order_count(self) -> int:
        return len(self.execution.open_orders())

    async def halt_execution(self, reason: str, flatten: bool) -> Any:
        from celeris.risk.engine import HaltResult

        canceled = await self.execution.halt(reason, "risk-manager", flatten)
        return HaltResult(canceled, self.execution.last_halt_flat)

    async def resume_execution(self, by: str) -> None:
        await self.execution.resume(by)

    async def cancel_all_orders(self) -> int:
        return await self.venue.cancel_all_orders()


class _RiskHalter:
    def __init__(self, risk: Any) -> None:
        self.risk = risk

    async def halt(self, reason: str) -> None:
        await self.risk.emergency_stop(reason, "account-monitor")


def _usdt2(value: Fraction | int) -> str:
    """Money for a person, two decimals, signed: exact (rounded half-even), never through a float."""
    cents = round(Fraction(value) * 100)
    return ("+" if cents >= 0 else "") + format_units(cents, 2)


def mark_ticks(ins: Instrument, text: str) -> int:
    mantissa, scale = parse_decimal(text)
    return int(Fraction(mantissa, 10**scale) * 10**ins.price_grid.scale / ins.price_grid.step_units)


class InProcessSystem:
    def __init__(self, up: Any) -> None:
        self.up = up
        self.closers: list[Any] = []
        self.grpc_target = ""
        self.dashboard_url = ""

    async def start(self) -> None:
        from celeris.account.engine import AccountConfig, AccountMonitor, RestVenueReader
        from celeris.execution.engine import ExecutionEngine
        from celeris.domain.topics import fill_topic, order_topic
        from celeris.execution.model import ExecutionConfig, PositionLimits
        from celeris.execution.paper import PaperVenue
        from celeris.execution.store import (FileHaltState, MemoryHotState, MemoryJournal, PostgresJournal,
                                             RedisHotState)
        from celeris.execution.venue import BinanceOrderVenue
        from celeris.marketdata.service import MarketDataConfig, MarketDataService
        from celeris.domain.topics import book_topic, mark_topic, trade_topic
        from celeris.risk import adapters as risk_adapters
        from celeris.risk.engine import MemoryAudit, MemoryFlag, MemoryPolicyStore, RiskConfig, RiskEngine
        from celeris.runtime import metrics
        from celeris.runtime.clock import SystemClock
        from celeris.strategy.cli import parse_strategies
        from celeris.strategy.engine import StrategyEngine
        from celeris.transport.bus import InProcessBus
        from celeris.venues.binance.rest import BinanceRestClient
        from celeris.venues.binance.userstream import UserDataStream

        up = self.up
        self.clock = clock = SystemClock()
        self.bus = bus = InProcessBus()
        self.registry = metrics.new_registry()
        if up.real_venue:
            rest_url, ws_url = up.args.venue_rest_url, up.args.venue_ws_url
        else:
            from celeris.exchange_sim.server import SimVenue, start as start_sim

            try:
                self.sim = SimVenue(symbols=up.symbols, api_key=up.api_key, api_secret=up.api_secret, clock=clock,
                                    seed=up.args.seed)
            except ValueError as exc:
                from celeris.up import UpError
                raise UpError(f"the bundled simulator cannot list those symbols: {exc}") from None
            runner, port = await start_sim(self.sim, "127.0.0.1", 0)
            self.closers.append(runner.cleanup)
            rest_url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
        self.venue_url = rest_url
        self.rest = rest = BinanceRestClient(rest_url, clock, api_key=up.api_key, api_secret=up.api_secret)
        self.closers.append(rest.close)
        from celeris.up import preflight
        for note in await preflight(rest, rest_url, check_credentials=up.mode != "observation" or up.real_venue):
            up._progress(f"note: {note}")
        info = await rest.exchange_info()
        by_symbol = {s["symbol"]: s for s in info["symbols"]}
        missing = [s for s in up.symbols if s not in by_symbol]
        if missing:
            from celeris.up import UpError
            raise UpError(f"the venue does not list {', '.join(missing)}")
        self.instruments = instruments = {s: Instrument.from_exchange_info(by_symbol[s]) for s in up.symbols}

        redis_client = pool = None
        if up.args.redis_url:
            import redis.asyncio as aioredis

            redis_client = aioredis.from_url(up.args.redis_url)
            self.closers.append(redis_client.aclose)
        if up.args.postgres_url:
            from celeris.storage import postgres

            pool = await postgres.connect_pool(up.args.postgres_url)
            await postgres.migrate(pool)
            self.closers.append(pool.close)

        # Market data
        self.marketdata = MarketDataService(MarketDataConfig(tuple(up.symbols)), rest, ws_url, clock, bus,
                                            self.registry, list(instruments.values()))
        # Execution: the venue for live, the paper venue (fed by market data) for simulation
        self.paper = PaperVenue(instruments, clock)
        live = BinanceOrderVenue(rest, ws_url, instruments, clock)
        hot = RedisHotState(redis_client) if redis_client is not None else MemoryHotState()
        journal = PostgresJournal(pool) if pool is not None else MemoryJournal()
        if redis_client is None:  # a halt survives a restart: in Redis when there is one, else in a file
            hot = FileHaltState(hot, up.state_dir() / "execution-halt.json")
        risk_spec = up.risk
        self.execution = ExecutionEngine(
            ExecutionConfig(tuple(up.symbols), PositionLimits(0, risk_spec.maxOrdersPerSecond, risk_spec.maxLeverage),
                            exposure=risk_spec.exposure_limits()),
            instruments, clock, {Mode.LIVE: live, Mode.SIMULATION: self.paper}, bus.publish, hot, journal,
            mode=Mode(up.mode))
        # Risk and account read the account being traded: the paper one in simulation mode.
        from celeris.paper_account import ModeRouted, PaperAccountSource, paper_user_events
        paper_account = PaperAccountSource(self.paper)
        self.risk = RiskEngine(
            instruments, clock, ModeRouted(lambda: self.execution.mode, paper_account,
                                           risk_adapters.VenueAccountSource(rest, instruments)),
            risk_adapters.PostgresPolicyStore(pool, None) if pool is not None else MemoryPolicyStore(),
            risk_adapters.PostgresAudit(pool) if pool is not None else MemoryAudit(),
            risk_adapters.RedisTradingFlag(redis_client) if redis_client is not None else MemoryFlag(),
            _InProcessActions(self.execution, risk_adapters.VenueEmergencyActions(rest, instruments)),
            RiskConfig())
        if pool is not None:
            from celeris.risk.engine import DEFAULT_POLICIES
            self.risk.policy_store.seed = DEFAULT_POLICIES
        self.execution.risk = _InProcessRisk(self.risk)

        def refusal_alert(outcome: Any) -> None:
            """Throttling and refusals are alerts a person sees (once per reason every 5 minutes)."""
            rejection = outcome.rejection
            if rejection is not None and rejection.code.value in ALERTED_REFUSALS:
                self.risk.raise_alert("orders", "warning", f"orders refused ({rejection.code.value}): "
                                      f"{rejection.message[:160]}", key=f"refused:{rejection.code.value}")

        self.execution.on_outcome.append(refusal_alert)
        # Strategy: its filter uses the same limits as execution's gate
        from celeris.strategy.filters import filter_limits
        try:
            self.strategy = StrategyEngine(parse_strategies(json.dumps(up.strategies)), instruments, clock,
                                           self.execution, bus.publish, mode=Mode(up.mode),
                                           limits=filter_limits(risk_spec.exposure_limits(),
                                                                risk_spec.maxOrdersPerSecond))
        except (KeyError, ValueError, TypeError) as exc:
            from celeris.up import UpError
            raise UpError(f"a strategy cannot be built: {str(exc).strip(chr(39))}") from None
        # Account
        self.account = AccountMonitor(instruments, clock,
                                      ModeRouted(lambda: self.execution.mode, paper_account,
                                                 RestVenueReader(rest, instruments)),
                                      _RiskHalter(self.risk), AccountConfig())

        def venue_event(event: Any) -> None:  # the venue's stream counts while its account is the one traded
            if self.execution.mode is not Mode.SIMULATION:
                self.account.on_user_event(event)

        def paper_event(event: Any) -> None:
            if self.execution.mode is Mode.SIMULATION:
                self.account.on_user_event(event)

        self.paper.observers.append(paper_user_events(self.paper, paper_event))
        self.user_stream = UserDataStream(rest, ws_url, venue_event, self.account.reconcile)

        for symbol, ins in instruments.items():
            bus.subscribe(book_topic(symbol), self.paper.on_book)
            bus.subscribe(book_topic(symbol), self.strategy.on_book)
            bus.subscribe(trade_topic(symbol), self.paper.on_trade)
            bus.subscribe(trade_topic(symbol), self.strategy.on_trade)
            bus.subscribe(mark_topic(symbol), lambda m, ins=ins: self.execution.on_mark(m.symbol, mark_ticks(ins, m.mark_price)))
            bus.subscribe(mark_topic(symbol), lambda m: self.account.on_mark(m.symbol, m.mark_price))
            bus.subscribe(fill_topic(symbol), self.strategy.on_fill)
            bus.subscribe(order_topic(symbol), self.strategy.on_order_update)

        await self.marketdata.start()
        await self.execution.start()
        await self.risk.start()
        await self.risk.apply_limits(risk_spec.as_json())
        if up.halted_at_start:
            await self.risk.emergency_stop("spec.halted is true", "spec", flatten=False)
        await self.account.start()
        await self.user_stream.start()
        await self._start_servers()
        await self._wait_books()
        self.strategy.start()  # leases with execution's orphan reaper, time-to-live of orders

    async def _wait_books(self, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.marketdata.ready:
            if time.monotonic() > deadline:
                from celeris.up import UpError
                raise UpError("market data did not synchronise its books")
            await asyncio.sleep(0.05)

    async def _start_servers(self) -> None:
        from celeris.account import servicer as account_servicer
        from celeris.execution import servicer as execution_servicer
        from celeris.marketdata import servicer as md_servicer
        from celeris.risk import servicer as risk_servicer
        from celeris.runtime import control, grpc_server
        from celeris.strategy import servicer as strategy_servicer

        self.control = ctl = control.ComponentControl("celeris-up", self.clock, mode=Mode(self.up.mode))

        async def on_mode(mode: Mode) -> None:
            await self.execution.set_mode(mode)
            self.strategy.mode = mode
            # Another account is traded from now on (paper or venue): the monitor starts from it.
            await self.account.reconcile(initial=True)
            await self.risk.refresh()

        async def on_halt(reason: str, flatten: bool) -> None:
            await self.risk.emergency_stop(reason, "control", flatten)

        async def on_resume(requested_by: str) -> None:
            await self.risk.enable_trading(requested_by)

        ctl.on_mode.append(on_mode)
        ctl.on_halt.append(on_halt)
        ctl.on_resume.append(on_resume)
        bound = grpc_server.create_server([
            md_servicer.registrar(self.marketdata), execution_servicer.registrar(self.execution, self.bus),
            strategy_servicer.registrar(self.strategy, self.bus), risk_servicer.registrar(self.risk),
            account_servicer.registrar(self.account), control.registrar(ctl)], "127.0.0.1", 0)
        await bound.server.start()
        await bound.set_serving()
        self.grpc_target = bound.target
        self.closers.append(lambda: bound.server.stop(2))
        try:
            from celeris.dashboard.server import DashboardServer
        except ImportError:
            return
        self.dashboard = DashboardServer.for_system(self, token=self.up.token)
        from celeris.up import dashboard_port
        wanted, note = dashboard_port(self.up.args.dashboard_port)
        if note:
            self.up._progress(f"note: {note}")
        port = await self.dashboard.start("127.0.0.1", wanted)
        self.dashboard_url = f"http://127.0.0.1:{port}/?token={self.up.token}"
        self.closers.append(self.dashboard.stop)

    def banner(self) -> str:
        up = self.up
        lines = [f"celeris up: {up.mode} mode, in-process topology, symbols {', '.join(up.symbols)}",
                 f"  venue       {self.venue_url}{'' if up.real_venue else ' (bundled simulator)'}",
                 f"  strategies  {', '.join(s['name'] for s in up.strategies)}",
                 f"  gRPC        {self.grpc_target}  (celeris control / celeris halt --target {self.grpc_target})"]
        if self.dashboard_url:
            lines.append(f"  dashboard   {self.dashboard_url}")
            lines.append(f"  token       {up.token}")
        lines.append("  Ctrl-C stops cleanly")
        return "\n".join(lines)

    async def progress_line(self) -> str:
        stats = self.execution.stats
        pnl = self.account.pnl()
        positions = ", ".join(f"{k[0]} {p.instrument.format_qty(p.qty_steps)}" for k, p in self.account.positions.items()
                              if p.qty_steps) or "flat"
        books = "/".join("live" if s.synced.state is BookState.LIVE else s.synced.state.value
                         for s in self.marketdata.core.symbols.values()) if self.marketdata.core else "-"
        halted = f"  HALTED ({self.execution.halt_reason})" if self.execution.halted else ""
        blocked = self.rest.budget.blocked_until if hasattr(self.rest.budget, "blocked_until") else 0
        if blocked and blocked > time.time():
            halted += f"  VENUE RATE LIMIT: nothing is sent until {time.strftime('%H:%M:%S', time.localtime(blocked))}"
        codes = ", ".join(f"{k} {v}" for k, v in sorted(stats.reject_codes.items(), key=lambda kv: -kv[1])[:3])
        reasons = self.strategy.filter_reasons
        filtered = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:2])
        return (f"[{time.strftime('%H:%M:%S')}] books {books} | orders {stats.accepted} ok {stats.rejected} "
                f"refused{f' ({codes})' if codes else ''} | filtered {self.strategy.stats['filtered']}"
                f"{f' ({filtered})' if filtered else ''} | fills {stats.fills} | positions {positions} | "
                f"pnl {_usdt2(pnl['total'] or 0)} USDT{halted}")

    async def _close(self) -> None:
        for close in reversed(self.closers):
            try:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                pass
        self.closers = []

    async def stop(self) -> dict[str, Any]:
        from celeris.up import percentile_us

        if not hasattr(self, "account"):  # a start that failed early: close what was opened
            await self._close()
            return {}

        problems: list[str] = []

        async def step(what: str, action: Any) -> Any:
            """Shutdown goes on whatever one component does: every step runs, failures are reported."""
            try:
                return await action()
            except Exception as exc:  # noqa: BLE001 - the summary must still be printed
                if hasattr(exc, "retry_after_s"):
                    log.warning("stopping: %s not done: the venue's rate limit (%s)", what, getattr(exc, "msg", exc))
                else:
                    log.exception("stopping: %s failed", what)
                problems.append(f"{what}: {exc!r}")
                return None

        await step("strategy engine", self.strategy.stop)
        self.strategy.mode = Mode.OBSERVATION  # no new orders while we wind down
        canceled = (await step("cancelling open orders", lambda: self.execution.cancel_all("up-shutdown")) or (0,))[0]
        await step("settling venue events", self.execution.settle)
        await step("final reconciliation", self.account.reconcile)
        core = self.marketdata.core
        pnl = self.account.pnl()
        summary = {
            "orders": self.execution.stats.accepted, "fills": self.execution.stats.fills,
            "rejects": self.execution.stats.rejected, "reject_codes": self.execution.stats.reject_codes,
            "canceled_at_shutdown": canceled,
            "pnl": {k: money_str(round(v * 10**8)) for k, v in pnl.items() if v is not None and k in
                    ("realized", "unrealized", "total", "fees", "daily", "funding")},
            "positions": {k[0]: p.instrument.format_qty(p.qty_steps) for k, p in self.account.positions.items()},
            "wallet": money_str(self.account.wallet),
            "gaps": sum(s.synced.stats.gaps for s in core.symbols.values()) if core else 0,
            "resyncs": sum(s.synced.stats.resyncs for s in core.symbols.values()) if core else 0,
            "reconciliation_mismatches": self.account.recon.mismatches,
            "halted": self.execution.halted,
            "orphans_canceled": self.execution.stats.orphans_canceled,
            "strategy_filtered": dict(self.strategy.filter_reasons),
            "latency": {"strategy_decision_p50_us": percentile_us(list(self.strategy.decision_latency_ns), 0.5),
                        "strategy_decision_p99_us": percentile_us(list(self.strategy.decision_latency_ns), 0.99),
                        "risk_check_p50_us": percentile_us(list(self.risk.check_latency_ns), 0.5),
                        "risk_check_p99_us": percentile_us(list(self.risk.check_latency_ns), 0.99)},
            "signals": self.strategy.stats["signals"],
        }
        await step("user data stream", self.user_stream.stop)
        await step("account monitor", self.account.stop)
        await step("risk manager", self.risk.stop_tasks)
        await step("execution", self.execution.stop)
        await step("market data", self.marketdata.stop)
        await self._close()
        if problems:
            summary["shutdown_problems"] = problems
        return summary
