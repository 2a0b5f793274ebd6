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

    import yaml

    role = next(d for d in yaml.safe_load_all((ROOT / "k8s" / "rbac" / "rbac.yaml").read_text())
                if d and d["kind"] == "ClusterRole" and d["metadata"]["name"] == "celeris-operator")
    api, core, _ = clients(kube_env.operator_kubeconfig)
    authz = client.AuthorizationV1Api(api)

    def allowed(verb: str, group: str, resource: str, subresource: str = "") -> bool:
        review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb=verb, group=group,
                                                            resource=resource, subresource=subresource)))
        return authz.create_self_subject_access_review(review).status.allowed

    first = role["rules"][0]
    # RBAC is eventually consistent (an informer in the API server): wait for the binding to take effect.
    wait_until(lambda: allowed(first["verbs"][0], first["apiGroups"][0], first["resources"][0].split("/")[0],
                               "/".join(first["resources"][0].split("/")[1:])),
               timeout=30, what="the ClusterRoleBinding")

    # Exactly what the ClusterRole says, verb by verb, as the real authorizer decides it.
    verbs = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    for (group, resource), ok in granted.items():
        name, _, sub = resource.partition("/")
        for verb in sorted(verbs):
            assert allowed(verb, group, name, sub) == (verb in ok), (verb, group, resource)

    # Real requests: one the role grants succeeds, ones it does not are refused with 403.
    assert "list" in granted.get(("", "configmaps"), set()) or "list" in granted.get(("apps", "deployments"), set())
    if "list" in granted.get(("", "configmaps"), set()):
        core.list_namespaced_config_map(namespace)
    else:
        client.AppsV1Api(api).list_namespaced_deployment(namespace)
    assert ("", "pods") not in granted and ("", "namespaces") not in granted
    for call in (lambda: core.list_namespaced_pod(namespace), lambda: core.delete_namespace(namespace),
                 lambda: core.list_namespaced_secret(namespace)):
        with pytest.raises(ApiException) as refused:
            call()
        assert refused.value.status == 403, refused.value
