"""One reconcile pass over one TradingSystem: level-triggered, from a fresh read to one status write.

Every pass does the whole job, so whatever was missed (an operator restart, a lost event, a pod that came
back, a Deployment someone deleted or edited) is corrected by the next one:
1. objects: the desired state ConfigMap first, then what the spec wants, applied where the live object
   differs; what it no longer wants is deleted, and a new order manager is not created while an old one
   still exists (a topology switch never runs two);
2. components: each one's reported configuration generation, halt and mode are compared with the desired
   ones and corrected (a component's own emergency halt is reported, never lifted by the operator);
3. the rollout: gates over the stage's window, then a promotion that reaches every component or is rolled
   back, or a demotion that is written to the desired state before any component is told;
4. status: each component's mode, the conditions, the phase, in one write.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from celeris.domain.modes import Mode
from celeris_operator import approval, builders, conditions, images, rollout, seal, signals
from celeris_operator.controls import Controls

log = logging.getLogger(__name__)

TARGETS_ANNOTATION = "celeris.dev/control-targets"
HALT_REASON = "spec.halted"
ORDER_MANAGER = "execution"


def iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Env:
    """What a pass needs from outside: the Kubernetes API, the Control client, time and events."""

    kube: Any
    """celeris_operator.kube or an object with the same functions."""
    controls: Controls
    operator_namespace: str = "celeris-system"
    image_timeout_s: float = 120.0
    allow_targets_annotation: bool = False
    _seal_key: str = ""

    async def seal_key(self) -> str:
        """The key the operator seals status with: its own Secret in its namespace (not the Control
        token, which a rotation changes), read once per process."""
        if not self._seal_key:
            self._seal_key = await asyncio.to_thread(self.kube.seal_key, self.operator_namespace)
        return self._seal_key
    now: Callable[[], float] = time.time
    event: Callable[[dict[str, Any], str, str, str], None] = lambda body, kind, reason, message: None
    """(body, "Normal"|"Warning", reason, message)."""


def targets(body: dict[str, Any], allow_override: bool = False) -> dict[str, str]:
    """Every component's Control address: its in-cluster Service. The control-targets annotation (a JSON
    map component -> host:port, for components running outside the cluster, as in the tests) is read only
    when the operator is started with CELERIS_OPERATOR_ALLOW_TARGETS=1, and only if it is well formed and
    names every component: otherwise anyone who may edit the resource could send the Control token
    elsewhere or leave a component out of every halt."""
    meta = body["metadata"]
    override = (meta.get("annotations") or {}).get(TARGETS_ANNOTATION)
    services = _service_targets(body)
    if override and allow_override:
        try:
            given = json.loads(override)
        except ValueError:
            given = None
        if isinstance(given, dict) and set(given) == set(services) and all(
                isinstance(v, str) and 0 < len(v) <= 255 for v in given.values()):
            return dict(given)
        log.warning("ignoring a malformed %s annotation on %s", TARGETS_ANNOTATION, meta.get("name"))
    return services


def _service_targets(body: dict[str, Any]) -> dict[str, str]:
    meta = body["metadata"]
    out = {}
    for group, components in builders.pod_groups(body["spec"]).items():
        for c in components:
            port = int(builders.settings_for(body, c)["CELERIS_GRPC_PORT"])
            out[c] = f"{builders.service_name(meta['name'], group)}.{meta['namespace']}.svc:{port}"
    return out


def mode_path(current: Mode, target: Mode) -> list[Mode]:
    """The legal steps from one mode to another (down at once, up one stage at a time)."""
    order = rollout.ORDER
    if order.index(target) <= order.index(current):
        return [target] if target is not current else []
    return order[order.index(current) + 1:order.index(target) + 1]


def config_generation(generation: int, status: dict[str, Any], observed: dict[str, signals.Observed]) -> int:
    """The configuration generation the components are given: the resource's generation plus an offset
    that only grows. A component holding a later generation than that (the resource was deleted and
    created again, its generation started over at 1) would refuse every configuration as older than its
    own: the offset moves past it, so new risk limits are applied, never refused."""
    try:
        offset = max(0, int(status.get("generationOffset") or 0))
    except (TypeError, ValueError):
        offset = 0
    ahead = max((o.config_generation for o in observed.values() if o.reachable), default=0)
    if ahead > generation + offset:
        offset = ahead - generation + 1
    return generation + offset


def error_window_s(spec: dict[str, Any]) -> float:
    """The reject rate is judged over this much recent time (rollout.gates.errorWindow, 5m)."""
    try:
        return rollout.parse_duration((spec.get("rollout") or {}).get("gates", {}).get("errorWindow") or "5m") or 300.0
    except ValueError:
        return 300.0


def _recorded_mode(status: dict[str, Any]) -> Mode:
    """status.mode, or observation when it is not a mode (garbage must not stop enforcement)."""
    try:
        return Mode(status.get("mode") or "observation")
    except ValueError:
        return Mode.OBSERVATION


def believed_mode(recorded: Mode, observed: dict[str, signals.Observed]) -> tuple[Mode, str]:
    """The mode the pass acts on. status.mode is the operator's record, but status is writable by anyone
    with RBAC on the status subresource: a recorded mode above every mode the components report was never
    reached through the gates, so the highest reported one is taken instead (never a higher one)."""
    reported = [o.mode for o in observed.values() if o.reachable and o.mode is not None]
    order = rollout.ORDER
    if not reported or recorded in reported:
        return recorded, ""
    highest = max(reported, key=order.index)
    if order.index(recorded) > order.index(highest):
        return highest, (f"status.mode says {recorded.value} but no component reports it; acting on "
                         f"{highest.value}, the highest mode one reports")
    return recorded, ""


def _deployment_ready_with(dep: dict[str, Any] | None) -> str | None:
    """The image a Deployment runs with every replica updated and ready, else None."""
    if not dep:
        return None
    containers = dep["spec"]["template"]["spec"]["containers"]
    wanted = {c["image"] for c in containers}
    status, replicas = dep.get("status") or {}, dep["spec"].get("replicas", 1)
    if len(wanted) != 1 or (status.get("observedGeneration") or 0) < dep["metadata"].get("generation", 1):
        return None
    if (status.get("updatedReplicas") or 0) >= replicas and (status.get("readyReplicas") or 0) >= replicas:
        return wanted.pop()
    return None


@dataclass
class Pass:
    """The working state of one pass (what goes into status at the end)."""

    body: dict[str, Any]
    token: str
    now: float
    status: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    own_halts: dict[str, str] = field(default_factory=dict)
    drift: dict[str, str] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)
    config_generation: int = 0


def _api_reason(exc: Exception) -> str:
    """An API refusal in one line: its status and message (kubernetes' ApiException carries both)."""
    status, body = getattr(exc, "status", None), getattr(exc, "body", None)
    if status is not None and body:
        try:
            return f"{status} {json.loads(body).get('message', '')}"[:300]
        except (ValueError, AttributeError):
            pass
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


async def reconcile(env: Env, namespace: str, name: str) -> dict[str, Any] | None:
    """Run one pass; returns the status written (None when the resource is gone or going)."""
    body = await asyncio.to_thread(env.kube.read_ts, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    spec, meta = body["spec"], body["metadata"]
    old = dict(body.get("status") or {})
    stored = dict(old)  # as it is in the API: the status write is a patch from this to what the pass decides
    now = env.now()
    now_iso = iso(now)
    generation = int(meta.get("generation") or 0)
    token = await asyncio.to_thread(env.kube.control_token, builders.build_control_secret(body, ""))
    seal_key = await env.seal_key()
    foreign = not seal.intact(old, seal_key)
    if foreign:  # records the operator did not write: start over from what the components report, aborted
        old = {**{k: v for k, v in old.items() if k not in seal.SEALED}, "lastAbortGeneration": generation,
               "abort": approval.abort_record(meta, "the status was changed by someone other than the operator",
                                              now_iso)}  # images: from the live Deployments, below
        env.event(body, "Warning", "StatusNotTheOperators", "status records changed by someone else: the rollout "
                                                           "starts over, aborted, from what the components report")
    p = Pass(body, token, now, status={k: v for k, v in old.items() if k != "kopf"})
    halted = bool(spec.get("halted"))
    approved = approval.evaluate(spec, meta, old, now_iso)
    # The components first: what they report decides whether the recorded mode is believed, before any
    # desired state is written from it.
    where = targets(body, env.allow_targets_annotation)
    observed = await env.controls.statuses(where, token)
    current, disbelief = believed_mode(_recorded_mode(old), observed)
    if foreign:  # no record of its own to go by: the highest mode a component really trades in
        reported = [o.mode for o in observed.values() if o.reachable and o.mode is not None]
        current, disbelief = (max(reported, key=rollout.ORDER.index) if reported else Mode.OBSERVATION), ""
    p.config_generation = config_generation(generation, old, observed)
    p.status["generationOffset"] = p.config_generation - generation
    if disbelief:
        env.event(body, "Warning", "StatusModeDisbelieved", disbelief)
        p.degraded.append(disbelief)

    # 1. objects ------------------------------------------------------------------------------------
    owned = await asyncio.to_thread(env.kube.list_owned, namespace, name)
    groups = builders.pod_groups(spec)
    order = builders.ordered_groups(spec)
    if foreign:  # what each group runs now, not what a forged record or the spec says; and a different
        # spec.image is not rolled out until a person retries (it may be the one that was rolled back)
        old.update(live_images(owned, name, order, spec["image"]))
        if old["lastGoodImage"] != spec["image"]:
            old["lastRollout"] = {"image": spec["image"], "result": "rolled back", "retry": approval.retry_token(meta),
                                  "failedComponent": "unknown: the status was not the operator's", "at": now_iso}
    ready_with = {g: img for g in order
                  if (img := _deployment_ready_with(owned.get(("Deployment", f"{name}-{g}")))) is not None}
    image = images.step(spec, old, order, ready_with, now, env.image_timeout_s, approval.retry_token(meta), now_iso)
    if image.event:
        env.event(body, "Warning" if image.event[0] == "RolledBack" else "Normal", *image.event)
    if image.last_rollout and image.last_rollout.get("result") == "rolled back":
        p.degraded.append(f"image {image.last_rollout['image']} rolled back: {image.last_rollout.get('failedComponent')} "
                          f"was not ready")
    desired = builders.desired_state(body, current.value, halted, p.config_generation)
    objects = builders.build_all(body, desired, image.images, env.operator_namespace, builders.token_digest(token))
    wanted = {(o["kind"], o["metadata"]["name"]) for o in objects}
    stale = [key for key in owned if key not in wanted and key[0] in env.kube.PRUNABLE_KINDS
             and _owned_by(owned[key], meta["uid"])]  # labels can be copied; the owner reference is ours
    if current is Mode.LIVE and any(k == "Deployment" for k, _ in stale):
        # The CRD refuses a topology change while live, but a status write can get past it: the operator
        # does not move pods of a live system either.
        p.refused["topology"] = "spec.topology changed while the system is live: demote it first"
        objects = [o for o in objects if (o["kind"], o["metadata"]["name"]) in owned or
                   o["kind"] not in env.kube.PRUNABLE_KINDS]
        wanted = {(o["kind"], o["metadata"]["name"]) for o in objects} | set(stale)
        stale = []
    for kind, stale_name in stale:
        if not owned[(kind, stale_name)]["metadata"].get("deletionTimestamp"):
            await asyncio.to_thread(env.kube.delete, kind, namespace, stale_name)
            env.event(body, "Normal", "Pruned", f"{kind} {stale_name} is no longer wanted")
    # Any order manager the spec no longer wants (ours being pruned, or an orphan left by a delete with
    # --cascade=orphan that we may not delete) must be gone before a new one may start.
    old_order_manager = [n for (k, n), o in owned.items() if k == "Deployment" and (k, n) not in wanted
                         and _runs_order_manager(o)]
    orphans = [n for n in old_order_manager if not _owned_by(owned[("Deployment", n)], meta["uid"])]
    if orphans:
        p.refused["orderManager"] = (f"{', '.join(orphans)} runs an order manager this resource does not own: "
                                     f"delete it (one order manager at a time)")
    if old_order_manager:  # the old order manager's pods must be gone before the new one may start
        objects = [o for o in objects if not (o["kind"] == "Deployment" and _runs_order_manager(o))]
        p.problems.append(f"waiting for {', '.join(old_order_manager)} to go before its replacement starts")
    applied, refused_objects = 0, []
    for obj in objects:
        if not env.kube.up_to_date(owned.get((obj["kind"], obj["metadata"]["name"])), obj):
            try:
                await asyncio.to_thread(env.kube.apply, obj)
                applied += 1
            except Exception as exc:  # noqa: BLE001 - a refused object (policy, quota, webhook) must not
                # stop the pass: the components are still corrected below (a halt needs no Deployment).
                refused_objects.append(f"{obj['kind']} {obj['metadata']['name']}: {_api_reason(exc)}")
    if refused_objects:
        p.degraded.append(f"the API server refused {'; '.join(refused_objects)}")
        env.event(body, "Warning", "ApplyRefused", "; ".join(refused_objects)[:1000])
    objects_applied = not old_order_manager and not refused_objects

    # 2. components -----------------------------------------------------------------------------------
    settings_json = json.dumps(desired["settings"])
    # Execution first: its halt closes the order gate; a slow component elsewhere must not delay it.
    for component, seen in sorted(observed.items(), key=lambda item: item[0] != ORDER_MANAGER):
        if seen.reachable:
            await _correct(env, p, component, where[component], seen, p.config_generation, settings_json, halted,
                           current)

    # 3. the rollout ------------------------------------------------------------------------------------
    stage = dict(old.get("stage") or {})
    if stage.get("mode") != current.value:
        stage = {"mode": current.value, "since": now_iso}
    stage = signals.next_window(stage, observed, current, now)
    counters = signals.counters(observed)
    facts = rollout.Facts(now, signals.window_start(stage, now),
                          {c: o.reachable and o.ready for c, o in observed.items()},
                          signals.increase(stage, counters, "reconciliation"),
                          signals.increase(stage, counters, "criticalAlerts"),
                          *signals.recent(stage, now, signals.increase(stage, counters, "orders"),
                                          signals.increase(stage, counters, "rejects"), error_window_s(spec)),
                          approved.valid, approved.reason, (approved.abort or {}).get("reason", ""))
    decision = rollout.decide(spec, current, facts)
    if decision.action == "promote":
        hold = ("trading is halted" if halted else "an image is rolling out" if image.rollout else
                f"components differ from the desired state ({_join(p.drift)})" if p.drift else
                "objects are not applied yet" if not objects_applied else "")
        if hold:
            decision = rollout.Decision("stay", current, f"gates pass; holding: {hold}", decision.gates)
    mode = current
    if decision.action == "promote":
        mode = await _promote(env, p, where, current, decision, body, halted)
    elif decision.action == "demote":
        mode = await _demote(env, p, where, current, decision, body, halted)
    if mode is not current:
        history = list(old.get("history") or [])
        history.append({"mode": mode.value, "at": now_iso, "reason": decision.reason, "action": decision.action})
        p.status["history"] = history[-20:]
        # The new stage counts from what was seen now, so nothing between this pass and the next escapes it.
        stage = {"mode": mode.value, "since": now_iso, "baseline": counters, "last": counters}
        env.event(body, "Normal" if decision.action == "promote" else "Warning",
                  "Promoted" if decision.action == "promote" else "Demoted",
                  f"{current.value} -> {mode.value}: {decision.reason}")
    abort = approved.abort
    if decision.abort and mode is not current:
        abort = approval.abort_record(meta, decision.reason, now_iso)
        p.status["lastAbortGeneration"] = generation
    stage.update(gates=decision.gates, waiting=decision.reason if mode is current else "")

    # 4. status -------------------------------------------------------------------------------------------
    component_status = {}
    for group, members in groups.items():
        for c in members:
            seen = observed.get(c)
            component_status[c] = {**(seen.summary() if seen else {"ready": False}),
                                   "deployment": f"{name}-{group}", "image": image.images.get(group, spec["image"])}
    unready = [c for c, o in observed.items() if not (o.reachable and o.ready)]
    target = Mode(spec.get("mode", "observation"))
    halt_message = "; ".join([*(["spec.halted"] if halted else []),
                              *(f"{c}: {r}" for c, r in p.own_halts.items())])
    seen = conditions.Seen(
        generation=generation, applied=objects_applied, components_ready=not unready, drift=_join(p.drift),
        at_target=mode is target and not image.rollout, progress=stage.get("waiting") or
        (f"rolling out {spec['image']}" if image.rollout else ""), halted=halt_message,
        aborted=(abort or {}).get("reason", ""), refused=_join(p.refused),
        degraded="; ".join([*p.degraded, *p.problems]), unready=", ".join(unready) + " not ready" if unready else "")
    new_conditions = conditions.merge(old.get("conditions"), conditions.summarize(seen), now_iso)
    phase = ("Halted" if halt_message else "Aborted" if abort else
             "Degraded" if unready or p.refused or p.drift else
             "Running" if conditions.get(new_conditions, "Ready")["status"] == "True" else "Progressing")
    p.status.update(
        # Observed, not "fully applied": kstatus compares it with metadata.generation before it reads Stalled,
        # so a generation the components refuse must still be observed to be reported as failed.
        observedGeneration=generation,
        mode=mode.value, phase=phase, halted=bool(halt_message), stage=stage, conditions=new_conditions,
        components=component_status, images=image.images, lastGoodImage=image.last_good,
        imageRollout=image.rollout, lastRollout=image.last_rollout, approval=approved.record, abort=abort,
        appliedGeneration={c: o.config_generation for c, o in observed.items() if o.reachable},
        objectsApplied=applied)
    p.status["seal"] = seal.seal(p.status, seal_key)
    await asyncio.to_thread(env.kube.patch_status, namespace, name, merge_diff(stored, p.status, keep=("kopf",)))
    return p.status


def live_images(owned: dict[tuple[str, str], dict[str, Any]], name: str, order: list[str],
                fallback: str) -> dict[str, Any]:
    """images and lastGoodImage as the live Deployments have them (for a status that cannot be trusted)."""
    running = {}
    for group in order:
        dep = owned.get(("Deployment", f"{name}-{group}"))
        found = {c["image"] for c in dep["spec"]["template"]["spec"]["containers"]} if dep else set()
        if len(found) == 1:
            running[group] = found.pop()
    common = max(set(running.values()), key=list(running.values()).count) if running else fallback
    return {"images": {g: running.get(g, common) for g in order}, "lastGoodImage": common}


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid and ref.get("controller") for ref in obj["metadata"].get("ownerReferences") or [])


def _runs_order_manager(deployment: dict[str, Any]) -> bool:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return any(c["name"] == ORDER_MANAGER for c in containers)


def _join(items: dict[str, str]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in items.items())


def merge_diff(old: Any, new: Any, keep: tuple[str, ...] = ()) -> Any:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`: a key `new` no longer has is sent as
    null at whatever depth (a plain patch of `new` would leave it in place: a soak restarted by dropping
    readySince would not restart). Top-level keys in `keep` are someone else's (kopf's) and left alone."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch = {k: None for k in old if k not in new and k not in keep}
    for key, value in new.items():
        if value is None:
            if key in old:
                patch[key] = None
        elif isinstance(value, dict) and isinstance(old.get(key), dict):
            inner = merge_diff(old[key], value)
            if inner:
                patch[key] = inner
        elif old.get(key) != value:
            patch[key] = value
    return patch


async def _correct(env: Env, p: Pass, component: str, target: str, seen: signals.Observed, generation: int,
                   settings_json: str, halted: bool, mode: Mode) -> None:
    """Bring one component to the desired configuration, halt and mode; record what could not be done."""
    c, token = env.controls, p.token
    try:
        if seen.config_generation != generation:
            try:
                await c.configure(target, token, generation, settings_json)
            except Exception as exc:
                p.refused[component] = f"generation {generation}: {_details(exc)}"
                if (p.status.get("refusedGeneration") or {}).get(component) != generation:
                    env.event(p.body, "Warning", "ConfigurationNotApplied", f"{component}: {p.refused[component]}")
                p.status.setdefault("refusedGeneration", {})[component] = generation
        if halted and not seen.halted:
            await c.halt(target, token, HALT_REASON)
            env.event(p.body, "Normal", "Halted", f"{component} halted (spec.halted)")
        elif not halted and seen.halted:
            if seen.halt_reason == HALT_REASON:
                await c.resume(target, token, "spec.halted cleared")
                env.event(p.body, "Normal", "Resumed", f"{component} resumed")
            else:  # its own halt (an emergency stop, a rejected key): a person lifts it, not the operator
                p.own_halts[component] = seen.halt_reason or "halted"
        elif halted and seen.halted and seen.halt_reason != HALT_REASON:
            p.own_halts[component] = seen.halt_reason
        if seen.mode is not mode and seen.mode is not None:
            for step in mode_path(seen.mode, mode):
                await c.set_mode(target, token, step, f"enforcing the desired mode {mode.value}")
            env.event(p.body, "Warning", "ModeCorrected", f"{component} was in {seen.mode.value}; set to {mode.value}")
    except Exception as exc:
        p.drift[component] = _details(exc)


def _details(exc: Exception) -> str:
    details = getattr(exc, "details", None)
    return (details() if callable(details) else "") or f"{type(exc).__name__}: {exc}"[:300]


async def _promote(env: Env, p: Pass, where: dict[str, str], current: Mode, decision: rollout.Decision,
                   body: dict[str, Any], halted: bool) -> Mode:
    """Every component moves, then the desired state records it; any failure puts them all back."""
    moved: list[str] = []
    failure = ""
    for component, target in where.items():
        try:
            await env.controls.set_mode(target, p.token, decision.mode, decision.reason)
            moved.append(component)
        except Exception as exc:
            failure = f"{component}: {_details(exc)}"
            moved.append(component)  # it may have moved part of the way: it is put back with the others
            break
    if not failure:
        try:
            await asyncio.to_thread(env.kube.apply, builders.build_desired_configmap(
                body, builders.desired_state(body, decision.mode.value, halted, p.config_generation)))
            return decision.mode
        except Exception as exc:
            failure = f"desired state: {_details(exc)}"
    for component in moved:  # roll back: the promotion applies to every component or to none
        try:
            await env.controls.set_mode(where[component], p.token, current, f"rolling back: {failure}")
        except Exception as exc:
            p.drift[component] = f"rollback to {current.value} failed: {_details(exc)}"
    p.degraded.append(f"promotion to {decision.mode.value} rolled back ({failure})")
    p.status["lastModeChange"] = {"to": decision.mode.value, "result": "rolled back", "failure": failure,
                                  "at": iso(p.now)}
    env.event(body, "Warning", "PromotionRolledBack", f"{current.value} -> {decision.mode.value}: {failure}")
    return current


async def _demote(env: Env, p: Pass, where: dict[str, str], current: Mode, decision: rollout.Decision,
                  body: dict[str, Any], halted: bool) -> Mode:
    """The desired state first (a pod restarting now comes back demoted), then every component; one that
    cannot be told now is drift, corrected by the next pass. A demotion is never rolled back."""
    try:
        await asyncio.to_thread(env.kube.apply, builders.build_desired_configmap(
            body, builders.desired_state(body, decision.mode.value, halted, p.config_generation)))
    except Exception as exc:
        p.degraded.append(f"desired state not written: {_details(exc)}")
    for component, target in where.items():
        try:
            await env.controls.set_mode(target, p.token, decision.mode, decision.reason)
        except Exception as exc:
            p.drift[component] = f"demotion to {decision.mode.value} not applied yet: {_details(exc)}"
    p.status["lastModeChange"] = {"to": decision.mode.value, "result": "applied", "at": iso(p.now)}
    return decision.mode
