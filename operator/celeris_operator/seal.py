"""The operator's seal on the status records its decisions rest on.

Pure. Status is writable by anyone with RBAC on the status subresource, and some of what is in it decides
what the operator does next: the mode it recorded, the stage's soak and counters, the approval, the
abort, which image each group runs. The operator seals those records with an HMAC keyed by its
own Secret (celeris-operator-seal in its namespace; not the Control token, which a rotation changes) and checks the seal at the start of every pass;
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


def _canonical(value: Any) -> Any:
    """What survives the API server's JSON: an integral float comes back as an integer (1700000000.0 is
    stored as 1700000000), so both are sealed as the integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def seal(status: dict[str, Any], key: str) -> str:
    records = json.dumps(_canonical({k: status.get(k) for k in SEALED}), sort_keys=True, separators=(",", ":"))
    return hmac.new(f"celeris-status:{key}".encode(), records.encode(), hashlib.sha256).hexdigest()


def intact(status: dict[str, Any], key: str) -> bool:
    """Whether the sealed records are the operator's own (a status with none of them yet is)."""
    if not any(status.get(k) is not None for k in SEALED):
        return True
    return hmac.compare_digest(str(status.get("seal") or ""), seal(status, key))
