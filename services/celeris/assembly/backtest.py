"""The backtest: a capture through the same engines as paper and live, on the capture's own clock.

Owns the assembly of one run (market data core -> bus -> strategy engine -> execution engine in
simulation mode -> the paper venue, as `celeris up` wires them in process) and the loop that drives it:
each line of the capture sets the event clock to its receive time, then goes through the core; whatever the
engines decided on it runs to completion before the next line (zero processing time), and anything that
sleeps — the paper venue's order latency, execution's orphan reaper — sleeps on the event clock
(`EventSleeper`), never the wall clock, so the same capture, settings and seed give the same result. The
strategies' upkeep (time-to-live of orders, leases) runs each second of capture time. The run records a
`Tape` (celeris.assembly.backtest_stats) from which the result is computed.

The wall clock is read twice, around the loop, for messages per second; nothing on the path reads it.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from celeris.assembly.backtest_stats import NS_PER_S, Tape, statistics
from celeris.domain.values import MONEY_SCALE, money_str

MONEY = 10**MONEY_SCALE
START_WALLET_USDT = 100_000
"""The paper account's wallet at the start of a backtest (USDT)."""
BACKTEST_KEYS = ("latency_ms", "queue_model", "seed")
"""Sweep names that are backtest settings; any other name is a strategy parameter."""
MAX_LATENCY_MS = 60_000.0
"""A latency above a minute is a typo (seconds given as ms), and would leave every order in flight."""
VARYING_KEYS = ("messages_per_s", "timing")
"""The only keys of the result that differ between two runs of the same backtest (wall-clock figures)."""


class BacktestError(ValueError):
    """A backtest that cannot run as asked, with the reason in one line."""


@dataclass(frozen=True)
class BacktestSettings:
    strategies: tuple[dict[str, Any], ...] = ()
    """The strategy engine's configurations (name, type, symbol, order_size, params)."""
    strategy_dir: Path | None = None
    """Plugin strategies: a directory of .py files (celeris.strategy.plugins)."""
    latency_ms: float = 0.0
    """The paper venue's order entry latency, on the event clock (ms)."""
    queue_model: str | None = None
    """The paper venue's queue model by name (None: the venue's default)."""
    seed: int = 0
    """The paper venue's random seed (probabilistic queue models)."""
    latency_file: Path | None = None
    """Recorded order latencies for the paper venue to interpolate (a venue that takes `latency_file`)."""
    risk: Any = None
    """A TradingSystem's RiskSpec: the strategy filter's and execution's limits (None: celeris.config.spec.
    default_risk, the limits of `celeris up` without a spec)."""


class EventSleeper:
    """`await sleep(s)` that ends when the event clock has passed now + s (then the clock reads exactly that
    time); a heap of wake-up times, woken by the loop in time order, ties in the order they slept."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.pending: list[tuple[int, int, asyncio.Future[None]]] = []
        """A heap of (wake-up ns, order, future); read by the loop on every message, so a plain list."""
        self._order = itertools.count()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self.pending, (self.clock.now_ns() + int(seconds * NS_PER_S), next(self._order), future))
        await future

    def next_wake(self) -> int | None:
        return self.pending[0][0] if self.pending else None

    def wake_one(self) -> None:
        wake, _, future = heapq.heappop(self.pending)
        if wake > self.clock.now_ns():
            self.clock.set(wake)
        if not future.done():
            future.set_result(None)


def _accepted_kwargs(cls: Any, wanted: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The keyword arguments `cls` takes, and the names of those it does not (reported, not fatal)."""
    params = inspect.signature(cls).parameters
    return {k: v for k, v in wanted.items() if k in params}, [k for k in wanted if k not in params]


