"""The strategy engine's side of the SDK (celeris.domain.sdk): running strategies that own their orders.

Owns, for each SDK strategy, its context (bound at add, kept across hot reloads), the dispatch of market
data (the book at its declared depth, trades, marks), timers on the engine's clock, and the draining of
the intents it queued after each callback (each call guarded as the roster guards every strategy call;
updates caused while draining are told once the drain is done, and a strategy that keeps answering its
own updates is stopped). The intents themselves become orders in strategy/sdk_intents.py.

A mixin of StrategyEngine: the state it works on (runners, owned orders, gateway, clock) is the engine's.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

from celeris.domain import sdk
from celeris.domain.messages import MarkUpdate, TradeUpdate
from celeris.domain.sdk_types import BookView, MarkTick, TradeTick
from celeris.domain.values import Side
from celeris.strategy.model import Runner
from celeris.strategy.owned import StrategyBook

log = logging.getLogger("celeris.strategy.engine")

MAX_DRAIN_ROUNDS = 32
"""Callbacks answering updates answering callbacks in one event: beyond this a strategy is looping."""


class SdkDriver:
    # -- binding ----------------------------------------------------------------------------------
    def _bind_sdk(self, runner: Runner, context: sdk.StrategyContext | None = None) -> None:
        name = runner.config.name
        if context is None:
            book = self.owned.books.setdefault(name, StrategyBook())
            context = sdk.StrategyContext(name, self.instruments, self.clock, book.positions, self.mark)
        context.algo_progress = lambda algo_id: self._algo_progress(name, algo_id)
        runner.context = context
        runner.strategy.bind(context)

    # -- dispatch ---------------------------------------------------------------------------------
    def _sdk_runners(self, symbol: str | None = None) -> list[Runner]:
        return [r for r in self.runners.values() if r.context is not None and r.enabled
                and (symbol is None or r.config.symbol == symbol)]

    def _sdk_call(self, runner: Runner, method: str | None, *args: Any) -> None:
        if not runner.enabled:
            return
        if not runner.started:
            runner.started = True
            errors = runner.errors
            self._call(runner, "on_start")
            if runner.errors > errors:  # a strategy whose set-up failed would run half made: it stops here
                runner.context.intents.clear()
                self.disable(runner.config.name, f"on_start failed: {runner.last_error}")
                return
            self._drain(runner)
        if method is not None and runner.enabled:
            self._call(runner, method, *args)
            self._drain(runner)

    def _sdk_book(self, symbol: str) -> None:
        book = self.books[symbol]
        ts = self.received_ns.get(symbol) or self.clock.now_ns()
        views: dict[int | None, BookView] = {}
        for runner in self._sdk_runners(symbol):
            depth = runner.strategy.depth
            view = views.get(depth)
            if view is None:
                view = views[depth] = BookView(symbol, ts, tuple(book.bids(depth)), tuple(book.asks(depth)))
            self._sdk_call(runner, "on_book", view)

    def _sdk_trade(self, trade: TradeUpdate) -> None:
        tick = TradeTick(trade.symbol, trade.trade_id, trade.price_ticks, trade.qty_steps,
                         Side.SELL if trade.buyer_is_maker else Side.BUY, trade.ts_event_ns)
        for runner in self._sdk_runners(trade.symbol):
            self._sdk_call(runner, "on_trade", tick)

    def on_mark(self, mark: MarkUpdate) -> None:
        """The mark price and funding (the markPrice stream): to the SDK strategies of the symbol."""
        if mark.symbol not in self.instruments:
            return
        self.run_timers()
        try:
            tick = MarkTick(mark.symbol, Decimal(mark.mark_price), Decimal(mark.index_price or "0"),
                            Decimal(mark.funding_rate or "0"), mark.next_funding_ms * 1_000_000, mark.ts_event_ns)
        except ArithmeticError:
            log.warning("mark update for %s unreadable: %r", mark.symbol, mark)
            return
        for runner in self._sdk_runners(mark.symbol):
            self._sdk_call(runner, "on_mark", tick)

    def run_timers(self) -> int:
        """Fire every SDK timer due on the engine's clock (each once, however far behind); returns how many.
        Called on every market data event (a backtest's event clock) and by the timer loop (live)."""
        now = self.clock.now_ns()
        fired = 0
        self.algo_due()  # the execution algorithms' own wake-ups on the same clock
        for runner in self._sdk_runners():
            timers = runner.context.timers
            due = sorted((t.next_ns, name) for name, t in timers.items() if t.next_ns <= now)
            for _, name in due:
                timer = timers.get(name)
                if timer is None or timer.next_ns > now:
                    continue  # cancelled or moved by an earlier callback
                timer.next_ns += ((now - timer.next_ns) // timer.interval_ns + 1) * timer.interval_ns
                fired += 1
                self._sdk_call(runner, "on_timer", name)
        return fired

    def next_timer_ns(self) -> int | None:
        """The earliest SDK timer or execution algorithm wake-up (a backtest may advance its clock to it)."""
        dues = [t.next_ns for r in self._sdk_runners() for t in r.context.timers.values()]
        algo = self.algos.next_wakeup_ns()
        if algo is not None:
            dues.append(algo)
        return min(dues) if dues else None

    async def _timer_loop(self) -> None:
        while True:
            try:
                self.run_timers()
                self.algos.on_timer()  # live: a parent's slice falls due between market events too
            except Exception:
                log.exception("strategy timers failed")
            due = self.next_timer_ns()
            wait_ns = 50_000_000 if due is None else max(0, min(50_000_000, due - self.clock.now_ns()))
            await asyncio.sleep(wait_ns / 1e9)

    def _notify(self, runner: Runner | None, method: str, arg: Any) -> None:
        """An answer that arrived after the callback that caused it (an acknowledgement, a fill)."""
        if runner is None or not runner.enabled:
            return
        if runner.draining:
            runner.pending.append((method, arg))
            return
        self._sdk_call(runner, method, arg)

    def _drain(self, runner: Runner) -> None:
        """Execute the intents the strategy queued, then tell it what became of those refused at once."""
        if runner.draining:
            return
        ctx = runner.context
        runner.draining = True
        try:
            for _ in range(MAX_DRAIN_ROUNDS):
                if not ctx.intents and not runner.pending:
                    return
                intents, ctx.intents = ctx.intents, []
                for intent in intents:
                    try:
                        self._execute(runner, intent)
                    except Exception:
                        log.exception("strategy %s: executing %r failed", runner.config.name, intent)
                pending, runner.pending = runner.pending, []
                for method, arg in pending:
                    if runner.enabled:
                        self._call(runner, method, arg)
            ctx.intents.clear()
            runner.pending.clear()
            self._strategy_error(runner, f"still acting after {MAX_DRAIN_ROUNDS} rounds of its own updates", "(its own updates)")
        finally:
            runner.draining = False
