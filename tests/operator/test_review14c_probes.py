"""Third adversarial review of issue 14 (emulated/unit tier): each test failed on the code it reviewed.
One reconcile pass (celeris_operator.reconciler.reconcile) against the in-memory kube and components of
test_review14_probes (components check the Control token)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from celeris.domain.modes import Mode
from tests.operator.test_review14_probes import COMPONENTS, make_ts, rig, run

ROOT = Path(__file__).resolve().parents[2]


def test_a_simulator_venue_without_urls_can_be_reconciled():
    """ISSUE14 "A strict CRD": "a `simulator` venue needs neither" (credentials nor https/wss URLs); the CRD
    accepts `venue: {kind: simulator}` with no URLs (test_crd.py `simulator-minimal`), and
    examples/tight-limits.yaml ships exactly that ("the same file `kubectl apply` takes"). Expected: a pass
    builds the system's objects and writes status. Found: builders.settings_for reads
    spec["venue"]["restUrl"] unconditionally, so every pass raises KeyError before any object exists and
    before step 2 — a spec.halted on such a system is never enforced and kopf retries forever."""
    doc = yaml.safe_load((ROOT / "examples" / "tight-limits.yaml").read_text())
    ts = make_ts(**{**doc["spec"], "mode": "observation", "halted": True})
    ts["spec"].pop("rollout", None)
    k, comps, env = rig(ts)
    try:
        run(env)
    except KeyError as exc:
        pytest.fail(f"a pass over a CRD-valid simulator venue raised KeyError {exc}; nothing applied, "
                    f"halted: {[c.halted for c in comps.values()]}")
    assert ("ConfigMap", "btc-desired") in k.objects
    assert all(c.halted for c in comps.values())


def test_an_approval_the_operator_first_sees_with_a_new_image_is_not_granted_to_it():
    """ISSUE14 "Approval bound to what it approves (image and generation): changing the image revokes it";
    the CRD refuses approval in the edit that changes the image, and approval.py's docstring says the
    record is "recorded with the image and the generation of the edit that set spec.approvedForLive".
    Attack (or plain bad timing: the operator restarting, or busy, between two edits): a person approves
    image celeris:1 (generation 4), then — before the operator's next pass — someone changes the image to
    celeris:666 (generation 5, accepted by the CRD: approval is not *becoming* true in that edit). The
    operator's first look at the approval is with celeris:666, and it records the approval for celeris:666
    (grant() takes the image of the body it reads now). Expected: the operator knows the image it last ran
    (status.lastGoodImage/images: celeris:1) and refuses an approval that appears together with another
    image, as the CRD would have for one edit."""
    ts = make_ts(status={"mode": "simulation"}, mode="live", image="celeris:1")
    k, comps, env = rig(ts, Mode.SIMULATION)
    run(env)
    assert ts["status"].get("approval") is None
    assert ts["status"]["lastGoodImage"] == "celeris:1"
    # Two edits the operator does not see apart: approvedForLive true (gen 4, for celeris:1), image (gen 5).
    ts["spec"]["approvedForLive"] = True
    ts["spec"]["image"] = "celeris:666"
    ts["metadata"]["generation"] = 5
    run(env)
    record = ts["status"].get("approval") or {}
    assert record.get("image") != "celeris:666" or record.get("revoked"), \
        f"the approval given for celeris:1 was recorded for celeris:666: {record}"


class AdmissionRefused(Exception):
    """What kube.apply raises when the API server (a quota, a ValidatingAdmissionPolicy, Gatekeeper/Kyverno,
    a webhook that is down) refuses one object: kubernetes.client ApiException 403/422/500."""


def test_a_refused_deployment_apply_does_not_block_the_halt():
    """ISSUE14 "Safe at boot, level-triggered": "On every timer tick ... the operator compares each
    component's reported mode, halt and configuration generation with the desired ones and corrects
    drift". Attack/incident: a cluster policy (allowed registries, a ResourceQuota, an admission webhook
    that times out) refuses the Deployment of a new image; then the person pulls the emergency stop
    (spec.halted: true). Expected: the halt reaches every component — it needs no Deployment. Found: the
    pass applies objects (step 1) before it corrects components (step 2), and an apply that raises ends the
    pass: every tick and every retry fails the same way, no component is ever halted and no status is
    written, for as long as the policy refuses the Deployment."""
    ts = make_ts(status={"mode": "live"}, mode="live", approvedForLive=True)
    k, comps, env = rig(ts, Mode.LIVE)
    run(env)
    assert ts["status"]["mode"] == "live"
    ts["spec"]["image"] = "registry.example/celeris:2"  # refused by the cluster's policy
    ts["spec"]["halted"] = True
    ts["metadata"]["generation"] += 1
    plain_apply = k.apply

    def apply(obj):
        if obj["kind"] == "Deployment" and "registry.example" in json.dumps(obj):
            raise AdmissionRefused("admission webhook denied the request: registry not allowed")
        plain_apply(obj)
    k.apply = apply
    for _ in range(3):  # three timer ticks
        try:
            run(env)
        except AdmissionRefused:
            pass
    assert all(c.halted for c in comps.values()), \
        f"spec.halted never reached the components: {[(c.name, c.halted, c.mode.value) for c in comps.values()]}"


def test_the_shipped_simulator_example_reaches_live_through_every_stage():
    """examples/tight-limits.yaml (a simulator venue, mode live, no rollout) is "the same file `kubectl apply`
    takes" and docs/deployment.md says a simulator venue needs no rollout to run live: the operator walks
    observation -> simulation -> live, one stage a pass, with the bundled simulator as the venue."""
    doc = yaml.safe_load((ROOT / "examples" / "tight-limits.yaml").read_text())
    ts = make_ts(**doc["spec"])
    ts["spec"].pop("rollout", None)
    k, comps, env = rig(ts)
    seen = []
    for _ in range(4):
        run(env)
        seen.append(ts["status"]["mode"])
    assert seen[-1] == "live" and seen.index("simulation") < seen.index("live"), seen
    assert all(c.mode is Mode.LIVE for c in comps.values())
    assert ("Deployment", "btc-venue-sim") in k.objects and ("Service", "btc-venue-sim") in k.objects
    env_of = {e["name"]: e for c in k.objects[("Deployment", "btc-execution")]["spec"]["template"]["spec"]["containers"]
              for e in c["env"]}
    assert env_of["CELERIS_VENUE_REST_URL"]["value"].startswith("http://btc-venue-sim.")