def _strategies(settings: BacktestSettings, symbol: str) -> tuple[Any, list[Any], dict[str, str]]:
    """The plugin registry (loaded as every component loads it: celeris.assembly.strategy.plugin_registry),
    the configurations of the strategies that trade `symbol`, and the plugin files that failed to load."""
    from celeris.assembly.strategy import StrategyRefused, plugin_registry
    from celeris.strategy.component import parse_strategies

    configs = [dict(c) for c in settings.strategies]
    if settings.strategy_dir is not None and not settings.strategy_dir.is_dir():
        raise BacktestError(f"the strategy directory {settings.strategy_dir} is not a directory (--strategy-dir, "
                            f"or the spec's strategyDir, relative to the spec file)")
    try:
        registry = plugin_registry(str(settings.strategy_dir or ""), [str(c.get("type")) for c in configs],
                                   report_failures=False)  # a failure that matters is in the refusal's line
    except StrategyRefused as exc:
        raise BacktestError(str(exc)) from None
    mine = [c for c in configs if c.get("symbol") == symbol]
    if configs and not mine:
        raise BacktestError(f"no strategy trades {symbol}, the capture's symbol")
    try:
        parsed = parse_strategies(json.dumps(mine))
    except (KeyError, TypeError, ValueError) as exc:
        raise BacktestError(f"a strategy configuration is incomplete: {exc}") from None
    return registry, parsed, {Path(k).name: v[:200] for k, v in sorted(registry.load_errors.items())}


def check(settings: BacktestSettings, symbol: str) -> None:
    """Raise BacktestError if `settings` could not run on a capture of `symbol` (a queue model or latency
    file the paper venue refuses, a strategy type no source provides, a size off the step, parameters a
    strategy refuses), without running anything: a sweep checks every point before the first one runs."""
    from celeris.domain.clock import TestClock
    from celeris.marketdata.verify import bundled_instruments
    from celeris.strategy.engine import StrategyEngine

    instrument = bundled_instruments().get(symbol)
    if instrument is None:
        raise BacktestError(f"the capture's symbol {symbol} is not in the bundled exchange info")
    from celeris.execution.paper import PaperVenue

    clock = TestClock(start_ns=0)
    _paper_venue(PaperVenue, {symbol: instrument}, clock, settings, EventSleeper(clock))  # a queue model it lacks
    registry, configs, _ = _strategies(settings, symbol)
    engine = StrategyEngine([], {symbol: instrument}, TestClock(start_ns=0), None, lambda topic, message: None,
                            registry=registry)
    try:
        engine.check_configs(configs)
    except (KeyError, ValueError, TypeError) as exc:
        raise BacktestError(f"strategy: {exc.args[0] if exc.args else exc}") from None


async def run_backtest(capture: Path, settings: BacktestSettings) -> dict[str, Any]:
    """One backtest of `capture` (checked with celeris.marketdata.capture.inspect first) -> the result."""
    from celeris.marketdata import capture as capture_mod

    info = capture_mod.inspect(capture)
    skipped = [0]
    stream = capture_mod.lines(info, skipped=skipped)
    first = next(stream, None)
    if first is None:
        raise capture_mod.CaptureError(f"{capture} has no timestamped line: not a capture")
    run = _Run(info, settings, first[0])
    await run.start()
    await run.drive(itertools.chain((first,), stream))
    await run.finish()
    run.skipped = skipped[0]
    return run.result()


