"""The strategy engine: market data in, strategies run in isolation, signals to safe orders.

Owns, per symbol, the book top the strategies see, the strategies themselves (each call guarded: an
exception is logged and counted, `max_consecutive_errors` in a row disable the strategy, the others keep
running), signal aggregation where configured, the pre-trade risk filter (rejections published with
their reason), order generation and quote management (one working quote per strategy, symbol and side:
replaced when the strategy moves its price), the order gateway to execution, positions from fills, and
hot reload of plugin files. In observation mode signals are logged and published, nothing is sent.

Every order has an owner (celeris.strategy.owned): it is reserved before it is sent, so the filter
counts open and in-flight orders; a quote the strategy stops giving is cancelled, a directional order
is cancelled when its strategy reverses or after `order_ttl_s`; a disabled, reloaded or removed
strategy's orders are cancelled, and the engine renews its strategies' leases with execution so that,
if the engine dies, execution's orphan reaper cancels what it left.
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

from celeris.domain.topics import signal_topic
from celeris.domain.book import BookState, OrderBook
from celeris.domain.clock import Clock, utc_day_start_ns
from celeris.domain.instruments import Instrument
from celeris.domain.modes import Mode
from celeris.domain.positions import Position
from celeris.domain.signals import BookTop, FillReport, PositionReport, Signal, Strategy, Urgency
from celeris.domain.values import MONEY_SCALE, Side
from celeris.domain.messages import Fill, OrderRequest, Outcome, client_order_id_for
from celeris.domain.messages import BookUpdate, TradeUpdate
from celeris.strategy.aggregation import Aggregated, Method, aggregate_round
from celeris.strategy.filters import AccountView, FilterLimits, plan_order, risk_filter
from celeris.strategy.owned import OwnedOrders, WorkingRecord
from celeris.strategy.plugins import PluginRegistry

log = logging.getLogger(__name__)


class OrderGateway(Protocol):
    async def submit(self, request: OrderRequest) -> Outcome: ...
    async def cancel(self, request_id: str, symbol: str, client_order_id: str = "",
                     venue_order_id: int = 0) -> Outcome: ...
    # Optional: `renew_owners(owners, lease_s)` and `release_owner(owner)` (execution's orphan reaper).


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


class StrategyEngine:
    def __init__(self, configs: list[StrategyConfig], instruments: dict[str, Instrument], clock: Clock,
                 gateway: OrderGateway, publish: Callable[[str, Any], None], *, mode: Mode = Mode.OBSERVATION,
                 limits: FilterLimits | None = None, registry: PluginRegistry | None = None,
                 aggregation: Mapping[str, Method] | None = None, max_consecutive_errors: int = 5,
                 order_ttl_s: float = 5.0, lease_s: float = 5.0) -> None:
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
        self.owned = OwnedOrders(instruments)
        self.order_owner: dict[str, tuple[str, ...]] = {}
        self.order_ttl_s = order_ttl_s
        self.lease_s = lease_s
        self.order_times: deque[int] = deque()
        self.equity_peak = 0
        self.day_start_ns = 0
        self.day_realized = 0
        self.halted = False
        self._inflight: set[tuple[str, str, Side]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sequence = 0
        self.stats = {"signals": 0, "orders": 0, "filtered": 0, "rejected_by_execution": 0, "errors": 0,
                      "decision_ns_total": 0, "decisions": 0, "canceled_ttl": 0, "canceled_withdrawn": 0,
                      "canceled_reversed": 0, "canceled_owner_gone": 0}
        self.decision_latency_ns: deque[int] = deque(maxlen=10_000)
        self.filter_reasons: dict[str, int] = {}
        """Why signals were filtered (the reason's first words -> count): shown where a person looks."""
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
        self._owner_gone(name, "canceled_owner_gone")
        return runner

    @property
    def quotes(self) -> dict[tuple[str, str, Side], str]:
        """(owner, symbol, side) -> client order id of each working quote."""
        return self.owned.quotes

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
        # The fresh instance does not know the old one's orders: they go (hot reload re-quotes).
        self._cancel_records(self.owned.owned_by(name), "canceled_owner_gone", "reload")
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
        quoted: dict[str, set[Side]] = {}
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
                if signal.urgency is Urgency.PASSIVE:
                    quoted.setdefault(runner.config.name, set()).add(signal.side)
        self.stats["signals"] += len(produced)
        # A strategy that quoted this round no longer wants its quotes on the sides it left out (a market
        # maker at its inventory cap stops bidding: its resting bid must not stay).
        if self.mode is not Mode.OBSERVATION:
            for name, sides in quoted.items():
                self._cancel_records(self.owned.withdrawn_quotes(name, symbol, sides), "canceled_withdrawn",
                                     "withdrawn")
        if produced:
            method = self.aggregation.get(symbol)
            if method is None:
                decisions = [Aggregated(s, (s.strategy,)) for s in produced]
            else:
                weights = {r.config.name: max(0.1, 1 + r.realized_pnl / 10**MONEY_SCALE / 100)
                           for r in self.runners.values()}
                voting = sum(1 for r in self.runners.values() if r.config.symbol == symbol and r.enabled
                             and r.config.name not in quoted)
                decisions = aggregate_round(produced, method, weights=weights, voters=max(voting, 1))
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
        shares = tuple(ins.qty(self.runners[name].config.order_size) if name in self.runners else 0
                       for name in decision.contributors)
        size = sum(shares) // max(1, len(decision.contributors))
        plan = plan_order(signal, top, ins, size)
        if self.mode is Mode.OBSERVATION or self.halted:
            log.info("signal %s %s %.2f (%s): observed", signal.symbol, signal.side.value, signal.strength,
                     signal.strategy)
            self._publish_signal(decision, True, "", "observed")
            return
        if plan is None:
            self._publish_signal(decision, False, "size rounds to nothing tradable", "filtered")
            return
        owner = "+".join(decision.contributors)
        if signal.urgency is not Urgency.PASSIVE and not signal.reduce_only:
            for name in decision.contributors:  # its intent reversed: the other side's orders go
                self._cancel_records(self.owned.against(name, signal.symbol, signal.side), "canceled_reversed",
                                     "reversed")
        if not signal.reduce_only:
            reason = risk_filter(signal, plan.qty_steps, ins, self.instruments, self.account_view(signal.side),
                                 self.limits)
            if reason is not None:
                self.stats["filtered"] += 1
                kind = reason.split(":")[0]
                self.filter_reasons[kind] = self.filter_reasons.get(kind, 0) + 1
                self._publish_signal(decision, False, reason, "filtered")
                return
        key = (owner, signal.symbol, signal.side)
        if key in self._inflight:
            return  # the previous order for this intent is still on its way
        quote = self.owned.quote_of(owner, signal.symbol, signal.side)
        if signal.urgency is Urgency.PASSIVE and quote is not None and quote.price_ticks == plan.price_ticks:
            self._publish_signal(decision, True, "", "unchanged")
            return
        now = self.clock.now_ns()
        self._sequence += 1
        # Unique per decision: execution answers a repeated request id with its first answer.
        request_id = f"{owner}-{signal.symbol}-{signal.side.value}-{now}-{self._sequence}"
        client_id = client_order_id_for(request_id, owner)
        request = OrderRequest(request_id, signal.symbol, signal.side, plan.order_type, plan.qty_steps,
                               plan.price_ticks, plan.time_in_force, reduce_only=signal.reduce_only,
                               strategy_id=owner, client_order_id=client_id, ts_signal_ns=signal.ts_event_ns)
        # Reserved before it is sent: the next decision's filter already counts it.
        self.owned.reserve(WorkingRecord(client_id, decision.contributors, shares, signal.symbol, signal.side,
                                         plan.qty_steps, plan.price_ticks, signal.urgency is Urgency.PASSIVE, now,
                                         signal.reduce_only))
        self.order_owner[client_id] = decision.contributors
        self._inflight.add(key)
        self._publish_signal(decision, True, "", "quote" if signal.urgency is Urgency.PASSIVE else "order")
        if quote is not None:
            # A requote cancels the old quote while the new one goes out: the new order does not wait
            # for the cancel's round trip to the venue.
            self._cancel_records([quote], "", "requote")
        self._spawn(self._send(key, request))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, key: tuple[str, str, Side], request: OrderRequest) -> None:
        owner = key[0]
        try:
            self.order_times.append(self.clock.now_ns())
            self.stats["orders"] += 1
            outcome = await self.gateway.submit(request)
            if outcome.accepted and outcome.order is not None:
                if outcome.order.is_open:
                    self.owned.acknowledged(request.client_order_id)
                else:
                    self.owned.closed(request.client_order_id)
            else:
                self.owned.closed(request.client_order_id)
                self.stats["rejected_by_execution"] += 1
                reason = outcome.rejection.message if outcome.rejection else "refused"
                log.info("order for %s refused by execution: %s", owner, reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.owned.closed(request.client_order_id)
            log.exception("sending the order for %s failed", owner)
        finally:
            self._inflight.discard(key)

    def _cancel_records(self, records: list[WorkingRecord], stat: str, why: str) -> None:
        for record in records:
            if record.cancel_requested:
                continue
            record.cancel_requested = True
            if stat:
                self.stats[stat] += 1
            self._spawn(self._cancel(record, why))

    async def _cancel(self, record: WorkingRecord, why: str) -> None:
        try:
            outcome = await self.gateway.cancel(f"{why}-{record.client_order_id}", record.symbol,
                                                record.client_order_id)
            if outcome.order is not None and not outcome.order.is_open:
                self.owned.closed(record.client_order_id)
            elif not outcome.accepted:
                record.cancel_requested = False  # try again at the next occasion
        except asyncio.CancelledError:
            raise
        except Exception:
            record.cancel_requested = False
            log.exception("cancelling %s failed", record.client_order_id)

    def _owner_gone(self, name: str, stat: str) -> None:
        release = getattr(self.gateway, "release_owner", None)
        if callable(release):
            try:
                result = release(name)
                if asyncio.iscoroutine(result):
                    self._spawn(result)
            except Exception:
                log.exception("releasing owner %s failed", name)
        self._cancel_records(self.owned.owned_by(name), stat, "owner-gone")

    # -- upkeep: leases and time-to-live ------------------------------------------------------------
    def start(self) -> None:
        """The upkeep timer: leases renewed with execution, orders past their time-to-live cancelled."""
        self._spawn(self._upkeep_loop())

    def upkeep(self) -> None:
        now = self.clock.now_ns()
        self._cancel_records(self.owned.expired(now, int(self.order_ttl_s * 1e9)), "canceled_ttl", "ttl")
        renew = getattr(self.gateway, "renew_owners", None)
        if callable(renew):
            alive = [r.config.name for r in self.runners.values() if r.enabled]
            try:
                result = renew(alive, self.lease_s)
                if asyncio.iscoroutine(result):
                    self._spawn(result)
            except Exception:
                log.exception("renewing owner leases failed")

    async def _upkeep_loop(self) -> None:
        while True:
            try:
                self.upkeep()
            except Exception:
                log.exception("strategy upkeep failed")
            await asyncio.sleep(min(1.0, self.lease_s / 3))

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
        # Each owner is credited its share of the fill (by contribution), in its own position and PnL.
        for name, qty, pnl in self.owned.fill(fill.client_order_id, fill.symbol, fill.side, fill.qty_steps,
                                              fill.price_ticks, fill.commission):
            runner = self.runners.get(name)
            if runner is None:
                continue
            runner.realized_pnl += pnl
            self._call(runner, "on_order_fill", FillReport(fill.symbol, fill.client_order_id, fill.side, qty,
                                                           fill.price_ticks, fill.commission, fill.is_maker,
                                                           fill.ts_event_ns, name))
            own = self.owned.position_of(name, fill.symbol)
            mark = self.mark(fill.symbol)
            self._call(runner, "on_position_update",
                       PositionReport(fill.symbol, own.qty_steps, str(own.entry_price),
                                      own.unrealized_pnl(mark) if mark and own.qty_steps else 0, fill.ts_event_ns))

    def on_order_closed(self, client_order_id: str) -> None:
        """An order that is no longer working (filled, cancelled, expired) stops counting and being a quote."""
        self.owned.closed(client_order_id)

    def on_order_update(self, order: Any) -> None:
        """Execution's order updates (the bus in-process, its stream as a service)."""
        if order.is_open:
            self.owned.acknowledged(order.client_order_id)
        else:
            self.owned.closed(order.client_order_id)

    def mark(self, symbol: str) -> int | None:
        mid = self.books[symbol].mid()
        return int(mid) if mid is not None else None

    def _roll_day(self) -> None:
        start = utc_day_start_ns(self.clock.now_ns())
        if start != self.day_start_ns:
            self.day_start_ns, self.day_realized = start, 0

    def account_view(self, side: Side | None = None) -> AccountView:
        """Positions as if every working order on `side` filled (the worst case the filter judges)."""
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
        worst = {}
        for s, book in self.owned.ledger.symbols.items():
            book.position_steps = self.positions[s].qty_steps
            if side is Side.BUY:
                worst[s] = book.worst_long()
            elif side is Side.SELL:
                worst[s] = book.worst_short()
            else:
                worst[s] = book.position_steps
        return AccountView(worst, marks, self.day_realized + unrealized, drawdown, len(self.order_times))

    async def stop(self) -> None:
        """Stop deciding and cancel every order the strategies own (stopping the system leaves none)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("strategy task failed at stop")
        await self.cancel_quotes()

    async def cancel_quotes(self) -> None:
        """Cancel every working order of every strategy (halt, stop)."""
        records = list(self.owned.working.values())
        results = await asyncio.gather(*(self.gateway.cancel(f"cancel-{r.client_order_id}", r.symbol,
                                                             r.client_order_id) for r in records),
                                       return_exceptions=True)
        for record, result in zip(records, results):
            if not isinstance(result, BaseException) and result.order is not None and not result.order.is_open:
                self.owned.closed(record.client_order_id)


def decision_percentiles(samples: deque[int] | list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"p50_us": 0.0, "p99_us": 0.0}
    return {"p50_us": ordered[len(ordered) // 2] / 1000, "p99_us": ordered[int(len(ordered) * 0.99)] / 1000}

