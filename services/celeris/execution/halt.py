"""The halt: the kill switch of order entry, and getting back to flat.

Owns the gate flag and everything that closes it or opens it again: the halt is atomic (the flag is set
before anything is awaited, so no order that could add exposure leaves after the call), it waits for the
sends that passed the gate before it, cancels every open order, flattens across every venue this engine
traded (reduce-only market orders through the engine's own order path, sliced, until flat or the
deadline), keeps retrying in a follow-up while the venue refuses, and is persisted (it survives a
restart until a person resumes). A resume queued behind a later halt does not undo it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING, Any

from celeris.domain.instruments import OrderType
from celeris.domain.messages import OrderRequest
from celeris.domain.modes import Mode
from celeris.domain.values import Side
from celeris.execution.validation import FLATTEN_OWNER
from celeris.execution.venue import OrderVenue
from celeris.venues.binance import errors

if TYPE_CHECKING:
    from celeris.execution.engine import ExecutionEngine

log = logging.getLogger(__name__)


class HaltControl:
    def __init__(self, engine: ExecutionEngine) -> None:
        self.engine = engine
        self.halted = False
        """The gate: read by every pre-trade check and again right before each send."""
        self.halt_reason = ""
        self.halted_by = ""
        self.halted_at_ns = 0
        self.lock = asyncio.Lock()
        """One halt, follow-up round or resume at a time."""
        self.sending: set[asyncio.Future[None]] = set()
        """Sends that passed the gate and have not finished: a halt waits for them, then cancels."""
        self.requests = 0
        """Halts requested so far: a resume that waited behind a later halt sees it moved and stands down."""
        self.flatten_round = 0
        self.follow_up_flatten = False
        self.follow_up: asyncio.Task[None] | None = None
        self.last_canceled = 0
        self.last_flat = True

    def halt_soon(self, reason: str, requested_by: str) -> None:
        """Close the gate now; cancel and persist in a task (for callers that hold an order's lock)."""
        if not self.halted:
            self.halted, self.halt_reason = True, reason
        task = asyncio.ensure_future(self.engine.halt(reason, requested_by))
        self.engine._tasks.append(task)

    async def halt(self, reason: str, requested_by: str = "", flatten: bool = False) -> int:
        """Halt: from this call on no order that could add exposure is sent. Then wait for the sends that
        passed the gate before it, cancel every open order and, if asked, flatten until flat. Persistent
        (it survives a restart until a person resumes) and idempotent. Returns the orders cancelled."""
        engine = self.engine
        self.requests += 1  # a resume queued before this halt must not undo it
        first = not self.halted or not self.halted_at_ns
        self.halted = True  # synchronously: the gate is closed from this line
        self.halt_reason = self.halt_reason or reason
        now = engine.clock.now_ns()
        if first:
            self.halt_reason, self.halted_by, self.halted_at_ns = reason, requested_by or "?", now
            log.warning("trading halted by %s: %s", requested_by or "?", reason)
        async with self.lock:
            # A resume may have run while this halt waited for the lock: this halt stands, and is persisted.
            if not self.halted:
                self.halted, self.halt_reason, self.halted_by, self.halted_at_ns = True, reason, requested_by, now
                first = True
            await engine.hot.set_halt(True, self.halt_reason)
            if first:
                engine._audit("halt", requested_by, reason)
            await self.wait_sends()
            if flatten:
                self.follow_up_flatten = True  # until flat: a follow-up of an earlier halt flattens too
            canceled, _ = await engine.cancel_all(f"halt-{now}")
            self.last_canceled = canceled
            flat = await self.flatten() if flatten else True
            self.last_flat = flat
            still_open = len([o for o in engine.open_orders() if o.client_order_id not in engine._closing])
            if still_open or not flat:
                # A venue that refuses now (rate limits, a ban, an outage): say so, and keep at it.
                engine._alert("critical", f"halt incomplete: {still_open} orders still open"
                                          f"{'' if flat else ', positions not flat'}; retrying until done")
                self.follow_up_halt(flatten and not flat)
        if first:
            for hook in engine.on_halt:
                await hook(reason)
        return canceled

    def follow_up_halt(self, flatten: bool) -> None:
        self.follow_up_flatten = self.follow_up_flatten or flatten  # a later halt may ask for more
        if self.follow_up is not None and not self.follow_up.done():
            return
        self.follow_up = asyncio.ensure_future(self._finish_halt())

    async def _finish_halt(self, first_delay_s: float = 2.0) -> None:
        """While halted: cancel what is still open and flatten what is left, with back-off, until done.
        Each round holds the halt lock and stops at once if trading was resumed meanwhile."""
        engine = self.engine
        delay = first_delay_s
        while self.halted:
            await engine._sleep(delay)
            async with self.lock:
                if not self.halted:
                    return
                flatten = self.follow_up_flatten
                try:
                    await engine.cancel_all(f"halt-retry-{engine.clock.now_ns()}")
                    flat = await self.flatten() if flatten else True
                except Exception:
                    log.exception("halt follow-up failed this round")
                    flat = False
                if flat and not engine.open_orders():
                    self.last_flat = True
                    self.follow_up_flatten = False
                    log.warning("halt completed after retries: no open orders%s", ", flat" if flatten else "")
                    return
            delay = min(delay * 2, 30.0)

    async def wait_sends(self, timeout_s: float = 10.0) -> None:
        """Sends that passed the gate before the halt: let them finish, so the cancel after finds them."""
        pending = [f for f in self.sending if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)

    async def flatten(self) -> bool:
        """Close every position, on every venue that holds one (the live venue's survives a switch to
        simulation or observation), with reduce-only market orders through the engine's own order path
        (deterministic ids, the state table, user-stream fills), sliced to the symbol's market max
        quantity, largest notional first; re-read the venue's position and repeat until flat or
        `flatten_timeout_s` (then a critical alert). Returns whether every account is flat."""
        engine = self.engine
        deadline = engine.clock.now_ns() + int(engine.config.flatten_timeout_s * 1e9)
        self.flatten_round += 1
        sequence = itertools.count()
        while True:
            left: list[str] = []
            for mode, venue in self._venues_by_mode():
                positions = await self._positions_at(venue, mode)
                if positions is None:  # not known is not flat
                    left.append(f"positions at the {mode.value} venue (unreadable)")
                    continue
                open_positions = sorted(((s, q) for s, q in positions.items() if q),
                                        key=lambda sq: -engine.instruments[sq[0]].notional(
                                            engine.marks.get(sq[0]) or 1, abs(sq[1])))
                if not open_positions:
                    continue
                left += [f"{s} {engine.instruments[s].format_qty(q)} ({mode.value})" for s, q in open_positions]
                if engine.clock.now_ns() >= deadline:
                    continue
                await engine.cancel_all(f"flatten-cancel-{engine.clock.now_ns()}")
                for symbol, qty in open_positions:
                    await self._close_position(symbol, qty, mode, sequence)
            if not left:
                return True
            if engine.clock.now_ns() >= deadline:
                engine._alert("critical", f"emergency flatten did not finish in "
                                          f"{engine.config.flatten_timeout_s:g} s: still open {', '.join(left)}; "
                                          f"manual handling needed")
                return False
            await engine.settle()
            await engine._sleep(engine.config.flatten_poll_s)

    def _venues_by_mode(self) -> list[tuple[Mode, OrderVenue]]:
        """The venues to flatten, each once, live first: the current mode's, and every venue this engine has
        traded (a live position it built survives a switch to simulation or observation). A venue it never
        traded is not touched (in simulation mode the kill switch is the paper account's)."""
        engine = self.engine
        wanted = set(engine.traded_modes) | ({engine.mode} if engine.mode is not Mode.OBSERVATION else set())
        out: list[tuple[Mode, OrderVenue]] = []
        for mode in (Mode.LIVE, Mode.SIMULATION):
            venue = engine.venues.get(mode)
            if venue is not None and mode in wanted and all(venue is not v for _, v in out):
                out.append((mode, venue))
        return out

    async def _close_position(self, symbol: str, qty: int, mode: Mode, sequence: Any) -> None:
        engine = self.engine
        ins = engine.instruments[symbol]
        side = Side.SELL if qty > 0 else Side.BUY
        remaining = abs(qty)
        while remaining > 0:
            chunk = min(remaining, ins.market_max_qty_steps or remaining)
            request_id = f"flatten-{self.flatten_round}-{mode.value}-{symbol}-{engine.clock.now_ns()}-{next(sequence)}"
            outcome = await engine._submit(OrderRequest(request_id, symbol, side, OrderType.MARKET, chunk,
                                                        reduce_only=True, strategy_id=FLATTEN_OWNER),
                                           flatten=True, mode=mode)
            if not outcome.accepted:
                log.warning("flatten order for %s (%s) refused: %s", symbol, mode.value,
                            outcome.rejection.message if outcome.rejection else "?")
                return
            remaining -= chunk

    async def _positions_at(self, venue: OrderVenue, mode: Mode) -> dict[str, int] | None:
        """A venue's positions as it reports them; the engine's own view for the traded venue if it cannot
        be read (reconciliation wins: the traded venue's answer also updates the engine's positions)."""
        engine = self.engine
        traded = venue is engine.venues.get(engine.mode)
        try:
            answer = await venue.positions()
        except errors.VenueError as exc:
            log.warning("positions not read from the %s venue: %s", mode.value, exc)
            return None
        if traded:
            for symbol, (qty, entry) in answer.items():
                if symbol in engine.positions:
                    engine.positions[symbol].qty_steps = qty
                    engine.positions[symbol].cost = abs(qty) * entry
        return {s: q for s, (q, _) in answer.items() if s in engine.instruments}

    async def resume(self, requested_by: str, reason: str = "") -> None:
        if not requested_by:
            raise ValueError("resume needs requested_by")
        engine = self.engine
        requested_after = self.requests
        async with self.lock:
            if self.requests != requested_after:
                # A halt was requested after this resume (it waited for a running halt): the halt stands.
                engine._audit("resume-superseded", requested_by, reason)
                log.warning("resume by %s superseded by a later halt", requested_by)
                return
            was_halted = self.halted
            await engine.hot.set_halt(False, "")  # persisted first; the gate opens only after
            if self.requests != requested_after:
                await engine.hot.set_halt(True, self.halt_reason)
                engine._audit("resume-superseded", requested_by, reason)
                return
            self.halted, self.halt_reason, self.halted_at_ns = False, "", 0
        if was_halted:
            engine._audit("resume", requested_by, reason)
            log.warning("trading resumed by %s", requested_by)
