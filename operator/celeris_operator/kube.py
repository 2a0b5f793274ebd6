"""The operator's only I/O with the Kubernetes API besides kopf: create-or-patch and readiness waits.

Idempotent: applying the same object twice changes nothing the second time (a merge patch of equal
content). Uses the official client, configured once from the in-cluster service account or KUBECONFIG.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Callable

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException


@functools.lru_cache(maxsize=1)
def api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def _ops(kind: str) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    c = api_client()
    core, apps = client.CoreV1Api(c), client.AppsV1Api(c)
    policy, net = client.PolicyV1Api(c), client.NetworkingV1Api(c)
    table = {
        "ConfigMap": (core.read_namespaced_config_map, core.create_namespaced_config_map, core.patch_namespaced_config_map),
        "Service": (core.read_namespaced_service, core.create_namespaced_service, core.patch_namespaced_service),
        "Deployment": (apps.read_namespaced_deployment, apps.create_namespaced_deployment,
                       apps.patch_namespaced_deployment),
        "PodDisruptionBudget": (policy.read_namespaced_pod_disruption_budget,
                                policy.create_namespaced_pod_disruption_budget,
                                policy.patch_namespaced_pod_disruption_budget),
        "NetworkPolicy": (net.read_namespaced_network_policy, net.create_namespaced_network_policy,
                          net.patch_namespaced_network_policy),
    }
    return table[kind]


def apply(obj: dict[str, Any]) -> str:
    """Create, or patch when it exists; returns "created" or "patched"."""
    read, create, patch = _ops(obj["kind"])
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    try:
        read(name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
        create(namespace, obj)
        return "created"
    patch(name, namespace, obj)
    return "patched"


def apply_all(objects: list[dict[str, Any]]) -> list[str]:
    return [apply(o) for o in objects]


async def wait_ready(namespace: str, name: str, image: str, timeout_s: float) -> bool:
    """True once the Deployment runs `image` with all replicas updated and ready."""
    apps = client.AppsV1Api(api_client())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dep = await asyncio.to_thread(apps.read_namespaced_deployment, name, namespace)
        images = [c.image for c in dep.spec.template.spec.containers]
        status = dep.status
        want = dep.spec.replicas or 1
        if all(i == image for i in images) and status and (status.updated_replicas or 0) >= want \
                and (status.ready_replicas or 0) >= want and (status.observed_generation or 0) >= dep.metadata.generation:
            return True
        await asyncio.sleep(0.5)
    return False
