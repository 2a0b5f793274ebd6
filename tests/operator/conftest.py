"""Fixtures for the operator's tests: `kube_env`, a real Kubernetes control plane for the session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CRDS = Path(__file__).resolve().parents[2] / "k8s" / "crds"


@pytest.fixture(scope="session")
def kube_env():
    """A real etcd + kube-apiserver + kube-controller-manager (tests/support/kube.py) for the session.

    The binaries come from CELERIS_TEST_K8S_BIN or scripts/k8s-testenv (a cold build takes minutes). When
    they cannot be had the tests that use this skip, saying why; under CI=true they fail instead, so CI never
    passes with the real-server tier silently left out.
    """
    from tests.support.kube import KubeEnvUnavailable, KubeTestEnv, find_bin_dir

    try:
        bin_dir = find_bin_dir()
    except KubeEnvUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the real Kubernetes test environment is unavailable under CI: {exc}", pytrace=False)
        pytest.skip(f"no real Kubernetes test environment: {exc}")
    # The project's CRDs go in before the controller manager starts (see KubeTestEnv's `crds`).
    with KubeTestEnv(bin_dir, crds=[CRDS]) as env:
        # The operator's own namespace, as the shipped manifests create it (its seal Secret lives there).
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=env.admin_kubeconfig)
        try:
            client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
                name="celeris-system")))
        except client.exceptions.ApiException as exc:
            if exc.status != 409:
                raise
        yield env
