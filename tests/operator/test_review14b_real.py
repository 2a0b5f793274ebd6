"""Second adversarial review (kept as regressions) of issue 14, against the REAL kube-apiserver (kube_env): the operator (KopfRunner)
through a normal promotion, watching every status it writes: the seal must never raise a false "foreign"
alarm (status.abort absent, no StatusNotTheOperators event), conditions' lastTransitionTime must hold over
many passes, approval must work end to end after an abort, and the CRD's transition rule must hold."""

from __future__ import annotations

import threading
import time

import pytest

from tests.operator.test_operator import trading_system, wait_until
from tests.operator.test_real_cluster import GROUP, PLURAL, VERSION, fresh_controls, kubeconfig, real  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("fresh_controls")


class Watcher:
    """Polls status every 100 ms and keeps every abort and every lastTransitionTime seen."""

    def __init__(self, cluster, name):
        self.cluster, self.name = cluster, name
        self.aborts: list = []
        self.ltt: dict[str, set] = {}
        self.statuses: list = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                st = self.cluster.status(self.name)
            except Exception:
                st = {}
            if st.get("abort"):
                self.aborts.append(st["abort"])
            for c in st.get("conditions") or []:
                self.ltt.setdefault((c["type"], c["status"]), set()).add(c.get("lastTransitionTime"))
            self.statuses.append(st)
            time.sleep(0.1)

    def stop(self):
        self._stop.set()
        self.thread.join(5)


def _events(cluster, reason):
    return [e for e in cluster.core.list_namespaced_event(cluster.namespace).items if e.reason == reason]


def test_normal_promotion_on_the_real_server_raises_no_foreign_alarm(real):
    """A plain observation -> simulation -> live with approval, as an operator would run it. Expected: no
    status.abort, no StatusNotTheOperators event at any time; conditions keep their lastTransitionTime
    while their status holds."""
    from kopf.testing import KopfRunner

    with KopfRunner(["run", "--namespace", real.namespace, "--standalone", "-m", "celeris_operator.handlers"],
                    timeout=120) as runner:
        real.custom.create_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL,
                                                    trading_system(real.targets, "seal-a"))
        w = Watcher(real, "seal-a")
        try:
            wait_until(lambda: real.status("seal-a").get("phase") == "Running", timeout=60, what="Running")
            real.patch_spec("seal-a", {"mode": "live"})
            wait_until(lambda: real.status("seal-a").get("mode") == "simulation", timeout=30, what="simulation")
            real.patch_spec("seal-a", {"approvedForLive": True})
            wait_until(lambda: real.status("seal-a").get("mode") == "live", timeout=30, what="live")
            time.sleep(6)  # ~12 passes at 0.5 s in live, nothing changing
        finally:
            w.stop()
        foreign = _events(real, "StatusNotTheOperators")
        st = real.status("seal-a")
        real.custom.delete_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL, "seal-a")
        wait_until(lambda: not real.exists("seal-a"), timeout=20, what="deletion")
    assert runner.exception is None, runner.output[-3000:]
    assert not foreign, [e.message for e in foreign]
    assert not w.aborts, w.aborts[:3]
    assert st["mode"] == "live" and st["phase"] == "Running", st
    # In live for 6 s with nothing changing: the Ready=True condition kept one transition time.
    assert len(w.ltt.get(("Ready", "True"), set())) <= 2, w.ltt  # one per entry into Ready (sim, live)


def test_approval_after_an_abort_and_the_image_revocation_end_to_end(real):
    """Live, a gate fails: demoted and aborted. Expected (docs, approval.py): approval false then true (a new
    revision) lifts the abort and a fresh approval takes it back to live; an image change then revokes."""
    from kopf.testing import KopfRunner

    with KopfRunner(["run", "--namespace", real.namespace, "--standalone", "-m", "celeris_operator.handlers"],
                    timeout=120) as runner:
        real.custom.create_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL,
                                                    trading_system(real.targets, "appr", mode="live"))
        wait_until(lambda: real.status("appr").get("mode") == "simulation", timeout=60, what="simulation")
        real.patch_spec("appr", {"approvedForLive": True})
        wait_until(lambda: real.status("appr").get("mode") == "live", timeout=30, what="live")
        real.controls["risk"].ready = False
        wait_until(lambda: real.status("appr").get("mode") == "simulation", timeout=30, what="demotion")
        wait_until(lambda: real.status("appr").get("abort"), timeout=10, what="abort")
        real.controls["risk"].ready = True
        time.sleep(3)
        assert real.status("appr").get("mode") == "simulation", "re-promoted with the old approval (flap)"
        real.patch_spec("appr", {"approvedForLive": False})
        time.sleep(1.5)
        real.patch_spec("appr", {"approvedForLive": True})
        wait_until(lambda: real.status("appr").get("mode") == "live", timeout=30, what="live after re-approval")
        assert not real.status("appr").get("abort")
        # An image change revokes the approval: with pods never ready here the image rollout cannot complete,
        # but live must not be re-entered on the old approval; we only check the approval record.
        real.patch_spec("appr", {"image": "celeris:0.2.0"})
        wait_until(lambda: (real.status("appr").get("approval") or {}).get("revoked"), timeout=30,
                   what="revoked approval")
        real.custom.delete_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL, "appr")
        wait_until(lambda: not real.exists("appr"), timeout=20, what="deletion")
    assert runner.exception is None, runner.output[-3000:]


