"""kopf handlers for TradingSystem resources: they only translate events into reconcile passes.

A pass (celeris_operator.reconciler) is level-triggered and does the whole job, so the timer runs one per
TradingSystem every CELERIS_OPERATOR_INTERVAL_S seconds, and a spec change or an operator (re)start runs
one at once. Passes over one resource never overlap (one lock per resource), and each starts from a fresh
read, so a pass never acts on a status another pass has already replaced. On delete the components are
halted before the objects go (owner references let Kubernetes collect them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from typing import Any

import kopf

from celeris_operator import approval, builders, kube, reconciler, seal
from celeris_operator.controls import Controls

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "celeris.dev", "v1alpha1", "tradingsystems"
INTERVAL_S = float(os.environ.get("CELERIS_OPERATOR_INTERVAL_S", "5"))
IMAGE_READY_TIMEOUT_S = float(os.environ.get("CELERIS_OPERATOR_IMAGE_TIMEOUT_S", "120"))
OPERATOR_NAMESPACE = os.environ.get("CELERIS_OPERATOR_NAMESPACE", "celeris-system")
ALLOW_TARGETS = os.environ.get("CELERIS_OPERATOR_ALLOW_TARGETS") == "1"
"""Tests (and components outside the cluster) only: honour the celeris.dev/control-targets annotation."""

_locks: dict[tuple[str, str], asyncio.Lock] = {}
_controls: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Controls]" = weakref.WeakKeyDictionary()
"""One Control client per event loop, keyed by the loop itself (an id() is reused once a loop is gone,
and a channel of a closed loop never answers)."""


def _event(body: dict[str, Any], kind: str, reason: str, message: str) -> None:
    (kopf.info if kind == "Normal" else kopf.warn)(body, reason=reason, message=message)


def env() -> reconciler.Env:
    """The pass's environment on this event loop (gRPC channels belong to the loop that opened them)."""
    loop = asyncio.get_running_loop()
    controls = _controls.get(loop)
    if controls is None:
        controls = _controls[loop] = Controls()
    return reconciler.Env(kube, controls, OPERATOR_NAMESPACE, IMAGE_READY_TIMEOUT_S, ALLOW_TARGETS, event=_event)


async def run_pass(namespace: str, name: str) -> None:
    lock = _locks.setdefault((namespace, name), asyncio.Lock())
    async with lock:
        await reconciler.reconcile(env(), namespace, name)


RETRY_S = min(INTERVAL_S, 2.0)
"""A pass that failed (the API answered 500 or 429, a conflict) is tried again this soon, not after kopf's
default 60 s: a transient error must not stall enforcement for a minute."""


@kopf.on.create(GROUP, VERSION, PLURAL, backoff=RETRY_S)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec", backoff=RETRY_S)
@kopf.on.update(GROUP, VERSION, PLURAL, field="metadata.annotations", backoff=RETRY_S)
@kopf.on.resume(GROUP, VERSION, PLURAL, backoff=RETRY_S)
async def changed(namespace: str, name: str, **_: Any) -> None:
    await run_pass(namespace, name)


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec.approvedForLive", backoff=RETRY_S)
async def approval_changed(namespace: str, name: str, old: Any, new: Any, **_: Any) -> None:
    """Each grant is a new approval, even when a pass never saw the false in between (two quick edits)."""
    lock = _locks.setdefault((namespace, name), asyncio.Lock())
    async with lock:
        body = await asyncio.to_thread(kube.read_ts, namespace, name)
        if body is None:
            return
        record = approval.grant(body, reconciler.iso(time.time())) if new and not old else None
        status = dict(body.get("status") or {})
        key = await env().seal_key()
        # A merge patch, so keys of the old record this one does not have (revoked) are removed explicitly.
        patch: dict[str, Any] = {"approval": reconciler.merge_diff(status.get("approval"), record)}
        if seal.intact(status, key):  # re-sealed only what was the operator's own (never launder a forgery)
            patch["seal"] = seal.seal({**status, "approval": record}, key)
        await asyncio.to_thread(kube.patch_status, namespace, name, patch)
    await run_pass(namespace, name)


@kopf.timer(GROUP, VERSION, PLURAL, interval=INTERVAL_S, initial_delay=min(1.0, INTERVAL_S), backoff=RETRY_S)
async def tick(namespace: str, name: str, **_: Any) -> None:
    await run_pass(namespace, name)


@kopf.on.delete(GROUP, VERSION, PLURAL, backoff=RETRY_S)
async def delete(body: Any, namespace: str, name: str, **_: Any) -> None:
    """Stop trading before the objects go."""
    e = env()
    token = await asyncio.to_thread(kube.control_token, builders.build_control_secret(dict(body), ""))
    for component, target in reconciler.targets(dict(body), ALLOW_TARGETS).items():
        try:
            await e.controls.halt(target, token, "TradingSystem deleted")
        except Exception as exc:  # a component already gone cannot trade either
            log.warning("halt of %s failed: %r", component, exc)
    _locks.pop((namespace, name), None)
    kopf.info(body, reason="Deleted", message="components halted; objects are garbage-collected")


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.INFO
    settings.persistence.finalizer = "celeris.dev/finalizer"
    settings.watching.server_timeout = 60
    # A pass in flight when a TradingSystem is deleted keeps kopf's finalizer until the timer exits; kopf
    # looks again after this long (its default is 60 s, so a deletion could hang a minute).
    settings.background.cancellation_polling = 1.0
