"""Adversarial probes of issue 14, written by its review to break the operator, kept as regressions (each
failed on the code it reviewed; each finding was fixed). One reconcile pass (celeris_operator.reconciler.reconcile) runs against an
in-memory Kubernetes (FakeKube) and in-memory components (FakeControls) that check the Control token."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest

from celeris.domain.modes import Mode
from celeris_operator import kube as real_kube
from celeris_operator import reconciler, rollout, signals
from celeris_operator.controls import Controls
from celeris_operator.signals import Observed

COMPONENTS = ("marketdata", "strategy", "execution", "risk", "account", "dashboard")


class Refused(Exception):
    def details(self):
        return str(self)


class FakeComponent:
    def __init__(self, name, token, mode=Mode.OBSERVATION):
        self.name, self.token, self.mode = name, token, mode
        self.halted, self.halt_reason, self.generation = False, "", 0
        self.details: dict[str, str] = {}
        self.started_at_ns = 1
        self.ready = True


class FakeControls(Controls):
    """Components keyed by target; a call with another token is refused (as ControlAuthInterceptor does)."""

    def __init__(self, comps):
        super().__init__()
        self.comps = comps
        self.calls: list[tuple[str, str, str]] = []

    def _check(self, target, token):
        if target not in self.comps:
            raise Refused("UNAVAILABLE")
        c = self.comps[target]
        if token != c.token:
            raise Refused("UNAUTHENTICATED")
        return c

    async def status(self, component, target, token):
        try:
            c = self._check(target, token)
        except Refused as exc:
            return Observed(component, False, error=str(exc))
        return Observed(component, True, ready=c.ready, mode=c.mode, halted=c.halted, halt_reason=c.halt_reason,
                        config_generation=c.generation, started_at_ns=c.started_at_ns, details=dict(c.details))

    async def set_mode(self, target, token, mode, reason):
        self.calls.append(("SetMode", target, mode.value))
        self._check(target, token).mode = mode

    async def halt(self, target, token, reason):
        self.calls.append(("Halt", target, reason))
        c = self._check(target, token)
        c.halted, c.halt_reason = True, reason

    async def resume(self, target, token, reason):
        c = self._check(target, token)
        c.halted, c.halt_reason = False, ""

    async def configure(self, target, token, generation, settings_json):
        self._check(target, token).generation = generation


class FakeKube:
    PRUNABLE_KINDS = real_kube.PRUNABLE_KINDS
    up_to_date = staticmethod(real_kube.up_to_date)

    def __init__(self, ts, token="tok-1"):
        self.ts = ts
        self.objects: dict[tuple[str, str], dict] = {}
        self.secret_token = token
        self.minted: list[str] = []

    def read_ts(self, namespace, name):
        return copy.deepcopy(self.ts)

    def control_token(self, secret):
        if self.secret_token is None:  # the Secret is gone: kube.control_token mints and creates a new one
            self.secret_token = f"tok-new-{len(self.minted)}"
            self.minted.append(self.secret_token)
        return self.secret_token

    def seal_key(self, namespace):
        return "the-operator's-own-seal-key"

    def list_owned(self, namespace, name):
        return copy.deepcopy(self.objects)

    def apply(self, obj):
        self.objects[(obj["kind"], obj["metadata"]["name"])] = real_kube.with_hash(obj)

    def delete(self, kind, namespace, name):
        self.objects.pop((kind, name), None)

    def patch_status(self, namespace, name, status):
        from tests.operator.apiserver import merge_patch

        self.ts["status"] = merge_patch(self.ts.get("status") or {}, status)

    def desired(self):
        return json.loads(self.objects[("ConfigMap", f"{self.ts['metadata']['name']}-desired")]["data"]["desired.json"])


def make_ts(status=None, annotations=None, **spec):
    targets = {c: f"{c}:1" for c in COMPONENTS}
    body = {"apiVersion": "celeris.dev/v1alpha1", "kind": "TradingSystem",
            "metadata": {"name": "btc", "namespace": "trading", "uid": "u-1", "generation": 3,
                         "annotations": {reconciler.TARGETS_ANNOTATION: json.dumps(targets), **(annotations or {})}},
            "spec": {"image": "celeris:1", "symbols": ["BTCUSDT"], "mode": "observation",
                     "venue": {"kind": "binance-usdm", "restUrl": "https://x/fapi", "wsUrl": "wss://x/ws",
                               "credentialsSecret": "binance-api"},
                     "rollout": {"stages": [{"mode": "observation"}, {"mode": "simulation", "minDuration": "1h"},
                                            {"mode": "live"}]},
                     "strategies": [{"name": "m", "type": "momentum", "symbol": "BTCUSDT", "orderSize": "0.001"}],
                     **spec}}
    if status is not None:
        body["status"] = status
    return body


def rig(ts, mode=Mode.OBSERVATION, token="tok-1"):
    comps = {f"{c}:1": FakeComponent(c, token, mode) for c in COMPONENTS}
    for c in comps.values():
        c.generation = ts["metadata"]["generation"]
    k = FakeKube(ts, token)
    env = reconciler.Env(k, FakeControls(comps), now=lambda: 1_000_000.0, allow_targets_annotation=True)
    return k, comps, env


def run(env):
    return asyncio.run(reconciler.reconcile(env, "trading", "btc"))


# 1 ------------------------------------------------------------------------------------------------------
def test_forged_status_mode_live_does_not_promote():
    # Simulation, waiting for the 1h soak and for approval (approvedForLive is false); target live.
    ts = make_ts(status={"mode": "simulation"}, mode="live")
    k, comps, env = rig(ts, Mode.SIMULATION)
    run(env)
    assert ts["status"]["mode"] == "simulation"
    # Someone with tradingsystems/status patch (or a buggy second writer) writes status.mode=live:
    ts["status"]["mode"] = "live"
    run(env)
    assert k.desired()["mode"] != "live", "desired state ConfigMap says live"
    assert all(c.mode is not Mode.LIVE for c in comps.values()), \
        {c.name: c.mode.value for c in comps.values()}


def test_forged_stage_does_not_skip_the_soak():
    ts = make_ts(status={"mode": "simulation"}, mode="live", approvedForLive=True,
                 rollout={"stages": [{"mode": "observation"}, {"mode": "simulation", "minDuration": "1h"},
                                     {"mode": "live"}], "autoPromote": True})
    k, comps, env = rig(ts, Mode.SIMULATION)
    run(env)  # soak starts now
    assert ts["status"]["mode"] == "simulation"
    ts["status"]["stage"] = {**ts["status"]["stage"], "enteredEpoch": 0, "readySince": 0}
    run(env)
    assert ts["status"]["mode"] == "simulation", "promoted to live without the 1h soak"


# 2 ------------------------------------------------------------------------------------------------------
def test_garbage_status_mode_does_not_stop_enforcement():
    ts = make_ts(status={"mode": "LIVE"}, halted=True)
    k, comps, env = rig(ts)
    try:
        run(env)
    except Exception as exc:  # what kopf would retry forever
        pytest.fail(f"pass raised {exc!r}; halted: {[c.halted for c in comps.values()]}")
    assert all(c.halted for c in comps.values())


def test_malformed_targets_annotation_does_not_stop_halt():
    ts = make_ts(halted=True)
    k, comps, env = rig(ts)
    ts["metadata"]["annotations"][reconciler.TARGETS_ANNOTATION] = "{not json"
    try:
        run(env)
    except Exception as exc:
        pytest.fail(f"pass raised {exc!r}; components halted: {[c.halted for c in comps.values()]}")


def test_targets_annotation_cannot_redirect_the_token():
    ts = make_ts()
    k, comps, env = rig(ts)
    evil = FakeComponent("execution", token="whatever")
    seen_tokens = []
    orig = env.controls.status

    async def spy(component, target, token):
        if target == "attacker.example:443":
            seen_tokens.append(token)
        return await orig(component, target, token)

    env.controls.comps["attacker.example:443"] = evil
    env.controls.status = spy
    ts["metadata"]["annotations"][reconciler.TARGETS_ANNOTATION] = json.dumps({"execution": "attacker.example:443"})
    run(env)
    assert not seen_tokens, f"the operator sent the token {seen_tokens[0]!r} to attacker.example:443"


def test_targets_annotation_cannot_hide_execution_from_the_halt():
    ts = make_ts(halted=True)
    k, comps, env = rig(ts)
    ts["metadata"]["annotations"][reconciler.TARGETS_ANNOTATION] = json.dumps({"dashboard": "dashboard:1"})
    run(env)
    assert set(reconciler.targets(ts, True)) == set(COMPONENTS)  # ignored: every component stays addressed
    assert reconciler.targets(ts, False) == reconciler.targets(make_ts(), False)  # off by default


# 4 ------------------------------------------------------------------------------------------------------
def test_deleted_control_secret_does_not_lock_the_operator_out():
    ts = make_ts(status={"mode": "live"}, mode="live", approvedForLive=True)
    k, comps, env = rig(ts, Mode.LIVE)
    run(env)
    assert ts["status"]["mode"] == "live"
    k.secret_token = None  # kubectl delete secret btc-control (or a namespace restore without it)
    ts["spec"]["halted"] = True
    digests = lambda: {o["spec"]["template"]["metadata"]["annotations"]["celeris.dev/control-token"]  # noqa: E731
                       for (kind, _), o in k.objects.items() if kind == "Deployment"}
    before = digests()
    run(env)
    # The minted token is in every pod template: the pods roll and boot from the desired state (demoted and
    # halted), holding the token the operator now presents; no pod keeps trading unreachable.
    assert k.minted and digests() != before and len(digests()) == 1
    assert k.desired()["halted"] is True


# 5 ------------------------------------------------------------------------------------------------------
def test_restart_between_ticks_does_not_reset_the_window():
    spec = {"rollout": {"stages": [{"mode": "simulation", "minDuration": "10m"}, {"mode": "live"}],
                        "autoPromote": True}, "mode": "live"}
    acct = lambda n, start: Observed("account", True, ready=True, mode=Mode.SIMULATION, started_at_ns=start,
                                     details={"mismatches": str(n), "critical_alerts": "0"})
    others = {c: Observed(c, True, ready=True, mode=Mode.SIMULATION) for c in COMPONENTS if c != "account"}
    stage = {"mode": "simulation", "since": "x"}
    stage = signals.next_window(stage, {**others, "account": acct(0, 1)}, Mode.SIMULATION, 0.0)
    stage = signals.next_window(stage, {**others, "account": acct(5, 1)}, Mode.SIMULATION, 300.0)  # 5 mismatches
    # account crashes and is back within the 5 s tick: the operator never sees it unready
    observed = {**others, "account": acct(0, 2)}
    stage = signals.next_window(stage, observed, Mode.SIMULATION, 700.0)
    now = signals.counters(observed)
    facts = rollout.Facts(700.0, signals.window_start(stage, 700.0), {c: True for c in COMPONENTS},
                          signals.increase(stage, now, "reconciliation"), signals.increase(stage, now, "criticalAlerts"),
                          approved=True)
    decision = rollout.decide(spec, Mode.SIMULATION, facts)
    assert decision.action != "promote", f"promoted after 5 mismatches in the window: {decision}"


@pytest.mark.parametrize("value", ["1.0", "many", "", "-5"])
def test_unparseable_alert_counter_fails_the_gate(value):
    spec = {"rollout": {"stages": [{"mode": "simulation", "minDuration": "1s"}, {"mode": "live"}]}, "mode": "live"}
    observed = {c: Observed(c, True, ready=True, mode=Mode.LIVE, started_at_ns=1) for c in COMPONENTS}
    observed["risk"] = Observed("risk", True, ready=True, mode=Mode.LIVE, started_at_ns=1,
                                details={"critical_alerts": value})
    now = signals.counters(observed)
    facts = rollout.Facts(100.0, 0.0, {c: True for c in COMPONENTS}, 0,
                          signals.increase({}, now, "criticalAlerts"), approved=True)  # UNREADABLE
    assert rollout.decide(spec, Mode.LIVE, facts).action == "demote"


# F7 (a reject storm after a long clean run): tests/operator/test_rollout.py::test_the_reject_rate_is_judged_over_recent_time


# 8 ------------------------------------------------------------------------------------------------------
def test_halt_reaches_execution_first_when_another_component_is_slow():
    """F8 (measured, not asserted red): spec.halted is pushed one component at a time in the topology's
    order, each with a 5 s deadline; a hung marketdata/strategy Halt delays execution's."""
    ts = make_ts(halted=True)
    k, comps, env = rig(ts)
    order = []
    orig = env.controls.halt

    async def slow(target, token, reason):
        order.append(target)
        await orig(target, token, reason)
    env.controls.halt = slow
    run(env)
    assert order[0] == "execution:1"  # execution's halt first: a slow component elsewhere cannot delay it


# 10 -----------------------------------------------------------------------------------------------------
def test_generation_ahead_does_not_block_new_risk_limits():
    ts = make_ts()
    ts["metadata"]["generation"] = 2  # the re-created resource, one edit in: risk limits tightened
    ts["spec"]["risk"] = {"maxPositionUsdt": "10"}
    k, comps, env = rig(ts)
    for c in comps.values():
        c.generation = 7  # the pods kept running across the re-creation (their old resource reached 7)

    async def configure(target, token, generation, settings_json):  # celeris/runtime/control.py:96
        c = env.controls._check(target, token)
        if generation < c.generation:
            raise Refused(f"generation {generation} is older than the applied {c.generation}")
        c.generation = generation
    env.controls.configure = configure
    run(env)
    run(env)
    assert all(c.generation > 7 for c in comps.values()), ts["status"].get("conditions")
    assert k.desired()["settings"]["risk"]["maxPositionUsdt"] == "10"
