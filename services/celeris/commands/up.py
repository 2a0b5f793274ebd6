"""`celeris up`: the whole system on one machine, against the bundled simulator or a configured venue.

Two topologies. `inproc` wires the engines in one process on the in-process bus (market data ->
strategy -> execution with the risk check, account monitor, dashboard). `services` runs every component
as its own process talking gRPC on loopback, as in Kubernetes. Defaults are embedded (in-memory stores);
`--redis-url` / `--postgres-url` switch to real ones. `--duration S` stops after S seconds, Ctrl-C stops
cleanly (open orders cancelled, state flushed), and `--json` prints one summary object at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from celeris.assembly.wiring import AssemblyError, dashboard_port, free_port, preflight

log = logging.getLogger("celeris.up")

DEFAULT_SYMBOLS = "BTCUSDT,ETHUSDT"


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="run the whole system on this machine (simulator included)")
    p.add_argument("-f", "--file", default="",
                   help="a TradingSystem YAML (the one kubectl apply takes): symbols, strategies, risk, mode; "
                        "flags given as well override it")
    p.add_argument("--mode", choices=["observation", "simulation", "live"],
                   help="default: the spec's mode; else live against the simulator, observation against a real venue")
    p.add_argument("--symbols", default=None, help=f"comma-separated (default: the spec's, else {DEFAULT_SYMBOLS})")
    p.add_argument("--topology", choices=["inproc", "services"], default="inproc")
    p.add_argument("--duration", type=float, default=0, help="seconds; 0 = until Ctrl-C")
    p.add_argument("--json", action="store_true", help="print one JSON summary at the end")
    p.add_argument("--redis-url", default="")
    p.add_argument("--postgres-url", default="")
    p.add_argument("--venue-rest-url", default="", help="a real venue (e.g. Binance testnet); default: simulator")
    p.add_argument("--venue-ws-url", default="")
    p.add_argument("--venue-ws-api-url", default="", type=_ws_api_url,
                   help="the venue's WebSocket API (ws(s)://...), which new orders then go over (REST while it is "
                        "down); 'off' = orders over REST. Default: the spec's venue.wsApiUrl; the bundled "
                        "simulator's /ws-fapi/v1 when it runs; else REST")
    p.add_argument("--venue-order-limits", default="", type=_order_limits,
                   help="N_PER_10S,N_PER_MINUTE: the venue's new-order limits we keep (default 270,1080: 90 %% "
                        "of Binance USD-M's); for a simulator started with other limits")
    p.add_argument("--api-key", default=os.environ.get("CELERIS_VENUE_API_KEY", ""))
    p.add_argument("--api-secret", default=os.environ.get("CELERIS_VENUE_API_SECRET", ""))
    p.add_argument("--strategies", default="", help="JSON list of strategies (default: momentum + market making)")
    p.add_argument("--strategy-dir", default="",
                   help="a directory of strategy plugin files (*.py) whose types --strategies or the spec may name "
                        "(default: the spec's strategyDir, relative to the spec file)")
    p.add_argument("--dashboard-port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--dashboard-token", default="", help="default: a fresh random token")
    p.add_argument("--seed", type=int, default=7, help="simulator market seed")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--state-dir", default="",
                   help="where a halt is kept across restarts when there is no Redis (default: a fresh directory "
                        "per run against the bundled simulator, whose account is new each run; "
                        "~/.local/state/celeris against a real venue)")
    p.set_defaults(func=cmd_up)


def _ws_api_url(text: str) -> str:
    if text not in ("", "off") and not (text.startswith(("ws://", "wss://")) and len(text) <= 256):
        raise argparse.ArgumentTypeError("a ws:// or wss:// URL (at most 256 characters), or off")
    return text


def _order_limits(text: str) -> str:
    parts = text.split(",")
    if text and (len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts)):
        raise argparse.ArgumentTypeError("two positive integers: N_PER_10S,N_PER_MINUTE")
    return text.replace(" ", "")


def default_strategies(symbols: list[str]) -> list[dict[str, Any]]:
    sizes = {"BTCUSDT": "0.002", "ETHUSDT": "0.050"}
    out = []
    for symbol in symbols:
        size = sizes.get(symbol, "1")
        out.append({"name": f"mom-{symbol.lower()}", "type": "momentum", "symbol": symbol, "order_size": size,
                    "params": {"lookback": 30, "threshold_bps": 1.0, "cooldown": 40}})
        out.append({"name": f"mm-{symbol.lower()}", "type": "market_making", "symbol": symbol, "order_size": size,
                    "params": {"requote_every": 10, "max_inventory_steps": 20 if symbol == "BTCUSDT" else 500,
                               "inventory_unit_steps": 2 if symbol == "BTCUSDT" else 50}})
    return out


def cmd_up(args: argparse.Namespace) -> int:
    from celeris.runtime import grpc_server, logs

    logs.setup("celeris-up", "WARNING", "text")
    grpc_server.install_uvloop()
    if args.venue_rest_url and not args.venue_ws_url:
        print("error: --venue-ws-url is required with --venue-rest-url", file=sys.stderr)
        return 2
    from celeris.config.spec import SpecError

    try:
        up = Up(args)
    except SpecError as exc:
        print(f"error: {args.file + ': ' if args.file else ''}{exc}", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(up.run())
    except UpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a port that cannot be bound, a file that cannot be written
        print(f"error: {exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}", file=sys.stderr)
        return 1
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    """The end-of-run summary for a person (``--json`` prints the same figures as one object)."""
    pnl = summary.get("pnl") or {}
    positions = ", ".join(f"{k} {v}" for k, v in (summary.get("positions") or {}).items()) or "flat"
    latency = ", ".join(f"{k} {v}" for k, v in (summary.get("latency") or {}).items()) or "-"
    lines = [
        f"summary: {summary.get('mode')} mode, {summary.get('topology')} topology, {summary.get('duration_s')} s",
        f"  orders      {summary.get('orders', 0)} ({summary.get('rejects', 0)} rejected"
        f"{', ' + json.dumps(summary['reject_codes']) if summary.get('reject_codes') else ''}), "
        f"{summary.get('fills', 0)} fills, {summary.get('canceled_at_shutdown', 0)} cancelled at shutdown",
        f"  pnl         total {pnl.get('total', '-')} USDT (realized {pnl.get('realized', '-')}, "
        f"unrealized {pnl.get('unrealized', '-')}, fees {pnl.get('fees', '-')}, funding {pnl.get('funding', '-')})",
        f"  positions   {positions}",
        f"  books       {summary.get('gaps', 0)} gaps, {summary.get('resyncs', 0)} resyncs; "
        f"{summary.get('reconciliation_mismatches', 0)} reconciliation mismatches"
        f"{'; HALTED' if summary.get('halted') else ''}",
        f"  latency     {latency}",
    ]
    return "\n".join(lines)


UpError = AssemblyError
"""What `celeris up` reports in one line and exits 1 for (a venue down, a bad key, a bad spec...)."""


@dataclass
class Ports:
    marketdata: int = field(default_factory=free_port)
    execution: int = field(default_factory=free_port)
    strategy: int = field(default_factory=free_port)
    risk: int = field(default_factory=free_port)
    account: int = field(default_factory=free_port)


def parse_strategy_flag(text: str) -> list[dict[str, Any]]:
    """--strategies: a JSON list of {name, type, symbol, order_size, params}; nonsense is one line (SpecError)."""
    from celeris.config.spec import SpecError

    try:
        items = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SpecError(f"--strategies is not JSON ({str(exc)[:80]})") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SpecError("--strategies is a JSON list of objects: [{\"name\", \"type\", \"symbol\", \"order_size\"}]")
    for item in items:
        if "orderSize" in item and "order_size" not in item:  # the TradingSystem's spelling, as users copy it
            item["order_size"] = item.pop("orderSize")
        missing = [k for k in ("name", "type", "symbol", "order_size") if k not in item]
        if missing:
            raise SpecError(f"--strategies: {item.get('name', 'a strategy')} lacks {', '.join(missing)}")
    return items


class Up:
    def __init__(self, args: argparse.Namespace) -> None:
        from celeris.config.spec import RiskSpec, default_risk, load_spec

        self.args = args
        spec = None
        if getattr(args, "file", ""):
            self.name, spec = load_spec(args.file)
            if spec.venue.kind != "simulator" and not args.venue_rest_url:
                args.venue_rest_url, args.venue_ws_url = spec.venue.restUrl, spec.venue.wsUrl
        self.spec = spec
        symbols = args.symbols if args.symbols is not None else (
            ",".join(spec.symbols) if spec is not None else DEFAULT_SYMBOLS)
        self.symbols = [s.strip().upper() for s in symbols.split(",") if s.strip()]
        self.real_venue = bool(args.venue_rest_url)
        self.mode = args.mode or (spec.mode if spec is not None and spec.mode else None) or (
            "observation" if self.real_venue else "live")
        if args.strategies:
            self.strategies = parse_strategy_flag(args.strategies)
        elif spec is not None:  # the spec says which strategies run: none is none (no demo strategies)
            self.strategies = [s.engine_config() for s in spec.strategies if s.symbol in self.symbols]
        else:
            self.strategies = default_strategies(self.symbols)
        self.strategy_dir = self._strategy_dir(args, spec)
        """Where strategy plugins are (--strategy-dir, else the spec's strategyDir), absolute: every process
        of the services topology reads it from its own working directory."""
        self._refuse_unknown_strategies()
        self.risk: RiskSpec = spec.risk if spec is not None else default_risk()  # as celeris backtest's
        self.halted_at_start = bool(spec is not None and spec.halted)
        self.api_key = args.api_key or ("celeris-up-" + secrets.token_hex(4))
        self.api_secret = args.api_secret or secrets.token_hex(16)
        self.token = args.dashboard_token or secrets.token_urlsafe(16)
        self.control_token = os.environ.get("CELERIS_CONTROL_TOKEN") or secrets.token_urlsafe(32)
        """This run's Control token (CELERIS_CONTROL_TOKEN, else a random one): the Control service of either
        topology requires it, and every process of the services topology presents it."""
        self.stop_event = asyncio.Event()
        self.started = time.monotonic()
        self.components: dict[str, Any] = {}
        self.closers: list[Any] = []

    @staticmethod
    def _strategy_dir(args: argparse.Namespace, spec: Any) -> str:
        from pathlib import Path

        if getattr(args, "strategy_dir", ""):
            return str(Path(args.strategy_dir).resolve())
        if spec is not None and spec.strategyDir:  # relative to the spec file, as its other paths would be
            return str((Path(args.file).parent / spec.strategyDir).resolve())
        return ""

    def _refuse_unknown_strategies(self) -> None:
        """Before anything starts: every strategy's type is provided by a built-in, an entry point or a file
        of the strategy directory (the builder's own check, run early), else one line and exit 2."""
        from pathlib import Path

        from celeris.assembly.strategy import StrategyRefused, plugin_registry
        from celeris.config.spec import SpecError

        if self.strategy_dir and not Path(self.strategy_dir).is_dir():
            given = "--strategy-dir" if getattr(self.args, "strategy_dir", "") else \
                "spec.strategyDir (relative to the spec file; --strategy-dir overrides it)"
            raise SpecError(f"{given}: {self.strategy_dir} is not a directory")
        try:
            plugin_registry(self.strategy_dir, [str(s["type"]) for s in self.strategies], report_failures=False)
        except StrategyRefused as exc:
            raise SpecError(str(exc)) from None

    def ws_api_url(self, bundled_ws_url: str) -> str:
        """The venue's WebSocket API that execution's orders go over ("" = REST): --venue-ws-api-url (off =
        none), else the spec's venue.wsApiUrl, else the bundled simulator's (`bundled_ws_url`, its stream
        base) when it is the venue."""
        flag = getattr(self.args, "venue_ws_api_url", "")
        if flag:
            return "" if flag == "off" else flag
        if self.spec is not None and self.spec.venue.wsApiUrl:
            return self.spec.venue.wsApiUrl
        return "" if self.real_venue else f"{bundled_ws_url.rstrip('/')}/ws-fapi/v1"

    def state_dir(self) -> Any:
        from pathlib import Path
        import tempfile

        if self.args.state_dir:
            return Path(self.args.state_dir)
        if self.real_venue:
            return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "celeris"
        if not getattr(self, "_run_state_dir", None):
            self._run_state_dir = tempfile.mkdtemp(prefix="celeris-up-")
        return Path(self._run_state_dir)

    def _progress(self, text: str) -> None:
        if not self.args.quiet:
            print(text, file=sys.stderr if self.args.json else sys.stdout, flush=True)

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop_event.set)
        try:
            if self.args.topology == "inproc":
                from celeris.assembly.inprocess import InProcessSystem

                system: Any = InProcessSystem(self)
            else:
                system = ServicesSystem(self)
            try:
                await system.start()
            except BaseException:
                # What did start (the simulator, the first components) must not outlive a failed start.
                with contextlib.suppress(Exception):
                    await system.stop()
                raise
            self._progress(system.banner())
            deadline = self.started + self.args.duration if self.args.duration else None
            next_line = time.monotonic() + 1.0
            while not self.stop_event.is_set():
                wake = next_line if deadline is None else min(next_line, deadline)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), max(0.0, wake - time.monotonic()))
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                # The loop's timers may fire a little early: a line only once a second has really passed.
                if now >= next_line:
                    self._progress(await system.progress_line())
                    next_line = max(next_line + 1.0, now + 0.5)
            self._progress("stopping: cancelling open orders, flushing state ...")
            summary = await system.stop()
            summary["duration_s"] = round(time.monotonic() - self.started, 1)
            summary["topology"] = self.args.topology
            summary["mode"] = self.mode
            return summary
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