class _Run:
    """The engines of one backtest, wired as `celeris up` wires them in process, and the loop that drives them."""

    def __init__(self, info: Any, settings: BacktestSettings, first_ns: int) -> None:
        from celeris.assembly.execution import mark_ticks
        from celeris.domain.clock import TestClock
        from celeris.domain.modes import Mode
        from celeris.domain.topics import book_topic, fill_topic, mark_topic, order_topic, trade_topic
        from celeris.execution.engine import ExecutionEngine
        from celeris.execution.paper import PaperVenue
        from celeris.marketdata.core import MarketDataCore, Sink
        from celeris.marketdata.verify import bundled_instruments
        from celeris.strategy.engine import StrategyEngine
        from celeris.transport.bus import InProcessBus

        self.info, self.settings, self.first_ns = info, settings, first_ns
        symbol = self.symbol = info.symbol
        instrument = self.instrument = bundled_instruments().get(symbol)
        if instrument is None:
            raise BacktestError(f"{info.path}: the capture's symbol {symbol} is not in the bundled exchange info")
        instruments = {symbol: instrument}
        registry, self.configs, self.plugin_errors = _strategies(settings, symbol)
        # The clock starts at the capture's first line: what sleeps from the start (execution's orphan
        # reaper) wakes on the capture's seconds, not on every second since 1970.
        clock = self.clock = TestClock(start_ns=first_ns)
        self.sleeper = EventSleeper(clock)
        bus = InProcessBus()
        self.paper, self.ignored = _paper_venue(PaperVenue, instruments, clock, settings, self.sleeper)
        limits, exec_config = _limits(settings, symbol)
        exec_kwargs, _ = _accepted_kwargs(ExecutionEngine, {"sleep": self.sleeper.sleep})
        self.execution = ExecutionEngine(exec_config, instruments, clock, {Mode.SIMULATION: self.paper}, bus.publish,
                                         mode=Mode.SIMULATION, **exec_kwargs)
        self.core = MarketDataCore([instrument], clock,
                                   Sink(book=lambda u: bus.publish(book_topic(u.symbol), u),
                                        trade=lambda t: bus.publish(trade_topic(t.symbol), t),
                                        mark=lambda m: bus.publish(mark_topic(m.symbol), m)))
        try:
            # One book per symbol for market data and the strategies (the paper venue keeps its own: it takes
            # liquidity out of it).
            self.strategy = StrategyEngine(self.configs, instruments, clock, self.execution, bus.publish,
                                           mode=Mode.SIMULATION, limits=limits, registry=registry,
                                           books={symbol: self.core.symbols[symbol].synced.book})
        except (KeyError, ValueError, TypeError) as exc:  # parameters a strategy refuses, an off-step size...
            raise BacktestError(f"strategy: {exc.args[0] if exc.args else exc}") from None
        self.tape = Tape(instrument, START_WALLET_USDT * MONEY)
        book = self.core.symbols[symbol].synced.book
        tape = self.tape

        marks = self.marks_from = {"stream": 0, "book": 0}
        """How execution's mark was set: by the capture's markPrice stream, or (a capture without one) by the
        book's mid — else every market order and price band check would be refused for want of a price."""
        exec_marks = self.execution.marks

        def on_book_mid(update: Any) -> None:
            bid, ask = book.best_bid(), book.best_ask()
            if bid is not None and ask is not None:
                tape.on_mid(clock.now_ns(), bid[0], ask[0])
                if not marks["stream"]:
                    exec_marks[symbol] = (bid[0] + ask[0]) // 2
                    marks["book"] += 1

        def on_mark(m: Any) -> None:
            if m.mark_price:
                marks["stream"] += 1
                execution.on_mark(symbol, mark_ticks(instrument, m.mark_price))

        paper, strategy, execution = self.paper, self.strategy, self.execution
        for topic, handler in ((book_topic(symbol), paper.on_book), (book_topic(symbol), strategy.on_book),
                               (book_topic(symbol), on_book_mid), (trade_topic(symbol), paper.on_trade),
                               (trade_topic(symbol), strategy.on_trade),
                               (mark_topic(symbol), paper.on_mark),  # funding at the capture's funding times
                               (mark_topic(symbol), strategy.on_mark),  # SDK strategies' on_mark
                               (mark_topic(symbol), on_mark),
                               (fill_topic(symbol), strategy.on_fill), (fill_topic(symbol), tape.on_fill),
                               (order_topic(symbol), strategy.on_order_update), (order_topic(symbol), tape.on_order)):
            bus.subscribe(topic, handler)
        self.position = paper.account_positions[symbol]
        self.paper_book = paper.books[symbol]
        loop = asyncio.get_running_loop()
        self.ready = getattr(loop, "_ready", None)
        """CPython's queue of runnable callbacks: a yield to the loop only when there is work (an empty yield
        per message, with its epoll call, was a tenth of the run). Another loop (uvloop) has none: then a yield
        after every message."""
        self.lines = self.snapshots = self.skipped = self.backwards = 0
        self.end_ns = first_ns
        self.elapsed = self.cpu = 0.0
        self.open_at_end: list[dict[str, Any]] = []

    def warnings(self) -> list[str]:
        """What makes the result mean less than it seems, in words (empty: nothing)."""
        out = []
        if not self.tape.mid_ts:
            out.append("the book never synced (no depth snapshot in the capture, or only other streams): "
                       "no strategy saw a book")
        return out

    def disabled(self) -> dict[str, str]:
        """The strategies the run disabled (errors in a row, a refused configuration) and why."""
        return {name: runner.disabled_reason for name, runner in sorted(self.strategy.runners.items())
                if not runner.enabled}

    def mid(self) -> int | None:
        bid, ask = self.paper_book.best_bid(), self.paper_book.best_ask()
        return (bid[0] + ask[0]) // 2 if bid is not None and ask is not None else None

    def equity(self) -> int:
        mark = self.mid()
        unrealized = self.position.unrealized_pnl(mark) if mark is not None else 0
        return self.paper.wallet - self.tape.start_wallet + unrealized

    async def drain(self) -> None:
        """Run what is runnable until nothing is (bounded: a task that yields forever must not hang us)."""
        ready = self.ready
        for _ in range(10_000):
            await asyncio.sleep(0)
            if ready is not None and not ready:
                return

    async def start(self) -> None:
        await self.execution.start()
        self.core.start()
        await self.drain()  # execution's event worker waits for events before the first message

    async def drive(self, stream: Any) -> None:
        core, clock, sleeper, tape, strategy, ready = (self.core, self.clock, self.sleeper, self.tape, self.strategy,
                                                        self.ready)
        on_message, on_snapshot, set_clock, now = core.on_message, core.on_snapshot, clock.set, clock.now_ns
        pending, symbol, drain = sleeper.pending, self.symbol, self.drain
        next_sample = last_ts = self.first_ns
        lines = snapshots = backwards = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        for ts, raw in stream:
            if ts < last_ts:  # a line stamped before the one above it: run at the clock's time, counted
                backwards += 1
            else:
                last_ts = ts
            while pending and pending[0][0] <= ts:
                sleeper.wake_one()  # an order reaches the venue (its latency is up) before this message
                await drain()
            if ts >= next_sample:
                while ts >= next_sample:  # the equity of each second of the grid, before the message passing it
                    tape.sample(next_sample, self.equity())
                    next_sample += NS_PER_S
                if ts > now():
                    set_clock(ts)
                strategy.upkeep()  # time-to-live and leases, each second of the capture's clock
            elif ts > now():
                set_clock(ts)
            if raw.startswith(b'{"lastUpdateId"'):
                on_snapshot(symbol, raw, ts)
                snapshots += 1
            else:
                on_message(raw, ts)
            lines += 1
            if ready is None or ready:
                await drain()
        self.elapsed, self.cpu = time.perf_counter() - started, time.process_time() - cpu_started
        self.lines, self.snapshots, self.backwards, self.end_ns = lines, snapshots, backwards, clock.now_ns()

    async def finish(self) -> None:
        await self.drain()
        # The data has ended: nothing happens at the venue after the last line's time. What was in flight up
        # to then happens at its time; answers and events already on their way reach the engines now; a request
        # that had not reached the venue never does (a new order in flight is reported open below, as
        # PENDING_SUBMIT, then never rests: the stop's cancel in effect), so no order meets the last book later.
        drain_venue = getattr(self.paper, "drain", None)
        ends = callable(drain_venue) and "end_ns" in inspect.signature(drain_venue).parameters
        if ends:
            drain_venue(self.end_ns)
            await self.drain()
        orders = {o.client_order_id: o for o in self.tape.open_orders()}
        for order in self.execution.open_orders(self.symbol):  # in flight: the venue has not heard of them
            orders.setdefault(order.client_order_id, order)
        self.open_at_end = [_open_order(o, self.instrument) for _, o in sorted(orders.items())]
        self.tape.sample(self.end_ns, self.equity())
        # The strategies cancel what they left working (reported above as open at the end); a venue with its own
        # timeline answers at once from now on (no data moves the clock again).
        if ends:
            self.paper.end_in_flight()
            await self.drain()
        elif callable(drain_venue):
            drain_venue()
            await self.drain()
        # Execution algorithms as they stand at the end of the data (a parent still running shows what is left).
        await self.strategy.algos.settle()
        self.algo_reports = self.strategy.algo_reports()
        stopping = asyncio.ensure_future(self.strategy.stop())
        await self.drain()
        while not stopping.done() and self.sleeper.next_wake() is not None:
            self.sleeper.wake_one()
            await self.drain()
        await stopping
        await self.execution.settle()
        await self.execution.stop()

    def result(self) -> dict[str, Any]:
        settings, tape, paper, position, first_ns, end_ns = (self.settings, self.tape, self.paper, self.position,
                                                              self.first_ns, self.end_ns)
        final_mid = self.mid()
        unrealized = position.unrealized_pnl(final_mid) if final_mid is not None else 0
        lines, elapsed, cpu = self.lines, self.elapsed, self.cpu
        return {
            "file": self.info.path.name, "symbol": self.symbol,
            "settings": {"latency_ms": settings.latency_ms,
                         "queue_model": settings.queue_model or "(venue default)", "seed": settings.seed,
                         "latency_file": str(settings.latency_file or ""),
                         "venue_ignored": sorted(k for k in self.ignored if k != "sleep"),
                         "strategies": [c.name for c in self.configs],
                         "strategy_dir": str(settings.strategy_dir or ""), "plugin_load_errors": self.plugin_errors,
                         "mark_price": "the capture's markPrice stream" if self.marks_from["stream"] else
                         "the book's mid (the capture has no markPrice stream)" if self.marks_from["book"] else "none"},
            "messages": lines, "snapshots": self.snapshots, "malformed": self.core.stats.malformed,
            "lines_skipped": self.skipped, "lines_out_of_order": self.backwards,
            "gaps": self.core.symbols[self.symbol].synced.stats.gaps,
            "capture_seconds": round((end_ns - first_ns) / NS_PER_S, 3), "start_utc_ns": first_ns,
            "end_utc_ns": end_ns, "signals": self.strategy.stats["signals"], "orders": len(tape.placed),
            "orders_refused": self.execution.stats.rejected, "fills": len(tape.fills),
            "refusal_reasons": dict(sorted(self.execution.stats.reject_codes.items())),
            "orders_filtered": self.strategy.stats["filtered"],
            "filter_reasons": dict(sorted(self.strategy.filter_reasons.items())),
            "strategy_errors": self.strategy.stats["errors"], "strategies_disabled": self.disabled(),
            "position": self.instrument.format_qty(position.qty_steps),
            "pnl": {"net_usdt": money_str(paper.wallet - tape.start_wallet + unrealized),
                    "realized_usdt": money_str(position.realized_pnl), "fees_usdt": money_str(position.fees_paid),
                    "funding_usdt": money_str(paper.funding_total), "unrealized_usdt": money_str(unrealized),
                    "funding_payments": len(paper.fundings), "start_wallet_usdt": money_str(tape.start_wallet)},
            "warnings": self.warnings(),
            "open_orders_at_end": self.open_at_end,
            "algos": self.algo_reports,
            **statistics(tape, end_ns, final_mid),
            "curve": {"units": {"t": "seconds since the capture's first message", "equity": "USDT"},
                      "t": [round((t - first_ns) / NS_PER_S, 3) for t in tape.equity_ts],
                      "equity": [money_str(e) for e in tape.equity]},
            "messages_per_s": round(lines / elapsed) if elapsed > 0 else None,
            "timing": {"wall_s": round(elapsed, 3), "cpu_s": round(cpu, 3),
                       "messages_per_cpu_s": round(lines / cpu) if cpu > 0 else None, "varies": list(VARYING_KEYS)},
        }


