"""The TradingSystem CRD refuses what the operator must never run, with a message a person understands.

One table of resources, each with the verdict and a fragment of the message: every shipped sample and
example (accepted), and at least one resource per rule (refused). The table runs against two API servers
through the same `kubernetes` client, with fieldValidation=Strict as kubectl sends it:

- the emulated one (tests/operator/apiserver.py: OpenAPI schema with jsonschema, CEL with celpy), always;
- a real kube-apiserver, when the session fixture `kube_env` (tests/operator/conftest.py) exists: it
  must accept the CRD (structural schema, CEL compiled within its cost budget) and give the same verdicts.

Transition rules (oldSelf) need an existing object: those cases create one, then write spec or status
(through the status subresource) step by step; only the last step's verdict is the case's. Hypothesis
checks the two grammars with random strings: the CRD's verdict on minDuration and orderSize equals
`celeris.config.spec.is_duration` / `is_order_size`, the grammar written once in Python.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celeris.config.spec import is_duration, is_order_size
from celeris_operator import builders
from tests.operator.apiserver import ApiServer

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "k8s" / "crds" / "tradingsystems.celeris.dev.yaml"
GROUP, VERSION, PLURAL = "celeris.dev", "v1alpha1", "tradingsystems"
HELM = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")
MAX_NAME = 52  # the CRD's rule on metadata.name (checked against the builders below)


# -- resources ------------------------------------------------------------------------------------------
def ts(name: str = "btc", **spec: Any) -> dict[str, Any]:
    """A valid TradingSystem that goes live on binance-usdm: credentials, TLS, a soaked simulation stage."""
    body = {"image": "celeris:0.1.0", "symbols": ["BTCUSDT", "ETHUSDT"], "mode": "live",
            "venue": {"kind": "binance-usdm", "restUrl": "https://demo-fapi.binance.com",
                      "wsUrl": "wss://fstream.binancefuture.com", "credentialsSecret": "binance-api"},
            "rollout": {"stages": [{"mode": "observation", "minDuration": "2h"},
                                   {"mode": "simulation", "minDuration": "24h"}, {"mode": "live"}]},
            "strategies": [{"name": "mom-btc", "type": "momentum", "symbol": "BTCUSDT", "orderSize": "0.001",
                            "params": {"lookback": 50}}]}
    body.update(spec)
    body = {k: v for k, v in body.items() if v is not None}  # None: leave the field out
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TradingSystem", "metadata": {"name": name},
            "spec": body}


def sim(name: str = "sim", **spec: Any) -> dict[str, Any]:
    """The smallest valid TradingSystem: the bundled simulator, observation."""
    body = {"image": "celeris:0.1.0", "venue": {"kind": "simulator"}, "symbols": ["BTCUSDT"]}
    body.update(spec)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TradingSystem", "metadata": {"name": name},
            "spec": body}


def venue(**fields: Any) -> dict[str, Any]:
    out = {"kind": "binance-usdm", "restUrl": "https://demo-fapi.binance.com",
           "wsUrl": "wss://fstream.binancefuture.com", "credentialsSecret": "binance-api"}
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def stages(*modes_and_durations: Any) -> dict[str, Any]:
    out = []
    for item in modes_and_durations:
        mode, _, duration = item.partition(":")
        out.append({"mode": mode, **({"minDuration": duration} if _ else {})})
    return {"stages": out}


def strategy(name: str = "mom-btc", symbol: str = "BTCUSDT", orderSize: str = "0.001", **extra: Any) -> dict:
    return {"name": name, "type": "momentum", "symbol": symbol, "orderSize": orderSize, **extra}


def shipped() -> list[tuple[str, dict[str, Any]]]:
    """Every TradingSystem the project ships: samples, examples, the chart's example (rendered by helm)."""
    out = []
    for path in sorted([*ROOT.glob("k8s/samples/*.yaml"), *ROOT.glob("examples/*.yaml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "TradingSystem":
                out.append((str(path.relative_to(ROOT)), doc))
    if HELM:
        rendered = subprocess.run([HELM, "template", "c", str(ROOT / "charts/celeris"), "--namespace", "trading",
                                   "--set", "example.enabled=true"], capture_output=True, text=True, check=True)
        for doc in yaml.safe_load_all(rendered.stdout):
            if doc and doc.get("kind") == "TradingSystem":
                out.append(("charts/celeris/templates/example.yaml", doc))
    return out


@dataclass
class Case:
    id: str
    body: dict[str, Any]
    accept: bool
    fragment: str = ""
    # Writes after the create, in order: ("spec", merge patch of spec) or ("status", merge patch of status).
    # Every write but the last must be accepted; the case's verdict is the last one's.
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


NOT_LIVE_CREDENTIALS = "needs venue.credentialsSecret"
TLS = "needs encrypted endpoints"
ORDER = "must be in the order observation -> simulation -> live"
SOAK = "needs a simulation soak"
DURATION = "is not a duration"
SECRET = "must be a Secret name"
LABEL_KEY = "must be a Kubernetes label key"
ORDER_SIZE = "is not a positive decimal"
TOPOLOGY = "spec.topology cannot change while the system is live"
APPROVAL = "approvedForLive cannot become true in the same edit that changes spec.image"

CASES: list[Case] = [
    *[Case(f"shipped:{where}", copy.deepcopy(doc), True) for where, doc in shipped()],
    # -- accepted neighbours of the rules: each rule refuses only what it names --------------------------
    Case("simulator-minimal", sim(), True),
    Case("simulator-live-no-rollout-no-credentials", sim(mode="live"), True),
    Case("binance-observation-without-credentials-over-http",
         ts(mode="observation", rollout=stages("observation"), venue=venue(credentialsSecret=None,
            restUrl="http://localhost:8080", wsUrl="ws://localhost:8081")), True),
    Case("stages-simulation-then-live", ts(rollout=stages("simulation:1s", "live")), True),
    Case("durations-of-the-grammar", ts(rollout=stages("observation:1h30m", "simulation:90s", "live:2h")), True),
    Case("name-of-the-longest-length", ts(name="a" * MAX_NAME), True),
    Case("label-keys-with-and-without-prefix",
         ts(placement={"nodeLabel": "node-role", "taintKey": "example.com/dedicated_Node.1"}), True),
    Case("secret-names-with-dots", ts(venue=venue(credentialsSecret="binance.api-1"),
                                      stores={"redisUrlSecret": "redis-url", "postgresUrlSecret": "pg.url"}), True),
    Case("params-are-free-form", ts(strategies=[strategy(params={"lookback": 5, "nested": {"a": [1, "x"]}})]),
         True),
    Case("order-size-integer", ts(strategies=[strategy(orderSize="1")]), True),
    Case("one-cpu", ts(resources={"hotPathCpus": 1}), True),
    # -- live on a real venue -----------------------------------------------------------------------------
    Case("live-without-credentials", ts(venue=venue(credentialsSecret=None)), False, NOT_LIVE_CREDENTIALS),
    Case("rollout-reaching-live-without-credentials", ts(mode="observation", venue=venue(credentialsSecret=None)),
         False, NOT_LIVE_CREDENTIALS),
    Case("live-over-http", ts(venue=venue(restUrl="http://demo-fapi.binance.com")), False, TLS),
    Case("live-over-ws", ts(venue=venue(wsUrl="ws://fstream.binancefuture.com")), False, TLS),
    Case("live-without-rollout", ts(rollout=None), False, "observation -> simulation -> live"),
    Case("binance-without-urls", ts(venue={"kind": "binance-usdm", "credentialsSecret": "x"}), False,
         "needs restUrl and wsUrl"),
    # -- rollout stages -----------------------------------------------------------------------------------
    Case("stages-out-of-order", ts(rollout=stages("simulation:1h", "observation", "live")), False, ORDER),
    Case("stages-live-first", ts(mode="observation", rollout=stages("live", "simulation:1h")), False, ORDER),
    Case("stages-repeated", ts(mode="simulation", rollout=stages("observation", "observation")), False,
         "each mode appears at most once"),
    Case("live-stage-without-simulation", ts(rollout=stages("observation:1h", "live")), False,
         "a live stage needs a simulation stage"),
    Case("simulation-soak-absent", ts(rollout=stages("observation:1h", "simulation", "live")), False, SOAK),
    Case("simulation-soak-zero", ts(rollout=stages("observation:1h", "simulation:0h0m0s", "live")), False, SOAK),
    Case("simulation-soak-zero-target-live-no-live-stage", ts(rollout=stages("observation", "simulation:0s")),
         False, SOAK),
    Case("simulator-soak-zero", sim(mode="live", rollout=stages("simulation:0s", "live")), False, SOAK),
    # -- durations ----------------------------------------------------------------------------------------
    *[Case(f"duration-{text or 'empty'}", ts(rollout=stages(f"observation:{text}", "simulation:1h", "live")),
           False, DURATION) for text in ("5s5s5s", "", "30m1h", "1d", "5", "1h 30m", "-5s", "1.5h")],
    # -- names --------------------------------------------------------------------------------------------
    Case("name-too-long", ts(name="a" * (MAX_NAME + 1)), False, f"at most {MAX_NAME}"),
    Case("name-starting-with-a-digit", ts(name="1btc"), False, "metadata.name must be lowercase"),
    Case("name-with-a-dot", ts(name="btc.perp"), False, "metadata.name must be lowercase"),
    Case("secret-uppercase", ts(venue=venue(credentialsSecret="Binance_API")), False, SECRET),
    Case("secret-empty-part", ts(venue=venue(credentialsSecret="binance..api")), False, SECRET),
    Case("store-secret-leading-dash", ts(stores={"redisUrlSecret": "-redis"}), False, SECRET),
    Case("store-secret-too-long", ts(stores={"postgresUrlSecret": "a" * 254}), False, "postgresUrlSecret"),
    # -- node label and taint keys ------------------------------------------------------------------------
    Case("label-key-empty-name", ts(placement={"nodeLabel": "celeris.dev/"}), False, LABEL_KEY),
    Case("label-key-two-slashes", ts(placement={"nodeLabel": "a/b/c"}), False, LABEL_KEY),
    Case("label-key-name-too-long", ts(placement={"nodeLabel": "celeris.dev/" + "a" * 64}), False, LABEL_KEY),
    Case("label-key-prefix-too-long", ts(placement={"nodeLabel": "a" * 254 + "/role"}), False, LABEL_KEY),
    Case("label-key-uppercase-prefix", ts(placement={"nodeLabel": "Celeris.dev/role"}), False, LABEL_KEY),
    Case("taint-key-leading-dash", ts(placement={"taintKey": "-dedicated"}), False, LABEL_KEY),
    # -- strategies ---------------------------------------------------------------------------------------
    Case("strategy-names-repeated", ts(strategies=[strategy(), strategy(orderSize="0.002")]), False,
         "Duplicate value"),
    Case("strategy-symbol-not-in-symbols", ts(strategies=[strategy(name="mm-xrp", symbol="XRPUSDT")]), False,
         "every strategy's symbol must be one of spec.symbols"),
    *[Case(f"order-size-{text}", ts(strategies=[strategy(orderSize=text)]), False, ORDER_SIZE)
      for text in ("0", "0.000", "-1", "1e3", ".5", "1.", "")],
    Case("strategy-plugins-from-a-configmap", ts(strategyDir="/etc/celeris/strategies", strategyConfigMap="my.plugins"),
         True),
    Case("strategy-plugins-in-the-image", ts(strategyDir="/opt/strategies"), True),
    Case("strategy-configmap-without-dir", ts(strategyConfigMap="my-plugins"), False,
         "strategyConfigMap is mounted at strategyDir"),
    Case("strategy-configmap-uppercase", ts(strategyDir="/s", strategyConfigMap="My_Plugins"), False,
         "must be a ConfigMap name"),
    Case("strategy-dir-relative", ts(strategyDir="strategies"), False, "spec.strategyDir"),
    Case("symbols-repeated", ts(symbols=["BTCUSDT", "BTCUSDT"]), False, "Duplicate value"),
    Case("zero-cpus", ts(resources={"hotPathCpus": 0}), False, "hotPathCpus"),
    Case("strategy-name-trailing-dash", ts(strategies=[strategy(name="mom-")]), False, "strategies[0].name"),
    Case("zero-memory", ts(resources={"hotPathMemory": "0Mi"}), False, "hotPathMemory"),
    Case("image-with-a-space", ts(image="celeris:0.1.0 --evil"), False, "spec.image"),
    Case("image-blank", ts(image=" "), False, "spec.image"),
    *[Case(f"error-window-{text or 'empty'}", ts(rollout={**stages("observation", "simulation:1h", "live"),
                                                           "gates": {"errorWindow": text}}),
           False, "errorWindow is not a non-zero duration") for text in ("", "0s", "5m5m", "5 m")],
    Case("cancel-all-after-garbage", ts(venue=venue(cancelAllAfter="1d")), False, "cancelAllAfter is not a duration"),
    Case("cancel-all-after-off", ts(venue=venue(cancelAllAfter="0s")), True),
    # -- unknown fields -----------------------------------------------------------------------------------
    Case("unknown-spec-field", ts(dryRun=True), False, 'unknown field "spec.dryRun"'),
    Case("unknown-venue-field", ts(venue=venue(apiKey="secret!")), False, 'unknown field "spec.venue.apiKey"'),
    Case("unknown-risk-field", ts(risk={"maxPositonUsdt": "10"}), False, 'unknown field "spec.risk.maxPositonUsdt"'),
    Case("unknown-strategy-field", ts(strategies=[strategy(size="1")]), False, "unknown field"),
    # -- transitions --------------------------------------------------------------------------------------
    Case("topology-change-while-target-live", ts(), False, TOPOLOGY, [("spec", {"topology": "colocated"})]),
    Case("topology-change-while-running-live", ts(mode="simulation"), False, TOPOLOGY,
         [("status", {"mode": "live", "phase": "Running"}), ("spec", {"topology": "colocated"})]),
    Case("topology-change-with-the-demotion", ts(), False, TOPOLOGY,
         [("spec", {"mode": "simulation", "topology": "colocated"})]),
    Case("topology-change-after-demotion", ts(), True, "",
         [("status", {"mode": "live"}), ("spec", {"mode": "simulation"}), ("status", {"mode": "simulation"}),
          ("spec", {"topology": "colocated"})]),
    Case("topology-change-in-observation", ts(mode="observation"), True, "",
         [("status", {"mode": "observation"}), ("spec", {"topology": "colocated"})]),
    Case("status-writes-while-live", ts(), True, "",
         [("status", {"mode": "live", "phase": "Running", "halted": False,
                      "conditions": [{"type": "Ready", "status": "True", "reason": "Running", "message": "",
                                      "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}],
                      "components": {"execution": {"deployment": "btc-execution", "image": "celeris:0.1.0"}},
                      "approval": {"by": "someone"}, "abort": {}, "stage": {"mode": "live"}}),
          ("status", {"phase": "Degraded"})]),
    Case("approval-with-image-change", ts(), False, APPROVAL,
         [("spec", {"approvedForLive": True, "image": "celeris:0.2.0"})]),
    Case("approval-after-image-change", ts(), True, "",
         [("spec", {"image": "celeris:0.2.0"}), ("spec", {"approvedForLive": True})]),
    Case("image-change-while-approved", ts(approvedForLive=True), True, "", [("spec", {"image": "celeris:0.2.0"})]),
    Case("live-edit-dropping-the-credentials", ts(mode="observation", rollout=stages("observation")), False,
         NOT_LIVE_CREDENTIALS, [("spec", {"venue": {"credentialsSecret": None}, "mode": "live",
                                          "rollout": stages("observation:1h", "simulation:1h", "live")})]),
]


# -- API servers ------------------------------------------------------------------------------------------
class Tier:
    """One API server seen through the kubernetes client, with a namespace of its own."""

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        from kubernetes import client, config

        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.namespace = namespace

    def write(self, step: str, name: str, body: dict[str, Any]) -> tuple[bool, str]:
        from kubernetes.client.rest import ApiException

        try:
            if step == "create":
                self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body,
                                                            field_validation="Strict")
            elif step == "spec":
                self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name,
                                                           {"spec": body}, field_validation="Strict")
            else:
                self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, self.namespace, PLURAL, name,
                                                                  {"status": body}, field_validation="Strict")
        except ApiException as exc:
            assert exc.status in (400, 422), (exc.status, exc.body)
            try:
                return False, json.loads(exc.body)["message"]
            except (TypeError, ValueError, KeyError):
                return False, str(exc.body)
        return True, ""

    def delete(self, name: str) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def run(self, case: Case) -> None:
        body = copy.deepcopy(case.body)
        name = body["metadata"]["name"]
        body["metadata"].pop("namespace", None)
        steps = [("create", body), *case.steps]
        try:
            for i, (step, payload) in enumerate(steps):
                ok, message = self.write(step, name, payload)
                last = i == len(steps) - 1
                if not last:
                    assert ok, f"step {i} ({step}) of {case.id} was refused: {message}"
                    continue
                if case.accept:
                    assert ok, f"{case.id} was refused: {message}"
                else:
                    assert not ok, f"{case.id} was accepted"
                    assert case.fragment in message, f"{case.id}: {case.fragment!r} not in {message!r}"
        finally:
            self.delete(name)


class EmulatedServer:
    """tests/operator/apiserver.py on a loop of its own, with a kubeconfig pointing at it."""

    def __init__(self, kubeconfig: Path) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10)
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "emulated",
            "clusters": [{"name": "emulated", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "contexts": [{"name": "emulated", "context": {"cluster": "emulated", "user": "test"}}],
            "users": [{"name": "test", "user": {"token": "test-token"}}]}))
        self.kubeconfig = str(kubeconfig)

    def _run(self, ready: threading.Event) -> None:
        from aiohttp import web

        async def start() -> None:
            self.runner = web.AppRunner(ApiServer().app(), access_log=None)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]

        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(start())
        ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    server = EmulatedServer(tmp_path_factory.mktemp("crd") / "kubeconfig")
    yield Tier(server.kubeconfig, "trading")
    server.close()


