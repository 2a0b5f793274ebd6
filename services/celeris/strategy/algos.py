"""The execution-algorithm driver: parent orders worked through the order gateway on the injected clock.

Owns the running parents (TWAP, VWAP, POV, iceberg: the pure machines of celeris.domain.algos and
algo_kinds), the mapping of each child's client order id to its parent, and the I/O the machines ask
for: a child is sent through the same `OrderGateway` the strategy engine uses (execution in-process, its
gRPC client as a service), owned by the parent's strategy (`strategy_id` = owner, the owner's tag in the
client order id, so execution's leases and orphan reaper treat it like the strategy's other orders), and
cancelled through it. It feeds the machines the book top, the trades, the children's fills and closes,
and the clock (every timestamp it hands them is the clock's: one time base, the event clock in a backtest).

Halts: a child refused because execution is halted stops its parent and every other running parent (the
gate is execution's, not one order's), each cancelling its working child; `halt()` (the strategy
component's halt) does the same and refuses new parents until `resume()`. A parent stopped by a halt is
never restarted: the strategy starts a new one. A submit that ends in an exception (no answer at all)
stops its parent too, and the child is cancelled rather than guessed about.

The same code runs in backtest, paper and live: only the gateway's venue and the clock differ.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from celeris.domain.algo_kinds import make_algo
from celeris.domain.algo_orders import Action, CancelChild, ParentOrder, PlaceChild
from celeris.domain.algos import AlgoProgress, AlgoState, ExecutionAlgo, StopReason
from celeris.domain.book import BookState, OrderBook
from celeris.domain.clock import Clock
from celeris.domain.instruments import Instrument
from celeris.domain.messages import (
    BookUpdate,
    Fill,
    OrderRequest,
    Outcome,
    RejectCode,
    TradeUpdate,
    client_order_id_for,
)
from celeris.domain.orders import Order

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RunningAlgo:
    algo: ExecutionAlgo
    owner: str
    told: tuple[AlgoState, int] = (AlgoState.PENDING, 0)
    """The state and fill the owner was last told of (on_progress)."""
    live: dict[str, str] = field(default_factory=dict)
    """child id -> client order id of the children sent that may still fill (on_child_done once each)."""
    last_child_refusal: str = ""
    """Why the last refused child was refused (execution's or the venue's words), for the report."""


KEEP_FINISHED = 1_000
"""Finished parents kept for their reports; beyond it the oldest are forgotten (a session runs for weeks)."""


class AlgoRunner:
    """Start parents, feed them market data and order events, read their progress."""

    def __init__(self, instruments: dict[str, Instrument], clock: Clock, gateway: Any, *,
                 on_child_sent: Callable[[str, OrderRequest], None] | None = None,
                 on_child_done: Callable[[str, str], None] | None = None,
                 on_progress: Callable[[str, AlgoProgress], None] | None = None) -> None:
        """`gateway`: celeris.strategy.engine.OrderGateway (submit, cancel). `on_child_sent(owner, request)`
        is called before a child is sent, `on_child_done(owner, client_order_id)` once it can no longer fill
        (the strategy engine's own records of its strategies' working orders can follow them there);
        `on_progress(owner, progress)` whenever a parent's state or filled quantity changed (a strategy's
        callback)."""
        self.instruments = instruments
        self.clock = clock
        self.gateway = gateway
        self.on_child_sent = on_child_sent
        self.on_child_done = on_child_done
        self.on_progress = on_progress
        self.algos: dict[str, RunningAlgo] = {}
        self.children: dict[str, tuple[str, str]] = {}
        """client order id -> (algo id, child id)."""
        self.books: dict[str, OrderBook] = {s: OrderBook(s) for s in instruments}
        self.live: dict[str, bool] = {s: False for s in instruments}
        self.tops: dict[str, tuple[int, int, int, int]] = {}
        """symbol -> the last good top (bid, bid qty, ask, ask qty): a parent started now gets it at once."""
        self.halted = False
        self._sequence = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_flight: set[str] = set()
        """Children whose submit has not answered yet."""

    # -- the API a strategy calls ---------------------------------------------------------------------
    def start(self, parent: ParentOrder, owner: str, algo_id: str = "") -> str:
        """Hand a parent order over; its children are `owner`'s. Returns the algo id: `algo_id` if given (a
        caller that must name it before the start, e.g. an SDK intent; it must be unique, for execution
        answers a repeated request id with its first answer), else one made from the owner and the clock."""
        if not owner:
            raise ValueError("every child has an owner: start needs one")
        if algo_id in self.algos:
            raise ValueError(f"algo id {algo_id!r} is taken")
        instrument = self.instruments.get(parent.symbol)
        if instrument is None:
            raise ValueError(f"unknown symbol {parent.symbol}")
        now = self.clock.now_ns()
        kind = type(parent.params).__name__.removesuffix("Params").lower()
        # The clock and a sequence make the id (and so every child's request id) unique across restarts:
        # execution answers a repeated request id with its first answer.
        algo_id = algo_id or f"{owner}-{kind}-{now}-{next(self._sequence)}"
        running = RunningAlgo(make_algo(algo_id, parent, instrument), owner)
        self._prune()
        self.algos[algo_id] = running
        if self.halted:
            self._apply(running, running.algo.stop(StopReason.HALTED, now))
            return algo_id
        top = self._top(parent.symbol)
        if top is not None:
            self._apply(running, running.algo.on_top(now, *top))
        else:
            self._apply(running, running.algo.on_time(now))
        return algo_id

    def refuse(self, parent: ParentOrder, owner: str, algo_id: str) -> str:
        """Record a parent its owner's engine refused (observation mode, halted, the pre-trade filter): it
        finishes at once with stop reason `refused`, nothing sent; its progress and report say so."""
        if algo_id in self.algos:
            raise ValueError(f"algo id {algo_id!r} is taken")
        running = RunningAlgo(make_algo(algo_id, parent, self.instruments[parent.symbol]), owner)
        self._prune()
        self.algos[algo_id] = running
        self._apply(running, running.algo.stop(StopReason.REFUSED, self.clock.now_ns()))
        return algo_id

    def cancel(self, algo_id: str) -> None:
        """Stop the parent: no new children, the working one cancelled."""
        running = self.algos[algo_id]
        self._apply(running, running.algo.stop(StopReason.CANCELED, self.clock.now_ns()))

    def halt(self, reason: str = "") -> None:
        """Execution is halted: every parent stops and cancels its child; new parents stop at once."""
        if not self.halted:
            log.warning("execution algorithms halted: %s", reason or "?")
        self.halted = True
        self._stop_all(StopReason.HALTED)

    def resume(self) -> None:
        """New parents may start again (the halted ones stay stopped)."""
        self.halted = False

    def progress(self, algo_id: str) -> AlgoProgress:
        return self.algos[algo_id].algo.progress()

    def report(self, algo_id: str) -> dict[str, Any]:
        """The parent's progress as JSON: quantities and prices as decimal strings, slippage in bps."""
        running = self.algos[algo_id]
        algo, p = running.algo, running.algo.progress()
        ins = algo.instrument
        return {"algo_id": algo_id, "owner": running.owner, "kind": algo.kind, "symbol": algo.parent.symbol,
                "side": algo.parent.side.value, "state": p.state.value,
                "stop_reason": p.stop_reason.value if p.stop_reason else None,
                "qty": ins.format_qty(p.qty_steps), "filled": ins.format_qty(p.filled_steps),
                "remaining": ins.format_qty(p.remaining_steps), "leftover": ins.format_qty(p.leftover_steps),
                "average_price": _price(ins, p.filled_quote, p.filled_steps) if p.filled_steps else None,
                "arrival_price": _price(ins, p.arrival_x2_ticks, 2) if p.arrival_x2_ticks else None,
                "slippage_bps": _bps(p.slippage_ppm) if p.slippage_ppm is not None else None,
                "children": p.children_placed, "children_refused": p.children_refused,
                "last_child_refusal": running.last_child_refusal or None}

    def reports(self, owner: str = "") -> list[dict[str, Any]]:
        """Every parent's report (of one owner if given), in the order they were started."""
        return [self.report(a) for a, r in self.algos.items() if not owner or r.owner == owner]

    def forget(self, algo_id: str) -> None:
        """Drop a finished parent and its children's ids (a long session keeps only what it still reads)."""
        running = self.algos[algo_id]
        if running.algo.state is not AlgoState.FINISHED:
            raise ValueError(f"algo {algo_id} is {running.algo.state.value}: cancel it and let it finish first")
        del self.algos[algo_id]
        for cid in [c for c, (a, _) in self.children.items() if a == algo_id]:
            del self.children[cid]

    def _prune(self) -> None:
        """Forget the oldest finished parents beyond KEEP_FINISHED (running ones are never forgotten)."""
        finished = [a for a, r in self.algos.items() if r.algo.state is AlgoState.FINISHED]
        for algo_id in finished[:max(0, len(finished) - KEEP_FINISHED + 1)]:
            self.forget(algo_id)

    def next_wakeup_ns(self) -> int | None:
        """The earliest time a running parent wants `on_timer` without a market event (None = none)."""
        due = [d for r in self.algos.values() if r.algo.state is not AlgoState.FINISHED
               and (d := r.algo.next_due_ns()) is not None]
        return min(due) if due else None

    # -- events -----------------------------------------------------------------------------------------
    def on_book(self, update: BookUpdate) -> None:
        book = self.books.get(update.symbol)
        if book is None:
            return
        if update.state is not BookState.LIVE:
            self.live[update.symbol] = False
            self.tops.pop(update.symbol, None)  # a stale book is no price to start at
            return
        if update.snapshot:
            book.apply_snapshot(update.bids, update.asks, update.update_id)
        else:
            book.apply_diff(update.bids, update.asks, update.update_id)
        self.live[update.symbol] = True
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None and bid[0] < ask[0]:
            self.on_top(update.symbol, bid[0], bid[1], ask[0], ask[1])

    def on_top(self, symbol: str, bid_ticks: int, bid_steps: int, ask_ticks: int, ask_steps: int) -> None:
        """The book top (for a caller that keeps the book itself)."""
        if 0 < bid_ticks < ask_ticks:
            self.tops[symbol] = (bid_ticks, bid_steps, ask_ticks, ask_steps)
        now = self.clock.now_ns()
        for running in self._of(symbol):
            self._apply(running, running.algo.on_top(now, bid_ticks, bid_steps, ask_ticks, ask_steps))

    def on_trade(self, trade: TradeUpdate) -> None:
        now = self.clock.now_ns()
        for running in self._of(trade.symbol):
            self._apply(running, running.algo.on_trade(now, trade.price_ticks, trade.qty_steps))

    def on_timer(self) -> None:
        now = self.clock.now_ns()
        for running in list(self.algos.values()):
            if running.algo.state is not AlgoState.FINISHED:
                self._apply(running, running.algo.on_time(now))

    def on_fill(self, fill: Fill) -> None:
        found = self._child(fill.client_order_id)
        if found is None:
            return
        running, child_id = found
        self._apply(running, running.algo.on_fill(child_id, fill.qty_steps, fill.price_ticks, self.clock.now_ns()))

    def on_order_update(self, order: Order) -> None:
        """Execution's order updates: an order that is no longer open closes its child."""
        if order.is_open:
            found = self._child(order.client_order_id)
            if found is not None:
                found[0].algo.on_acknowledged(found[1])
            return
        self.on_order_closed(order.client_order_id, order.filled_steps)

    def on_order_closed(self, client_order_id: str, filled_steps: int) -> None:
        found = self._child(client_order_id)
        if found is None:
            return
        running, child_id = found
        self._apply(running, running.algo.on_closed(child_id, filled_steps, self.clock.now_ns()))

    async def settle(self) -> None:
        """Wait until every send and cancel asked for so far has its answer (and what those caused)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel every parent (stopping the system leaves no child working) and wait for the answers."""
        self._stop_all(StopReason.CANCELED)
        await self.settle()

    # -- the machines' actions --------------------------------------------------------------------------
    def _apply(self, running: RunningAlgo, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, PlaceChild):
                self._place(running, action)
            elif isinstance(action, CancelChild):
                self._spawn(self._cancel(running, action.child_id))
        if running.live:
            for child_id in [c for c in running.live if c not in running.algo.children]:
                cid = running.live.pop(child_id)
                if self.on_child_done is not None:
                    self.on_child_done(running.owner, cid)
        now = (running.algo.state, running.algo.filled_steps)
        if now != running.told:
            running.told = now
            if self.on_progress is not None:
                self.on_progress(running.owner, running.algo.progress())

    def _place(self, running: RunningAlgo, action: PlaceChild) -> None:
        parent = running.algo.parent
        request_id = action.child_id
        request = OrderRequest(request_id, parent.symbol, action.side, action.order_type, action.qty_steps,
                               action.price_ticks, action.time_in_force, reduce_only=action.reduce_only,
                               strategy_id=running.owner,
                               client_order_id=client_order_id_for(request_id, running.owner),
                               ts_signal_ns=self.clock.now_ns())
        self.children[request.client_order_id] = (running.algo.algo_id, action.child_id)
        running.live[action.child_id] = request.client_order_id
        if self.on_child_sent is not None:
            self.on_child_sent(running.owner, request)
        self._in_flight.add(action.child_id)
        self._spawn(self._send(running, request, action.child_id))

    async def _send(self, running: RunningAlgo, request: OrderRequest, child_id: str) -> None:
        algo = running.algo
        try:
            outcome = await self.gateway.submit(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._in_flight.discard(child_id)
            log.exception("sending child %s failed: its parent stops", child_id)
            self._apply(running, algo.stop(StopReason.REFUSED, self.clock.now_ns()))
            return
        self._in_flight.discard(child_id)
        now = self.clock.now_ns()
        if outcome.accepted and outcome.order is not None:
            if outcome.order.is_open:
                algo.on_acknowledged(child_id)
                self._apply(running, algo.on_time(now))  # a cancel asked for meanwhile may go now
            else:
                self._apply(running, algo.on_closed(child_id, outcome.order.filled_steps, now))
            return
        halted = outcome.rejection is not None and outcome.rejection.code is RejectCode.HALTED
        reason = outcome.rejection.message if outcome.rejection else "refused"
        running.last_child_refusal = reason
        log.info("child %s refused: %s", child_id, reason)
        self._apply(running, algo.on_refused(child_id, now, halted))
        if halted:
            self._stop_all(StopReason.HALTED)

    async def _cancel(self, running: RunningAlgo, child_id: str) -> None:
        algo = running.algo
        cid = client_order_id_for(child_id, running.owner)
        try:
            outcome: Outcome = await self.gateway.cancel(f"cancel-{child_id}", algo.parent.symbol, cid)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("cancelling child %s failed", child_id)
            algo.on_cancel_failed(child_id, self.clock.now_ns())
            return
        if outcome.order is not None and not outcome.order.is_open:
            self._apply(running, algo.on_closed(child_id, outcome.order.filled_steps, self.clock.now_ns()))
        elif not outcome.accepted:
            unknown = outcome.rejection is not None and outcome.rejection.code is RejectCode.UNKNOWN_ORDER
            if unknown and child_id not in self._in_flight:
                # Its submit has answered and execution has no such order: it never went out.
                self._apply(running, algo.on_closed(child_id, 0, self.clock.now_ns()))
                return
            # Still on its way, or already closing: asked again after a back-off, and the child's own
            # answer or order update closes it meanwhile.
            algo.on_cancel_failed(child_id, self.clock.now_ns())

    # -- helpers ----------------------------------------------------------------------------------------
    def _stop_all(self, reason: StopReason) -> None:
        now = self.clock.now_ns()
        for running in list(self.algos.values()):
            if running.algo.state is not AlgoState.FINISHED:
                self._apply(running, running.algo.stop(reason, now))

    def _child(self, client_order_id: str) -> tuple[RunningAlgo, str] | None:
        found = self.children.get(client_order_id)
        if found is None:
            return None
        running = self.algos.get(found[0])
        return (running, found[1]) if running is not None else None

    def _of(self, symbol: str) -> list[RunningAlgo]:
        return [r for r in self.algos.values()
                if r.algo.parent.symbol == symbol and r.algo.state is not AlgoState.FINISHED]

    def _top(self, symbol: str) -> tuple[int, int, int, int] | None:
        return self.tops.get(symbol)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _price(ins: Instrument, numerator_ticks: int, denominator: int) -> str:
    """numerator / denominator ticks as a price string, four decimals finer than the price grid, half-even."""
    grid = ins.price_grid
    value = Decimal(numerator_ticks * grid.step_units) / Decimal(denominator) / Decimal(10**grid.scale)
    return str(value.quantize(Decimal(1).scaleb(-(grid.scale + 4)), rounding=ROUND_HALF_EVEN))


def _bps(ppm: int) -> str:
    """ppm of a price -> basis points with two decimals (100 ppm = 1 bp), exact."""
    return str((Decimal(ppm) / 100).quantize(Decimal("0.01")))
