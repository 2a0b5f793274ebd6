"""The chart, the plain manifests and the builders: lint, render, validate against Kubernetes schemas,
the CRD schema and its CEL rules, and RBAC that matches what the operator really does."""

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from celeris.domain.modes import IllegalModeChange, Mode
from celeris_operator import builders, rollout
from tests.operator.apiserver import ApiServer

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HELM = shutil.which("helm", path=str(BIN)) or shutil.which("helm")
KUBECTL = shutil.which("kubectl", path=str(BIN)) or shutil.which("kubectl")
K8S_VERSION = "1.32.0"
ALL_FEATURES = ["--set", "redis.enabled=true,postgres.enabled=true,example.enabled=true,monitoring.prometheusRule=true"]
needs_helm = pytest.mark.skipif(HELM is None, reason="helm not installed (scripts/install --system)")


def docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def validate_objects(objects):
    validator = ApiServer()  # the same schema + CEL checks the emulated API applies
    checked = 0
    for obj in objects:
        if obj["kind"] == "TradingSystem":
            assert validator._validate(copy.deepcopy(obj), None) == "", obj["metadata"]["name"]
        elif obj["kind"] in ("PrometheusRule", "CustomResourceDefinition"):
            continue  # not in the Kubernetes schemas (the CRD is checked by the API emulator's use of it)
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        checked += 1
    return checked


