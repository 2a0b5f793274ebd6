"""Pure builders: a TradingSystem's spec -> the Kubernetes objects that run it.

No I/O, no kopf: every function takes the resource (name, namespace, uid, spec) and returns plain dicts,
so what the operator creates is unit-tested without a cluster. What changes while a system runs (the
mode, the halt, strategy parameters and risk limits) is never in a pod template: it is the desired-state
ConfigMap every pod mounts and reads at start (so a restarted pod comes back as the operator last
decided) and the Control RPCs push it to running components, so editing it restarts nothing. Two topologies (docs/architecture.md §4):
`distributed`, one Deployment per component, and `colocated`, market data, strategy and execution as
containers of one pod on a dedicated node. Hot-path pods get Guaranteed QoS with whole CPUs; placement on
dedicated nodes uses a documented label and taint. Credentials are referenced from their Secret, never
copied into a ConfigMap. Strategy plugins are files at spec.strategyDir in the strategy engine's container:
in the image, or spec.strategyConfigMap mounted there read-only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from celeris.assembly.plan import spec_keys
from celeris.config.spec import RiskSpec, StrategySpec

HOT_PATH = ("marketdata", "strategy", "execution")
DATA_PLANE_FIRST = ("marketdata", "execution", "account", "risk", "strategy", "dashboard")
DESIRED_MOUNT = "/etc/celeris/desired"
DESIRED_KEY = "desired.json"
STRATEGIES_VOLUME = "strategies"
"""The strategy engine's plugin files (spec.strategyConfigMap), mounted read-only at spec.strategyDir."""
RUNTIME_KEYS = ("mode", "risk_limits", "strategies")
"""Settings the desired state carries instead of the pod's env (they change without a restart)."""
OPERATOR_LABELS = {"app.kubernetes.io/name": "celeris-operator"}
"""How the NetworkPolicy knows the operator's pods (the chart and the kustomize layout label them so)."""
GRPC_PORT = 50051
METRICS_PORT = 9090
HTTP_PORT = 8080
COMPONENTS = ("marketdata", "strategy", "execution", "risk", "account", "dashboard")
"""Each runs as `python -m celeris NAME run`, built by the same builder `celeris up` uses."""
SIM_GROUP = "venue-sim"
SIM_PORT = 8090
SIM_API_KEY = "celeris-sim"
"""A `kind: simulator` venue without URLs is the bundled simulator (`celeris sim`), one pod of the system;
its API secret is the system's Control token (a Secret the operator already keeps), so nothing is stored."""


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


def bundled_simulator(spec: dict[str, Any]) -> bool:
    venue = spec["venue"]
    return venue.get("kind") == "simulator" and not venue.get("restUrl")


def venue_urls(body: dict[str, Any]) -> tuple[str, str]:
    """The venue's REST and stream URLs: the spec's, or the bundled simulator's Service."""
    spec = body["spec"]
    if bundled_simulator(spec):
        host = f"{service_name(body['metadata']['name'], SIM_GROUP)}.{body['metadata']['namespace']}.svc:{SIM_PORT}"
        return f"http://{host}", f"ws://{host}"
    return spec["venue"]["restUrl"], spec["venue"]["wsUrl"]


def venue_ws_api_url(body: dict[str, Any]) -> str:
    """The venue's WebSocket API execution's orders go over: the spec's venue.wsApiUrl, else the bundled
    simulator's, else none (orders over REST)."""
    spec = body["spec"]
    if spec["venue"].get("wsApiUrl"):
        return str(spec["venue"]["wsApiUrl"])
    return f"{venue_urls(body)[1]}/ws-fapi/v1" if bundled_simulator(spec) else ""


def component_target(ts_name: str, namespace: str, component: str) -> str:
    return f"{service_name(ts_name, component)}.{namespace}.svc:{GRPC_PORT}"


