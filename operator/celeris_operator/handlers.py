"""kopf handlers for TradingSystem resources: translate events into builders, apply, and gRPC levers.

Owns nothing of its own: the objects come from builders, the rollout decisions from rollout, the mode
changes and halts go to the components' Control services, and the outcome is written to the resource's
status (phase, observedGeneration, mode, stage and its history, conditions, components) and announced as
Kubernetes events. Component addresses are the in-cluster Services, or the `celeris.dev/control-targets`
annotation (a JSON map component -> host:port) for components running elsewhere.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from typing import Any

import kopf

from celeris_operator import builders, kube, rollout

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "celeris.dev", "v1alpha1", "tradingsystems"
TARGETS_ANNOTATION = "celeris.dev/control-targets"
ROLLOUT_INTERVAL_S = float(__import__("os").environ.get("CELERIS_OPERATOR_INTERVAL_S", "5"))
IMAGE_READY_TIMEOUT_S = float(__import__("os").environ.get("CELERIS_OPERATOR_IMAGE_TIMEOUT_S", "120"))


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def targets(body: Any) -> dict[str, str]:
    meta = body["metadata"]
    override = (meta.get("annotations") or {}).get(TARGETS_ANNOTATION)
    if override:
        return json.loads(override)
    groups = builders.pod_groups(body["spec"])
    out = {}
    for group, components in groups.items():
        for c in components:
            port = int(builders.settings_for(body, c, "observation")["CELERIS_GRPC_PORT"])
            out[c] = f"{builders.service_name(meta['name'], group)}.{meta['namespace']}.svc:{port}"
    return out


async def _control(target: str, method: str, request: Any, timeout: float = 5.0) -> Any:
    from celeris.api.v1 import control_pb2_grpc
    from celeris.runtime import grpc_server

    async with grpc_server.insecure_channel(target) as channel:
        return await getattr(control_pb2_grpc.ControlStub(channel), method)(request, timeout=timeout)


async def statuses(body: Any) -> dict[str, Any]:
    from celeris.api.v1 import control_pb2

    out: dict[str, Any] = {}
    for component, target in targets(body).items():
        try:
            out[component] = await _control(target, "GetStatus", control_pb2.GetStatusRequest(), 2.0)
        except Exception as exc:  # unreachable is a fact, not a failure of the operator
            out[component] = exc
    return out


async def set_mode_everywhere(body: Any, mode: rollout.Mode, reason: str) -> dict[str, str]:
    from celeris.api.v1 import control_pb2
    from celeris.runtime.control import MODE_TO_PB

    applied = {}
    for component, target in targets(body).items():
        try:
            await _control(target, "SetMode", control_pb2.SetModeRequest(mode=MODE_TO_PB[mode],
                                                                        requested_by="celeris-operator", reason=reason))
            applied[component] = mode.value
        except Exception as exc:
            applied[component] = f"failed: {type(exc).__name__}"
    return applied


async def configure_everywhere(body: Any, generation: int) -> dict[str, Any]:
    """Push strategy parameters and risk limits to the running components; returns what each applied."""
    from celeris.api.v1 import control_pb2

    spec = body["spec"]
    settings = json.dumps({"strategies": list(spec.get("strategies") or []), "risk": dict(spec.get("risk") or {})})
    applied: dict[str, Any] = {}
    for component, target in targets(body).items():
        try:
            status = await _control(target, "Configure", control_pb2.ConfigureRequest(
                generation=generation, settings_json=settings, requested_by="celeris-operator"))
            applied[component] = status.config_generation
        except Exception as exc:
            applied[component] = f"failed: {type(exc).__name__}"
    return applied


async def halt_everywhere(body: Any, halt: bool, reason: str) -> None:
    from celeris.api.v1 import control_pb2

    for component, target in targets(body).items():
        try:
            if halt:
                await _control(target, "Halt", control_pb2.HaltRequest(reason=reason, requested_by="celeris-operator"))
            else:
                await _control(target, "Resume", control_pb2.ResumeRequest(requested_by="celeris-operator",
                                                                          reason=reason))
        except Exception as exc:
            log.warning("%s of %s failed: %r", "halt" if halt else "resume", component, exc)


def condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason, "message": message,
            "lastTransitionTime": now_iso()}


# -- create / update / resume ----------------------------------------------------------------------
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, PLURAL)
async def reconcile(body: Any, spec: Any, status: Any, meta: Any, patch: Any, **_: Any) -> None:
    current = rollout.Mode((status or {}).get("mode") or "observation")
    # Images change only through the staged image rollout: everything else keeps the last good one.
    good = (status or {}).get("lastGoodImage") or spec["image"]
    images = {g: ((status or {}).get("images") or {}).get(g, good) for g in builders.pod_groups(dict(spec))}
    objects = builders.build_all(dict(body), current.value, images)
    await asyncio.to_thread(kube.apply_all, objects)
    patch.status["observedGeneration"] = meta.get("generation")
    # mode, stage and history belong to the rollout timer: writing them here from a stale read would
    # undo a promotion that landed while this handler ran.
    if not (status or {}).get("mode"):
        patch.status["mode"] = current.value
    patch.status["components"] = {g: {"deployment": f"{meta['name']}-{g}", "image": images[g]}
                                  for g in builders.pod_groups(dict(spec))}
    # The configuration reaches running components without a restart; each records the generation.
    applied = await configure_everywhere(body, int(meta.get("generation") or 0))
    patch.status["appliedGeneration"] = applied
    refused = {c: v for c, v in applied.items() if isinstance(v, str)}
    if refused:
        kopf.warn(body, reason="ConfigurationNotApplied", message=f"generation {meta.get('generation')}: {refused}")
    halted = bool(spec.get("halted"))
    if halted != bool((status or {}).get("halted")):
        await halt_everywhere(body, halted, "spec.halted" if halted else "spec.halted cleared")
        kopf.info(body, reason="Halted" if halted else "Resumed",
                  message="trading halted (spec.halted)" if halted else "trading resumed")
    patch.status["halted"] = halted
    if halted or not (status or {}).get("phase") or (status or {}).get("phase") == "Halted":
        patch.status["phase"] = "Halted" if halted else "Progressing"
    conditions = [condition("Reconciled", True, "Applied", f"{len(objects)} objects applied for generation "
                                                           f"{meta.get('generation')}"),
                  condition("Halted", halted, "SpecHalted" if halted else "Running", "spec.halted" if halted else "")]
    patch.status["conditions"] = conditions
    if not (status or {}).get("stage"):
        patch.status["stage"] = {"mode": current.value, "since": now_iso(), "sinceEpoch": time.time(), "gates": {}}
        patch.status["history"] = [{"mode": current.value, "at": now_iso(), "reason": "created"}]
    if not (status or {}).get("lastGoodImage"):
        patch.status["lastGoodImage"] = spec["image"]
    kopf.info(body, reason="Reconciled", message=f"generation {meta.get('generation')} applied")


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec.image")
async def image_rollout(body: Any, old: Any, new: Any, status: Any, meta: Any, patch: Any, **_: Any) -> None:
    """Component by component, data plane first, each waiting for readiness; roll back on failure."""
    if not old or old == new:
        return
    groups = builders.pod_groups(dict(body["spec"]))
    order = sorted(groups, key=lambda g: min(builders.DATA_PLANE_FIRST.index(c) for c in groups[g]))
    mode = (status or {}).get("mode") or "observation"
    done: list[str] = []
    for group in order:
        deployment = builders.build_deployment(dict(body), group, groups[group], mode, new)
        await asyncio.to_thread(kube.apply, deployment)
        ready = await kube.wait_ready(deployment["metadata"]["namespace"], deployment["metadata"]["name"], new,
                                      IMAGE_READY_TIMEOUT_S)
        if not ready:
            for back in [group, *reversed(done)]:
                await asyncio.to_thread(kube.apply, builders.build_deployment(dict(body), back, groups[back], mode, old))
            patch.status["images"] = {g: old for g in groups}
            patch.status["lastRollout"] = {"image": new, "result": "rolled back", "failedComponent": group,
                                           "at": now_iso()}
            patch.status["conditions"] = [condition("RolloutProgressing", False, "RolledBack",
                                                    f"{group} did not become ready with {new}; back on {old}")]
            kopf.warn(body, reason="RolledBack", message=f"{group} not ready with {new}: rolled back to {old}")
            return
        done.append(group)
        kopf.info(body, reason="ComponentUpdated", message=f"{group} ready with {new}")
    patch.status["images"] = {g: new for g in groups}
    patch.status["lastGoodImage"] = new
    patch.status["lastRollout"] = {"image": new, "result": "complete", "at": now_iso()}


# -- the staged rollout ----------------------------------------------------------------------------
@kopf.timer(GROUP, VERSION, PLURAL, interval=ROLLOUT_INTERVAL_S, initial_delay=1.0)
async def rollout_tick(body: Any, spec: Any, status: Any, patch: Any, **_: Any) -> None:
    status = status or {}
    if not status.get("observedGeneration"):
        return  # the first reconcile has not applied the objects yet: nothing to judge
    current = rollout.Mode(status.get("mode") or "observation")
    stage = status.get("stage") or {}
    observed = await statuses(body)
    ready = {c: not isinstance(s, Exception) and s.ready for c, s in observed.items()}
    mismatches = sum(int(s.details.get("mismatches", 0)) for s in observed.values() if not isinstance(s, Exception))
    critical = sum(int(s.details.get("critical_alerts", 0)) for s in observed.values() if not isinstance(s, Exception))
    facts = rollout.Facts(time.time(), float(stage.get("sinceEpoch") or time.time()), ready, mismatches, critical)
    decision = rollout.decide(dict(spec), current, facts)
    components = dict(status.get("components") or {})
    for c, ok in ready.items():
        components.setdefault(c, {})["ready"] = ok
    patch.status["components"] = components
    patch.status["stage"] = {**stage, "mode": current.value, "gates": decision.gates, "waiting": decision.reason}
    all_ready = all(ready.values()) if ready else False
    if spec.get("halted"):
        patch.status["phase"] = "Halted"
        return
    if decision.action in ("promote", "demote"):
        applied = await set_mode_everywhere(body, decision.mode, decision.reason)
        if any(v.startswith("failed") for v in applied.values()):
            patch.status["phase"] = "Degraded"
            kopf.warn(body, reason="ModeNotApplied", message=f"{decision.mode.value}: {applied}")
            return
        history = list(status.get("history") or [])
        history.append({"mode": decision.mode.value, "at": now_iso(), "reason": decision.reason,
                        "action": decision.action})
        patch.status["mode"] = decision.mode.value
        patch.status["stage"] = {"mode": decision.mode.value, "since": now_iso(), "sinceEpoch": time.time(),
                                 "gates": decision.gates}
        patch.status["history"] = history[-20:]
        patch.status["conditions"] = [condition("ModeApplied", True, decision.action.capitalize(),
                                                f"{current.value} -> {decision.mode.value}: {decision.reason}")]
        (kopf.info if decision.action == "promote" else kopf.warn)(
            body, reason="Promoted" if decision.action == "promote" else "Demoted",
            message=f"{current.value} -> {decision.mode.value}: {decision.reason}")
        target = rollout.Mode(spec.get("mode", "observation"))
        patch.status["phase"] = "Running" if decision.mode is target else "Progressing"
        return
    target = rollout.Mode(spec.get("mode", "observation"))
    patch.status["phase"] = ("Running" if current is target and all_ready else
                             "Degraded" if not all_ready else "Progressing")


# -- delete ------------------------------------------------------------------------------------------
@kopf.on.delete(GROUP, VERSION, PLURAL)
async def delete(body: Any, **_: Any) -> None:
    """Stop trading before the objects go (owner references let Kubernetes collect them)."""
    await halt_everywhere(body, True, "TradingSystem deleted")
    kopf.info(body, reason="Deleted", message="components halted; objects are garbage-collected")


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.INFO
    settings.persistence.finalizer = "celeris.dev/finalizer"
    settings.watching.server_timeout = 60
