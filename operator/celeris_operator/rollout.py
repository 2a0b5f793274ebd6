"""The staged rollout observation -> simulation -> live, as a pure decision from facts to an action.

Owns the gates (minimum time in the stage, every component ready, no reconciliation mismatch over the
window, no critical alert, the error budget) and the rules: promote one stage at a time toward the
target when the gates pass (into live only with an approval, unless autoPromote); in live, a failed gate
demotes to simulation with its reason; a lower target is applied at once. Moves go through the domain's
mode table, so an illegal jump raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from celeris.domain.modes import Mode, change_mode

ORDER = [Mode.OBSERVATION, Mode.SIMULATION, Mode.LIVE]


def parse_duration(text: str) -> float:
    """"2h30m" -> seconds."""
    total = 0.0
    for amount, unit in re.findall(r"([0-9]+)([smh])", text or "0s"):
        total += int(amount) * {"s": 1, "m": 60, "h": 3600}[unit]
    return total


@dataclass(frozen=True)
class Facts:
    """What the operator observed about the running components."""

    now_s: float
    stage_since_s: float
    components_ready: dict[str, bool]
    reconciliation_mismatches: int = 0
    critical_alerts: int = 0
    error_rate_pct: float = 0.0


@dataclass(frozen=True)
class Decision:
    action: str  # "stay" | "promote" | "demote"
    mode: Mode
    reason: str
    gates: dict[str, bool] = field(default_factory=dict)


def stages(spec: dict[str, Any]) -> list[tuple[Mode, float]]:
    rollout = spec.get("rollout") or {"stages": [{"mode": spec.get("mode", "observation")}]}
    return [(Mode(s["mode"]), parse_duration(s.get("minDuration", "0s"))) for s in rollout["stages"]]


def evaluate_gates(spec: dict[str, Any], current: Mode, facts: Facts) -> dict[str, bool]:
    gates = (spec.get("rollout") or {}).get("gates", {})
    min_duration = dict(stages(spec)).get(current, 0.0)
    return {
        "minDuration": facts.now_s - facts.stage_since_s >= min_duration,
        "componentsReady": bool(facts.components_ready) and all(facts.components_ready.values()),
        "reconciliation": facts.reconciliation_mismatches <= gates.get("maxReconciliationMismatches", 0),
        "criticalAlerts": facts.critical_alerts <= gates.get("maxCriticalAlerts", 0),
        "errorBudget": facts.error_rate_pct <= float(gates.get("errorBudgetPct", 1)),
    }


def decide(spec: dict[str, Any], current: Mode, facts: Facts) -> Decision:
    target = Mode(spec.get("mode", "observation"))
    gates = evaluate_gates(spec, current, facts)
    health = {k: v for k, v in gates.items() if k != "minDuration"}
    if ORDER.index(target) < ORDER.index(current):
        return Decision("demote", change_mode(current, target), f"target mode is {target.value}", gates)
    if current is Mode.LIVE and not all(health.values()):
        failed = ", ".join(k for k, v in health.items() if not v)
        return Decision("demote", change_mode(current, Mode.SIMULATION), f"gate failed in live: {failed}", gates)
    if current is target:
        return Decision("stay", current, "at the target mode", gates)
    if not all(gates.values()):
        failed = ", ".join(k for k, v in gates.items() if not v)
        return Decision("stay", current, f"waiting for gates: {failed}", gates)
    following = ORDER[ORDER.index(current) + 1]
    planned = [m for m, _ in stages(spec)]
    if following not in planned and following is not target:
        return Decision("stay", current, f"the rollout has no {following.value} stage", gates)
    if following is Mode.LIVE and not (spec.get("approvedForLive") or (spec.get("rollout") or {}).get("autoPromote")):
        return Decision("stay", current, "gates pass; live needs approvedForLive (or rollout.autoPromote)", gates)
    return Decision("promote", change_mode(current, following), f"gates passed in {current.value}", gates)