def settings_for(body: dict[str, Any], component: str) -> dict[str, str]:
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
           "CELERIS_VENUE_REST_URL": venue_urls(body)[0], "CELERIS_VENUE_WS_URL": venue_urls(body)[1],
           "CELERIS_LOG_FORMAT": "json"}
    # What comes from the spec itself is the plan's, as in `celeris up`; of it only what cannot change while
    # the pod runs (the symbols) goes into the pod: mode, risk and strategies are the desired state's.
    strategies = [StrategySpec.model_validate(s).engine_config() for s in spec.get("strategies", [])]
    from_spec = spec_keys(component, list(spec["symbols"]), "observation", RiskSpec.model_validate(risk), strategies,
                          spec["venue"].get("cancelAllAfter") or "60s", spec.get("strategyDir") or "")
    out.update({f"CELERIS_{key.upper()}": str(value) for key, value in from_spec.items() if key not in RUNTIME_KEYS})
    out["CELERIS_DESIRED_STATE"] = f"{DESIRED_MOUNT}/{DESIRED_KEY}"
    if component == "execution" and (ws_api_url := venue_ws_api_url(body)):
        out["CELERIS_VENUE_WS_API_URL"] = ws_api_url
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


def desired_state(body: dict[str, Any], mode: str, halted: bool, generation: int | None = None) -> dict[str, Any]:
    """What every component applies at start and the operator enforces: mode, halt, configuration (its
    generation: the resource's, unless the operator had to move past what a component already holds)."""
    spec = body["spec"]
    generation = int(body["metadata"].get("generation") or 0) if generation is None else generation
    return {"generation": generation, "mode": mode, "halted": halted,
            "haltReason": "spec.halted" if halted else "",
            "settings": {"strategies": list(spec.get("strategies") or []), "risk": dict(spec.get("risk") or {})}}


def desired_configmap_name(ts_name: str) -> str:
    return f"{ts_name}-desired"


def control_secret_name(ts_name: str) -> str:
    return f"{ts_name}-control"


def build_desired_configmap(body: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    name = body["metadata"]["name"]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(body, desired_configmap_name(name)),
            "data": {DESIRED_KEY: json.dumps(desired, sort_keys=True)}}


def token_digest(token: str) -> str:
    """What a pod template may carry of the token: enough to tell two apart, nothing to recover it by."""
    return hashlib.sha256(f"celeris-control:{token}".encode()).hexdigest()[:16]


