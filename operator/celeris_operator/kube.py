"""The operator's I/O with the Kubernetes API besides kopf: server-side apply, pruning, reads, status.

Objects are applied with server-side apply under the field manager `celeris-operator` (force), so a field
the operator stops writing is removed and an edit by someone else is overwritten. Applying is skipped
when the live object already carries the desired content: every desired field equal in the live object
(defaults the API server adds are ignored) and the hash of the desired object in an annotation (so a
field the operator no longer sets is noticed too). Owned objects are found by label; those the current
spec no longer wants are deleted (foreground: a Deployment goes only after its pods). Uses the official
client, configured once from the in-cluster service account or KUBECONFIG.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
from typing import Any, Callable

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

FIELD_MANAGER = "celeris-operator"
HASH_ANNOTATION = "celeris.dev/applied-hash"
GROUP, VERSION, PLURAL = "celeris.dev", "v1alpha1", "tradingsystems"
OWNED_KINDS = ("ConfigMap", "Service", "Deployment", "PodDisruptionBudget", "NetworkPolicy")
PRUNABLE_KINDS = ("Service", "Deployment", "PodDisruptionBudget")
"""The kinds whose set changes with the spec (pod groups follow the topology); the ConfigMaps and the
NetworkPolicy have fixed names, so the operator never deletes one (and RBAC grants it no such verb)."""


@functools.lru_cache(maxsize=1)
def api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def _ops(kind: str) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """(list_namespaced, patch_namespaced, delete_namespaced) of a kind."""
    c = api_client()
    core, apps = client.CoreV1Api(c), client.AppsV1Api(c)
    policy, net = client.PolicyV1Api(c), client.NetworkingV1Api(c)
    table = {
        "ConfigMap": (core.list_namespaced_config_map, core.patch_namespaced_config_map,
                      core.delete_namespaced_config_map),
        "Service": (core.list_namespaced_service, core.patch_namespaced_service, core.delete_namespaced_service),
        "Deployment": (apps.list_namespaced_deployment, apps.patch_namespaced_deployment,
                       apps.delete_namespaced_deployment),
        "PodDisruptionBudget": (policy.list_namespaced_pod_disruption_budget,
                                policy.patch_namespaced_pod_disruption_budget,
                                policy.delete_namespaced_pod_disruption_budget),
        "NetworkPolicy": (net.list_namespaced_network_policy, net.patch_namespaced_network_policy,
                          net.delete_namespaced_network_policy),
    }
    return table[kind]


def content_hash(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def with_hash(obj: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(obj))
    out["metadata"].setdefault("annotations", {})[HASH_ANNOTATION] = content_hash(obj)
    return out


def contains(live: Any, desired: Any) -> bool:
    """Every field of `desired` is in `live` with the same value (lists element by element)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(map(contains, live, desired))
    return live == desired or (isinstance(desired, (int, str)) and str(live) == str(desired))


def up_to_date(live: dict[str, Any] | None, desired: dict[str, Any]) -> bool:
    if live is None:
        return False
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    if annotations.get(HASH_ANNOTATION) != content_hash(desired):
        return False
    return contains({k: v for k, v in live.items() if k != "status"},
                    {k: v for k, v in desired.items() if k not in ("status", "stringData")})


def list_owned(namespace: str, ts_name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> live object, for every object of the owned kinds this TradingSystem has."""
    selector = f"app.kubernetes.io/instance={ts_name},app.kubernetes.io/managed-by={FIELD_MANAGER}"
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for kind in OWNED_KINDS:
        listing, _, _ = _ops(kind)
        # Raw JSON: the live object as the API serves it (the typed models drop and reshape fields).
        result = listing(namespace, label_selector=selector, _preload_content=False)
        listed = json.loads(result.data)
        for item in listed["items"]:
            # A real API server leaves kind and apiVersion out of list items: put them back, or every live
            # object would differ from its desired one and be re-applied on every pass.
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", listed.get("apiVersion", ""))
            out[(kind, item["metadata"]["name"])] = item
    return out


def apply(obj: dict[str, Any]) -> None:
    """Server-side apply (creates when absent)."""
    _, patch, _ = _ops(obj["kind"])
    patch(obj["metadata"]["name"], obj["metadata"]["namespace"], with_hash(obj), field_manager=FIELD_MANAGER,
          force=True, _content_type="application/apply-patch+yaml", _preload_content=False)


def delete(kind: str, namespace: str, name: str) -> None:
    _, _, remove = _ops(kind)
    try:
        remove(name, namespace, propagation_policy="Foreground", _preload_content=False)
    except ApiException as exc:
        if exc.status != 404:
            raise


def read_ts(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return client.CustomObjectsApi(api_client()).get_namespaced_custom_object(GROUP, VERSION, namespace,
                                                                                  PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def patch_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    client.CustomObjectsApi(api_client()).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": status})


SEAL_SECRET = "celeris-operator-seal"


def seal_key(namespace: str) -> str:
    """The operator's key for sealing status (celeris_operator.seal): the Secret `celeris-operator-seal` in
    its namespace, created on first use. Deleting it makes every status foreign once (each rollout is
    aborted for a person to look at), never trusted."""
    return control_token({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                          "metadata": {"name": SEAL_SECRET, "namespace": namespace,
                                       "labels": {"app.kubernetes.io/name": "celeris-operator"}}})


def control_token(secret: dict[str, Any]) -> str:
    """The Secret's token (created by `ensure_secret` when absent; never rewritten)."""
    namespace, name = secret["metadata"]["namespace"], secret["metadata"]["name"]
    core = client.CoreV1Api(api_client())
    try:
        live = core.read_namespaced_secret(name, namespace)
        return base64.b64decode((live.data or {}).get("token", "")).decode()
    except ApiException as exc:
        if exc.status != 404:
            raise
    token = secrets.token_urlsafe(32)
    body = {**secret, "stringData": {"token": token}}
    try:
        core.create_namespaced_secret(namespace, body)
    except ApiException as exc:
        if exc.status != 409:  # another writer created it first: theirs is the token
            raise
        return control_token(secret)
    return token