class ServicesSystem:
    """Every component as its own process on loopback gRPC (the Kubernetes shape on one machine); their
    Control services require this run's token (`up.control_token`, passed in the environment), which
    this system's own Control calls present."""

    def __init__(self, up: Up) -> None:
        from celeris.runtime import control_auth

        self.up = up
        self.control_metadata = control_auth.control_metadata(up.control_token)
        self.ports = Ports()
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.spawned: dict[str, tuple[list[str], dict[str, str]]] = {}
        """name -> (argv, environment) it was started with: a supervised restart uses the same."""
        self.restarts: dict[str, int] = {}
        self._last_stats: dict[str, Any] = {}
        self._carried: dict[str, int] = {}
        """Counters of earlier lives of a restarted execution (its in-memory counters start at 0)."""
        self.sim: dict[str, Any] = {}
        self.metrics_ports: dict[str, int] = {}
        self.metrics_url = ""
        self._metrics_runner: Any = None

    def _spawn(self, name: str, **settings: Any) -> None:
        """Start component `name` as `celeris NAME run` with the settings the plan derives from the spec
        (the same objects the in-process topology builds from): the plain ones as --set flags, the
        secrets through the environment (a command line is visible to every user of the machine)."""
        from celeris.assembly import plan

        up = self.up
        keys = {**plan.settings_keys(up, name, self.sim["rest_url"], self.sim["ws_url"],
                                     up.ws_api_url(self.sim["ws_url"])),
                "log_level": "WARNING", "metrics_port": free_port(), **settings}
        argv = [sys.executable, "-m", "celeris", name, "run"]
        for key, value in keys.items():
            argv += ["--set", f"{key}={value}"]
        env = {k: v for k, v in os.environ.items() if not (name == "dashboard" and k.startswith("CELERIS_VENUE_API"))}
        env.update({f"CELERIS_{k.upper()}": v for k, v in plan.secret_keys(up, name).items()})
        self.metrics_ports[name] = keys["metrics_port"]
        self.spawned[name] = (argv, env)
        self._start_proc(name)

    def log_path(self, name: str) -> Any:
        return self.up.state_dir() / f"{name}.log"

    def _start_proc(self, name: str) -> None:
        """A component's stderr goes to its log file (a pipe nobody reads would fill and stall it)."""
        argv, env = self.spawned[name]
        self.log_path(name).parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "a") as log_file:
            self.procs[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log_file, text=True, env=env)

    def log_tail(self, name: str, chars: int = 2000) -> str:
        try:
            return self.log_path(name).read_text()[-chars:]
        except OSError:
            return ""

    async def start(self) -> None:
        up = self.up
        if up.real_venue:
            self.sim = {"rest_url": up.args.venue_rest_url, "ws_url": up.args.venue_ws_url}
            from celeris.runtime.clock import SystemClock
            from celeris.venues.binance.rest import BinanceRestClient

            async with BinanceRestClient(up.args.venue_rest_url, SystemClock(), api_key=up.api_key,
                                         api_secret=up.api_secret) as rest:
                for note in await preflight(rest, up.args.venue_rest_url):
                    up._progress(f"note: {note}")
        else:
            env = {**os.environ, "CELERIS_SIM_API_KEY": up.api_key, "CELERIS_SIM_API_SECRET": up.api_secret}
            self.log_path("sim").parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path("sim"), "a") as sim_log:
                proc = subprocess.Popen([sys.executable, "-m", "celeris.cli", "sim", "--port", "0",
                                         "--symbols", ",".join(up.symbols), "--seed", str(up.args.seed)],
                                        stdout=subprocess.PIPE, stderr=sim_log, text=True, env=env)
            self.procs["sim"] = proc
            line = await asyncio.to_thread(proc.stdout.readline)  # type: ignore[union-attr]
            if not line:
                raise UpError("the simulator did not start: " + self.log_tail("sim"))
            self.sim = json.loads(line)
        p = self.ports
        self._spawn("marketdata", grpc_port=p.marketdata)
        self._spawn("risk", grpc_port=p.risk, execution_target=f"127.0.0.1:{p.execution}",
                    mode=up.mode)
        self._spawn("execution", grpc_port=p.execution, mode=up.mode,
                    marketdata_target=f"127.0.0.1:{p.marketdata}", risk_target=f"127.0.0.1:{p.risk}")
        self._spawn("account", grpc_port=p.account, risk_target=f"127.0.0.1:{p.risk}",
                    execution_target=f"127.0.0.1:{p.execution}", mode=up.mode)
        # spec.halted: the halt lands before anything that originates orders starts (as in-process).
        await self._wait_ready(("marketdata", "risk", "execution", "account"))
        if up.halted_at_start:
            await self._halt_at_start()
        self._spawn("strategy", grpc_port=p.strategy, mode=up.mode,
                    marketdata_target=f"127.0.0.1:{p.marketdata}", execution_target=f"127.0.0.1:{p.execution}",
                    strategies=json.dumps(up.strategies))
        self.dashboard_port, note = dashboard_port(up.args.dashboard_port)
        if note:
            up._progress(f"note: {note}")
        self.dashboard_port = self.dashboard_port or free_port()
        self._spawn("dashboard", http_port=self.dashboard_port, grpc_port=free_port(),
                    marketdata_target=f"127.0.0.1:{p.marketdata}", execution_target=f"127.0.0.1:{p.execution}",
                    strategy_target=f"127.0.0.1:{p.strategy}", risk_target=f"127.0.0.1:{p.risk}",
                    account_target=f"127.0.0.1:{p.account}")
        self.metrics_ports["dashboard"] = self.dashboard_port  # the dashboard serves its /metrics on its HTTP port
        await self._wait_ready(("strategy",))
        await self._start_metrics()
        self._supervisor = asyncio.create_task(self._supervise(), name="celeris-up-supervisor")

    async def scrape_all(self, timeout_s: float = 1.0) -> dict[str, str]:
        """Every component's /metrics, fetched concurrently; one that is down or slow is left out."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=timeout_s)

        async def one(session: aiohttp.ClientSession, port: int) -> str | None:
            try:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    return await response.text() if response.status == 200 else None
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                return None

        ports = dict(self.metrics_ports)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            texts = await asyncio.gather(*(one(session, port) for port in ports.values()))
        return {name: text for name, text in zip(ports, texts) if text is not None}

    async def _start_metrics(self) -> None:
        """One /metrics with every component's (each sample labelled component="<name>"), on loopback,
        as the in-process topology serves: what one Prometheus scrape or the observability test reads."""
        from aiohttp import web
        from prometheus_client import CONTENT_TYPE_LATEST

        from celeris.runtime.metrics_merge import merge_expositions

        async def handle_metrics(_: web.Request) -> web.Response:
            body = merge_expositions(await self.scrape_all())
            return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("/metrics", handle_metrics)
        self._metrics_runner = runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets if site._server else []  # aiohttp exposes no public getter
        self.metrics_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/metrics" if sockets else ""

    async def _supervise(self, poll_s: float = 0.5) -> None:
        """A component process that dies is started again (same settings, same port) after a back-off
        that doubles up to 30 s; a restarted execution reconciles with the venue, so fills made while it
        was down are recovered. Restarts show in the progress line and the summary."""
        backoff: dict[str, float] = {}
        due: dict[str, float] = {}
        started_at: dict[str, float] = {}
        while True:
            await asyncio.sleep(poll_s)
            for name, proc in list(self.procs.items()):
                if name == "sim":
                    continue
                now = time.monotonic()
                if proc.poll() is None:
                    if now - started_at.get(name, 0.0) > 60:
                        backoff.pop(name, None)  # it ran a good while: the next death starts the back-off anew
                    continue
                if name not in due:
                    delay = backoff.get(name, 0.5)
                    due[name] = now + delay
                    backoff[name] = min(30.0, delay * 2)
                    err = self.log_tail(name, 400)
                    log.warning("%s exited with %s; restarting in %.1f s %s", name, proc.returncode, delay,
                                err.strip().splitlines()[-1] if err.strip() else "")
                    self.up._progress(f"  {name} exited ({proc.returncode}); restarting in {delay:.1f} s")
                elif now >= due[name]:
                    del due[name]
                    if name == "execution":  # its counters start again at 0: keep what the last one did
                        for key in ("accepted", "rejected", "fills"):
                            self._carried[key] = self._carried.get(key, 0) + self._last_stats.get(key, 0)
                        self._last_stats = {}
                    self._start_proc(name)
                    started_at[name] = now
                    self.restarts[name] = self.restarts.get(name, 0) + 1

    async def _halt_at_start(self) -> None:
        """spec.halted: the system starts in the emergency stop (through the risk manager, as a person would)."""
        from celeris.api.v1 import risk_pb2, risk_pb2_grpc
        from celeris.runtime import grpc_server

        async with grpc_server.insecure_channel(f"127.0.0.1:{self.ports.risk}") as channel:
            await risk_pb2_grpc.RiskManagerStub(channel).TriggerEmergencyStop(risk_pb2.EmergencyStopRequest(
                reason="spec.halted is true", triggered_by="spec", flatten_positions=False), timeout=30)

    async def _wait_ready(self, names: tuple[str, ...], timeout_s: float = 60) -> None:
        from celeris.api.v1 import control_pb2, control_pb2_grpc
        from celeris.runtime import grpc_server

        deadline = time.monotonic() + timeout_s
        pending = {name: getattr(self.ports, name) for name in names}
        while pending:
            for name, port in list(pending.items()):
                proc = self.procs[name]
                if proc.poll() is not None:
                    raise UpError(f"{name} exited: {self.log_tail(name)}")
                try:
                    async with grpc_server.insecure_channel(f"127.0.0.1:{port}") as channel:
                        await control_pb2_grpc.ControlStub(channel).GetStatus(
                            control_pb2.GetStatusRequest(), timeout=0.5, metadata=self.control_metadata)
                    del pending[name]
                except Exception:
                    pass
            if time.monotonic() > deadline:
                raise UpError(f"not ready after {timeout_s} s: {', '.join(pending)}")
            await asyncio.sleep(0.2)

    def banner(self) -> str:
        lines = [f"celeris up: {len(self.procs)} processes ({self.up.mode} mode, services topology)",
                 f"  venue       {self.sim['rest_url']}"]
        for name in ("marketdata", "execution", "strategy", "risk", "account"):
            lines.append(f"  {name:11} 127.0.0.1:{getattr(self.ports, name)}")
        lines.append(f"  dashboard   http://127.0.0.1:{self.dashboard_port}/?token={self.up.token}")
        if self.metrics_url:
            lines.append(f"  metrics     {self.metrics_url}  (every component's)")
        lines.append("  Ctrl-C stops cleanly")
        return "\n".join(lines)

    async def _execution_stats(self) -> dict[str, Any]:
        from celeris.api.v1 import control_pb2, control_pb2_grpc
        from celeris.runtime import grpc_server

        async with grpc_server.insecure_channel(f"127.0.0.1:{self.ports.execution}") as channel:
            status = await control_pb2_grpc.ControlStub(channel).GetStatus(control_pb2.GetStatusRequest(), timeout=2,
                                                                          metadata=self.control_metadata)
        stats = json.loads(status.details.get("stats", "{}"))
        self._last_stats = dict(stats)
        for key, value in self._carried.items():
            stats[key] = stats.get(key, 0) + value
        stats["halted"] = status.halted
        return stats

    async def progress_line(self) -> str:
        try:
            stats = await self._execution_stats()
        except Exception as exc:
            return f"[{time.strftime('%H:%M:%S')}] execution not answering: {type(exc).__name__}"
        restarts = ", ".join(f"{n} x{c}" for n, c in self.restarts.items())
        from celeris.venues.binance.ratelimit import SharedBan
        banned = SharedBan(self.up.state_dir() / "venue-ban").read()
        ban = f"  VENUE RATE LIMIT: nothing is sent until {time.strftime('%H:%M:%S', time.localtime(banned))}" \
            if banned > time.time() else ""
        codes = ", ".join(f"{k} {v}" for k, v in (stats.get("reject_codes") or {}).items())
        return (f"[{time.strftime('%H:%M:%S')}] orders {stats.get('accepted', 0)} accepted, "
                f"{stats.get('rejected', 0)} rejected{f' ({codes})' if codes else ''}, fills {stats.get('fills', 0)}"
                f"{'  HALTED' if stats.get('halted') else ''}{f' | restarted: {restarts}' if restarts else ''}{ban}")

    async def stop(self) -> dict[str, Any]:
        from celeris.api.v1 import account_pb2, account_pb2_grpc, execution_pb2, execution_pb2_grpc
        from celeris.runtime import grpc_server

        summary: dict[str, Any] = {"restarts": dict(self.restarts)}
        canceled = 0
        supervisor = getattr(self, "_supervisor", None)
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        if self._metrics_runner is not None:
            with contextlib.suppress(Exception):
                await self._metrics_runner.cleanup()
            self._metrics_runner = None
        try:
            async with grpc_server.insecure_channel(f"127.0.0.1:{self.ports.strategy}") as channel:
                from celeris.api.v1 import control_pb2, control_pb2_grpc
                await control_pb2_grpc.ControlStub(channel).Drain(control_pb2.DrainRequest(), timeout=5,
                                                                  metadata=self.control_metadata)
        except Exception:
            pass
        try:
            async with grpc_server.insecure_channel(f"127.0.0.1:{self.ports.execution}") as channel:
                stub = execution_pb2_grpc.ExecutionStub(channel)
                canceled = (await stub.CancelAll(execution_pb2.CancelAllRequest(request_id="up-shutdown"),
                                                 timeout=10)).canceled
            summary["canceled_at_shutdown"] = canceled
            stats = await self._execution_stats()
            summary.update(orders=stats.get("accepted", 0), rejects=stats.get("rejected", 0),
                           fills=stats.get("fills", 0), reject_codes=stats.get("reject_codes", {}),
                           halted=stats.get("halted", False), orphans_canceled=stats.get("orphans_canceled", 0))
            async with grpc_server.insecure_channel(f"127.0.0.1:{self.ports.account}") as channel:
                state = await account_pb2_grpc.AccountMonitorStub(channel).GetAccountState(
                    account_pb2.AccountRequest(), timeout=5)
            pnl = state.pnl
            summary["pnl"] = {k: _dec(getattr(pnl, k)) for k in ("realized", "unrealized", "total", "fees", "funding")}
            summary["pnl"].update({f"fees_{f.asset.lower()}": _dec(f.amount) for f in pnl.fees_by_asset})
            summary["positions"] = {p.symbol: _dec(p.quantity) for p in state.positions}
        except Exception as exc:
            summary["error"] = f"summary incomplete: {exc!r}"
        for name in ("dashboard", "strategy", "execution", "account", "risk", "marketdata", "sim"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
        return summary


def _dec(d: Any) -> str:
    from celeris.domain.values import format_units

    return format_units(d.mantissa, d.scale)
