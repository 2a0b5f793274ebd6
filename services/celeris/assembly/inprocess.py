"""The whole system in one process (the `inproc` topology): every component built by its one builder
(celeris.assembly.*), wired through the in-process shape of each port.

Owns starting the simulator (unless a real venue is configured), building the components in order with
the settings the plan derives from the spec (the same settings `--topology services` passes to its
processes), one gRPC server exposing every service with one Control over all components (so
`celeris control` and `celeris halt` work against it), one /metrics with every component's metrics,
the dashboard server, and tearing it all down. Nothing here decides anything a component does not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from fractions import Fraction
from typing import Any

from celeris.assembly.wiring import AssemblyError
from celeris.domain.book import BookState
from celeris.domain.modes import Mode
from celeris.domain.stats import percentile
from celeris.domain.values import MONEY_SCALE, format_units, money_str

ALERTED_REFUSALS = frozenset({"RATE_LIMIT", "POSITION_LIMIT", "EXPOSURE_LIMIT", "RISK_DENIED", "HALTED",
                              "CIRCUIT_OPEN", "INSUFFICIENT_MARGIN", "SUBMIT_FAILED"})
log = logging.getLogger("celeris.system")


def _usdt2(value: Fraction | int) -> str:
    """Money for a person, two decimals, signed: exact (rounded half-even), never through a float."""
    cents = round(Fraction(value) * 100)
    return ("+" if cents >= 0 else "") + format_units(cents, 2)


def percentile_us(samples: list[int], q: float) -> float:
    return round((percentile(samples, q) or 0) / 1000, 1)


class InProcessSystem:
    def __init__(self, up: Any) -> None:
        self.up = up
        self.closers: list[Any] = []
        self.grpc_target = ""
        self.dashboard_url = ""
        self.metrics_url = ""

    async def start(self) -> None:
        from celeris.assembly import plan
        from celeris.assembly.account import build_account
        from celeris.assembly.execution import build_execution
        from celeris.assembly.marketdata import build_marketdata
        from celeris.assembly.paper_account import PaperAccountSource, paper_user_events
        from celeris.assembly.ports import BusFeed, InProcessActions, InProcessHalter, InProcessRisk
        from celeris.assembly.risk import build_risk
        from celeris.assembly.strategy import build_strategy
        from celeris.assembly.wiring import Wiring, preflight
        from celeris.domain.topics import fill_topic, order_topic
        from celeris.risk import adapters as risk_adapters
        from celeris.runtime.clock import SystemClock
        from celeris.venues.binance.rest import BinanceRestClient

        up = self.up
        self.clock = clock = SystemClock()
        if up.real_venue:
            rest_url, ws_url = up.args.venue_rest_url, up.args.venue_ws_url
        else:
            from celeris.exchange_sim.server import SimVenue, start as start_sim

            try:
                self.sim = SimVenue(symbols=up.symbols, api_key=up.api_key, api_secret=up.api_secret, clock=clock,
                                    seed=up.args.seed)
            except ValueError as exc:
                raise AssemblyError(f"the bundled simulator cannot list those symbols: {exc}") from None
            runner, port = await start_sim(self.sim, "127.0.0.1", 0)
            self.closers.append(runner.cleanup)
            rest_url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
        self.venue_url = rest_url
        ws_api_url = up.ws_api_url(ws_url)

        def settings(name: str) -> Any:
            return plan.settings_for(up, name, rest_url, ws_url, ws_api_url)

        self.rest = rest = BinanceRestClient(rest_url, clock, api_key=up.api_key, api_secret=up.api_secret)
        self.closers.append(rest.close)
        for note in await preflight(rest, rest_url, check_credentials=up.mode != "observation" or up.real_venue):
            up._progress(f"note: {note}")
        try:
            self.wiring = w = await Wiring.open(settings("execution"), rest=rest, clock=clock)
        except ValueError as exc:  # a symbol the venue does not list
            raise AssemblyError(str(exc)) from None
        self.closers.append(w.close)
        self.bus, self.registry, self.instruments = w.bus, w.registry, w.instruments
        feed = BusFeed(w.bus, up.symbols)

        built_md = build_marketdata(settings("marketdata"), w)
        self.marketdata = built_md.parts["service"]
        built_ex = build_execution(settings("execution"), w, None, feed)
        self.execution, self.paper = built_ex.parts["engine"], built_ex.parts["paper"]
        paper_account = PaperAccountSource(self.paper)
        built_risk = build_risk(settings("risk"), w, paper_account,
                                InProcessActions(self.execution, risk_adapters.VenueEmergencyActions(rest, w.instruments)),
                                lambda: self.execution.mode)
        self.risk = built_risk.parts["engine"]
        self.execution.risk = InProcessRisk(self.risk)

        def refusal_alert(outcome: Any) -> None:
            """Throttling and refusals are alerts a person sees (once per reason every 5 minutes)."""
            rejection = outcome.rejection
            if rejection is not None and rejection.code.value in ALERTED_REFUSALS:
                self.risk.raise_alert("orders", "warning", f"orders refused ({rejection.code.value}): "
                                      f"{rejection.message[:160]}", key=f"refused:{rejection.code.value}")

        self.execution.on_outcome.append(refusal_alert)

        def order_events(on_fill: Any, on_order: Any) -> None:
            for symbol in up.symbols:
                w.bus.subscribe(fill_topic(symbol), on_fill)
                w.bus.subscribe(order_topic(symbol), on_order)

        try:
            built_st = build_strategy(settings("strategy"), w, self.execution, feed, order_events)
        except (KeyError, ValueError, TypeError) as exc:
            raise AssemblyError(f"a strategy cannot be built: {str(exc).strip(chr(39))}") from None
        self.strategy = built_st.parts["engine"]
        built_acc = build_account(settings("account"), w, InProcessHalter(self.risk), paper_account,
                                  lambda deliver: self.paper.observers.append(paper_user_events(self.paper, deliver)),
                                  lambda: self.execution.mode)
        self.account, self.user_stream = built_acc.parts["monitor"], built_acc.parts["stream"]
        self.built = {"marketdata": built_md, "execution": built_ex, "risk": built_risk, "account": built_acc,
                      "strategy": built_st}
        for name in ("marketdata", "execution", "risk", "account"):
            await self.built[name].component.start()
        if up.halted_at_start:
            await self.risk.emergency_stop("spec.halted is true", "spec", flatten=False)
        await self._start_servers()
        await self._wait_books()
        await built_st.component.start()

    async def _wait_books(self, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.marketdata.ready:
            if time.monotonic() > deadline:
                raise AssemblyError("market data did not synchronise its books")
            await asyncio.sleep(0.05)

    async def _start_servers(self) -> None:
        from celeris.runtime import control, grpc_server, metrics

        b = self.built
        # The order levers reach them: execution's gate first (a halt closes it before anything else), the
        # strategies next, then the risk manager (whose emergency stop repeats execution's halt: idempotent).
        self.control = ctl = control.ComponentControl(
            "celeris-up", self.clock, mode=Mode(self.up.mode),
            components=[b[n].component for n in ("execution", "strategy", "risk", "account", "marketdata")])
        registrars = [r for n in ("marketdata", "execution", "strategy", "risk", "account") for r in b[n].registrars]
        bound = grpc_server.create_server([*registrars, control.registrar(ctl)], "127.0.0.1", 0,
                                          control_token=self.up.control_token)
        await bound.server.start()
        await bound.set_serving()
        self.grpc_target = bound.target
        self.closers.append(lambda: bound.server.stop(2))

        def health() -> dict[str, Any]:
            parts = {n: b[n].health() for n in b}
            ok = all(p.get("status") == "ok" for p in parts.values())
            return {"status": "ok" if ok else "degraded", "service": "celeris-up", "components": parts}

        runner, port = await metrics.start_metrics_server(self.registry, "127.0.0.1", 0, health)
        self.closers.append(runner.cleanup)
        self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        try:
            from celeris.dashboard.server import DashboardServer
        except ImportError:
            return
        self.dashboard = DashboardServer.for_system(self, token=self.up.token, registry=self.registry)
        from celeris.assembly.wiring import dashboard_port
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
        lines.append(f"  metrics     {self.metrics_url}  (every component's)")
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

        await step("strategy engine", self.built["strategy"].component.stop)
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
            "pnl": {k: money_str(round(v * 10**MONEY_SCALE)) for k, v in pnl.items() if v is not None and (k in
                    ("realized", "unrealized", "total", "fees", "daily", "funding") or k.startswith("fees_"))},
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
        for name, what in (("account", "account monitor"), ("risk", "risk manager"), ("execution", "execution"),
                           ("marketdata", "market data")):
            await step(what, self.built[name].component.stop)
            for close in self.built[name].closers:
                await step(f"{what} (closing)", close)
        await self._close()
        if problems:
            summary["shutdown_problems"] = problems
        return summary
