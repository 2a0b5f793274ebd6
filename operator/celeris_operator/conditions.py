"""Status conditions by Kubernetes convention: merged by type, with a transition time that moves only when
the status flips, and the generation each was computed for.

Pure. `summarize` turns what one reconcile pass saw into the conditions GitOps tools read: Ready,
Progressing (and Reconciling, its kstatus name), Degraded, Stalled and Halted; `merge` folds them into the
previous list so a condition that did not change keeps its lastTransitionTime. Any other type already in
the list (written by someone else) is kept as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TYPES = ("Ready", "Progressing", "Reconciling", "Degraded", "Stalled", "Halted")


@dataclass(frozen=True)
class Seen:
    """What one reconcile pass established."""

    generation: int
    applied: bool
    """Every object of this generation is applied and no pruning is pending."""
    components_ready: bool
    drift: str
    """Empty when every component reports the desired mode, halt and configuration; else what differs."""
    at_target: bool
    progress: str
    """Why the rollout is still moving (soaking, waiting for a gate or an approval, rolling an image)."""
    halted: str
    """Non-empty while trading is halted: by whom and why."""
    aborted: str = ""
    refused: str = ""
    """A configuration the components refused."""
    degraded: str = ""
    """A mode change rolled back, an image rolled back, a gate failing."""
    unready: str = ""


def condition(kind: str, ok: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason, "message": message[:1000],
            "observedGeneration": generation}


def summarize(seen: Seen) -> list[dict[str, Any]]:
    g = seen.generation
    stalled = seen.aborted or seen.refused
    ready = seen.applied and seen.components_ready and not seen.drift and seen.at_target and not stalled
    if ready:
        ready_c = condition("Ready", True, "Ready", "every component is ready in the target mode", g)
    else:
        why = ("NotApplied", f"generation {g} is being applied") if not seen.applied else \
            ("ComponentsNotReady", seen.unready or "components not ready") if not seen.components_ready else \
            ("Drift", seen.drift) if seen.drift else \
            ("Stalled", stalled) if stalled else ("RolloutInProgress", seen.progress)
        ready_c = condition("Ready", False, *why, g)
    if stalled:
        progressing = condition("Progressing", False, "RolloutAborted" if seen.aborted else "ConfigurationRefused",
                                stalled, g)
    elif ready:
        progressing = condition("Progressing", False, "RolloutComplete", "at the target mode", g)
    else:
        progressing = condition("Progressing", True, "Progressing",
                                seen.progress or ready_c["message"], g)
    reconciling = {**progressing, "type": "Reconciling"}
    degraded_why = seen.degraded or (seen.unready if not seen.components_ready and seen.applied else "")
    # Stalled before Reconciling: kstatus takes the first of the two that is True (they never both are).
    return [
        ready_c,
        condition("Stalled", bool(stalled), ("RolloutAborted" if seen.aborted else "ConfigurationRefused")
                  if stalled else "NotStalled", stalled, g),
        progressing, reconciling,
        condition("Degraded", bool(degraded_why), "Degraded" if degraded_why else "AsExpected", degraded_why, g),
        condition("Halted", bool(seen.halted), "Halted" if seen.halted else "Trading", seen.halted, g),
    ]


def merge(previous: list[dict[str, Any]] | None, new: list[dict[str, Any]], now_iso: str) -> list[dict[str, Any]]:
    """New conditions over the old, by type; lastTransitionTime changes only when status changes."""
    old = {c.get("type"): c for c in previous or []}
    out = []
    for cond in new:
        before = old.get(cond["type"])
        since = before.get("lastTransitionTime") if before and before.get("status") == cond["status"] else None
        out.append({**cond, "lastTransitionTime": since or now_iso})
    out.extend(c for t, c in old.items() if t not in TYPES)
    return out


def get(conditions: list[dict[str, Any]] | None, kind: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == kind), None)
