"""The dashboard's aggregated state: a flat map of dotted paths to JSON-able values, with versions.

Owns the one cached picture every dashboard client sees (FR-DS-001): each value lives at a dotted path
("markets.BTCUSDT", "account.pnl", "health.execution"), carries the version of its last change and the
time of that change, and the first path segment is its channel, which clients subscribe to. A client that
has seen version v receives exactly the paths changed since v: slow clients therefore get one coalesced
update instead of a queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

CHANNELS = ("system", "markets", "orders", "fills", "positions", "account", "pnl", "risk", "signals", "health",
            "alerts")


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

    def set(self, path: str, value: Any, ts_ns: int) -> bool:
        """Store a value; returns False (and changes nothing) when it is equal to the current one."""
        current = self.entries.get(path)
        if current is not None and current.value == value:
            return False
        self.version += 1
        self.entries[path] = Entry(value, self.version, ts_ns)
        self.removed.pop(path, None)
        return True

    def remove(self, path: str) -> None:
        if self.entries.pop(path, None) is not None:
            self.version += 1
            self.removed[path] = self.version

    def append_history(self, point: list[float], ts_ns: int) -> None:
        self.history.append(point)
        if len(self.history) > self.max_history:
            del self.history[: len(self.history) - self.max_history]
        self.set("pnl.point", point, ts_ns)

    def snapshot(self, channels: Iterable[str] | None = None) -> dict[str, Any]:
        wanted = set(channels) if channels is not None else None
        out = {p: e.value for p, e in self.entries.items() if wanted is None or p.split(".", 1)[0] in wanted}
        if wanted is None or "pnl" in wanted:
            out["pnl.history"] = list(self.history)
        return out

    def changes_since(self, version: int, channels: set[str] | None) -> tuple[dict[str, Any], list[str], int]:
        """(changed values, removed paths, oldest change time in ns) since `version`, for the channels."""
        changes: dict[str, Any] = {}
        oldest = 0
        for path, entry in self.entries.items():
            if entry.version > version and (channels is None or path.split(".", 1)[0] in channels):
                changes[path] = entry.value
                oldest = entry.ts_ns if not oldest else min(oldest, entry.ts_ns)
        removed = [p for p, v in self.removed.items() if v > version
                   and (channels is None or p.split(".", 1)[0] in channels)]
        return changes, removed, oldest
