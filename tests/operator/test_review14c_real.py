"""Third adversarial review of issue 14, against a REAL kube-apiserver (tests/support/kube.py): each test
failed on the code it reviewed."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.operator.test_real_cluster import fresh_controls, kubeconfig, real  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "celeris.dev", "v1alpha1", "tradingsystems"


@pytest.fixture(scope="module")
def owner_enforcing_env():
    """A control plane whose kube-apiserver also runs OwnerReferencesPermissionEnforcement: an admission
    plugin that OpenShift (and many hardened distributions) enable by default. It refuses an object whose
    ownerReference sets blockOwnerDeletion: true unless its writer may `update` the owner's `finalizers`
    subresource."""
    from tests.support.kube import KubeEnvUnavailable, KubeTestEnv, find_bin_dir

    try:
        bin_dir = find_bin_dir()
    except KubeEnvUnavailable as exc:
        pytest.fail(f"no real Kubernetes test environment: {exc}")

    class Enforcing(KubeTestEnv):
        def _spawn(self, name, args):
            if name == "kube-apiserver":
                args = [*args, "--enable-admission-plugins=OwnerReferencesPermissionEnforcement"]
            return super()._spawn(name, args)

    with Enforcing(bin_dir, crds=[ROOT / "k8s" / "crds"], controllers="garbagecollector,namespace") as env:
        yield env


def test_the_shipped_rbac_can_create_owned_objects_under_owner_reference_enforcement(owner_enforcing_env):
    """ISSUE14 "Owned objects pruned ...; RBAC grows only by the verbs this needs, checked against the calls
    the operator really makes." Every object the operator makes carries an ownerReference with
    blockOwnerDeletion: true (builders.owner_reference). Under the OwnerReferencesPermissionEnforcement
    admission plugin (on by default in OpenShift) that needs `update` on tradingsystems/finalizers, which
    k8s/rbac/rbac.yaml and the chart's ClusterRole do not grant (operator-sdk scaffolds it for this reason).
    Expected: the operator, as its service account with the shipped ClusterRole, server-side applies the
    desired-state ConfigMap of a TradingSystem. Found: 422/403 "cannot set blockOwnerDeletion if an
    ownerReference refers to a resource you can't set finalizers on" — not a single object is created."""
    import kubernetes.config.kube_config
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    from celeris_operator import builders, kube
    from tests.operator.test_real_cluster import find_kubectl

    env = owner_enforcing_env
    done = subprocess.run([find_kubectl(), "--kubeconfig", env.admin_kubeconfig, "apply", "-f",
                           str(ROOT / "k8s" / "rbac" / "rbac.yaml")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    admin = config.new_client_from_config(config_file=env.admin_kubeconfig)
    ns = f"celeris-own-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(admin).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    body = client.CustomObjectsApi(admin).create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "TradingSystem", "metadata": {"name": "btc"},
        "spec": {"image": "celeris:0.1.0", "venue": {"kind": "simulator", "restUrl": "http://sim:1",
                                                     "wsUrl": "ws://sim:2"}, "symbols": ["BTCUSDT"]}})
    operator = config.new_client_from_config(config_file=env.operator_kubeconfig)
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
        resource_attributes=client.V1ResourceAttributes(namespace=ns, verb="patch", group="", resource="configmaps")))
    deadline = time.monotonic() + 30
    while not client.AuthorizationV1Api(operator).create_self_subject_access_review(review).status.allowed:
        assert time.monotonic() < deadline, "the ClusterRoleBinding never came into force"
        time.sleep(0.2)
    saved = kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = env.operator_kubeconfig
    kube.api_client.cache_clear()
    try:
        cm = builders.build_desired_configmap(body, builders.desired_state(body, "observation", False))
        try:
            kube.apply(cm)  # exactly what a reconcile pass does first
        except ApiException as exc:
            pytest.fail(f"the operator may not create its own objects: {exc.status} "
                        f"{json.loads(exc.body).get('message')}")
    finally:
        kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved
        kube.api_client.cache_clear()


def test_a_policy_refusing_the_new_image_does_not_block_the_halt_on_the_real_server(real, fresh_controls):
    """ISSUE14 "Safe at boot, level-triggered" (every tick corrects halt drift), on the real API server: a
    ValidatingAdmissionPolicy (the built-in form of an "allowed images" policy, as Kyverno or Gatekeeper
    ship) refuses Deployments running celeris:0.2.0. A person bumps spec.image to it and, seeing it refused,
    sets spec.halted: true. Expected: every component is halted on the next passes (the halt needs no
    Deployment). Found: each pass raises on the refused Deployment apply before it reaches the components,
    so nothing is halted and no status is written."""
    import asyncio

    from celeris_operator import kube, reconciler
    from celeris_operator.controls import Controls
    from tests.operator.test_operator import trading_system
    from tests.operator.test_real_cluster import find_kubectl
    from tests.operator.test_operator import wait_until

    name = "halt-vap"
    real.custom.create_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL,
                                                trading_system(real.targets, name=name))

    def one_pass():
        env = reconciler.Env(kube, Controls(), allow_targets_annotation=True, image_timeout_s=2.0)
        return asyncio.run(reconciler.reconcile(env, real.namespace, name))

    one_pass()
    assert len(real.deployments()) == 6
    policy = f"deny-celeris-020-{real.namespace}"
    manifest = [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": policy},
         "spec": {"failurePolicy": "Fail",
                  "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                          "operations": ["CREATE", "UPDATE"],
                                                          "resources": ["deployments"]}]},
                  "validations": [{"expression": "object.spec.template.spec.containers.all(c, c.image != 'celeris:0.2.0')",
                                   "message": "celeris:0.2.0 is not an allowed image"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": policy},
         "spec": {"policyName": policy, "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchLabels": {
                      "kubernetes.io/metadata.name": real.namespace}}}}}]
    kubectl = [find_kubectl(), "--kubeconfig", real.kubeconfig]
    done = subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                            "items": manifest}),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    try:
        # The policy reaches admission through an informer: wait until a dry run of such a Deployment is refused.
        probe = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "vap-probe"},
                 "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                     "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "celeris:0.2.0"}]}}}}

        def refused() -> bool:
            try:
                real.apps.create_namespaced_deployment(real.namespace, probe, dry_run="All")
                return False
            except Exception:  # noqa: BLE001 - the refusal is what is awaited
                return True
        wait_until(refused, timeout=30, what="the admission policy in force")
        real.patch_spec(name, {"image": "celeris:0.2.0"})
        real.patch_spec(name, {"halted": True})
        errors = []
        for _ in range(3):
            try:
                one_pass()
            except Exception as exc:  # what kopf retries, forever
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        not_halted = [c for c, ctl in real.controls.items() if not ctl.halted]
        assert not not_halted, f"spec.halted never reached {not_halted}; the passes raised: {errors[:1]}"
    finally:
        subprocess.run([*kubectl, "delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy],
                       capture_output=True, timeout=60)
        real.custom.delete_namespaced_custom_object(GROUP, VERSION, real.namespace, PLURAL, name)
