"""Second adversarial review of issue 14 (kept as regressions; each was red on the code it reviewed) (the seal, merge_diff, pruning, the error window): one reconcile
pass against the in-memory kube and components of test_review14_probes (components check the token)."""

from __future__ import annotations

import json

from celeris.domain.modes import Mode
from celeris_operator import builders, reconciler, seal, signals
from tests.operator.test_review14_probes import COMPONENTS, FakeKube, make_ts, rig, run

KEY = FakeKube.seal_key(None, "celeris-system")  # the operator's own seal key (not the Control token)


def _deployment_images(k):
    return {name: o["spec"]["template"]["spec"]["containers"][0]["image"]
            for (kind, name), o in k.objects.items() if kind == "Deployment"}


def test_foreign_status_deploys_a_rolled_back_image_everywhere_at_once():
    """A rolled-back image (celeris:2 failed in marketdata; everything back on celeris:1, not retried until
    the image or celeris.dev/retry changes). Then the status is 'foreign' (a forged write, a token rotation,
    or a seal false alarm): the reset writes images={every group: spec.image} and lastGoodImage=spec.image,
    so the failed image goes to every Deployment in one pass, with no staging and no readiness check."""
    ts = make_ts(image="celeris:1")
    k, comps, env = rig(ts)
    run(env)
    assert set(_deployment_images(k).values()) == {"celeris:1"}
    # The bad image was tried and rolled back (what images.step leaves in status):
    ts["spec"]["image"] = "celeris:2"
    ts["metadata"]["generation"] += 1
    run(env)  # the rollout starts (marketdata first)
    st = ts["status"]
    st["imageRollout"] = None
    st["images"] = {g: "celeris:1" for g in st["images"]}
    st["lastGoodImage"] = "celeris:1"
    st["lastRollout"] = {"image": "celeris:2", "result": "rolled back", "failedComponent": "marketdata",
                         "retry": "", "at": "x"}
    st["seal"] = seal.seal(st, KEY)  # as the operator itself would have sealed it
    run(env)
    assert set(_deployment_images(k).values()) == {"celeris:1"}, "the rolled-back image is not retried"
    # The Control Secret is rotated (deleted; the operator mints a new token), and the status is forged.
    k.secret_token = None
    run(env)
    ts["status"]["images"] = {g: "celeris:2" for g in ts["status"]["images"]}
    run(env)
    assert "someone other" in ts["status"]["abort"]["reason"]
    assert set(_deployment_images(k).values()) == {"celeris:1"}, \
        f"a 'foreign' status redeployed the rolled-back image everywhere: {_deployment_images(k)}"


def test_secret_rotation_is_not_taken_for_a_forgery():
    """Token rotation in production: the running pods hold the old token until they roll (the token's
    digest is in their template), so they are unreachable for a while, which in live is a failed
    componentsReady gate (a demotion to simulation, as any outage in live is) — but the operator's own
    status, sealed with its own key, is not taken for a forgery: no reset to observation."""
    ts = make_ts(status={"mode": "live"}, mode="live", approvedForLive=True)
    ts["status"]["seal"] = seal.seal(ts["status"], KEY)  # the operator's own record
    k, comps, env = rig(ts, Mode.LIVE)
    run(env)
    assert ts["status"]["mode"] == "live" and not ts["status"].get("abort")
    k.secret_token = None
    run(env)
    assert k.desired()["mode"] != "observation"
    assert "someone other" not in (ts["status"].get("abort") or {}).get("reason", "")


def test_an_order_manager_without_our_owner_reference_is_not_waited_for():
    """`kubectl delete ts btc --cascade=orphan` (or a restore) leaves btc-execution without an
    ownerReference; the resource comes back colocated. Pruning rightly leaves the orphan alone, but the
    'one order manager' guard only looks at prunable owned objects, so btc-hotpath (a second order manager)
    is created next to the still-running btc-execution."""
    ts = make_ts()
    k, comps, env = rig(ts)
    run(env)
    orphan = k.objects[("Deployment", "btc-execution")]
    orphan["metadata"].pop("ownerReferences", None)
    ts["metadata"]["uid"] = "u-2"  # re-created
    ts["spec"]["topology"] = "colocated"
    run(env)
    deps = {n for (kind, n) in k.objects if kind == "Deployment"}
    managers = [n for n in deps if reconciler._runs_order_manager(k.objects[("Deployment", n)])]
    assert len(managers) <= 1, f"two order managers: {sorted(managers)}"
    assert "does not own" in json.dumps(ts["status"]["conditions"])  # Stalled: a person deletes the orphan


def test_error_samples_make_status_unbounded_with_a_long_error_window():
    """errorWindow has no upper bound in the CRD (pattern only); status.stage.errorSamples keeps one sample
    per 15 s of the window. 240h (10 days, a plausible 'judge over the whole soak'): the stage alone is over
    etcd's 1.5 MiB request limit, after which every status write is refused and the status freezes."""
    window = reconciler.error_window_s({"rollout": {"gates": {"errorWindow": "240h"}}})
    now = 1_764_700_000.123456
    stage = {"errorSamples": [[now - i * 15.0 - 0.5, 10_000 + i, i] for i in range(int(window // 15), 0, -1)]}
    signals.recent(stage, now, 20_000, 5_000, window)
    size = len(json.dumps(stage))
    assert size < 1_000_000, f"status.stage.errorSamples alone is {size} bytes ({len(stage['errorSamples'])} samples)"


def test_seal_breaks_when_a_float_timestamp_is_integral():
    """The real API server decodes JSON numbers into int64 when they are integral and re-encodes float64
    without '.0' (see test_review14b_real.py for the round trip on the real server): a sealed 1700000000.0
    comes back as 1700000000 and the operator's own status reads as foreign."""
    status = {"mode": "simulation", "stage": {"mode": "simulation", "enteredEpoch": 1_700_000_000.0}}
    status["seal"] = seal.seal(status, KEY)
    round_tripped = json.loads(json.dumps(status).replace("1700000000.0", "1700000000"))
    assert seal.intact(round_tripped, KEY), "the operator's own status is taken for a forgery"
