"""The optional real-cluster tier: the operator's scenarios against a real Kubernetes API server.

By default it runs against the real kube-apiserver, etcd and kube-controller-manager that the `kube_env`
fixture starts on loopback (tests/support/kube.py; binaries from scripts/k8s-testenv), as the admin user.
CELERIS_TEST_KUBECONFIG, when set, names an external cluster to use instead (a separate variable from
KUBECONFIG on purpose, so an everyday KUBECONFIG never points the tests at a cluster that matters). The operator runs
here, on this machine, through KopfRunner; the components' Control services run here too and the
TradingSystem's control-targets annotation points the operator at them, so the cluster needs no image:
the scenarios check what the operator writes to the API (Deployments, Services, status, events) and what it
tells the components. Image rollout needs pods that become ready, so it stays with the emulated tier.
The CRD is applied with kubectl when the cluster does not serve it yet; everything else lives in a fresh
namespace that is deleted afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from celeris.domain.modes import Mode
from tests.operator.test_operator import OPERATOR_ENV, start_controls, trading_system, wait_until

EXTERNAL_KUBECONFIG = os.environ.get("CELERIS_TEST_KUBECONFIG", "")

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "celeris.dev", "v1alpha1", "tradingsystems"


class RealCluster:
    def __init__(self, kubeconfig: str) -> None:
        from kubernetes import client, config

        self.kubeconfig = kubeconfig
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.namespace = f"celeris-e2e-{uuid.uuid4().hex[:6]}"

    def ensure_crd(self, kubectl: str) -> None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        try:
            client.ApiextensionsV1Api(self.api).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
        except ApiException as exc:
            if exc.status != 404:
                raise
            subprocess.run([kubectl, "--kubeconfig", self.kubeconfig, "apply", "-f", str(ROOT / "k8s" / "crds")],
                           check=True, capture_output=True, timeout=60)
            wait_until(lambda: self._served(), timeout=30, what="the CRD to be served")

    def _served(self) -> bool:
        try:
            self.custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
            return True
        except Exception:
            return False

    def get(self, name: str) -> dict:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def status(self, name: str) -> dict:
        return self.get(name).get("status") or {}

    def patch_spec(self, name: str, spec: dict) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec})

    def deployments(self) -> list:
        return self.apps.list_namespaced_deployment(self.namespace).items

    def exists(self, name: str) -> bool:
        from kubernetes.client.rest import ApiException

        try:
            self.get(name)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise


def find_kubectl() -> str:
    """The venv's kubectl (scripts/install --system puts it there), else one on PATH."""
    for candidate in (ROOT / ".venv" / "bin" / "kubectl", Path(sys.executable).parent / "kubectl"):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("no kubectl (scripts/install --system puts one in .venv/bin)")
    return found


@pytest.fixture(scope="module")
def kubeconfig(request) -> str:
    """CELERIS_TEST_KUBECONFIG's cluster if set, else the session's real control plane on loopback."""
    if EXTERNAL_KUBECONFIG:
        return EXTERNAL_KUBECONFIG
    return request.getfixturevalue("kube_env").admin_kubeconfig


@pytest.fixture(scope="module")
def real(kubeconfig):
    import kubernetes.config.kube_config
    from kubernetes.client import V1Namespace, V1ObjectMeta

    kubectl = find_kubectl()
    cluster = RealCluster(kubeconfig)
    cluster.ensure_crd(kubectl)
    cluster.core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=cluster.namespace)))
    controls, targets, servers = start_controls()
    cluster.controls, cluster.targets = controls, targets
    saved = {k: os.environ.get(k) for k in [*OPERATOR_ENV, "KUBECONFIG"]}
    saved_location = kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    os.environ.update({**OPERATOR_ENV, "KUBECONFIG": kubeconfig})
    # The client read $KUBECONFIG once, at import; kopf and the operator log in through this default.
    kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = kubeconfig
    from celeris_operator import kube

    kube.api_client.cache_clear()
    try:
        yield cluster
    finally:
        for server in servers:
            server.stop(None)
        cluster.core.delete_namespace(cluster.namespace)
        kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved_location
        kube.api_client.cache_clear()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def fresh_controls(real):
    """Each test its own components' Control servers: a deleted TradingSystem leaves its components halted
    ("TradingSystem deleted"), which the next test's system must not inherit."""
    shared = real.controls, real.targets
    real.controls, real.targets, servers = start_controls()
    try:
        yield real
    finally:
        for server in servers:
            server.stop(None)
        real.controls, real.targets = shared


