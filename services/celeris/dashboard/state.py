"""The dashboard's aggregated state: a flat map of dotted paths to JSON-able values, with versions.

Owns the one cached picture every dashboard client sees (FR-DS-001): each value lives at a dotted path
("markets.BTCUSDT", "account.pnl", "health.execution"), carries the version of its last change and the
time of that change, and the first path segment is its channel, which clients subscribe to. A client that
has seen version v receives exactly the paths changed since v: slow clients therefore get one coalesced
update instead of a queue. The time of every recent change is kept by version (a bounded log), so the age
of the oldest change a client has not seen is known exactly, not just the age of the values it will get.

A change wakes the one listener (the server, which coalesces pushes); a source that defers formatting off
the trading path (books) marks the state dirty with `mark_dirty(flush)`: `flush` runs once, before the
next read, so the trading path only pays for the mark.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

CHANNELS = ("system", "markets", "orders", "fills", "positions", "account", "pnl", "risk", "signals", "health",
            "alerts")
CHANGE_LOG = 4096
"""Changes whose time is kept by version: a client further behind than this is given the oldest one kept
(its staleness is overstated, never understated)."""


@dataclass
class Entry:
    value: Any
    version: int
    ts_ns: int


@dataclass
class DashboardState:
    entries: dict[str, Entry] = field(default_factory=dict)
    version: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    """Paths removed, with the version of the removal (so late clients learn about it too)."""
    history: list[list[float]] = field(default_factory=list)
    """PnL over time: [ts_ms, total, equity] points (append-only for clients)."""
    max_history: int = 3600
    on_change: Callable[[], None] | None = None
    """Called on every change and every mark; it must be cheap and idempotent (the server's scheduler)."""
    change_log: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=CHANGE_LOG))
    """(ts_ns, path) of versions version-len+1 .. version, in order."""
    pending: list[Callable[[], None]] = field(default_factory=list)
    """Deferred formatting (see mark_dirty), run before the next read."""

    def set(self, path: str, value: Any, ts_ns: int) -> bool:
        """Store a value; returns False (and changes nothing) when it is equal to the current one."""
        current = self.entries.get(path)
        if current is not None and current.value == value:
            return False
        self.version += 1
        self.entries[path] = Entry(value, self.version, ts_ns)
        self.removed.pop(path, None)
        self.change_log.append((ts_ns, path))
        if self.on_change is not None:
            self.on_change()
        return True

    def remove(self, path: str, ts_ns: int = 0) -> None:
        if self.entries.pop(path, None) is not None:
            self.version += 1
            self.removed[path] = self.version
            self.change_log.append((ts_ns, path))
            if self.on_change is not None:
                self.on_change()

    def mark_dirty(self, flush: Callable[[], None]) -> None:
        """A source has a change it formats later: `flush` (which calls set) runs before the next read.

        The caller marks once per batch (when its own dirty set was empty), so this is O(1) per batch.
        """
        self.pending.append(flush)
        if self.on_change is not None:
            self.on_change()

    def flush(self) -> None:
        """Run the deferred formatting now (the server does before every push; reads do it too)."""
        while self.pending:
            pending, self.pending = self.pending, []
            for fn in pending:
                try:
                    fn()
                except Exception:  # one figure that cannot be formatted must not stop every push
                    logging.getLogger(__name__).exception("dashboard: deferred formatting failed")

    def oldest_unseen_ns(self, version: int, channels: set[str] | None = None) -> int:
        """The time of the first change after `version` in `channels` (0 when there is none)."""
        log = self.change_log
        first = self.version - len(log) + 1
        start = max(version + 1, first) - first
        for i in range(start, len(log)):
            ts, path = log[i]
            if ts and (channels is None or path.split(".", 1)[0] in channels):  # a removal may carry no time
                return ts
        if version + 1 < first and log:
            return log[0][0]  # older than the log: the oldest time kept (an overstatement)
        return 0

    def append_history(self, point: list[float], ts_ns: int) -> None:
        self.history.append(point)
        if len(self.history) > self.max_history:
            del self.history[: len(self.history) - self.max_history]
        self.set("pnl.point", point, ts_ns)

    def snapshot(self, channels: Iterable[str] | None = None) -> dict[str, Any]:
        self.flush()
        wanted = set(channels) if channels is not None else None
        out = {p: e.value for p, e in self.entries.items() if wanted is None or p.split(".", 1)[0] in wanted}
        if wanted is None or "pnl" in wanted:
            out["pnl.history"] = list(self.history)
        return out

    def changes_since(self, version: int, channels: set[str] | None) -> tuple[dict[str, Any], list[str], int]:
        """(changed values, removed paths, oldest unseen change time in ns) since `version`, for the channels.

        The time is that of the first change after `version` (even if a later value replaced it): how long the
        client's picture has been out of date, not how old the newest values are.
        """
        self.flush()
        changes: dict[str, Any] = {}
        oldest = 0
        for path, entry in self.entries.items():
            if entry.version > version and (channels is None or path.split(".", 1)[0] in channels):
                changes[path] = entry.value
        removed = [p for p, v in self.removed.items() if v > version
                   and (channels is None or p.split(".", 1)[0] in channels)]
        if changes or removed:
            oldest = self.oldest_unseen_ns(version, channels)
        return changes, removed, oldest
