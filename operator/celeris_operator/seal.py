"""The operator's seal on the status records its decisions rest on.

Pure. Status is writable by anyone with RBAC on the status subresource, and some of what is in it decides
what the operator does next: the mode it recorded, the stage's soak and counters, the approval, the
abort, which image each group runs. The operator seals those records with an HMAC keyed by the
system's Control token (which only it and the pods hold) and checks the seal at the start of every pass;
records it did not write are not acted on (the reconciler starts the rollout over, aborted, from what the
components report).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SEALED = ("mode", "stage", "approval", "abort", "lastAbortGeneration", "generationOffset", "images",
          "lastGoodImage", "imageRollout", "lastRollout")


def seal(status: dict[str, Any], token: str) -> str:
    records = json.dumps({k: status.get(k) for k in SEALED}, sort_keys=True, separators=(",", ":"))
    return hmac.new(f"celeris-status:{token}".encode(), records.encode(), hashlib.sha256).hexdigest()


def intact(status: dict[str, Any], token: str) -> bool:
    """Whether the sealed records are the operator's own (a status with none of them yet is)."""
    if not any(status.get(k) is not None for k in SEALED):
        return True
    return hmac.compare_digest(str(status.get("seal") or ""), seal(status, token))
