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


def _value(details: dict[str, str], key: str) -> int:
    if "." in key:  # a field of a JSON detail, e.g. execution's stats
        outer, inner = key.split(".", 1)
        try:
            return int(json.loads(details.get(outer) or "{}").get(inner, 0))
        except (ValueError, TypeError, AttributeError):
            return 0
    try:
        return int(details.get(key, 0))
    except ValueError:
        return 0


def counters(observed: dict[str, Observed]) -> dict[str, list[int]]:
    """"component.key" -> [process start (ns), value] for every counter a gate reads."""
    out: dict[str, list[int]] = {}
    for pairs in COUNTERS.values():
        for component, key in pairs:
            seen = observed.get(component)
            if seen is not None and seen.reachable:
                out[f"{component}.{key}"] = [seen.started_at_ns, _value(seen.details, key)]
    return out


def increase(baseline: dict[str, list[int]], now: dict[str, list[int]], name: str) -> int:
    """How much the counters behind gate `name` grew since the baseline (a restart counts from zero)."""
    total = 0
    for component, key in COUNTERS[name]:
        current = now.get(f"{component}.{key}")
        if current is None:
            continue
        base = baseline.get(f"{component}.{key}")
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
    baseline = dict(stage.get("baseline") or {})
    for key, value in current.items():
        baseline.setdefault(key, value)  # a counter first seen in this stage starts its window here
    stage["baseline"] = baseline
    return stage


def window_start(stage: dict[str, Any], now_s: float) -> float:
    """The soak's start: every component in the stage and ready since then (now while either is not so)."""
    entered, ready = stage.get("enteredEpoch"), stage.get("readySince")
    if entered is None or ready is None:
        return now_s
    return max(float(entered), float(ready))
