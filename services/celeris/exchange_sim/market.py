"""Where the simulated venue's prices come from: a seeded synthetic market, or a replay of a capture.

Owns the background order book and flow of each symbol. `SyntheticMarket` walks a mid price with a
seeded random generator (deterministic under a seed), keeps a ladder of levels around it with a few
quantities changing each step, and sends small taker trades at the touch that also fill client orders
resting there (after the synthetic quantity ahead of them). `ReplayMarket` plays a real Binance capture
(snapshot + depth diffs + trades) into the book instead.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

from celeris.domain.values import Side
from celeris.exchange_sim.engine import MatchingEngine, SymbolBook

DEFAULT_PRICES = {"BTCUSDT": "60000.00", "ETHUSDT": "3000.00", "BNBUSDT": "550.000", "SOLUSDT": "150.0000"}


@dataclass
class _Walk:
    bid: int  # best synthetic bid, ticks
    spread: int = 1


class SyntheticMarket:
    """A deterministic (under `seed`) market for every symbol of the engine."""

    def __init__(self, engine: MatchingEngine, seed: int = 7, levels: int = 20, volatility_ticks: int = 3,
                 flow_probability: float = 0.6, start_prices: dict[str, str] | None = None) -> None:
        self.engine = engine
        self.rng = random.Random(seed)
        self.levels = levels
        self.volatility = volatility_ticks
        self.flow_probability = flow_probability
        self.walks: dict[str, _Walk] = {}
        prices = {**DEFAULT_PRICES, **(start_prices or {})}
        for symbol, book in engine.books.items():
            ins = book.instrument
            text = prices.get(symbol, "100.00")
            start = ins.price(text)
            self.walks[symbol] = _Walk(start)
            self._ladder(book, self.walks[symbol], fresh=True)
            book.last_price_ticks = start
            book.mark_ticks = start
            book.index_ticks = start

    def step(self) -> None:
        for symbol, book in self.engine.books.items():
            walk = self.walks[symbol]
            walk.bid += self.rng.choice((-1, 0, 0, 1)) * self.rng.randint(0, self.volatility)
            walk.bid = max(walk.bid, book.instrument.min_price_ticks + self.levels)
            self._ladder(book, walk, fresh=False)
            self._cross_client_orders(symbol, book, walk)
            if self.rng.random() < self.flow_probability:
                side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
                price = walk.bid + walk.spread if side is Side.BUY else walk.bid
                qty = max(book.instrument.min_qty_steps, self.rng.randint(1, 25))
                self.engine.fill_resting_from_flow(symbol, side, price, qty)
            # The mark follows the mid with a small smoothing (the venue's mark is an index blend).
            mid2 = 2 * walk.bid + walk.spread
            book.index_ticks = mid2 // 2
            book.mark_ticks = (3 * book.mark_ticks + mid2 // 2) // 4 if book.mark_ticks else mid2 // 2

    def _ladder(self, book: SymbolBook, walk: _Walk, fresh: bool) -> None:
        ins = book.instrument
        base = ins.min_qty_steps
        want_bids = {walk.bid - i for i in range(self.levels)}
        want_asks = {walk.bid + walk.spread + i for i in range(self.levels)}
        for price in list(book.synthetic_bids):
            if price not in want_bids:
                book.set_synthetic(True, price, 0)
        for price in list(book.synthetic_asks):
            if price not in want_asks:
                book.set_synthetic(False, price, 0)
        for is_bid, prices, levels in ((True, want_bids, book.synthetic_bids),
                                       (False, want_asks, book.synthetic_asks)):
            for price in sorted(prices):
                if price not in levels:
                    book.set_synthetic(is_bid, price, base * self.rng.randint(5, 400))
            if not fresh:  # a few quantities change on every step, as on a live book
                for price in self.rng.sample(sorted(prices), k=min(3, len(prices))):
                    book.set_synthetic(is_bid, price, base * self.rng.randint(5, 400))

    def _cross_client_orders(self, symbol: str, book: SymbolBook, walk: _Walk) -> None:
        """Client orders the market moved through are filled (they were the best price there)."""
        best_ask = walk.bid + walk.spread
        for (is_bid, price), queue in list(book.queues.items()):
            if not queue:
                continue
            if is_bid and price >= best_ask:
                qty = sum(o.remaining for o in queue)
                self.engine.fill_resting_from_flow(symbol, Side.SELL, price, qty + book.level_qty(True, price))
            elif not is_bid and price <= walk.bid:
                qty = sum(o.remaining for o in queue)
                self.engine.fill_resting_from_flow(symbol, Side.BUY, price, qty + book.level_qty(False, price))


class ReplayMarket:
    """Plays a real capture (`<recv_ns> <json>` lines) of one symbol into the engine's book.

    Each `step` plays the messages whose exchange time falls within the next `tick_ms` of capture time
    (loops at the end). Depth levels become the synthetic liquidity; trades become background flow.
    """

    def __init__(self, engine: MatchingEngine, path: Path, symbol: str = "BTCUSDT", tick_ms: int = 100) -> None:
        self.engine = engine
        self.symbol = symbol
        self.book = engine.books[symbol]
        self.path = path
        self.tick_ms = tick_ms
        self._messages = list(self._load())
        self._index = 0
        self._capture_ms = 0
        self._apply_snapshot()

    def _load(self) -> Iterator[dict]:
        with gzip.open(self.path, "rt") as fh:
            for line in fh:
                raw = line.split(" ", 1)[1]
                msg = json.loads(raw)
                yield msg.get("data", msg)

    def _apply_snapshot(self) -> None:
        snapshot = next(m for m in self._messages if "lastUpdateId" in m)
        ins = self.book.instrument
        for is_bid, levels in ((True, snapshot["bids"]), (False, snapshot["asks"])):
            for price, qty in levels:
                self.book.set_synthetic(is_bid, ins.price(price), ins.qty(qty))
        self._capture_ms = snapshot.get("T") or snapshot.get("E") or 0
        self._index = self._messages.index(snapshot) + 1
        best_bid, best_ask = self.book.best(True), self.book.best(False)
        if best_bid and best_ask:
            self.book.mark_ticks = self.book.last_price_ticks = (best_bid + best_ask) // 2

    def step(self) -> None:
        ins = self.book.instrument
        until = self._capture_ms + self.tick_ms
        while True:
            if self._index >= len(self._messages):
                self._index = 0
                continue
            msg = self._messages[self._index]
            ts = msg.get("E") or msg.get("T") or 0
            if ts > until:
                break
            self._index += 1
            kind = msg.get("e")
            if kind == "depthUpdate" and ts >= self._capture_ms - 10_000:
                for is_bid, levels in ((True, msg["b"]), (False, msg["a"])):
                    for price, qty in levels:
                        self.book.set_synthetic(is_bid, ins.price(price), ins.qty(qty))
            elif kind == "trade":
                side = Side.SELL if msg["m"] else Side.BUY
                self.engine.fill_resting_from_flow(self.symbol, side, ins.price(msg["p"]), ins.qty(msg["q"]))
        self._capture_ms = until
        best_bid, best_ask = self.book.best(True), self.book.best(False)
        if best_bid and best_ask:
            mid = Fraction(best_bid + best_ask, 2)
            self.book.index_ticks = int(mid)
            self.book.mark_ticks = int(mid)