@needs_helm
@pytest.mark.parametrize("flags", [[], ALL_FEATURES])
def test_chart_lints_and_renders_valid_objects(flags):
    lint = subprocess.run([HELM, "lint", "--strict", str(ROOT / "charts/celeris"), *flags], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = subprocess.run([HELM, "template", "celeris", str(ROOT / "charts/celeris"), "--namespace",
                               "celeris-system", "--include-crds", *flags], capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    objects = docs(rendered.stdout)
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole", "ServiceAccount"} <= kinds
    assert validate_objects(objects) >= 4


@needs_helm
def test_chart_values_schema_refuses_nonsense():
    bad = subprocess.run([HELM, "template", "x", str(ROOT / "charts/celeris"), "--set", "operator.replicas=3"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "replicas" in bad.stderr


def test_chart_crd_is_the_source_crd():
    assert (ROOT / "charts/celeris/crds/tradingsystems.celeris.dev.yaml").read_text() == \
        (ROOT / "k8s/crds/tradingsystems.celeris.dev.yaml").read_text()


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kustomize_manifests_render_and_validate():
    for path in ("k8s", "k8s/samples"):
        out = subprocess.run([KUBECTL, "kustomize", str(ROOT / path)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert validate_objects(docs(out.stdout)) >= 1


def rules_of(path: str) -> set[tuple[str, str, str]]:
    for doc in docs((ROOT / path).read_text()):
        if doc.get("kind") == "ClusterRole":
            return {(g, r, v) for rule in doc["rules"] for g in rule["apiGroups"] for r in rule["resources"]
                    for v in rule["verbs"]}
    raise AssertionError("no ClusterRole")


ADMISSION_ONLY = {("celeris.dev", "tradingsystems/finalizers", "update")}
"""Granted for an admission plugin (OwnerReferencesPermissionEnforcement: setting blockOwnerDeletion on an
owned object needs it), never called (tests/operator/test_review14c_real.py shows it is needed)."""


def cluster_role(path: str | None = None) -> set[tuple[str, str, str]]:
    """The shipped ClusterRole's (group, resource, verb) triples; the chart's must be the same."""
    rules = rules_of(path or "k8s/rbac/rbac.yaml")
    if HELM:
        rendered = subprocess.run([HELM, "template", "c", str(ROOT / "charts/celeris")], capture_output=True,
                                  text=True)
        role = next(d for d in docs(rendered.stdout) if d["kind"] == "ClusterRole")
        assert {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
                for v in rule["verbs"]} == rules, "the chart's ClusterRole differs from k8s/rbac/rbac.yaml"
    return rules


def body(**spec):
    base = {"image": "celeris:1", "symbols": ["BTCUSDT"], "venue": {"kind": "binance-usdm", "restUrl": "https://x",
                                                                    "wsUrl": "wss://x", "credentialsSecret": "api"}}
    base.update(spec)
    return {"apiVersion": "celeris.dev/v1alpha1", "kind": "TradingSystem",
            "metadata": {"name": "t", "namespace": "ns", "uid": "u-1", "generation": 3}, "spec": base}


def desired(b, mode="observation", halted=False):
    return builders.desired_state(b, mode, halted)


def test_builders_distributed_and_colocated():
    distributed = builders.build_all(body(), desired(body()))
    deployments = [o for o in distributed if o["kind"] == "Deployment"]
    assert [d["metadata"]["name"] for d in deployments][:2] == ["t-marketdata", "t-execution"]  # data plane first
    assert len(deployments) == 6
    for obj in distributed:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    b = body(topology="colocated")
    colocated = builders.build_all(b, desired(b, "simulation"))
    hot = next(o for o in colocated if o["metadata"]["name"] == "t-hotpath" and o["kind"] == "Deployment")
    names = [c["name"] for c in hot["spec"]["template"]["spec"]["containers"]]
    assert names == ["marketdata", "strategy", "execution"]
    ports = [c["ports"][0]["containerPort"] for c in hot["spec"]["template"]["spec"]["containers"]]
    assert len(set(ports)) == 3
    env = {e["name"]: e.get("value") for e in hot["spec"]["template"]["spec"]["containers"][1]["env"]}
    assert env["CELERIS_EXECUTION_TARGET"].startswith("127.0.0.1:")  # same pod: loopback
    # Nothing that changes while the system runs is in a pod: it is the desired state every pod mounts.
    assert not {"CELERIS_MODE", "CELERIS_RISK_LIMITS", "CELERIS_STRATEGIES"} & set(env)
    assert env["CELERIS_DESIRED_STATE"] == "/etc/celeris/desired/desired.json"
    state = next(o for o in colocated if o["metadata"]["name"] == "t-desired")
    assert json.loads(state["data"]["desired.json"])["mode"] == "simulation"
    assert hot["spec"]["template"]["spec"]["volumes"] == [{"name": "desired", "configMap": {"name": "t-desired"}}]
    for c in hot["spec"]["template"]["spec"]["containers"]:
        assert c["resources"]["requests"] == c["resources"]["limits"]  # Guaranteed QoS, whole CPUs
        assert c["resources"]["requests"]["cpu"] == "1"


def test_credentials_only_by_secret_reference():
    objects = builders.build_all(body(), desired(body(), "live"))
    configmap = next(o for o in objects if o["metadata"]["name"] == "t-settings")
    assert "api" not in json.dumps(configmap["data"]).replace("CELERIS_VENUE_REST_URL", "")
    execution = next(o for o in objects if o["metadata"]["name"] == "t-execution" and o["kind"] == "Deployment")
    env = execution["spec"]["template"]["spec"]["containers"][0]["env"]
    secret_env = [e for e in env if "valueFrom" in e]
    assert {e["name"] for e in secret_env} == {"CELERIS_VENUE_API_KEY", "CELERIS_VENUE_API_SECRET",
                                               "CELERIS_CONTROL_TOKEN"}
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in secret_env} == {"api", "t-control"}
    assert builders.placement(body(placement={"dedicatedNodes": False})["spec"], "execution") == {}


COMPONENT = "app.kubernetes.io/component"


def operator_deployments():
    """The operator's Deployment as the chart renders it and as the kustomize layout has it."""
    found = {}
    if HELM:
        out = subprocess.run([HELM, "template", "c", str(ROOT / "charts/celeris"), "--namespace", "celeris-system"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        found["helm"] = next(d for d in docs(out.stdout) if d["kind"] == "Deployment" and
                             d["spec"]["template"]["metadata"]["labels"].get(COMPONENT) == "operator")
    if KUBECTL:
        out = subprocess.run([KUBECTL, "kustomize", str(ROOT / "k8s")], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        found["kustomize"] = next(d for d in docs(out.stdout) if d["kind"] == "Deployment")
    if not found:
        pytest.skip("neither helm nor kubectl installed")
    return found


def test_operator_deployment_labels_probes_env_and_limits():
    import click
    from kopf.cli import run as kopf_run  # the click command __main__ hands its arguments to

    for layout, dep in operator_deployments().items():
        pod = dep["spec"]["template"]
        labels = pod["metadata"]["labels"]
        # what each TradingSystem's NetworkPolicy admits to the Control port
        assert labels["app.kubernetes.io/name"] == "celeris-operator", layout
        assert labels["app.kubernetes.io/component"] == "operator", layout
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items(), layout
        assert dep["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "0", layout
        (container,) = pod["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["CELERIS_OPERATOR_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        # the probe flag is kopf's own and parses with the arguments __main__ adds
        (liveness,) = [a for a in container["args"] if a.startswith("--liveness=")]
        ctx = kopf_run.make_context("run", ["--all-namespaces", "--standalone", "-m", "celeris_operator.handlers",
                                           *container["args"]])
        assert isinstance(ctx, click.Context) and ctx.params["liveness_endpoint"] == liveness.split("=", 1)[1]
        url = liveness.split("=", 1)[1]
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        path = "/" + url.rsplit(":", 1)[1].split("/", 1)[1]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] == path and ports[get["port"]] == port, (layout, probe)
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), layout
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), layout
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, layout
        assert sc["capabilities"]["drop"] == ["ALL"], layout
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True, layout
        assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, layout
        kubernetes_validate.validate(dep, K8S_VERSION, strict=True)


def test_sync_waves_crd_then_operator_then_tradingsystems():
    wave = "argocd.argoproj.io/sync-wave"
    if KUBECTL:
        objects = docs(subprocess.run([KUBECTL, "kustomize", str(ROOT / "k8s")], capture_output=True,
                                      text=True, check=True).stdout)
        crd = next(o for o in objects if o["kind"] == "CustomResourceDefinition")
        assert crd["metadata"]["annotations"][wave] == "-1"
        assert "ServerSideApply=true" in crd["metadata"]["annotations"]["argocd.argoproj.io/sync-options"]
        samples = docs(subprocess.run([KUBECTL, "kustomize", str(ROOT / "k8s/samples")], capture_output=True,
                                      text=True, check=True).stdout)
        assert {o["metadata"]["annotations"][wave] for o in samples if o["kind"] == "TradingSystem"} == {"1"}
    if HELM:
        out = subprocess.run([HELM, "template", "c", str(ROOT / "charts/celeris"), "--set", "example.enabled=true"],
                             capture_output=True, text=True, check=True)
        example = next(o for o in docs(out.stdout) if o["kind"] == "TradingSystem")
        assert example["metadata"]["annotations"][wave] == "1"


def admitted(policy, pod_labels, namespace, port):
    """Whether a NetworkPolicy's ingress rules admit a pod (labels, namespace) to `port` (no CNI here:
    the rules are read as a CNI reads them)."""
    for rule in policy["spec"]["ingress"]:
        peers, ports = rule.get("from"), rule.get("ports")
        if ports is not None and port not in {p["port"] for p in ports}:
            continue
        if peers is None:
            return True
        for peer in peers:
            pods = peer.get("podSelector", {}).get("matchLabels", {})
            spaces = peer.get("namespaceSelector", {}).get("matchLabels")
            same_ns = namespace == "ns" if spaces is None else \
                spaces == {"kubernetes.io/metadata.name": namespace}
            if same_ns and pods.items() <= pod_labels.items():
                return True
    return False


@pytest.mark.parametrize("topology, control_ports", [("distributed", [50051]),
                                                     ("colocated", [50051, 50052, 50053])])
def test_network_policy_admits_the_operator_to_control_and_nothing_else(topology, control_ports):
    b = body(topology=topology)
    policy = next(o for o in builders.build_all(b, desired(b), operator_namespace="ops")
                  if o["kind"] == "NetworkPolicy")
    kubernetes_validate.validate(policy, K8S_VERSION, strict=True)
    operator = {"app.kubernetes.io/name": "celeris-operator", "app.kubernetes.io/component": "operator"}
    own = {"app.kubernetes.io/name": "celeris", "app.kubernetes.io/instance": "t"}
    other_system = {"app.kubernetes.io/name": "celeris", "app.kubernetes.io/instance": "other"}
    for port in control_ports:
        assert admitted(policy, operator, "ops", port)
        assert not admitted(policy, operator, "elsewhere", port)  # same labels, another namespace
        assert not admitted(policy, other_system, "ns", port)
        assert admitted(policy, own, "ns", port)
    assert not admitted(policy, operator, "ops", 6379) and not admitted(policy, other_system, "ns", 50060)
    for port in [8080, *builders.metrics_ports(b["spec"])]:  # the dashboard and Prometheus' scrapes
        assert admitted(policy, {"app": "prometheus"}, "monitoring", port)
