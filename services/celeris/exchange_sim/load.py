"""Load mode of the simulated venue: diff-depth events at a fixed rate per symbol (`celeris sim --load-depth-rate`).

Owns the rate and nothing else. Each wake-up works out, from the venue's clock, how many events are due
since the start (rate x elapsed) and emits the missing ones: per event and symbol one synthetic level near
the touch gets a new quantity, and the change goes out as its own depth event on the streams that carry
every change (`@depth@0ms`); the slower speeds aggregate it as usual and the rest of the market (trades,
marks, bookTicker) keeps its normal tick. Levels only change quantity, never disappear, so the book a
client keeps stays exactly the venue's. `stats()` says how many events were due and how many went out, so
a benchmark can tell a slow venue from a slow client.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Protocol

from celeris.exchange_sim.state import SymbolBook

SIDE_LEVELS = 10
"""Levels per side the load changes: the ones a strategy reads."""

MAX_BURST = 5_000
"""Events per symbol emitted in one wake-up at most: a stalled loop catches up without starving the rest."""


class LoadVenue(Protocol):
    def now_ns(self) -> int: ...
    def _publish_depth(self, symbol: str, now: int, wanted: set[str], every_tick: bool) -> None: ...
    def _wanted_streams(self) -> set[str]: ...


class DepthLoad:
    """Emits `per_symbol_per_s` depth events per second for every symbol of `books`."""

    def __init__(self, venue: LoadVenue, books: dict[str, SymbolBook], per_symbol_per_s: int,
                 seed: int = 7) -> None:
        if per_symbol_per_s <= 0:
            raise ValueError(f"the load rate must be positive, not {per_symbol_per_s}")
        self.venue = venue
        self.books = books
        self.rate = per_symbol_per_s
        self.rng = random.Random(seed)
        self.started_ns: int | None = None
        self.emitted = 0
        """Events per symbol emitted so far."""
        self.due = 0

    def emit_due(self) -> int:
        """Emit the events due by now; returns how many per symbol."""
        now_ns = self.venue.now_ns()
        if self.started_ns is None:
            self.started_ns = now_ns
        self.due = (now_ns - self.started_ns) * self.rate // 1_000_000_000
        count = min(self.due - self.emitted, MAX_BURST)
        if count <= 0:
            return 0
        now_ms = now_ns // 1_000_000
        wanted = self.venue._wanted_streams()
        for _ in range(count):
            for symbol, book in self.books.items():
                self._change_one_level(book)
                self.venue._publish_depth(symbol, now_ms, wanted, every_tick=False)
        self.emitted += count
        return count

    def _change_one_level(self, book: SymbolBook) -> None:
        is_bid = self.rng.random() < 0.5
        prices = book.prices(is_bid)[:SIDE_LEVELS]
        synthetic = book.synthetic_bids if is_bid else book.synthetic_asks
        candidates = [p for p in prices if p in synthetic]
        if not candidates:
            return
        price = self.rng.choice(candidates)
        base = book.instrument.min_qty_steps
        old = synthetic[price]
        qty = old
        while qty == old:  # a change the stream must carry
            qty = base * self.rng.randint(5, 400)
        book.set_synthetic(is_bid, price, qty)

    async def run(self) -> None:
        while True:
            self.emit_due()
            await asyncio.sleep(0.001)

    def stats(self) -> dict[str, Any]:
        return {"per_symbol_per_s": self.rate, "symbols": len(self.books), "due_per_symbol": self.due,
                "emitted_per_symbol": self.emitted}