def build_control_secret(body: dict[str, Any], token: str) -> dict[str, Any]:
    """The token every Control call carries; created once, never rewritten (running pods hold it)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _meta(body, control_secret_name(body["metadata"]["name"])), "stringData": {"token": token}}


def build_configmap(body: dict[str, Any]) -> dict[str, Any]:
    """The static settings of each component, for people reading the cluster (the pods carry them as env)."""
    name = body["metadata"]["name"]
    data = {f"{c}.env": "\n".join(f"{k}={v}" for k, v in sorted(settings_for(body, c).items()))
            for c in COMPONENTS}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(body, f"{name}-settings"), "data": data}


def _secret_env(body: dict[str, Any], component: str) -> list[dict[str, Any]]:
    spec = body["spec"]
    env = [{"name": "CELERIS_CONTROL_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": control_secret_name(body["metadata"]["name"]), "key": "token"}}}]
    secret = spec["venue"].get("credentialsSecret")
    if bundled_simulator(spec) and not secret and component in ("marketdata", "execution", "risk", "account"):
        env += [{"name": "CELERIS_VENUE_API_KEY", "value": SIM_API_KEY},
                {"name": "CELERIS_VENUE_API_SECRET", "valueFrom": {"secretKeyRef": {
                    "name": control_secret_name(body["metadata"]["name"]), "key": "token"}}}]
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


def _container(body: dict[str, Any], component: str, image: str) -> dict[str, Any]:
    spec = body["spec"]
    settings = settings_for(body, component)
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
        "env": [{"name": k, "value": v} for k, v in sorted(settings.items())] + _secret_env(body, component),
        "volumeMounts": [{"name": "desired", "mountPath": DESIRED_MOUNT, "readOnly": True}],
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
    if component == "strategy" and spec.get("strategyConfigMap"):  # the plugin files, where strategyDir says
        container["volumeMounts"].append({"name": STRATEGIES_VOLUME, "mountPath": spec["strategyDir"],
                                          "readOnly": True})
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


def build_deployment(body: dict[str, Any], group: str, components: tuple[str, ...],
                     image: str | None = None, token_digest: str = "") -> dict[str, Any]:
    name = body["metadata"]["name"]
    image = image or body["spec"]["image"]
    selector = labels(name, group)
    pod_spec: dict[str, Any] = {
        "serviceAccountName": "default", "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(body, c, image) for c in components],
        "volumes": [{"name": "desired", "configMap": {"name": desired_configmap_name(name)}}],
    }
    if "strategy" in components and body["spec"].get("strategyConfigMap"):
        pod_spec["volumes"].append({"name": STRATEGIES_VOLUME,
                                    "configMap": {"name": body["spec"]["strategyConfigMap"]}})
    pod_spec.update(placement(body["spec"], group))
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(body, f"{name}-{group}", group),
            "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                     # Never two order managers at once: the old pod goes before the new one starts.
                     "strategy": {"type": "Recreate"} if "execution" in components else {"type": "RollingUpdate"},
                     # The Control token's digest: a new token (the Secret was deleted) starts new pods that hold it,
                     # which come back in the desired state; old pods would refuse every Control call.
                     "template": {"metadata": {"labels": selector,
                                               "annotations": {"prometheus.io/scrape": "true",
                                                               "prometheus.io/port": str(METRICS_PORT),
                                                               "celeris.dev/control-token": token_digest}},
                                  "spec": pod_spec}}}


def build_service(body: dict[str, Any], group: str, components: tuple[str, ...]) -> dict[str, Any]:
    name = body["metadata"]["name"]
    ports = []
    for c in components:
        port = int(settings_for(body, c)["CELERIS_GRPC_PORT"])
        ports.append({"name": f"grpc-{c}"[:15], "port": port, "targetPort": port, "protocol": "TCP"})
    if "dashboard" in components:
        ports.append({"name": "http", "port": HTTP_PORT, "targetPort": HTTP_PORT, "protocol": "TCP"})
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(body, service_name(name, group), group),
            "spec": {"selector": labels(name, group), "ports": ports}}


def build_simulator(body: dict[str, Any], image: str | None = None) -> list[dict[str, Any]]:
    """The bundled simulator's Deployment and Service (a `kind: simulator` venue without URLs): `celeris sim`
    on SIM_PORT, with the system's symbols; its key pair is the one the components present."""
    name, spec = body["metadata"]["name"], body["spec"]
    selector = labels(name, SIM_GROUP)
    secret = body["spec"]["venue"].get("credentialsSecret")
    credentials = ([{"name": "CELERIS_SIM_API_KEY", "valueFrom": {"secretKeyRef": {"name": secret, "key": "apiKey"}}},
                    {"name": "CELERIS_SIM_API_SECRET", "valueFrom": {"secretKeyRef": {"name": secret, "key": "apiSecret"}}}]
                   if secret else
                   [{"name": "CELERIS_SIM_API_KEY", "value": SIM_API_KEY},
                    {"name": "CELERIS_SIM_API_SECRET", "valueFrom": {"secretKeyRef": {
                        "name": control_secret_name(name), "key": "token"}}}])
    container = {
        "name": "sim", "image": image or spec["image"], "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "celeris", "sim", "--host", "0.0.0.0", "--port", str(SIM_PORT),
                    "--symbols", ",".join(spec["symbols"])],
        "env": credentials, "ports": [{"name": "venue", "containerPort": SIM_PORT}],
        "readinessProbe": {"tcpSocket": {"port": SIM_PORT}, "periodSeconds": 5},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
    }
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(body, f"{name}-{SIM_GROUP}", SIM_GROUP),
                  "spec": {"replicas": 1, "selector": {"matchLabels": selector}, "strategy": {"type": "Recreate"},
                           "template": {"metadata": {"labels": selector},
                                        "spec": {"automountServiceAccountToken": False, "containers": [container],
                                                 "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                                                     "seccompProfile": {"type": "RuntimeDefault"}}}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": _meta(body, service_name(name, SIM_GROUP), SIM_GROUP),
               "spec": {"selector": selector,
                        "ports": [{"name": "venue", "port": SIM_PORT, "targetPort": SIM_PORT, "protocol": "TCP"}]}}
    return [service, deployment]


def build_pdb(body: dict[str, Any], group: str) -> dict[str, Any]:
    name = body["metadata"]["name"]
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(body, f"{name}-{group}", group),
            "spec": {"maxUnavailable": 0 if group in ("execution", "hotpath") else 1,
                     "selector": {"matchLabels": labels(name, group)}}}


def control_ports(spec: dict[str, Any]) -> list[int]:
    colocated = spec.get("topology", "distributed") == "colocated"
    return [GRPC_PORT + i for i in range(len(HOT_PATH))] if colocated else [GRPC_PORT]


def metrics_ports(spec: dict[str, Any]) -> list[int]:
    colocated = spec.get("topology", "distributed") == "colocated"
    return [METRICS_PORT + i for i in range(len(HOT_PATH))] if colocated else [METRICS_PORT]


def build_network_policy(body: dict[str, Any], operator_namespace: str) -> dict[str, Any]:
    """Pods of one trading system talk to each other; the operator reaches Control and nothing else; the
    dashboard's HTTP and /metrics are open (Prometheus); egress is allowed (the venue)."""
    name = body["metadata"]["name"]
    spec = body["spec"]
    instance = {"app.kubernetes.io/instance": name, "app.kubernetes.io/name": "celeris"}
    operator = {"podSelector": {"matchLabels": dict(OPERATOR_LABELS)},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": operator_namespace}}}
    tcp = [{"port": p, "protocol": "TCP"} for p in control_ports(spec)]
    open_ports = [{"port": p, "protocol": "TCP"} for p in [HTTP_PORT, *metrics_ports(spec)]]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(body, f"{name}-internal"),
            "spec": {"podSelector": {"matchLabels": instance}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": instance}}]},
                                 {"from": [operator], "ports": tcp},
                                 {"ports": open_ports}]}}


def ordered_groups(spec: dict[str, Any]) -> list[str]:
    """Pod groups, data plane first (the order objects are applied and images rolled)."""
    groups = pod_groups(spec)
    return sorted(groups, key=lambda g: min(DATA_PLANE_FIRST.index(c) for c in groups[g]))


def build_all(body: dict[str, Any], desired: dict[str, Any], images: dict[str, str] | None = None,
              operator_namespace: str = "celeris-system", token_digest: str = "") -> list[dict[str, Any]]:
    """Every object of a TradingSystem but its control Secret, in the order they are applied (data plane
    first; the desired state before any pod that reads it)."""
    groups = pod_groups(body["spec"])
    out: list[dict[str, Any]] = [build_desired_configmap(body, desired), build_configmap(body),
                                 build_network_policy(body, operator_namespace)]
    if bundled_simulator(body["spec"]):  # the venue before the components that connect to it
        out += build_simulator(body, (images or {}).get(SIM_GROUP))
    for group in ordered_groups(body["spec"]):
        out.append(build_service(body, group, groups[group]))
        out.append(build_deployment(body, group, groups[group], (images or {}).get(group), token_digest))
        out.append(build_pdb(body, group))
    return out
