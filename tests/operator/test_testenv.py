"""The real control plane of tests/support/kube.py does what the operator's tests rely on.

Deployments become ReplicaSets become Pods (kube-controller-manager), deleting the owner collects the
children (the garbage collector), and the operator's user can do what k8s/rbac/rbac.yaml grants and nothing
more (RBAC with static tokens).
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.waits import wait_until

ROOT = Path(__file__).resolve().parents[2]


def clients(kubeconfig: str):
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=kubeconfig)
    return api, client.CoreV1Api(api), client.AppsV1Api(api)


@pytest.fixture()
def namespace(kube_env):
    from kubernetes.client import V1Namespace, V1ObjectMeta

    _, core, _ = clients(kube_env.admin_kubeconfig)
    name = f"testenv-{uuid.uuid4().hex[:6]}"
    core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def test_version_is_the_pinned_release(kube_env):
    from kubernetes import client

    api, _, _ = clients(kube_env.admin_kubeconfig)
    info = client.VersionApi(api).get_code()
    assert (info.major, info.minor.rstrip("+")) == ("1", "37"), info
    assert info.git_version.startswith("v1.37."), info


def test_deployment_makes_a_replicaset_and_pods_and_gc_removes_them(kube_env, namespace):
    from kubernetes import client

    _, core, apps = clients(kube_env.admin_kubeconfig)
    labels = {"app": "smoke"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="smoke"),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="example.invalid/none:1")]))))
    apps.create_namespaced_deployment(namespace, deployment)

    wait_until(lambda: len(apps.list_namespaced_replica_set(namespace).items) == 1, timeout=30,
               what="the deployment controller to create a ReplicaSet")
    rs = apps.list_namespaced_replica_set(namespace).items[0]
    assert rs.metadata.owner_references[0].kind == "Deployment"
    assert rs.metadata.owner_references[0].name == "smoke"
    wait_until(lambda: len(core.list_namespaced_pod(namespace).items) == 2, timeout=30,
               what="the replicaset controller to create two Pods")
    pods = core.list_namespaced_pod(namespace).items
    assert {p.metadata.owner_references[0].name for p in pods} == {rs.metadata.name}
    assert all(p.status.phase == "Pending" for p in pods)  # no scheduler, no kubelet

    # Background deletion: the owner goes at once, the garbage collector removes the children.
    apps.delete_namespaced_deployment("smoke", namespace, propagation_policy="Background")
    wait_until(lambda: not apps.list_namespaced_replica_set(namespace).items, timeout=60,
               what="the garbage collector to delete the ReplicaSet")
    wait_until(lambda: not core.list_namespaced_pod(namespace).items, timeout=60,
               what="the garbage collector to delete the Pods")


def test_the_operator_user_has_exactly_the_shipped_rbac(kube_env, namespace):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    kubectl = kube_env.kubectl()
    if kubectl is None:
        pytest.skip("no kubectl (scripts/install --system puts one in .venv/bin)")
    done = subprocess.run([kubectl, "--kubeconfig", kube_env.admin_kubeconfig, "apply",
                           "-f", str(ROOT / "k8s" / "rbac" / "rbac.yaml")], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr

    _, core, apps = clients(kube_env.operator_kubeconfig)
    api, _, _ = clients(kube_env.operator_kubeconfig)
    authz = client.AuthorizationV1Api(api)

    def allowed(verb: str, group: str, resource: str, subresource: str = "") -> bool:
        review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb=verb, group=group,
                                                            resource=resource, subresource=subresource)))
        return authz.create_self_subject_access_review(review).status.allowed

    # RBAC is eventually consistent (an informer in the API server): wait for the binding to take effect.
    wait_until(lambda: allowed("create", "apps", "deployments"), timeout=30, what="the ClusterRoleBinding")

    # Granted: the operator's own calls succeed.
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="granted"), data={"k": "v"})
    core.create_namespaced_config_map(namespace, cm)
    assert core.read_namespaced_config_map("granted", namespace).data == {"k": "v"}
    core.patch_namespaced_config_map("granted", namespace, {"data": {"k": "w"}})
    assert allowed("patch", "celeris.dev", "tradingsystems", "status")
    assert allowed("watch", "celeris.dev", "tradingsystems")

    # Not granted: forbidden by the real authorizer, not just absent.
    for call in (lambda: core.list_namespaced_secret(namespace),
                 lambda: core.delete_namespaced_config_map("granted", namespace),
                 lambda: core.list_namespaced_pod(namespace),
                 lambda: apps.delete_namespaced_deployment("anything", namespace)):
        with pytest.raises(ApiException) as refused:
            call()
        assert refused.value.status == 403, refused.value
    assert not allowed("delete", "celeris.dev", "tradingsystems")
    assert not allowed("get", "", "secrets")
