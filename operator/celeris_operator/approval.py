"""Approval for live and the rollout's abort, as pure functions of the resource and its last status.

An approval is bound to what it approves: it is recorded (status.approval) with the image and the
generation of the edit that set `spec.approvedForLive`, and it is valid only for that image and only if
it was granted after the last abort. Changing the image revokes it; to approve the new image, set
`approvedForLive` to false and then to true in a later edit (the CRD refuses approval in the edit that
changes the image). An abort (status.abort) is what an automatic demotion from live leaves behind; the
rollout stays where it was demoted to until a new revision (a later spec generation) or an explicit retry
(a new value of the `celeris.dev/retry` annotation) — and even then live needs a fresh approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RETRY_ANNOTATION = "celeris.dev/retry"


@dataclass(frozen=True)
class ApprovalState:
    record: dict[str, Any] | None
    """What status.approval becomes (None: removed)."""
    abort: dict[str, Any] | None
    """What status.abort becomes (None: no abort in force)."""
    valid: bool
    reason: str
    """Why the approval is not valid (empty when valid)."""


def retry_token(meta: dict[str, Any]) -> str:
    return str((meta.get("annotations") or {}).get(RETRY_ANNOTATION, ""))


def known_images(status: dict[str, Any]) -> set[str]:
    """Images the operator has seen the spec ask for: the one it runs, one it is rolling to, one it rolled
    back from."""
    rolling = status.get("imageRollout") or {}
    last = status.get("lastRollout") or {}
    return {i for i in (status.get("lastGoodImage"), rolling.get("to"), last.get("image")) if i}


def grant(body: dict[str, Any], now_iso: str) -> dict[str, Any]:
    """The record of an approval given now, for the resource's image and generation. An approval first seen
    together with an image the operator has never seen the spec ask for (two edits it did not see apart:
    approve, then change the image) is the previous image's, so that image change revokes it, as the CRD
    does for one edit; an approval given while the new image rolls is the new image's."""
    status = body.get("status") or {}
    image = body["spec"]["image"]
    known = known_images(status)
    if known and image not in known and status.get("lastGoodImage"):
        image = status["lastGoodImage"]
    return {"image": image, "generation": int(body["metadata"].get("generation") or 0), "at": now_iso}


def evaluate(spec: dict[str, Any], meta: dict[str, Any], status: dict[str, Any], now_iso: str) -> ApprovalState:
    generation = int(meta.get("generation") or 0)
    record = status.get("approval")
    if not spec.get("approvedForLive"):
        record = None
    elif record is None:
        record = grant({"spec": spec, "metadata": meta, "status": status}, now_iso)
    abort = status.get("abort")
    if abort is not None and (generation > int(abort.get("generation", 0)) or retry_token(meta) != abort.get("retry", "")):
        abort = None  # a new revision or an explicit retry lifts the abort (not the need for a new approval)
    last_abort = int(status.get("lastAbortGeneration") or 0)
    if (spec.get("rollout") or {}).get("autoPromote"):
        return ApprovalState(record, abort, True, "")
    if record is None:
        return ApprovalState(None, abort, False, "not approved")
    if record["image"] != spec["image"]:
        record = {**record, "revoked": f"the image changed to {spec['image']}"}
        return ApprovalState(record, abort, False, f"the approval was for {record['image']}; set approvedForLive "
                                                   f"to false, then true, to approve {spec['image']}")
    if int(record["generation"]) <= last_abort:
        return ApprovalState(record, abort, False, f"the approval of generation {record['generation']} predates "
                                                   f"the abort at generation {last_abort}; approve again")
    return ApprovalState(record, abort, True, "")


def abort_record(meta: dict[str, Any], reason: str, now_iso: str) -> dict[str, Any]:
    return {"generation": int(meta.get("generation") or 0), "retry": retry_token(meta), "reason": reason,
            "at": now_iso}