def test_control_secret_rotation_aborts_a_healthy_live_rollout(real):
    """Token rotation (delete the Secret; the operator mints a new one): the seal has its own key, so the
    operator's own status is not taken for a forgery (the test components accept any token; real pods
    holding the old token roll, as the token's digest in their template changes)."""
    from kopf.testing import KopfRunner

    with KopfRunner(["run", "--namespace", real.namespace, "--standalone", "-m", "celeris_operator.handlers"],
                    timeout=120) as runner:
        real.custom.create_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL,
                                                    trading_system(real.targets, "rot", mode="live", approvedForLive=True))
        wait_until(lambda: real.status("rot").get("mode") == "live", timeout=60, what="live")
        wait_until(lambda: real.status("rot").get("phase") == "Running", timeout=30, what="Running")
        real.core.delete_namespaced_secret("rot-control", real.namespace)
        time.sleep(3)
        st = real.status("rot")
        real.custom.delete_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL, "rot")
        wait_until(lambda: not real.exists("rot"), timeout=20, what="deletion")
    assert runner.exception is None, runner.output[-3000:]
    assert not st.get("abort"), f"rotation aborted the rollout: {st.get('abort')}, phase {st.get('phase')}"


def test_a_status_write_does_not_get_a_topology_change_past_the_crd_while_live(real):
    """The transition rule 'no topology change while live' reads spec.mode as well as status.mode: a writer of
    tradingsystems/status that sets status.mode to simulation first does not get the edit in while spec.mode
    is live (with spec.mode simulation the operator demotes first, and then a topology change is legitimate)."""
    from kopf.testing import KopfRunner
    from kubernetes.client.rest import ApiException

    with KopfRunner(["run", "--namespace", real.namespace, "--standalone", "-m", "celeris_operator.handlers"],
                    timeout=120) as runner:
        real.custom.create_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL,
                                                    trading_system(real.targets, "topo", mode="live", approvedForLive=True))
        wait_until(lambda: real.status("topo").get("mode") == "live", timeout=60, what="live")
        with pytest.raises(ApiException) as refused:
            real.patch_spec("topo", {"topology": "colocated"})
        assert "cannot change while the system is live" in refused.value.body
        real.custom.patch_namespaced_custom_object_status(GROUP, VERSION, real.namespace, PLURAL, "topo",
                                                          {"status": {"mode": "simulation"}})
        with pytest.raises(ApiException) as refused:
            real.patch_spec("topo", {"topology": "colocated"})
        assert "cannot change while the system is live" in refused.value.body
        names = {d.metadata.name for d in real.apps.list_namespaced_deployment(real.namespace).items
                 if d.metadata.name.startswith("topo-")}
        assert "topo-execution" in names and "topo-hotpath" not in names, names
        real.custom.delete_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL, "topo")
        wait_until(lambda: not real.exists("topo"), timeout=20, what="deletion")
    assert runner.exception is None, runner.output[-3000:]


def test_the_real_server_re_encodes_an_integral_float_so_the_seal_breaks(real):
    """What the operator writes (json of a Python float 1700000000.0, as time.time() can return) comes back
    from the real API server as the integer 1700000000: the operator's own sealed status reads as foreign."""
    from celeris_operator import seal

    real.custom.create_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL,
                                                trading_system(real.targets, "float"))
    status = {"mode": "observation", "stage": {"mode": "observation", "enteredEpoch": 1_700_000_000.0,
                                                "errorSamples": [[1_700_000_015.0, 0, 0]]}}
    status["seal"] = seal.seal(status, "key")
    real.custom.patch_namespaced_custom_object_status(GROUP, VERSION, real.namespace, PLURAL, "float",
                                                      {"status": status})
    back = real.status("float")
    real.custom.delete_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL, "float")
    assert seal.intact(back, "key"), f"read back {back['stage']}: the operator's own seal no longer matches"


def test_gitops_readers_on_the_real_aborted_status(real):
    """kstatus and Argo CD's health check on the status the operator really writes after an abort."""
    from kopf.testing import KopfRunner
    from tests.operator import status_contract as sc

    with KopfRunner(["run", "--namespace", real.namespace, "--standalone", "-m", "celeris_operator.handlers"],
                    timeout=120) as runner:
        real.custom.create_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL,
                                                    trading_system(real.targets, "gh", mode="live", approvedForLive=True))
        wait_until(lambda: real.status("gh").get("phase") == "Running", timeout=60, what="Running live")
        running = real.get("gh")
        real.controls["risk"].ready = False
        wait_until(lambda: real.status("gh").get("phase") == "Aborted", timeout=30, what="Aborted")
        time.sleep(1.5)
        aborted = real.get("gh")
        real.controls["risk"].ready = True
        real.custom.delete_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL, "gh")
        wait_until(lambda: not real.exists("gh"), timeout=20, what="deletion")
    assert runner.exception is None, runner.output[-3000:]
    binary = sc.kstatus_binary()
    assert sc.argocd_health(running)["status"] == "Healthy"
    assert sc.kstatus(running, binary)["status"] == "Current"
    assert sc.argocd_health(aborted)["status"] == "Degraded", aborted["status"]["conditions"]
    assert sc.kstatus(aborted, binary)["status"] == "Failed", aborted["status"]["conditions"]
