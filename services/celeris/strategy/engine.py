"""The strategy engine: market data in, strategies run in isolation, signals to safe orders.

Owns, per symbol, the book top the strategies see, the strategies themselves (each call guarded: an
exception is logged and counted, `max_consecutive_errors` in a row disable the strategy, the others keep
running), signal aggregation where configured, the pre-trade risk filter (rejections published with
their reason), order generation and quote management (one working quote per strategy, symbol and side:
replaced when the strategy moves its price), the order gateway to execution, positions from fills, and
hot reload of plugin files. In observation mode signals are logged and published, nothing is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Mapping, Protocol

from celeris.domain.book import BookState, OrderBook
from celeris.domain.clock import Clock, utc_day_start_ns
from celeris.domain.instruments import Instrument
from celeris.domain.modes import Mode
from celeris.domain.positions import Position
from celeris.domain.signals import BookTop, FillReport, PositionReport, Signal, Strategy, Urgency
from celeris.domain.values import MONEY_SCALE, Side
from celeris.execution.model import Fill, OrderRequest, Outcome
from celeris.marketdata.model import BookUpdate, TradeUpdate
from celeris.strategy.aggregation import Aggregated, Method, aggregate
from celeris.strategy.filters import AccountView, FilterLimits, plan_order, risk_filter
from celeris.strategy.plugins import PluginRegistry

log = logging.getLogger(__name__)


class OrderGateway(Protocol):
    async def submit(self, request: OrderRequest) -> Outcome: ...
    async def cancel(self, request_id: str, symbol: str, client_order_id: str = "",
                     venue_order_id: int = 0) -> Outcome: ...


@dataclass(frozen=True)
class StrategyConfig:
    name: str
    type: str
    symbol: str
    order_size: str
    """Order size at full strength, a decimal string in the base asset ("0.001")."""
    params: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True


@dataclass
class Runner:
    config: StrategyConfig
    strategy: Strategy
    enabled: bool = True
    disabled_reason: str = ""
    signals: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    realized_pnl: int = 0


@dataclass(frozen=True)
class SignalEvent:
    """What is published on `signals.{symbol}`: a signal and what the engine did with it."""

    signal: Signal
    contributors: tuple[str, ...]
    approved: bool
    rejection_reason: str
    action: str  # "order", "quote", "observed", "filtered", "unchanged"


def signal_topic(symbol: str) -> str:
    return f"signals.{symbol}"


@dataclass
class _Quote:
    client_order_id: str
    price_ticks: int


class StrategyEngine:
    def __init__(self, configs: list[StrategyConfig], instruments: dict[str, Instrument], clock: Clock,
                 gateway: OrderGateway, publish: Callable[[str, Any], None], *, mode: Mode = Mode.OBSERVATION,
                 limits: FilterLimits | None = None, registry: PluginRegistry | None = None,
                 aggregation: Mapping[str, Method] | None = None, max_consecutive_errors: int = 5) -> None:
        self.instruments = instruments
        self.clock = clock
        self.gateway = gateway
        self.publish = publish
        self.mode = mode
        self.limits = limits or FilterLimits()
        self.registry = registry or PluginRegistry()
        self.aggregation = dict(aggregation or {})
        self.max_consecutive_errors = max_consecutive_errors
        self.runners: dict[str, Runner] = {}
        self.books = {s: OrderBook(s) for s in instruments}
        self.live = {s: False for s in instruments}
        self.net_taker: dict[str, deque[tuple[int, int]]] = {s: deque() for s in instruments}
        self.last_trade: dict[str, int] = {}
        self.received_ns: dict[str, int] = {}
        """When the market data behind the current top arrived (tick-to-order starts there)."""
        self.positions = {s: Position(ins) for s, ins in instruments.items()}
        self.quotes: dict[tuple[str, str, Side], _Quote] = {}
        self.order_owner: dict[str, tuple[str, ...]] = {}
        self.order_times: deque[int] = deque()
        self.equity_peak = 0
        self.day_start_ns = 0
        self.day_realized = 0
        self.halted = False
        self._inflight: set[tuple[str, str, Side]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sequence = 0
        self.stats = {"signals": 0, "orders": 0, "filtered": 0, "rejected_by_execution": 0, "errors": 0,
                      "decision_ns_total": 0, "decisions": 0}
        self.decision_latency_ns: deque[int] = deque(maxlen=10_000)
        for config in configs:
            self.add(config)

    # -- strategies ------------------------------------------------------------------------------
    def add(self, config: StrategyConfig) -> Runner:
        if config.symbol not in self.instruments:
            raise ValueError(f"strategy {config.name}: unknown symbol {config.symbol}")
        if config.name in self.runners:
            raise ValueError(f"strategy name {config.name!r} is used twice")
        self.instruments[config.symbol].qty(config.order_size)  # refuses an off-step size now, not later
        strategy = self.registry.create(config.type)
        strategy.initialize({"symbol": config.symbol, "order_size": config.order_size, "params": dict(config.params)})
        runner = Runner(config, strategy, enabled=config.enabled)
        self.runners[config.name] = runner
        return runner

    def enable(self, name: str) -> Runner:
        runner = self.runners[name]
        runner.enabled, runner.disabled_reason, runner.consecutive_errors = True, "", 0
        return runner

    def disable(self, name: str, reason: str = "disabled by request") -> Runner:
        runner = self.runners[name]
        runner.enabled, runner.disabled_reason = False, reason
        return runner

    def reload(self, name: str) -> Runner:
        """A fresh instance of the strategy's (possibly new) class; state handed over if it wants it."""
        runner = self.runners[name]
        source = self.registry.sources.get(runner.config.type)
        if source is not None and source.path is not None:
            self.registry.reload(source.path)
        old_state = dict(runner.strategy.get_state())
        fresh = self.registry.create(runner.config.type)
        fresh.initialize({"symbol": runner.config.symbol, "order_size": runner.config.order_size,
                          "params": dict(runner.config.params)})
        restore = getattr(fresh, "restore", None)
        if callable(restore):
            restore(old_state)
        runner.strategy = fresh
        runner.consecutive_errors = 0
        log.info("strategy %s reloaded (%s)", name, "state handed over" if callable(restore) else "state reset")
        return runner

    def reconfigure(self, configs: list[StrategyConfig]) -> list[str]:
        """Apply changed parameters, sizes or enablement of configured strategies (no restart); returns
        the names that changed. New names are added; a strategy missing from `configs` is disabled."""
        changed = []
        wanted = {c.name: c for c in configs}
        for config in configs:  # all or nothing: refuse an unknown symbol or off-step size before changing any
            if config.symbol not in self.instruments:
                raise ValueError(f"strategy {config.name}: no instrument {config.symbol}")
            self.instruments[config.symbol].qty(config.order_size)
        for name, config in wanted.items():
            runner = self.runners.get(name)
            if runner is None:
                self.add(config)
                changed.append(name)
                continue
            if config == runner.config:
                continue
            runner.config = config
            self.reload(name)
            runner.enabled = config.enabled
            changed.append(name)
        for name, runner in self.runners.items():
            if name not in wanted and runner.enabled:
                self.disable(name, "removed from the configuration")
                changed.append(name)
        return changed

    def reload_changed(self) -> list[str]:
        """Reload every strategy whose plugin file changed on disk (hot reload)."""
        reloaded = []
        for path in self.registry.changed_files():
            types = self.registry.reload(path)
            for runner in self.runners.values():
                if runner.config.type in types:
                    self.reload(runner.config.name)
                    reloaded.append(runner.config.name)
        return reloaded

    async def watch_plugins(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.reload_changed()

    def _call(self, runner: Runner, method: str, *args: Any) -> Any:
        try:
            result = getattr(runner.strategy, method)(*args)
            runner.consecutive_errors = 0
            return result
        except Exception as exc:
            self._strategy_error(runner, f"{method}: {exc!r}")
            return None

    def _strategy_error(self, runner: Runner, what: str) -> None:
        runner.errors += 1
        runner.consecutive_errors += 1
        self.stats["errors"] += 1
        log.error("strategy %s failed: %s", runner.config.name, what)
        if runner.consecutive_errors >= self.max_consecutive_errors:
            self.disable(runner.config.name, f"{runner.consecutive_errors} consecutive errors, last: {what}")

    # -- market data -----------------------------------------------------------------------------
    def on_trade(self, trade: TradeUpdate) -> None:
        flows = self.net_taker.get(trade.symbol)
        if flows is None:
            return
        flows.append((trade.ts_event_ns, -trade.qty_steps if trade.buyer_is_maker else trade.qty_steps))
        horizon = trade.ts_event_ns - 10_000_000_000
        while flows and flows[0][0] < horizon:
            flows.popleft()
        self.last_trade[trade.symbol] = trade.price_ticks

    def on_book(self, update: BookUpdate) -> None:
        book = self.books.get(update.symbol)
        if book is None:
            return
        if update.state is not BookState.LIVE:
            self.live[update.symbol] = False  # no decisions on a stale book
            return
        if update.snapshot:
            book.apply_snapshot(update.bids, update.asks, update.update_id)
        else:
            book.apply_diff(update.bids, update.asks, update.update_id)
        self.live[update.symbol] = True
        self.received_ns[update.symbol] = update.ts_recv_ns or self.clock.now_ns()
        self.decide(update.symbol)

    def top(self, symbol: str) -> BookTop | None:
        book = self.books[symbol]
        bid, ask = book.best_bid(), book.best_ask()
        if not self.live[symbol] or bid is None or ask is None or bid[0] >= ask[0]:
            return None
        return BookTop(symbol, self.received_ns.get(symbol) or self.clock.now_ns(), bid[0], bid[1], ask[0], ask[1],
                       self.last_trade.get(symbol),
                       sum(q for _, q in self.net_taker[symbol]))

    def decide(self, symbol: str) -> None:
        """Run every enabled strategy of the symbol on its top of book and act on what they say."""
        start = time.perf_counter_ns()
        top = self.top(symbol)
        if top is None:
            return
        produced: list[Signal] = []
        voters = 0
        for runner in self.runners.values():
            if runner.config.symbol != symbol or not runner.enabled:
                continue
            voters += 1
            signals = self._call(runner, "on_market_data", top)
            if not signals:
                continue
            for signal in signals:
                if not isinstance(signal, Signal) or signal.symbol != symbol:
                    self._strategy_error(runner, f"returned {signal!r}, not a Signal for {symbol}")
                    continue
                runner.signals += 1
                if signal.strategy != runner.config.name:
                    # Attribute it to this configured instance (several may share one strategy type).
                    signal = dataclasses.replace(signal, strategy=runner.config.name)
                produced.append(signal)
        self.stats["signals"] += len(produced)
        if produced:
            method = self.aggregation.get(symbol)
            if method is None:
                decisions = [Aggregated(s, (s.strategy,)) for s in produced]
            else:
                weights = {r.config.name: max(0.1, 1 + r.realized_pnl / 10**MONEY_SCALE / 100)
                           for r in self.runners.values()}
                combined = aggregate(produced, method, weights=weights, voters=voters)
                decisions = [combined] if combined else []
            for decision in decisions:
                self._act(decision, top)
        elapsed = time.perf_counter_ns() - start
        self.stats["decision_ns_total"] += elapsed
        self.stats["decisions"] += 1
        self.decision_latency_ns.append(elapsed)

    # -- decisions -> orders ---------------------------------------------------------------------
    def _act(self, decision: Aggregated, top: BookTop) -> None:
        signal = decision.signal
        ins = self.instruments[signal.symbol]
        size = sum(ins.qty(self.runners[name].config.order_size) for name in decision.contributors
                   if name in self.runners) // max(1, len(decision.contributors))
        plan = plan_order(signal, top, ins, size)
        if self.mode is Mode.OBSERVATION or self.halted:
            log.info("signal %s %s %.2f (%s): observed", signal.symbol, signal.side.value, signal.strength,
                     signal.strategy)
            self._publish_signal(decision, True, "", "observed")
            return
        if plan is None:
            self._publish_signal(decision, False, "size rounds to nothing tradable", "filtered")
            return
        reason = risk_filter(signal, plan.qty_steps, ins, self.instruments, self.account_view(), self.limits)
        if reason is not None:
            self.stats["filtered"] += 1
            self._publish_signal(decision, False, reason, "filtered")
            return
        owner = "+".join(decision.contributors)
        key = (owner, signal.symbol, signal.side)
        if key in self._inflight:
            return  # the previous order for this quote is still on its way
        quote = self.quotes.get(key)
        if signal.urgency is Urgency.PASSIVE and quote is not None and quote.price_ticks == plan.price_ticks:
            self._publish_signal(decision, True, "", "unchanged")
            return
        self._inflight.add(key)
        self._publish_signal(decision, True, "", "quote" if signal.urgency is Urgency.PASSIVE else "order")
        task = asyncio.ensure_future(self._send(key, decision, plan, quote))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, key: tuple[str, str, Side], decision: Aggregated, plan: Any, quote: _Quote | None) -> None:
        owner, symbol, side = key
        try:
            now = self.clock.now_ns()
            self._sequence += 1
            # Unique per decision: execution answers a repeated request id with its first answer.
            request = OrderRequest(f"{owner}-{symbol}-{side.value}-{now}-{self._sequence}", symbol, side,
                                   plan.order_type, plan.qty_steps, plan.price_ticks, plan.time_in_force,
                                   strategy_id=owner, ts_signal_ns=decision.signal.ts_event_ns)
            self.order_times.append(now)
            self.stats["orders"] += 1
            # A requote cancels the old quote while the new one goes out: the new order does not wait
            # for the cancel's round trip to the venue.
            if quote is not None:
                self.quotes.pop(key, None)
                cancel = asyncio.ensure_future(
                    self.gateway.cancel(f"requote-{quote.client_order_id}", symbol, quote.client_order_id))
                self._tasks.add(cancel)
                cancel.add_done_callback(self._tasks.discard)
            outcome = await self.gateway.submit(request)
            if outcome.accepted and outcome.order is not None:
                self.order_owner[outcome.order.client_order_id] = decision.contributors
                if outcome.order.is_open and decision.signal.urgency is Urgency.PASSIVE:
                    self.quotes[key] = _Quote(outcome.order.client_order_id, plan.price_ticks)
            else:
                self.stats["rejected_by_execution"] += 1
                reason = outcome.rejection.message if outcome.rejection else "refused"
                log.info("order for %s refused by execution: %s", owner, reason)
        except Exception:
            log.exception("sending the order for %s failed", owner)
        finally:
            self._inflight.discard(key)

    def _publish_signal(self, decision: Aggregated, approved: bool, reason: str, action: str) -> None:
        self.publish(signal_topic(decision.signal.symbol),
                     SignalEvent(decision.signal, decision.contributors, approved, reason, action))

    # -- fills and account -----------------------------------------------------------------------
    def on_fill(self, fill: Fill) -> None:
        if fill.symbol not in self.positions:
            return
        result = self.positions[fill.symbol].apply_fill(fill.side, fill.qty_steps, fill.price_ticks, fill.commission)
        self._roll_day()
        self.day_realized += result.realized_pnl - fill.commission
        owners = self.order_owner.get(fill.client_order_id, ())
        report = FillReport(fill.symbol, fill.client_order_id, fill.side, fill.qty_steps, fill.price_ticks,
                            fill.commission, fill.is_maker, fill.ts_event_ns, fill.strategy_id)
        position = self.positions[fill.symbol]
        for name in owners:
            runner = self.runners.get(name)
            if runner is None:
                continue
            runner.realized_pnl += result.realized_pnl - fill.commission
            self._call(runner, "on_order_fill", report)
        mark = self.mark(fill.symbol)
        update = PositionReport(fill.symbol, position.qty_steps, str(float(position.entry_price)),
                                position.unrealized_pnl(mark) if mark else 0, fill.ts_event_ns)
        for runner in self.runners.values():
            if runner.config.symbol == fill.symbol and runner.config.name not in owners:
                self._call(runner, "on_position_update", update)

    def on_order_closed(self, client_order_id: str) -> None:
        """A quote that is no longer working (filled, cancelled, expired) stops being our quote."""
        for key, quote in list(self.quotes.items()):
            if quote.client_order_id == client_order_id:
                del self.quotes[key]

    def mark(self, symbol: str) -> int | None:
        mid = self.books[symbol].mid()
        return int(mid) if mid is not None else None

    def _roll_day(self) -> None:
        start = utc_day_start_ns(self.clock.now_ns())
        if start != self.day_start_ns:
            self.day_start_ns, self.day_realized = start, 0

    def account_view(self) -> AccountView:
        now = self.clock.now_ns()
        while self.order_times and self.order_times[0] < now - 60_000_000_000:
            self.order_times.popleft()
        self._roll_day()
        marks = {s: m for s in self.instruments if (m := self.mark(s)) is not None}
        unrealized = sum(p.unrealized_pnl(marks[s]) for s, p in self.positions.items() if s in marks and p.qty_steps)
        pnl = sum(p.realized_pnl - p.fees_paid for p in self.positions.values()) + unrealized
        self.equity_peak = max(self.equity_peak, pnl)
        capital = self.limits.max_total_exposure_usdt or 1
        drawdown = Fraction(max(0, self.equity_peak - pnl) * 100, capital)
        return AccountView({s: p.qty_steps for s, p in self.positions.items()}, marks, self.day_realized + unrealized,
                           drawdown, len(self.order_times))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def cancel_quotes(self) -> None:
        for key, quote in list(self.quotes.items()):
            await self.gateway.cancel(f"cancel-{quote.client_order_id}", key[1], quote.client_order_id)
            self.quotes.pop(key, None)


def decision_percentiles(samples: deque[int] | list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"p50_us": 0.0, "p99_us": 0.0}
    return {"p50_us": ordered[len(ordered) // 2] / 1000, "p99_us": ordered[int(len(ordered) * 0.99)] / 1000}

