"""Pure builders: a TradingSystem's spec -> the Kubernetes objects that run it.

No I/O, no kopf: every function takes the resource (name, namespace, uid, spec) and returns plain dicts,
so what the operator creates is unit-tested without a cluster. Two topologies (docs/architecture.md §4):
`distributed`, one Deployment per component, and `colocated`, market data, strategy and execution as
containers of one pod on a dedicated node. Hot-path pods get Guaranteed QoS with whole CPUs; placement on
dedicated nodes uses a documented label and taint. Credentials are referenced from their Secret, never
copied into a ConfigMap.
"""

from __future__ import annotations

from typing import Any

from celeris.assembly.plan import spec_keys
from celeris.config.spec import RiskSpec, StrategySpec

COMPONENTS = ("marketdata", "strategy", "execution", "risk", "account", "dashboard")
HOT_PATH = ("marketdata", "strategy", "execution")
DATA_PLANE_FIRST = ("marketdata", "execution", "account", "risk", "strategy", "dashboard")
GRPC_PORT = 50051
METRICS_PORT = 9090
HTTP_PORT = 8080
COMPONENTS = ("marketdata", "strategy", "execution", "risk", "account", "dashboard")
"""Each runs as `python -m celeris NAME run`, built by the same builder `celeris up` uses."""


def labels(name: str, component: str | None = None) -> dict[str, str]:
    out = {"app.kubernetes.io/name": "celeris", "app.kubernetes.io/instance": name,
           "app.kubernetes.io/managed-by": "celeris-operator"}
    if component:
        out["app.kubernetes.io/component"] = component
    return out


