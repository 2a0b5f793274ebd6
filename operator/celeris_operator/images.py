"""The staged image rollout as a state machine kept in status, advanced one step per reconcile pass.

Pure. A new `spec.image` rolls out group by group, data plane first; each group must run the new image
with every replica updated and ready before the next starts; a group that is not ready within the
timeout rolls every group back to the last good image. A rollout that was rolled back is not retried for
the same image until it changes or the `celeris.dev/retry` annotation does. The operator can restart at
any step: everything the machine needs is in status (images, imageRollout, lastGoodImage, lastRollout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ImageStep:
    images: dict[str, str]
    """group -> image the Deployment runs now."""
    rollout: dict[str, Any] | None
    """status.imageRollout: {from, to, order, index, since} while rolling."""
    last_good: str
    last_rollout: dict[str, Any] | None
    event: tuple[str, str] | None = None
    """(reason, message) for a Kubernetes event, when a step happened."""


def step(spec: dict[str, Any], status: dict[str, Any], order: list[str], ready_with: dict[str, str],
         now_s: float, timeout_s: float, retry: str, now_iso: str) -> ImageStep:
    """`ready_with`: group -> the image its Deployment is updated and ready with (absent: not ready)."""
    want = spec["image"]
    good = status.get("lastGoodImage") or want
    images = {g: (status.get("images") or {}).get(g, good) for g in order}
    last = status.get("lastRollout")
    rolling = status.get("imageRollout")
    if rolling and rolling.get("to") != want:
        rolling = None  # the spec moved on: start again from the last good image
        images = {g: good for g in order}
    if rolling is None:
        if want == good:
            return ImageStep({g: good for g in order}, None, good, last)
        if last and last.get("image") == want and last.get("result") == "rolled back" \
                and last.get("retry", "") == retry:
            return ImageStep(images, None, good, last)  # not again until the image or the retry changes
        rolling = {"from": good, "to": want, "order": list(order), "index": 0, "since": now_s}
    index = int(rolling["index"])
    plan = [g for g in rolling["order"] if g in order] or list(order)
    while index < len(plan) and ready_with.get(plan[index]) == want:
        index += 1  # this group runs the new image, updated and ready: the next one may start
        rolling = {**rolling, "index": index, "since": now_s}
    if index >= len(plan):
        done = {"image": want, "result": "complete", "at": now_iso}
        return ImageStep({g: want for g in order}, None, want, done, ("ImageRolledOut", f"every component runs {want}"))
    group = plan[index]
    images = {g: (want if i <= index else images.get(g, good)) for i, g in enumerate(plan)}
    if now_s - float(rolling["since"]) > timeout_s:
        back = {"image": want, "result": "rolled back", "failedComponent": group, "retry": retry, "at": now_iso}
        return ImageStep({g: rolling["from"] for g in order}, None, rolling["from"], back,
                         ("RolledBack", f"{group} did not become ready with {want}; back on {rolling['from']}"))
    return ImageStep(images, rolling, good, last)
