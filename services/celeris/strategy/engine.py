"""The strategy engine: market data in, strategies run in isolation, signals to safe orders.

Owns, per symbol, the book top the strategies see, decisions (signal aggregation where configured, the
pre-trade risk filter, rejections published with their reason), positions and PnL per strategy from
fills, and the upkeep loop. The engine is a facade over two mixins: the roster (strategy/roster.py:
strategies added, enabled, reloaded and called guarded, hot reload of plugins) and the orders
(strategy/orders.py: one working quote per strategy, symbol and side, directional orders with a time to
live, sends and cancels). In observation mode signals are logged and published, nothing is sent.
SDK strategies (celeris.domain.sdk, the built-ins among them) are run by two more mixins, the SDK driver
(strategy/sdk_driver.py) and its intents (strategy/sdk_intents.py): the book at their depth, trades, marks, timers, their own order updates and
fills, and their queued intents executed through the same filter and ownership.

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
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Mapping, Protocol

from celeris.domain import sdk_types
from celeris.runtime.eager import start_eager
from celeris.domain.topics import signal_topic
from celeris.domain.book import BookState, OrderBook
from celeris.domain.clock import Clock, utc_day_start_ns
from celeris.domain.instruments import Instrument
from celeris.domain.modes import Mode
from celeris.domain.positions import Position
from celeris.domain.signals import BookTop, FillReport, PositionReport, Signal, Urgency
from celeris.domain.values import MONEY_SCALE, Side
from celeris.domain.messages import Fill, OrderRequest, Outcome
from celeris.domain.messages import BookUpdate, TradeUpdate
from celeris.strategy.aggregation import Aggregated, Method, aggregate_round
from celeris.strategy.engine_algos import EngineAlgos
from celeris.strategy.filters import AccountView, FilterLimits
from celeris.strategy.owned import OrderOwners, OwnedOrders
from celeris.strategy.model import Runner, StrategyConfig
from celeris.strategy.orders import OrderIntents
from celeris.strategy.plugins import PluginRegistry
from celeris.strategy.roster import StrategyRoster
from celeris.strategy.sdk_driver import SdkDriver
from celeris.strategy.sdk_intents import SdkIntents
from celeris.domain.stats import percentile

log = logging.getLogger(__name__)


RESULT = "on_market_data's result"
"""The error count of what on_market_data returns (it can succeed and return garbage every time)."""


class OrderGateway(Protocol):
    async def submit(self, request: OrderRequest) -> Outcome: ...
    async def cancel(self, request_id: str, symbol: str, client_order_id: str = "",
                     venue_order_id: int = 0) -> Outcome: ...
    # Optional: `renew_owners(owners, lease_s)` and `release_owner(owner)` (execution's orphan reaper).


@dataclass(frozen=True)
class SignalEvent:
    """What is published on `signals.{symbol}`: a signal and what the engine did with it."""

    signal: Signal
    contributors: tuple[str, ...]
    approved: bool
    rejection_reason: str
    action: str  # "order", "quote", "observed", "filtered", "unchanged"


class StrategyEngine(StrategyRoster, OrderIntents, SdkDriver, SdkIntents, EngineAlgos):
    def __init__(self, configs: list[StrategyConfig], instruments: dict[str, Instrument], clock: Clock,
                 gateway: OrderGateway, publish: Callable[[str, Any], None], *, mode: Mode = Mode.OBSERVATION,
                 limits: FilterLimits | None = None, registry: PluginRegistry | None = None,
                 aggregation: Mapping[str, Method] | None = None, max_consecutive_errors: int = 5,
                 order_ttl_s: float = 5.0, lease_s: float = 5.0,
                 books: Mapping[str, OrderBook] | None = None) -> None:
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
        self.shared_books = books is not None
        """Market data's own books, read-only (in one process): the update is already applied to them when it
        is published, so the engine keeps no copy of its own and applies nothing (one book per symbol)."""
        self.books = {s: books[s] for s in instruments} if books is not None else {s: OrderBook(s) for s in instruments}
        self.live = {s: False for s in instruments}
        self.net_taker: dict[str, deque[tuple[int, int]]] = {s: deque() for s in instruments}
        self.net_taker_sum: dict[str, int] = {s: 0 for s in instruments}
        """Running sum of net_taker's quantities: summing the window per decision cost ~110 us."""
        self.last_trade: dict[str, int] = {}
        self.received_ns: dict[str, int] = {}
        """When the market data behind the current top arrived (tick-to-order starts there)."""
        self.positions = {s: Position(ins) for s, ins in instruments.items()}
        self.owned = OwnedOrders(instruments)
        self.order_ttl_s = order_ttl_s
        self.lease_s = lease_s
        self.order_times: deque[int] = deque()
        self.equity_peak = 0
        self.day_start_ns = 0
        self.day_realized = 0
        self.halted = False
        self._inflight: set[tuple[str, str, Side]] = set()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._outbox: list[Any] | None = None
        self._flushing: list[Any] | None = None
        """While a book's order actions are being started: that list (a nested book's actions join its end)."""
        """While a book is dispatched: the order actions it caused, started eagerly once the dispatch is done
        (start_eager: checked, signed and written before the other subscribers of that book run)."""
        self._sequence = 0
        self.stimulus_ns = 0
        """While a book is dispatched to the SDK strategies, its receipt time: an order placed on it carries it
        as ts_signal_ns (execution's tick-to-order starts there, not when the order was decided)."""
        self.sdk_owner = OrderOwners()
        """client order id -> the SDK strategy that placed it (its updates and fills go to it); bounded."""
        self._deferred_cancels: set[str] = set()
        """SDK orders the strategy cancelled before their acknowledgement: cancelled when it comes."""
        self.stats = {"signals": 0, "orders": 0, "filtered": 0, "rejected_by_execution": 0, "errors": 0,
                      "decision_ns_total": 0, "decisions": 0, "canceled_ttl": 0, "canceled_withdrawn": 0,
                      "canceled_reversed": 0, "canceled_owner_gone": 0}
        self.decision_latency_ns: deque[int] = deque(maxlen=10_000)
        self.filter_reasons: dict[str, int] = {}
        """Why signals were filtered (the reason's first words -> count): shown where a person looks."""
        self._init_algos()
        for config in configs:
            self.add(config)

    def on_trade(self, trade: TradeUpdate) -> None:
        flows = self.net_taker.get(trade.symbol)
        if flows is None:
            return
        self.run_timers()
        qty = -trade.qty_steps if trade.buyer_is_maker else trade.qty_steps
        flows.append((trade.ts_event_ns, qty))
        total = self.net_taker_sum[trade.symbol] + qty
        horizon = trade.ts_event_ns - 10_000_000_000
        while flows and flows[0][0] < horizon:
            total -= flows.popleft()[1]
        self.net_taker_sum[trade.symbol] = total
        self.last_trade[trade.symbol] = trade.price_ticks
        self.algos.on_trade(trade)
        self._sdk_trade(trade)

    def on_book(self, update: BookUpdate) -> None:
        if update.symbol not in self.books:
            return
        if self._outbox is not None:  # a book published from inside a dispatch: no eager start nested in it
            self._on_book(update)
            return
        self._outbox = []
        try:
            self._on_book(update)
        finally:
            outbox, self._outbox = self._outbox, None
            if self._flushing is not None:
                # A book published while an earlier book's orders are being started (from inside one of
                # them): its orders go after the rest of that book's, never overtaking them.
                self._flushing.extend(outbox)
            else:
                self._flush(outbox)

    def _flush(self, outbox: list[Any]) -> None:
        self._flushing = outbox
        try:
            i = 0
            while i < len(outbox):
                coro = outbox[i]
                i += 1
                try:
                    self._track(start_eager(coro))
                except BaseException:  # KeyboardInterrupt/SystemExit: the rest were reserved, they stay tasks
                    for rest in outbox[i:]:
                        self._spawn(rest)
                    raise
        finally:
            self._flushing = None

    def _on_book(self, update: BookUpdate) -> None:
        book = self.books[update.symbol]
        self.run_timers()
        if update.state is not BookState.LIVE:
            self.live[update.symbol] = False  # no decisions on a stale book
            self.algos.on_book(update)  # nor a price for a parent to start or trade at
            return
        if self.shared_books:
            pass
        elif update.snapshot:
            book.apply_snapshot(update.bids, update.asks, update.update_id)
        else:
            book.apply_diff(update.bids, update.asks, update.update_id)
        self.live[update.symbol] = True
        self.received_ns[update.symbol] = update.ts_recv_ns or self.clock.now_ns()
        self.decide(update.symbol)
        top = self.top(update.symbol)
        if top is not None:
            # The parents first: one an SDK strategy starts on this book arrives at this top.
            self.algos.on_top(update.symbol, top.bid_ticks, top.bid_steps, top.ask_ticks, top.ask_steps)
            self.stimulus_ns = self.received_ns[update.symbol]
            try:
                self._sdk_book(update.symbol)
            finally:
                self.stimulus_ns = 0

    def top(self, symbol: str) -> BookTop | None:
        book = self.books[symbol]
        bid, ask = book.best_bid(), book.best_ask()
        if not self.live[symbol] or bid is None or ask is None or bid[0] >= ask[0]:
            return None
        return BookTop(symbol, self.received_ns.get(symbol) or self.clock.now_ns(), bid[0], bid[1], ask[0], ask[1],
                       self.last_trade.get(symbol),
                       self.net_taker_sum[symbol])

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
            if runner.config.symbol != symbol or not runner.enabled or runner.context is not None:
                continue  # SDK strategies get the book itself (SdkDriver)
            voters += 1
            signals = self._call(runner, "on_market_data", top)
            if not signals:
                continue
            for signal in signals:
                if not isinstance(signal, Signal) or signal.symbol != symbol:
                    self._strategy_error(runner, f"returned {signal!r}, not a Signal for {symbol}", RESULT)
                    continue
                if runner.failing:
                    self._succeeded(runner, RESULT)
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
                             and r.context is None and r.config.name not in quoted)
                decisions = aggregate_round(produced, method, weights=weights, voters=max(voting, 1))
            for decision in decisions:
                self._act(decision, top)
        elapsed = time.perf_counter_ns() - start
        self.stats["decision_ns_total"] += elapsed
        self.stats["decisions"] += 1
        self.decision_latency_ns.append(elapsed)

    # -- decisions -> orders ---------------------------------------------------------------------
    def start(self) -> None:
        """The upkeep timer: leases renewed with execution, orders past their time-to-live cancelled."""
        self._spawn(self._upkeep_loop())
        self._spawn(self._timer_loop())

    def upkeep(self) -> None:
        now = self.clock.now_ns()
        self.run_timers()
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
        fee = fill.margin_commission  # a BNB commission leaves the USDT PnL alone (the venue's fee discount)
        result = self.positions[fill.symbol].apply_fill(fill.side, fill.qty_steps, fill.price_ticks, fee)
        self._roll_day()
        self.day_realized += result.realized_pnl - fee
        # Each owner is credited its share of the fill (by contribution), in its own position and PnL.
        shares = self.owned.fill(fill.client_order_id, fill.symbol, fill.side, fill.qty_steps, fill.price_ticks, fee)
        owner = self.sdk_owner.get(fill.client_order_id)
        if not shares and owner is not None:
            # A fill of an SDK order already closed here (it raced the cancel's answer): still its own.
            own = self.owned.position_of(owner, fill.symbol).apply_fill(fill.side, fill.qty_steps, fill.price_ticks, fee)
            shares = [(owner, fill.qty_steps, own.realized_pnl - fee)]
        for name, qty, pnl in shares:
            runner = self.runners.get(name)
            if runner is None:
                continue
            runner.realized_pnl += pnl
            if runner.context is not None:
                self._sdk_fill(name, fill.client_order_id, fill.symbol, fill.side, qty, fill.price_ticks,
                               fee if qty == fill.qty_steps else fee * qty // fill.qty_steps, fill.is_maker,
                               fill.ts_event_ns)
                continue
            self._call(runner, "on_order_fill", FillReport(fill.symbol, fill.client_order_id, fill.side, qty,
                                                           fill.price_ticks, fill.commission, fill.is_maker,
                                                           fill.ts_event_ns, name))
            own = self.owned.position_of(name, fill.symbol)
            mark = self.mark(fill.symbol)
            self._call(runner, "on_position_update",
                       PositionReport(fill.symbol, own.qty_steps, str(own.entry_price),
                                      own.unrealized_pnl(mark) if mark and own.qty_steps else 0, fill.ts_event_ns))
        self.algos.on_fill(fill)  # after the owner's credit: its on_algo sees the position with the fill

    def on_order_closed(self, client_order_id: str) -> None:
        """An order that is no longer working (filled, cancelled, expired) stops counting and being a quote."""
        self._order_closed(client_order_id)

    def on_order_update(self, order: Any) -> None:
        """Execution's order updates (the bus in-process, its stream as a service)."""
        if order.is_open:
            self.owned.acknowledged(order.client_order_id)
            self._sdk_move(order.client_order_id, sdk_types.OrderState.WORKING, "accepted",
                           only_from=sdk_types.OrderState.PENDING)
        else:
            self._order_closed(order.client_order_id, order.status, order.reject_reason)
        self.algos.on_order_update(order)

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
        await self.algos.stop()  # every parent stops, its working child cancelled, before the tasks go
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

def decision_percentiles(samples: deque[int] | list[int]) -> dict[str, float]:
    return {"p50_us": (percentile(samples, 0.5) or 0) / 1000, "p99_us": (percentile(samples, 0.99) or 0) / 1000}