def _paper_venue(cls: Any, instruments: dict[str, Any], clock: Any, settings: BacktestSettings,
                 sleeper: EventSleeper) -> tuple[Any, list[str]]:
    """The paper venue with the settings it takes; the names it does not take. A venue with its own
    timeline on the event clock (`drain`: execution/paper_timing.py) is given no sleep, so its latency
    passes on the capture's clock alone; an older one sleeps on ours (EventSleeper)."""
    wanted: dict[str, Any] = {"latency_ms": settings.latency_ms, "seed": settings.seed,
                              "wallet_usdt": START_WALLET_USDT}
    if not callable(getattr(cls, "drain", None)):
        wanted["sleep"] = sleeper.sleep
    if settings.queue_model is not None:
        wanted["queue_model"] = settings.queue_model
    if settings.latency_file is not None:
        wanted["latency_file"] = settings.latency_file
    kwargs, ignored = _accepted_kwargs(cls, wanted)
    try:
        return cls(instruments, clock, **kwargs), ignored
    except (TypeError, ValueError, KeyError, OSError) as exc:  # a queue model it does not know, a bad file
        raise BacktestError(f"paper venue: {exc.args[0] if exc.args else exc}") from None


def _limits(settings: BacktestSettings, symbol: str) -> tuple[Any, Any]:
    """The strategy filter's and execution's limits: the spec's risk section, else `celeris up`'s defaults."""
    from celeris.execution.model import ExecutionConfig, PositionLimits
    from celeris.strategy.filters import FilterLimits, filter_limits

    from celeris.config.spec import default_risk

    risk = settings.risk or default_risk()  # without a spec, `celeris up`'s limits: a backtest of that paper run
    return (filter_limits(risk.exposure_limits(), risk.maxOrdersPerSecond, FilterLimits()),
            ExecutionConfig((symbol,), PositionLimits(0, risk.maxOrdersPerSecond, risk.maxLeverage),
                            exposure=risk.exposure_limits()))