def install_crd(tier: Tier) -> None:
    """Create (or replace) the CRD on the real server and wait until it is established: the server's
    own checks of the CRD (structural schema, CEL compiled within the cost budget) run here."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    ext = client.ApiextensionsV1Api(tier.api)
    crd = yaml.safe_load(CRD_FILE.read_text())
    try:
        ext.create_custom_resource_definition(crd)
    except ApiException as exc:
        if exc.status != 409:
            raise AssertionError(f"the real API server refused the CRD: {exc.body}") from None
        current = ext.read_custom_resource_definition(crd["metadata"]["name"])
        crd["metadata"]["resourceVersion"] = current.metadata.resource_version
        try:
            ext.replace_custom_resource_definition(crd["metadata"]["name"], crd)
        except ApiException as exc2:
            raise AssertionError(f"the real API server refused the CRD: {exc2.body}") from None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = ext.read_custom_resource_definition(crd["metadata"]["name"])
        if any(c.type == "Established" and c.status == "True" for c in (got.status.conditions or [])):
            try:
                tier.custom.list_namespaced_custom_object(GROUP, VERSION, tier.namespace, PLURAL)
                return
            except ApiException:
                pass
        time.sleep(0.2)
    raise AssertionError("the CRD was not established in 60 s")


@pytest.fixture(scope="module")
def real(request):
    """The real kube-apiserver of the session fixture `kube_env`; skipped while that fixture is missing."""
    try:
        env = request.getfixturevalue("kube_env")
    except pytest.FixtureLookupError:
        pytest.skip("no kube_env fixture (a real kube-apiserver) in this checkout yet")
    from kubernetes import client

    tier = Tier(str(env.admin_kubeconfig), f"celeris-crd-{uuid.uuid4().hex[:6]}")
    tier.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=tier.namespace)))
    install_crd(tier)
    yield tier
    tier.core.delete_namespace(tier.namespace)


# -- the table --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_emulated_api_server(emulated, case):
    emulated.run(case)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_real_api_server(real, case):
    real.run(case)


def test_every_rule_is_broken_by_some_case(emulated, monkeypatch):
    """Each x-kubernetes-validations rule evaluates to false for at least one case of the table."""
    from tests.operator import apiserver

    crd = yaml.safe_load(CRD_FILE.read_text())
    rules: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            rules.extend(r["rule"] for r in node.get("x-kubernetes-validations", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    broken: set[str] = set()
    evaluate = apiserver._cel

    def recording(expression: str, activation: dict[str, Any]) -> Any:
        result = evaluate(expression, activation)
        if result is False or (not isinstance(result, str) and not bool(result)):
            broken.add(expression)
        return result

    monkeypatch.setattr(apiserver, "_cel", recording)
    for case in CASES:
        if not case.accept:
            emulated.run(case)
    assert [r for r in rules if r not in broken] == []


# -- names of the children ----------------------------------------------------------------------------------
def test_the_longest_name_fits_every_child_object():
    """The rule's limit is what the builders need: every child of a MAX_NAME name is a valid object (a
    Service name is a DNS-1035 label of at most 63), and the longest suffix leaves no more room."""
    import kubernetes_validate

    crd_text = CRD_FILE.read_text()
    assert f"self.metadata.name.size() <= {MAX_NAME}" in crd_text
    longest = 0
    for topology in ("distributed", "colocated"):
        body = {**ts(name="a" * MAX_NAME, topology=topology), "metadata": {"name": "a" * MAX_NAME,
                                                                          "namespace": "trading", "uid": "u"}}
        for obj in builders.build_all(body, "observation"):
            kubernetes_validate.validate(obj, "1.32.0", strict=True)
            longest = max(longest, len(obj["metadata"]["name"]) - MAX_NAME)
            if obj["kind"] == "Service":
                assert len(obj["metadata"]["name"]) <= 63
    assert MAX_NAME + longest == 63  # `-marketdata`, the Service of the longest component


# -- the grammars, with random strings ---------------------------------------------------------------------
VALIDATOR = ApiServer()
GRAMMAR_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
duration_text = st.one_of(st.text(alphabet="0123456789hms", max_size=12), st.text(max_size=8),
                          st.from_regex(r"\A([0-9]{1,3}h)?([0-9]{1,3}m)?([0-9]{1,3}s)?\Z"))
decimal_text = st.one_of(st.text(alphabet="0123456789.", max_size=10), st.text(alphabet="0.", max_size=6),
                         st.text(max_size=6), st.from_regex(r"\A[0-9]{1,6}(\.[0-9]{1,6})?\Z"))


def duration_resource(text: str) -> dict[str, Any]:
    return sim(rollout={"stages": [{"mode": "observation", "minDuration": text}]})


def order_size_resource(text: str) -> dict[str, Any]:
    return sim(strategies=[strategy(orderSize=text)])


@GRAMMAR_SETTINGS
@given(duration_text)
def test_min_duration_follows_its_grammar(text):
    verdict = VALIDATOR._validate(duration_resource(text), None, True)
    assert (verdict == "") == is_duration(text), verdict
    if verdict:
        assert DURATION in verdict


@GRAMMAR_SETTINGS
@given(decimal_text)
def test_order_size_follows_its_grammar(text):
    verdict = VALIDATOR._validate(order_size_resource(text), None, True)
    assert (verdict == "") == is_order_size(text), verdict
    if verdict:
        assert ORDER_SIZE in verdict


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.one_of(duration_text.map(lambda t: ("duration", t)), decimal_text.map(lambda t: ("orderSize", t))))
def test_real_api_server_follows_the_grammars(real, item):
    kind, text = item
    name = f"g-{uuid.uuid4().hex[:8]}"
    body = duration_resource(text) if kind == "duration" else order_size_resource(text)
    body["metadata"]["name"] = name
    expected = is_duration(text) if kind == "duration" else is_order_size(text)
    real.run(Case(f"{kind}:{text!r}", body, expected, DURATION if kind == "duration" else ORDER_SIZE))