def test_scenarios_on_a_real_cluster(real):
    from kopf.testing import KopfRunner
    from kubernetes.client.rest import ApiException

    body = trading_system(real.targets)
    with KopfRunner(["run", "--namespace", real.namespace, "--standalone", "-m", "celeris_operator.handlers"],
                    timeout=120) as runner:
        real.custom.create_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL, body)
        wait_until(lambda: len(real.deployments()) == 6, timeout=60, what="deployments")
        assert all(d.metadata.owner_references[0].name == "btc-perp" for d in real.deployments())
        wait_until(lambda: real.status("btc-perp").get("phase") == "Running", timeout=60, what="Running")

        # Configuration reaches the components without a restart.
        real.patch_spec("btc-perp", {"strategies": [{"name": "mom-btc", "type": "momentum", "symbol": "BTCUSDT",
                                                     "orderSize": "0.002", "params": {"lookback": 20}}]})
        wait_until(lambda: set((real.status("btc-perp").get("appliedGeneration") or {}).values()) == {2},
                   timeout=30, what="applied generation")

        # Promotion through the gates; live waits for the approval.
        real.patch_spec("btc-perp", {"mode": "live"})
        wait_until(lambda: real.status("btc-perp").get("mode") == "simulation", timeout=30, what="simulation")
        real.patch_spec("btc-perp", {"approvedForLive": True})
        wait_until(lambda: real.status("btc-perp").get("mode") == "live", timeout=30, what="live")
        assert all(c.mode is Mode.LIVE for c in real.controls.values())

        # A failed gate in live demotes.
        real.controls["risk"].ready = False
        wait_until(lambda: real.status("btc-perp").get("mode") == "simulation", timeout=30, what="demotion")
        real.controls["risk"].ready = True

        # The API server's CEL rules refuse an illegal jump.
        with pytest.raises(ApiException) as refused:
            real.custom.patch_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL, "btc-perp",
                                                       {"spec": {"rollout": None, "mode": "live"}})
        assert refused.value.status == 422

        # Halt, then delete through the finalizer.
        real.patch_spec("btc-perp", {"halted": True})
        wait_until(lambda: real.status("btc-perp").get("phase") == "Halted", timeout=30, what="Halted")
        assert all(c.halted for c in real.controls.values())
        real.custom.delete_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL, "btc-perp")
        try:
            wait_until(lambda: not real.exists("btc-perp"), timeout=60, what="deletion")
        except AssertionError:
            left = real.get("btc-perp")
            raise AssertionError(f"not deleted: metadata {left['metadata']}, status {left.get('status')}") from None
        # The real garbage collector follows the ownerReferences the operator wrote.
        wait_until(lambda: not real.deployments(), timeout=60, what="garbage collection of the deployments")
        time.sleep(0.5)
    assert runner.exception is None, runner.output[-3000:]


def test_the_operator_needs_no_more_than_the_shipped_rbac(real, request):
    """The same operator, logged in as its service account with only k8s/rbac/rbac.yaml's ClusterRole."""
    import kubernetes.config.kube_config
    from celeris_operator import kube
    from kopf.testing import KopfRunner

    if EXTERNAL_KUBECONFIG:
        pytest.skip("runs only on the local control plane, which knows the operator's token")
    env = request.getfixturevalue("kube_env")
    done = subprocess.run([find_kubectl(), "--kubeconfig", env.admin_kubeconfig, "apply", "-f",
                           str(ROOT / "k8s" / "rbac" / "rbac.yaml")], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    as_operator = RealCluster(env.operator_kubeconfig)
    # RBAC reaches the authorizer through an informer: wait until the binding is in force.
    wait_until(lambda: _can(as_operator, "patch", "apps", "deployments", real.namespace), timeout=30,
               what="the operator's ClusterRoleBinding")

    _controls, targets, servers = start_controls()
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TradingSystem",
            "metadata": {"name": "eth-perp", "annotations": {"celeris.dev/control-targets": json.dumps(targets)}},
            "spec": {"image": "celeris:0.1.0", "symbols": ["ETHUSDT"], "mode": "observation",
                     "venue": {"kind": "binance-usdm", "restUrl": "https://testnet.example/fapi",
                               "wsUrl": "wss://testnet.example/ws", "credentialsSecret": "binance-api"},
                     "strategies": [{"name": "mom-eth", "type": "momentum", "symbol": "ETHUSDT",
                                     "orderSize": "0.01"}]}}

    def owned() -> list:
        return [d for d in real.deployments() if d.metadata.owner_references
                and d.metadata.owner_references[0].name == "eth-perp"]

    os.environ["KUBECONFIG"] = env.operator_kubeconfig
    kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = env.operator_kubeconfig
    kube.api_client.cache_clear()
    try:
        # As `python -m celeris_operator` runs it in the pod: cluster-wide. (With --namespace kopf also lists
        # namespaces, which the shipped ClusterRole does not grant; it then falls back after nine refusals.)
        with KopfRunner(["run", "--all-namespaces", "--standalone", "-m", "celeris_operator.handlers"],
                        timeout=120) as runner:
            real.custom.create_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL, body)
            wait_until(lambda: len(owned()) == 6, timeout=60, what="deployments made as the operator's user")
            wait_until(lambda: real.status("eth-perp").get("phase") == "Running", timeout=60, what="Running")
            real.patch_spec("eth-perp", {"halted": True})
            wait_until(lambda: real.status("eth-perp").get("phase") == "Halted", timeout=30, what="Halted")
            real.custom.delete_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL, "eth-perp")
            wait_until(lambda: not real.exists("eth-perp"), timeout=60, what="deletion through the finalizer")
            # The real garbage collector removes what the operator made (ownerReferences).
            wait_until(lambda: not owned(), timeout=60, what="garbage collection of the deployments")
    finally:
        for server in servers:
            server.stop(None)
        os.environ["KUBECONFIG"] = real.kubeconfig
        kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = real.kubeconfig
        kube.api_client.cache_clear()
    assert runner.exception is None, runner.output[-3000:]
    assert "Forbidden" not in runner.output and "forbidden" not in runner.output, runner.output[-3000:]


def _can(cluster: RealCluster, verb: str, group: str, resource: str, namespace: str) -> bool:
    from kubernetes import client

    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
        resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb=verb, group=group,
                                                        resource=resource)))
    return client.AuthorizationV1Api(cluster.api).create_self_subject_access_review(review).status.allowed
