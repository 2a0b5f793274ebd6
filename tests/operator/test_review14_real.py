"""Adversarial probes of issue 14 against the REAL kube-apiserver (kube_env): what the API server lets a
status writer do, and whether the operator's objects are seen as up to date after a real apply."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from celeris_operator import builders
from tests.operator.test_review14_probes import make_ts

GROUP, VERSION, PLURAL = "celeris.dev", "v1alpha1", "tradingsystems"


@pytest.fixture(scope="module")
def real(kube_env):
    import kubernetes.config.kube_config
    from kubernetes import client, config

    saved = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = kube_env.admin_kubeconfig
    kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = kube_env.admin_kubeconfig
    from celeris_operator import kube

    kube.api_client.cache_clear()
    api = config.new_client_from_config(config_file=kube_env.admin_kubeconfig)
    ns = f"review14-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    yield api, ns
    core.delete_namespace(ns)
    if saved is None:
        os.environ.pop("KUBECONFIG", None)
    else:
        os.environ["KUBECONFIG"] = saved
    kube.api_client.cache_clear()


def _create(api, ns, name, **spec):
    from kubernetes import client

    body = make_ts(**spec)
    body["metadata"] = {"name": name}
    return client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)


def test_api_server_accepts_forged_and_garbage_status_mode(real):
    """F1 is reachable (the operator's seal is what protects it, tests/operator/test_review14_probes.py): the
    status subresource takes status.mode=live from any writer of tradingsystems/status; F2 is not: the CRD
    refuses a status.mode that is not a mode."""
    from kubernetes import client

    api, ns = real
    _create(api, ns, "forge", mode="live")
    custom = client.CustomObjectsApi(api)
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, "forge",
                                                 {"status": {"mode": "live", "stage": {"enteredEpoch": 0}}})
    assert custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "forge")["status"]["mode"] == "live"
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as refused:
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, "forge", {"status": {"mode": "LIVE"}})
    assert refused.value.status == 422


@pytest.mark.parametrize("topology", ["distributed", "colocated"])
def test_applied_objects_are_up_to_date_on_the_real_server(real, topology):
    """A perpetual diff (re-apply every tick) would show here: apply everything, list, compare."""
    from celeris_operator import kube

    api, ns = real
    name = f"drift-{topology[:3]}"
    _create(api, ns, name, topology=topology)
    ts = kube.read_ts(ns, name)
    objects = builders.build_all(ts, builders.desired_state(ts, "observation", False))
    for obj in objects:
        kube.apply(obj)
    owned = kube.list_owned(ns, name)
    # Against the real server's defaults the content is equal once apiVersion/kind are left out (no
    # other perpetual diff): this part passes.
    other = [f"{o['kind']}/{o['metadata']['name']}" for o in objects
             if not kube.contains(owned[(o["kind"], o["metadata"]["name"])],
                                  {k: v for k, v in o.items() if k not in ("apiVersion", "kind", "stringData")})
             or owned[(o["kind"], o["metadata"]["name"])]["metadata"]["annotations"][kube.HASH_ANNOTATION]
             != kube.content_hash(o)]
    assert not other, f"differs beyond apiVersion/kind: {other}"
    stale = [f"{o['kind']}/{o['metadata']['name']}" for o in objects
             if not kube.up_to_date(owned.get((o["kind"], o["metadata"]["name"])), o)]
    assert not stale, f"re-applied on every pass: {stale}"
