"""The L2 order book and the Binance USD-M depth sequence rules.

Owns three things:
- `OrderBook`: price levels as integer ticks -> integer steps, with best bid/ask kept in sorted lists
  so that per-event work is O(levels changed) plus a memmove, never a scan of the book;
- `DepthSequencer`: the futures rules for diff-depth ids (drop u < lastUpdateId; the first event must
  straddle the snapshot id, U <= lastUpdateId <= u; then every event's pu must equal the previous u);
- `SyncedBook`: both together with the buffering the venue's procedure requires, so a caller can feed
  events before and after the REST snapshot and is told when the book is live, stale or broken.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Sequence

Level = tuple[int, int]
"""(price_ticks, qty_steps)."""


class CrossedBookError(ValueError):
    """A snapshot whose best bid is at or above its best ask."""


MAX_LEVELS_PER_SIDE = 5_000
"""Levels kept per side. The venue's diff stream only speaks of the levels near the touch (its snapshot has
1,000): a level left behind as the price moves away is never updated again and would stay forever, so
past this many (plus a tenth, to trim rarely) the farthest are dropped."""


class OrderBook:
    """An L2 book of one symbol. Quantities are absolute; a zero quantity deletes the level."""

    __slots__ = ("symbol", "_bids", "_asks", "_bid_keys", "_ask_keys", "last_update_id", "max_levels", "_trim_at")

    def __init__(self, symbol: str, max_levels: int = MAX_LEVELS_PER_SIDE) -> None:
        self.symbol = symbol
        self.max_levels = max_levels
        self._trim_at = max_levels + max_levels // 10
        self._bids: dict[int, int] = {}
        self._asks: dict[int, int] = {}
        # Sorted ascending; bids are stored negated so both lists put the best level first.
        self._bid_keys: list[int] = []
        self._ask_keys: list[int] = []
        self.last_update_id = 0

    # -- updates -------------------------------------------------------------------------------
    def apply_snapshot(self, bids: Iterable[Level], asks: Iterable[Level], last_update_id: int = 0) -> None:
        self._bids = {p: q for p, q in bids if q > 0}
        self._asks = {p: q for p, q in asks if q > 0}
        self._bid_keys = sorted(-p for p in self._bids)
        self._ask_keys = sorted(self._asks)
        self.last_update_id = last_update_id

    def apply_diff(self, bids: Iterable[Level], asks: Iterable[Level], update_id: int | None = None) -> None:
        """Apply absolute level quantities; removing an unknown level is normal and ignored."""
        levels, keys = self._bids, self._bid_keys
        for price, qty in bids:
            if qty:
                if price not in levels:
                    insort(keys, -price)
                levels[price] = qty
            elif levels.pop(price, None) is not None:
                del keys[bisect_left(keys, -price)]
        levels, keys = self._asks, self._ask_keys
        for price, qty in asks:
            if qty:
                if price not in levels:
                    insort(keys, price)
                levels[price] = qty
            elif levels.pop(price, None) is not None:
                del keys[bisect_left(keys, price)]
        if len(self._bid_keys) > self._trim_at or len(self._ask_keys) > self._trim_at:
            self._trim()
        if update_id is not None:
            self.last_update_id = update_id

    def _trim(self) -> None:
        """Drop the farthest levels beyond max_levels on each side (the keys are sorted best first)."""
        for levels, keys, sign in ((self._bids, self._bid_keys, -1), (self._asks, self._ask_keys, 1)):
            if len(keys) > self.max_levels:
                for key in keys[self.max_levels:]:
                    del levels[sign * key]
                del keys[self.max_levels:]

    def clear(self) -> None:
        self.apply_snapshot((), (), 0)

    # -- reads ---------------------------------------------------------------------------------
    def best_bid(self) -> Level | None:
        if not self._bid_keys:
            return None
        price = -self._bid_keys[0]
        return price, self._bids[price]

    def best_ask(self) -> Level | None:
        if not self._ask_keys:
            return None
        price = self._ask_keys[0]
        return price, self._asks[price]

    def mid(self) -> Fraction | None:
        """Mid price in ticks (exact; may be a half tick)."""
        if not self._bid_keys or not self._ask_keys:
            return None
        return Fraction(self._ask_keys[0] - self._bid_keys[0], 2)

    def spread(self) -> int | None:
        """Best ask minus best bid in ticks."""
        if not self._bid_keys or not self._ask_keys:
            return None
        return self._ask_keys[0] + self._bid_keys[0]

    def is_crossed(self) -> bool:
        return bool(self._bid_keys and self._ask_keys and -self._bid_keys[0] >= self._ask_keys[0])

    def bids(self, depth: int | None = None) -> list[Level]:
        """Best first."""
        keys = self._bid_keys if depth is None else self._bid_keys[:depth]
        return [(-k, self._bids[-k]) for k in keys]

    def asks(self, depth: int | None = None) -> list[Level]:
        keys = self._ask_keys if depth is None else self._ask_keys[:depth]
        return [(k, self._asks[k]) for k in keys]

    def asks_through(self, limit: int | None = None) -> list[Level]:
        """Asks at or below `limit` (every ask without one), best first: what a buy at `limit` would take."""
        out = []
        for price in self._ask_keys:
            if limit is not None and price > limit:
                break
            out.append((price, self._asks[price]))
        return out

    def bids_through(self, limit: int | None = None) -> list[Level]:
        """Bids at or above `limit` (every bid without one), best first: what a sell at `limit` would take."""
        out = []
        for key in self._bid_keys:
            if limit is not None and -key < limit:
                break
            out.append((-key, self._bids[-key]))
        return out

    def qty_at(self, is_bid: bool, price: int) -> int:
        return (self._bids if is_bid else self._asks).get(price, 0)

    @property
    def depth(self) -> tuple[int, int]:
        return len(self._bids), len(self._asks)


class Verdict(enum.Enum):
    """What to do with one diff-depth event."""

    APPLY = "apply"
    STALE = "stale"  # older than the book: drop it, nothing is wrong
    GAP = "gap"  # the chain is broken: the book is no longer trustworthy
    BUFFER = "buffer"  # no snapshot yet: keep it for later


class DepthSequencer:
    """Binance USD-M diff-depth continuity. Ids are not contiguous: only `pu == previous u` counts."""

    __slots__ = ("snapshot_id", "last_u")

    def __init__(self) -> None:
        self.snapshot_id: int | None = None
        self.last_u: int | None = None

    def reset(self, snapshot_id: int) -> None:
        self.snapshot_id = snapshot_id
        self.last_u = None

    def classify(self, first_id: int, final_id: int, prev_final_id: int) -> Verdict:
        """Classify an event (U, u, pu). Advances the chain on APPLY."""
        if self.snapshot_id is None:
            return Verdict.BUFFER
        last_u = self.last_u
        if last_u is None:
            if final_id < self.snapshot_id:
                return Verdict.STALE
            # The venue's rule is U <= lastUpdateId <= u; an event that starts right after the
            # snapshot (pu == lastUpdateId) continues it just as exactly (ccxt accepts it too).
            if first_id <= self.snapshot_id or prev_final_id == self.snapshot_id:
                self.last_u = final_id
                return Verdict.APPLY
            return Verdict.GAP  # the snapshot is older than the stream: refetch it
        if prev_final_id == last_u:
            self.last_u = final_id
            return Verdict.APPLY
        if final_id <= last_u:
            return Verdict.STALE  # a duplicate or a late copy of an event already applied
        return Verdict.GAP


@dataclass(slots=True)
class DepthEvent:
    """One parsed diff-depth event, prices in ticks and quantities in steps."""

    first_id: int  # U
    final_id: int  # u
    prev_final_id: int  # pu
    bids: Sequence[Level]
    asks: Sequence[Level]
    ts_event_ms: int = 0  # E
    ts_transact_ms: int = 0  # T


class BookState(enum.Enum):
    AWAITING_SNAPSHOT = "awaiting_snapshot"
    LIVE = "live"
    STALE = "stale"  # a gap was seen; waiting for a new snapshot


@dataclass(slots=True)
class SyncStats:
    applied: int = 0
    stale_dropped: int = 0
    gaps: int = 0
    resyncs: int = 0
    crossed: int = 0


@dataclass(slots=True)
class SyncedBook:
    """An order book kept in sync with the venue's diff stream by the official futures procedure.

    Feed every event to `on_event` from the moment the stream opens; call `on_snapshot` with the REST
    depth. While the state is not LIVE the book must not be published. After a GAP the caller fetches a
    new snapshot; events keep being buffered until it arrives.
    """

    book: OrderBook
    max_buffer: int = 10_000
    state: BookState = BookState.AWAITING_SNAPSHOT
    stats: SyncStats = field(default_factory=SyncStats)
    _sequencer: DepthSequencer = field(default_factory=DepthSequencer)
    _buffer: list[DepthEvent] = field(default_factory=list)

    def on_event(self, event: DepthEvent) -> Verdict:
        if self.state is not BookState.LIVE:
            if len(self._buffer) >= self.max_buffer:
                del self._buffer[0]
            self._buffer.append(event)
            return Verdict.BUFFER
        return self._apply(event)

    def on_snapshot(self, last_update_id: int, bids: Iterable[Level], asks: Iterable[Level]) -> BookState:
        """Install a REST snapshot and replay buffered events; returns the resulting state."""
        self.book.apply_snapshot(bids, asks, last_update_id)
        self._sequencer.reset(last_update_id)
        if self.state is BookState.STALE:
            self.stats.resyncs += 1
        self.state = BookState.LIVE
        buffered, self._buffer = self._buffer, []
        for index, event in enumerate(buffered):
            if self._apply(event) is Verdict.GAP:
                # Keep the rest: the next snapshot may fall inside them.
                self._buffer.extend(buffered[index + 1:])
                break
        return self.state

    def _apply(self, event: DepthEvent) -> Verdict:
        verdict = self._sequencer.classify(event.first_id, event.final_id, event.prev_final_id)
        if verdict is Verdict.APPLY:
            self.book.apply_diff(event.bids, event.asks, event.final_id)
            self.stats.applied += 1
            if self.book.is_crossed():
                self.stats.crossed += 1
        elif verdict is Verdict.STALE:
            self.stats.stale_dropped += 1
        else:
            self.mark_stale()
            self._buffer.append(event)
        return verdict

    def mark_stale(self) -> None:
        """The chain broke (or the connection did): stop trusting the book until a new snapshot."""
        self.stats.gaps += 1
        self.state = BookState.STALE
        self._buffer.clear()

    @property
    def buffered(self) -> int:
        return len(self._buffer)