def owner_reference(body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {"apiVersion": body.get("apiVersion", "celeris.dev/v1alpha1"), "kind": "TradingSystem",
            "name": meta["name"], "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def _meta(body: dict[str, Any], name: str, component: str | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": body["metadata"]["namespace"], "labels": labels(body["metadata"]["name"], component),
            "ownerReferences": [owner_reference(body)]}


def service_name(ts_name: str, component: str) -> str:
    return f"{ts_name}-{component}"


def pod_groups(spec: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Deployment name suffix -> the components it runs."""
    if spec.get("topology", "distributed") == "colocated":
        groups: dict[str, tuple[str, ...]] = {"hotpath": HOT_PATH}
        groups.update({c: (c,) for c in COMPONENTS if c not in HOT_PATH})
        return groups
    return {c: (c,) for c in COMPONENTS}


def component_target(ts_name: str, namespace: str, component: str) -> str:
    return f"{service_name(ts_name, component)}.{namespace}.svc:{GRPC_PORT}"


def settings_for(body: dict[str, Any], component: str, mode: str) -> dict[str, str]:
    """CELERIS_* settings of one component (no secrets: those come from secretKeyRef)."""
    spec = body["spec"]
    name, ns = body["metadata"]["name"], body["metadata"]["namespace"]
    colocated = spec.get("topology", "distributed") == "colocated"

    def target(c: str) -> str:
        # Colocated hot-path containers share the pod's network namespace: loopback, distinct ports.
        if colocated and c in HOT_PATH and component in HOT_PATH:
            return f"127.0.0.1:{GRPC_PORT + HOT_PATH.index(c)}"
        return component_target(name, ns, "hotpath" if colocated and c in HOT_PATH else c)

    port = GRPC_PORT + HOT_PATH.index(component) if colocated and component in HOT_PATH else GRPC_PORT
    risk = spec.get("risk", {})
    out = {"CELERIS_COMPONENT": component, "CELERIS_GRPC_HOST": "0.0.0.0", "CELERIS_GRPC_PORT": str(port),
           "CELERIS_METRICS_PORT": str(METRICS_PORT + (HOT_PATH.index(component) if colocated and component in HOT_PATH else 0)),
           "CELERIS_VENUE_REST_URL": spec["venue"]["restUrl"], "CELERIS_VENUE_WS_URL": spec["venue"]["wsUrl"],
           "CELERIS_LOG_FORMAT": "json"}
    # What comes from the spec itself (symbols, mode, spec.risk, strategies) is the plan's, as in `celeris up`.
    strategies = [StrategySpec.model_validate(s).engine_config() for s in spec.get("strategies", [])]
    from_spec = spec_keys(component, list(spec["symbols"]), mode, RiskSpec.model_validate(risk), strategies)
    out.update({f"CELERIS_{key.upper()}": str(value) for key, value in from_spec.items()})
    if component in ("execution", "strategy", "dashboard"):
        out["CELERIS_MARKETDATA_TARGET"] = target("marketdata")
    if component in ("strategy", "dashboard"):
        out["CELERIS_EXECUTION_TARGET"] = target("execution")
    if component in ("execution", "account"):
        out["CELERIS_RISK_TARGET"] = component_target(name, ns, "risk")
    if component in ("risk", "account"):  # both judge the paper account in execution's process in simulation mode
        out["CELERIS_EXECUTION_TARGET"] = target("execution")
    if component == "dashboard":
        out.update({"CELERIS_STRATEGY_TARGET": target("strategy"), "CELERIS_RISK_TARGET": component_target(name, ns, "risk"),
                    "CELERIS_ACCOUNT_TARGET": component_target(name, ns, "account"), "CELERIS_HTTP_PORT": str(HTTP_PORT)})
    return out


def build_configmap(body: dict[str, Any], mode: str) -> dict[str, Any]:
    name = body["metadata"]["name"]
    data = {f"{c}.env": "\n".join(f"{k}={v}" for k, v in sorted(settings_for(body, c, mode).items()))
            for c in COMPONENTS}
    data["generation"] = str(body["metadata"].get("generation", 0))
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(body, f"{name}-settings"), "data": data}


def _secret_env(spec: dict[str, Any], component: str) -> list[dict[str, Any]]:
    env = []
    secret = spec["venue"].get("credentialsSecret")
    if secret and component in ("marketdata", "execution", "risk", "account"):
        env += [{"name": "CELERIS_VENUE_API_KEY", "valueFrom": {"secretKeyRef": {"name": secret, "key": "apiKey"}}},
                {"name": "CELERIS_VENUE_API_SECRET", "valueFrom": {"secretKeyRef": {"name": secret, "key": "apiSecret"}}}]
    stores = spec.get("stores", {})
    if stores.get("redisUrlSecret"):
        env.append({"name": "CELERIS_REDIS_URL", "valueFrom": {"secretKeyRef": {"name": stores["redisUrlSecret"],
                                                                                 "key": "url"}}})
    if stores.get("postgresUrlSecret"):
        env.append({"name": "CELERIS_POSTGRES_URL", "valueFrom": {"secretKeyRef": {"name": stores["postgresUrlSecret"],
                                                                                    "key": "url"}}})
    return env


def _container(body: dict[str, Any], component: str, mode: str, image: str) -> dict[str, Any]:
    spec = body["spec"]
    settings = settings_for(body, component, mode)
    port = int(settings["CELERIS_GRPC_PORT"])
    hot = component in HOT_PATH
    res = spec.get("resources", {})
    cpus = str(res.get("hotPathCpus", 1))
    memory = res.get("hotPathMemory", "512Mi")
    resources = ({"requests": {"cpu": cpus, "memory": memory}, "limits": {"cpu": cpus, "memory": memory}} if hot
                 else {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}})
    container = {
        "name": component, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "celeris", component, "run"],
        "env": [{"name": k, "value": v} for k, v in sorted(settings.items())] + _secret_env(spec, component),
        "ports": [{"name": "grpc" if not hot else f"grpc-{component[:6]}", "containerPort": port},
                  {"name": "metrics" if not hot else f"m-{component[:8]}",
                   "containerPort": int(settings["CELERIS_METRICS_PORT"])}],
        # grpc.health.v1 is served by every component.
        "readinessProbe": {"grpc": {"port": port}, "periodSeconds": 10, "timeoutSeconds": 1},
        "livenessProbe": {"grpc": {"port": port}, "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3},
        "startupProbe": {"grpc": {"port": port}, "periodSeconds": 5, "failureThreshold": 24},
        "resources": resources,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
    }
    if component == "dashboard":
        container["ports"].append({"name": "http", "containerPort": HTTP_PORT})
    return container


def placement(spec: dict[str, Any], group: str) -> dict[str, Any]:
    """Node affinity and tolerations for dedicated nodes (label <nodeLabel>=<role>, taint <taintKey>=<role>)."""
    p = spec.get("placement", {})
    if not p.get("dedicatedNodes", True):
        return {}
    role = "hotpath" if group in HOT_PATH or group == "hotpath" else "control"
    label, taint = p.get("nodeLabel", "celeris.dev/node-role"), p.get("taintKey", "celeris.dev/dedicated")
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": label, "operator": "In", "values": [role]}]}]}}},
            "tolerations": [{"key": taint, "operator": "Equal", "value": role, "effect": "NoSchedule"}]}


def build_deployment(body: dict[str, Any], group: str, components: tuple[str, ...], mode: str,
                     image: str | None = None) -> dict[str, Any]:
    name = body["metadata"]["name"]
    image = image or body["spec"]["image"]
    selector = labels(name, group)
    pod_spec: dict[str, Any] = {
        "serviceAccountName": "default", "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(body, c, mode, image) for c in components],
    }
    pod_spec.update(placement(body["spec"], group))
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(body, f"{name}-{group}", group),
            "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                     # Never two order managers at once: the old pod goes before the new one starts.
                     "strategy": {"type": "Recreate"} if "execution" in components else {"type": "RollingUpdate"},
                     "template": {"metadata": {"labels": selector,
                                               "annotations": {"prometheus.io/scrape": "true",
                                                               "prometheus.io/port": str(METRICS_PORT)}},
                                  "spec": pod_spec}}}


def build_service(body: dict[str, Any], group: str, components: tuple[str, ...]) -> dict[str, Any]:
    name = body["metadata"]["name"]
    ports = []
    for c in components:
        port = int(settings_for(body, c, "observation")["CELERIS_GRPC_PORT"])
        ports.append({"name": f"grpc-{c}"[:15], "port": port, "targetPort": port, "protocol": "TCP"})
    if "dashboard" in components:
        ports.append({"name": "http", "port": HTTP_PORT, "targetPort": HTTP_PORT, "protocol": "TCP"})
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(body, service_name(name, group), group),
            "spec": {"selector": labels(name, group), "ports": ports}}


def build_pdb(body: dict[str, Any], group: str) -> dict[str, Any]:
    name = body["metadata"]["name"]
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(body, f"{name}-{group}", group),
            "spec": {"maxUnavailable": 0 if group in ("execution", "hotpath") else 1,
                     "selector": {"matchLabels": labels(name, group)}}}


def build_network_policy(body: dict[str, Any]) -> dict[str, Any]:
    """Pods of one trading system talk to each other; the dashboard's HTTP is open; egress is allowed (venue)."""
    name = body["metadata"]["name"]
    instance = {"app.kubernetes.io/instance": name, "app.kubernetes.io/name": "celeris"}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(body, f"{name}-internal"),
            "spec": {"podSelector": {"matchLabels": instance}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": instance}}]},
                                 {"ports": [{"port": HTTP_PORT, "protocol": "TCP"}, {"port": METRICS_PORT,
                                                                                   "protocol": "TCP"}]}]}}


def build_all(body: dict[str, Any], mode: str, images: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every object of a TradingSystem, in the order they are applied (data plane first)."""
    groups = pod_groups(body["spec"])
    order = sorted(groups, key=lambda g: min(DATA_PLANE_FIRST.index(c) for c in groups[g]))
    out: list[dict[str, Any]] = [build_configmap(body, mode), build_network_policy(body)]
    for group in order:
        out.append(build_service(body, group, groups[group]))
        out.append(build_deployment(body, group, groups[group], mode, (images or {}).get(group)))
        out.append(build_pdb(body, group))
    return out