def _open_order(order: Any, instrument: Any) -> dict[str, Any]:
    left = order.qty_steps - order.filled_steps
    return {"strategy": order.strategy_id, "symbol": order.symbol, "side": order.side.value,
            "price": instrument.format_price(order.price_ticks) if order.price_ticks is not None else None,
            "qty": instrument.format_qty(order.qty_steps), "open_qty": instrument.format_qty(left),
            "client_order_id": order.client_order_id, "status": order.status.value}


def with_point(settings: BacktestSettings, point: dict[str, str]) -> BacktestSettings:
    """A sweep point applied: backtest settings by name; `order_size`, or STRATEGY.order_size, to the
    strategies; any other name to every strategy's params (STRATEGY.PARAM: only that strategy's)."""
    updates: dict[str, Any] = {}
    strategies = [dict(c, params=dict(c.get("params") or {})) for c in settings.strategies]
    for name, text in point.items():
        if name == "latency_ms":
            if settings.latency_file is not None:
                raise BacktestError("--sweep latency_ms: the latency comes from --latency-file in this run")
            updates[name] = _number(name, text, float, MAX_LATENCY_MS)
        elif name == "seed":
            updates[name] = _number(name, text, int)
        elif name == "queue_model":
            updates[name] = text
        else:
            target, dot, param = name.rpartition(".")
            chosen = [c for c in strategies if not dot or c.get("name") == target]
            if dot and not chosen:
                raise BacktestError(f"--sweep {name}: no strategy named {target!r}")
            for config in chosen:
                if param == "order_size":
                    config["order_size"] = text
                else:
                    config["params"][param] = _param_value(text)
    return replace(settings, strategies=tuple(strategies), **updates)


def _number(name: str, text: str, kind: type, most: float | None = None) -> Any:
    """A non-negative finite number (at most `most`), or BacktestError in one line."""
    try:
        value = kind(text)
    except ValueError:
        raise BacktestError(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise BacktestError(f"{name} {text!r} must be a finite number, not negative")
    if most is not None and value > most:
        raise BacktestError(f"{name} {text!r} is more than {most:,.0f}")
    return value


def _param_value(text: str) -> Any:
    """A strategy parameter as written: an integer as int, true/false as bool, anything else (a decimal)
    as the string, so it never passes through a float on its way to the strategy."""
    if text.lstrip("-").isdigit():
        return int(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text

