"""What the components report, reduced to the facts the gates judge over a stage's window.

Pure. Components report counters since their process started (reconciliation mismatches, critical alerts,
orders submitted and rejected); the stage keeps a baseline of each counter taken when it began, with the
process start it belongs to, so a gate sees only what happened within the window and a restarted
component (whose counters start again at zero) is counted from zero rather than hidden by its old
baseline. The soak window starts when every component has entered the stage and restarts whenever one is
seen not ready.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from celeris.domain.modes import Mode


@dataclass(frozen=True)
class Observed:
    """One component's GetStatus, or why it could not be read."""

    component: str
    reachable: bool
    ready: bool = False
    mode: Mode | None = None
    halted: bool = False
    halt_reason: str = ""
    config_generation: int = 0
    started_at_ns: int = 0
    details: dict[str, str] = field(default_factory=dict)
    error: str = ""

    def summary(self) -> dict[str, Any]:
        if not self.reachable:
            return {"ready": False, "reachable": False, "error": self.error}
        return {"ready": self.ready, "mode": self.mode.value if self.mode else None, "halted": self.halted,
                "haltReason": self.halt_reason, "configGeneration": self.config_generation}


COUNTERS = {
    "reconciliation": [("account", "mismatches")],
    "criticalAlerts": [("account", "critical_alerts"), ("risk", "critical_alerts")],
    "orders": [("execution", "stats.submitted")],
    "rejects": [("execution", "stats.rejected")],
}


UNREADABLE = 1 << 30
"""What a counter that cannot be read (not a non-negative integer) counts as: its gate fails."""


def _value(details: dict[str, str], key: str) -> int:
    """The counter `key` of a component's details (0 when it does not report it; UNREADABLE when it
    reports something that is not a non-negative integer: a gate never passes on what it cannot read)."""
    try:
        if "." in key:  # a field of a JSON detail, e.g. execution's stats
            outer, inner = key.split(".", 1)
            raw = json.loads(details.get(outer) or "{}").get(inner, 0)
        else:
            raw = details.get(key, 0)
        value = raw if isinstance(raw, int) and not isinstance(raw, bool) else int(str(raw), 10)
    except (ValueError, TypeError, AttributeError):
        return UNREADABLE
    return value if value >= 0 else UNREADABLE


def counters(observed: dict[str, Observed]) -> dict[str, list[int]]:
    """"component.key" -> [process start (ns), value] for every counter a gate reads."""
    out: dict[str, list[int]] = {}
    for pairs in COUNTERS.values():
        for component, key in pairs:
            seen = observed.get(component)
            if seen is not None and seen.reachable:
                out[f"{component}.{key}"] = [seen.started_at_ns, _value(seen.details, key)]
    return out


def increase(stage: dict[str, Any], now: dict[str, list[int]], name: str) -> int:
    """How much the counters behind gate `name` grew within the stage's window: what earlier processes
    counted before they restarted (carried) plus what the current ones counted since their baseline."""
    baseline, carried = stage.get("baseline") or {}, stage.get("carried") or {}
    total = 0
    for component, key in COUNTERS[name]:
        full = f"{component}.{key}"
        total += int(carried.get(full, 0))
        current = now.get(full)
        if current is None:
            continue
        if current[1] >= UNREADABLE:
            return UNREADABLE
        base = baseline.get(full)
        if base is None or base[0] != current[0] or current[1] < base[1]:
            total += current[1]  # a new process (or a baseline from before it): all of it is in the window
        else:
            total += current[1] - base[1]
    return total


def next_window(stage: dict[str, Any], observed: dict[str, Observed], mode: Mode, now_s: float) -> dict[str, Any]:
    """The stage bookkeeping after this observation: when all entered, since when all are ready, baselines."""
    stage = dict(stage)
    everyone_in = bool(observed) and all(o.reachable and o.mode is mode for o in observed.values())
    everyone_ready = bool(observed) and all(o.reachable and o.ready for o in observed.values())
    if not everyone_in:
        stage.pop("enteredEpoch", None)
    elif "enteredEpoch" not in stage:
        stage["enteredEpoch"] = now_s
    if not everyone_ready:
        stage.pop("readySince", None)
    elif "readySince" not in stage:
        stage["readySince"] = now_s
    current = counters(observed)
    baseline, carried = dict(stage.get("baseline") or {}), dict(stage.get("carried") or {})
    last = stage.get("last") or {}
    for key, value in current.items():
        base = baseline.get(key)
        if base is not None and base[0] != value[0]:
            # The process restarted since the last pass: what it had counted stays in the window, the new
            # one counts from zero, and the soak starts again (it was not ready all along).
            seen = last.get(key)
            if seen is not None and seen[0] == base[0] and seen[1] < UNREADABLE:
                carried[key] = int(carried.get(key, 0)) + max(0, seen[1] - base[1])
            baseline[key] = [value[0], 0]
            stage.pop("readySince", None)
        baseline.setdefault(key, value)  # a counter first seen in this stage starts its window here
    stage.update(baseline=baseline, carried=carried, last=current)
    return stage


ERROR_SAMPLE_EVERY_S = 15.0
ERROR_SAMPLES_MAX = 32
"""At most this many samples stay in status, whatever the window (status must stay small: etcd)."""


def recent(stage: dict[str, Any], now_s: float, orders: int, rejects: int, window_s: float) -> tuple[int, int]:
    """Orders and rejects over the last `window_s` of the stage (a reject storm after a long clean run
    must not hide in the stage's average): the stage keeps a sample of its running totals every
    ERROR_SAMPLE_EVERY_S and the increase since the newest sample older than the window is returned."""
    every = max(ERROR_SAMPLE_EVERY_S, window_s / ERROR_SAMPLES_MAX)  # a long window: coarser, never more samples
    samples = [s for s in stage.get("errorSamples") or [] if isinstance(s, list) and len(s) == 3]
    if not samples:  # the totals count from the stage's start, where they were zero
        samples = [[now_s, 0, 0]]
    elif now_s - samples[-1][0] >= every:
        samples.append([now_s, orders, rejects])
    older = [s for s in samples if now_s - s[0] >= window_s]
    start = older[-1] if older else samples[0]
    stage["errorSamples"] = ([s for s in samples if now_s - s[0] < window_s + every] or [start])[-ERROR_SAMPLES_MAX - 2:]
    if start[1] > orders or start[2] > rejects:  # totals never go down within a stage
        return orders, rejects
    return orders - start[1], rejects - start[2]


def window_start(stage: dict[str, Any], now_s: float) -> float:
    """The soak's start: every component in the stage and ready since then (now while either is not so)."""
    entered, ready = stage.get("enteredEpoch"), stage.get("readySince")
    if entered is None or ready is None:
        return now_s
    return max(float(entered), float(ready))
