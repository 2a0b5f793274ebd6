"""The staged rollout observation -> simulation -> live, as a pure decision from facts to an action.

Owns the gates and the rules. Gates are judged over the stage's window, never since a process started:
the soak (`minDuration`) counts from when every component entered the stage and stayed ready; within
that window there must be no reconciliation mismatch and no critical alert beyond the allowance, and
execution's reject rate must stay inside the error budget. Rules: promote one stage at a time toward the
target when the gates pass; into live only with a valid approval (bound to the image, granted after the
last abort) unless autoPromote; in live a failed health gate demotes to simulation and aborts the rollout
(Argo Rollouts' abort: it stays demoted until a new revision or an explicit retry); a lower target is
applied at once. Moves go through the domain's mode table, so an illegal jump raises.
"""

from __future__ import annotations

import re
from decimal import Decimal
from dataclasses import dataclass, field
from typing import Any

from celeris.domain.modes import Mode, change_mode

ORDER = [Mode.OBSERVATION, Mode.SIMULATION, Mode.LIVE]
DURATION = re.compile(r"^(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$")
"""The one duration grammar (also the CRD's pattern): hours, minutes, seconds, each at most once, in order."""
DEFAULT_MIN_ERROR_SAMPLES = 20
"""Below this many orders in the window a reject rate says nothing; the error gate waits for more."""


def parse_duration(text: str | None) -> float:
    """"2h30m" -> 9000.0 seconds; anything outside the grammar raises (the CRD refuses it first)."""
    if not text:
        return 0.0
    match = DURATION.match(text)
    if match is None or not any(match.groups()):
        raise ValueError(f"duration {text!r} is not of the form 1h30m15s")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


@dataclass(frozen=True)
class Facts:
    """What the operator observed, already reduced to the stage's window."""

    now_s: float
    window_start_s: float
    """When every component had entered the stage and stayed ready since (the soak's start)."""
    components_ready: dict[str, bool]
    reconciliation_mismatches: int = 0
    critical_alerts: int = 0
    orders: int = 0
    rejects: int = 0
    approved: bool = False
    """A valid approval for live (or autoPromote)."""
    approval_reason: str = ""
    aborted: str = ""
    """Non-empty while the rollout is aborted: why."""


@dataclass(frozen=True)
class Decision:
    action: str  # "stay" | "promote" | "demote"
    mode: Mode
    reason: str
    gates: dict[str, bool] = field(default_factory=dict)
    abort: bool = False
    """The demotion is a gate failing in live: the rollout is aborted until a new revision or a retry."""


def stages(spec: dict[str, Any]) -> list[tuple[Mode, float]]:
    rollout = spec.get("rollout") or {"stages": [{"mode": spec.get("mode", "observation")}]}
    return [(Mode(s["mode"]), parse_duration(s.get("minDuration"))) for s in rollout["stages"]]


def error_rate_ok(spec: dict[str, Any], orders: int, rejects: int) -> bool:
    from celeris_operator.signals import UNREADABLE

    if orders >= UNREADABLE or rejects >= UNREADABLE:
        return False  # a counter that cannot be read passes no gate
    gates = (spec.get("rollout") or {}).get("gates", {})
    if orders < int(gates.get("errorBudgetMinOrders", DEFAULT_MIN_ERROR_SAMPLES)):
        return True
    # Integer comparison: rejects / orders <= pct / 100, with the budget as a decimal string or number.
    budget_ppm = int(Decimal(str(gates.get("errorBudgetPct", 1))) * 10_000)
    return rejects * 1_000_000 <= budget_ppm * orders


def evaluate_gates(spec: dict[str, Any], current: Mode, facts: Facts) -> dict[str, bool]:
    gates = (spec.get("rollout") or {}).get("gates", {})
    min_duration = dict(stages(spec)).get(current, 0.0)
    return {
        "minDuration": facts.now_s - facts.window_start_s >= min_duration,
        "componentsReady": bool(facts.components_ready) and all(facts.components_ready.values()),
        "reconciliation": facts.reconciliation_mismatches <= int(gates.get("maxReconciliationMismatches", 0)),
        "criticalAlerts": facts.critical_alerts <= int(gates.get("maxCriticalAlerts", 0)),
        "errorBudget": error_rate_ok(spec, facts.orders, facts.rejects),
    }


def failed(gates: dict[str, bool]) -> str:
    return ", ".join(k for k, v in gates.items() if not v)


def decide(spec: dict[str, Any], current: Mode, facts: Facts) -> Decision:
    target = Mode(spec.get("mode", "observation"))
    gates = evaluate_gates(spec, current, facts)
    health = {k: v for k, v in gates.items() if k != "minDuration"}
    if ORDER.index(target) < ORDER.index(current):
        return Decision("demote", change_mode(current, target), f"target mode is {target.value}", gates)
    if current is Mode.LIVE and not all(health.values()):
        return Decision("demote", change_mode(current, Mode.SIMULATION), f"gate failed in live: {failed(health)}",
                        gates, abort=True)
    if current is target:
        return Decision("stay", current, "at the target mode", gates)
    if facts.aborted:
        return Decision("stay", current, f"rollout aborted ({facts.aborted}); it waits for a new revision or the "
                                         f"celeris.dev/retry annotation", gates)
    if not all(gates.values()):
        return Decision("stay", current, f"waiting for gates: {failed(gates)}", gates)
    following = ORDER[ORDER.index(current) + 1]
    planned = [m for m, _ in stages(spec)]
    # The bundled simulator moves no money: without a rollout it walks every stage to its target, and live
    # needs neither a soak nor an approval (the CRD admits it; docs/deployment.md).
    paper_venue = (spec.get("venue") or {}).get("kind") == "simulator"
    if following not in planned and following is not target and not (paper_venue and not spec.get("rollout")):
        return Decision("stay", current, f"the rollout has no {following.value} stage", gates)
    if following is Mode.LIVE and not paper_venue:
        soak = dict(stages(spec)).get(Mode.SIMULATION, 0.0)
        if soak <= 0:
            return Decision("stay", current, "live needs a simulation stage with a non-zero minDuration", gates)
        if not facts.approved:
            return Decision("stay", current, f"gates pass; live needs approvedForLive ({facts.approval_reason}) "
                                             f"or rollout.autoPromote", gates)
    return Decision("promote", change_mode(current, following), f"gates passed in {current.value}", gates)
