"""The real kopf operator (kopf run, via KopfRunner) against the emulated Kubernetes API, with the
components' real Control gRPC servers. Each test attacks one promise: desired state enforced after a
component restarts, promotions that apply everywhere or nowhere, gates that fail, approval bound to the
image without flapping, pruning and drift correction, configuration without restarts, conditions GitOps
can read, RBAC exactly as used."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.error
import urllib.request

import pytest

from concurrent import futures

import grpc

from celeris.api.v1 import control_pb2_grpc
from celeris.domain.clock import TestClock
from celeris.domain.modes import IllegalModeChange, Mode
from celeris.runtime import control
from tests.operator.apiserver import ApiServer
from tests.support.waits import wait_until

# Read by the operator module when kopf imports it: fast rollout ticks and image timeouts for tests.
OPERATOR_ENV = {"CELERIS_OPERATOR_INTERVAL_S": "0.5", "CELERIS_OPERATOR_IMAGE_TIMEOUT_S": "2",
                "CELERIS_OPERATOR_ALLOW_TARGETS": "1"}

COMPONENTS = ("marketdata", "strategy", "execution", "risk", "account", "dashboard")
BASE = "/apis/celeris.dev/v1alpha1/namespaces/trading/tradingsystems"


class SyncControl(control_pb2_grpc.ControlServicer):
    """A component's real Control service on a threaded gRPC server (grpc.aio allows one event loop per
    process; kopf runs its own in another thread)."""

    def __init__(self, ctl: control.ComponentControl) -> None:
        self.ctl = ctl
        self.aio = control.ControlServicer(ctl)

    def _run(self, method, request, context):
        return asyncio.run(getattr(self.aio, method)(request, context))

    def GetStatus(self, request, context):
        return self._run("GetStatus", request, context)

    def SetMode(self, request, context):
        try:
            return asyncio.run(self._set_mode(request))
        except IllegalModeChange as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))

    async def _set_mode(self, request):
        await self.ctl.set_mode(control.PB_TO_MODE[request.mode], request.requested_by, request.reason)
        return self.ctl.status(request.request_id)

    def Halt(self, request, context):
        asyncio.run(self.ctl.halt(request.reason, request.requested_by))
        return self.ctl.status(request.request_id)

    def Resume(self, request, context):
        asyncio.run(self.ctl.resume(request.requested_by or "?", request.reason))
        return self.ctl.status(request.request_id)

    def Configure(self, request, context):
        return self._run("Configure", request, context)

    def Drain(self, request, context):
        asyncio.run(self.ctl.drain())
        return self.ctl.status(request.request_id)


def start_controls() -> tuple[dict[str, control.ComponentControl], dict[str, str], list[grpc.Server]]:
    """Every component's real Control service on 127.0.0.1: controls, targets (host:port), servers."""
    controls, targets, servers = {}, {}, []
    for name in COMPONENTS:
        ctl = control.ComponentControl(name, TestClock())
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        control_pb2_grpc.add_ControlServicer_to_server(SyncControl(ctl), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        controls[name] = ctl
        targets[name] = f"127.0.0.1:{port}"
    return controls, targets, servers


class Cluster:
    """The emulated API server (on a loop in its own thread) and the components' Control servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.api = None
        self.controls: dict[str, control.ComponentControl] = {}
        self.targets: dict[str, str] = {}
        self.servers: list = []
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        from aiohttp import web

        self.api = ApiServer()
        self.runner = runner = web.AppRunner(self.api.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.controls, self.targets, self.servers = start_controls()

    def close(self) -> None:
        """Close open watches on the API server's own loop, then stop it (no coroutine outlives its loop)."""
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.runner.cleanup()

        asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(10)
        for server in self.servers:
            server.stop(None)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def call(self, method: str, path: str, body: dict | None = None, content_type: str = "application/json"):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def patch_spec(self, name: str, spec: dict) -> tuple[int, dict]:
        return self.call("PATCH", f"{BASE}/{name}", {"spec": spec}, "application/merge-patch+json")

    def get(self, name: str) -> dict:
        return self.call("GET", f"{BASE}/{name}")[1]


def trading_system(targets, name="btc-perp", **spec):
    body = {"apiVersion": "celeris.dev/v1alpha1", "kind": "TradingSystem",
            "metadata": {"name": name, "annotations": {"celeris.dev/control-targets": json.dumps(targets)}},
            "spec": {"image": "celeris:0.1.0", "symbols": ["BTCUSDT"], "mode": "observation",
                     "venue": {"kind": "binance-usdm", "restUrl": "https://testnet.example/fapi",
                               "wsUrl": "wss://testnet.example/ws", "credentialsSecret": "binance-api"},
                     "rollout": {"stages": [{"mode": "observation"}, {"mode": "simulation", "minDuration": "1s"},
                                            {"mode": "live"}]},
                     "strategies": [{"name": "mom-btc", "type": "momentum", "symbol": "BTCUSDT", "orderSize": "0.001"}],
                     **spec}}
    return body


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    saved = {k: os.environ.get(k) for k in [*OPERATOR_ENV, "KUBECONFIG"]}
    os.environ.update(OPERATOR_ENV)
    c = Cluster()
    # One path for the session, rewritten per emulated cluster: the kubernetes client reads $KUBECONFIG
    # once, at import, and kopf logs in through it.
    kubeconfig = tmp_path_factory.getbasetemp() / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulated",
        "clusters": [{"name": "emulated", "cluster": {"server": f"http://127.0.0.1:{c.port}"}}],
        "contexts": [{"name": "emulated", "context": {"cluster": "emulated", "user": "test", "namespace": "trading"}}],
        "users": [{"name": "test", "user": {"token": "test-token"}}]}))
    os.environ["KUBECONFIG"] = str(kubeconfig)
    import kubernetes.config.kube_config
    kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
    from celeris_operator import kube
    kube.api_client.cache_clear()
    yield c
    c.close()
    for key, value in saved.items():  # later tests start components in subprocesses with this environment
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def operator(cluster):
    from kopf.testing import KopfRunner

    with KopfRunner(["run", "--all-namespaces", "--standalone", "-m", "celeris_operator.handlers"],
                    timeout=60) as runner:
        time.sleep(1.0)
        yield runner
    assert runner.exception is None, runner.output[-3000:]


class System:
    """One TradingSystem with its own set of component Control servers."""

    def __init__(self, cluster, name, create=True, **spec):
        self.cluster, self.name = cluster, name
        self.controls, self.targets, servers = start_controls()
        cluster.servers.extend(servers)
        if create:
            self.create(**spec)

    def create(self, **spec):
        status, body = self.cluster.call("POST", BASE, trading_system(self.targets, self.name, **spec))
        assert status == 201, body
        self.uid = body["metadata"]["uid"]

    def get(self):
        return self.cluster.get(self.name)

    def status(self):
        return self.get().get("status") or {}

    def patch(self, **spec):
        status, body = self.cluster.patch_spec(self.name, spec)
        assert status == 200, body
        return body

    def reapprove(self):
        """A new approval, as two GitOps commits make it: false (seen by the operator), then true."""
        self.patch(approvedForLive=False)
        wait_until(lambda: self.status().get("approval") is None, what="the approval withdrawn")
        self.patch(approvedForLive=True)

    def annotate(self, **annotations):
        status, body = self.cluster.call("PATCH", f"{BASE}/{self.name}", {"metadata": {"annotations": annotations}},
                                         "application/merge-patch+json")
        assert status == 200, body

    def condition(self, kind):
        return next((c for c in self.status().get("conditions") or [] if c["type"] == kind), {})

    def wait_mode(self, mode, what=None, timeout=15):
        try:
            wait_until(lambda: self.status().get("mode") == mode.value and
                       all(c.mode is mode for c in self.controls.values()), timeout=timeout, what=what or mode.value)
        except AssertionError as exc:
            status = self.status()
            raise AssertionError(f"{exc}: status {json.dumps({k: status.get(k) for k in ('mode', 'stage', 'approval', 'abort', 'lastAbortGeneration', 'conditions')})[:3000]}") from None

    def objects(self, kind):
        return [o for o in self.cluster.api.by_kind(kind)
                if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/instance") == self.name]

    def desired(self):
        cm = next(o for o in self.objects("ConfigMap") if o["metadata"]["name"] == f"{self.name}-desired")
        return json.loads(cm["data"]["desired.json"])

    def events(self):
        return [e for e in self.cluster.api.by_kind("Event")
                if (e.get("involvedObject") or {}).get("name") == self.name]

    def delete(self):
        self.cluster.call("DELETE", f"{BASE}/{self.name}")
        wait_until(lambda: self.cluster.call("GET", f"{BASE}/{self.name}")[0] == 404, what="deletion")


def test_schema_and_cel_refuse_bad_resources(cluster):
    bad = trading_system(cluster.targets, name="bad-jump", mode="live")
    del bad["spec"]["rollout"]
    status, body = cluster.call("POST", BASE, bad)
    assert status == 422 and "observation -> simulation -> live" in body["message"]
    nonsense = trading_system(cluster.targets, name="bad-values", risk={"maxDailyDrawdownPct": 400})
    status, body = cluster.call("POST", BASE, nonsense)
    assert status == 422 and "maxDailyDrawdownPct" in body["message"]
    lower = trading_system(cluster.targets, name="bad-symbol", symbols=["btc-usdt"])
    assert cluster.call("POST", BASE, lower)[0] == 422


def test_objects_desired_state_and_configuration_without_restarts(cluster, operator):
    ts = System(cluster, "cfg")
    wait_until(lambda: len(ts.objects("Deployment")) == 6 and len(ts.objects("PodDisruptionBudget")) == 6,
               what="deployments and disruption budgets")
    assert all(d["metadata"]["ownerReferences"][0]["uid"] == ts.uid for d in ts.objects("Deployment"))
    pod = next(d for d in ts.objects("Deployment") if d["metadata"]["name"] == "cfg-execution")["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["requests"] == pod["containers"][0]["resources"]["limits"]
    assert not {"CELERIS_MODE", "CELERIS_RISK_LIMITS", "CELERIS_STRATEGIES"} & {e["name"] for e in pod["containers"][0]["env"]}
    wait_until(lambda: ts.condition("Ready").get("status") == "True", what="Ready")
    assert ts.status()["phase"] == "Running" and ts.status()["observedGeneration"] == 1
    spec = ts.get()["spec"]
    assert ts.desired() == {"generation": 1, "mode": "observation", "halted": False, "haltReason": "",
                            "settings": {"strategies": spec["strategies"], "risk": spec.get("risk", {})}}
    ready_since = ts.condition("Ready")["lastTransitionTime"]
    generations = {d["metadata"]["name"]: d["metadata"]["generation"] for d in ts.objects("Deployment")}

    # Risk limits and strategy parameters reach the running components; no Deployment changes.
    ts.patch(risk={"maxLeverage": 5}, strategies=[{"name": "mom-btc", "type": "momentum", "symbol": "BTCUSDT",
                                                   "orderSize": "0.002", "params": {"lookback": 20}}])
    wait_until(lambda: all(c.config_generation == 2 for c in ts.controls.values()), what="configuration")
    assert ts.controls["strategy"].config["strategies"][0]["params"] == {"lookback": 20}
    assert ts.controls["risk"].config["risk"]["maxLeverage"] == 5
    wait_until(lambda: ts.desired()["generation"] == 2 and ts.status()["observedGeneration"] == 2, what="desired")
    assert ts.desired()["settings"]["risk"]["maxLeverage"] == 5
    assert {d["metadata"]["name"]: d["metadata"]["generation"] for d in ts.objects("Deployment")} == generations
    wait_until(lambda: ts.condition("Ready").get("observedGeneration") == 2, what="conditions of generation 2")
    assert ts.condition("Ready")["lastTransitionTime"] == ready_since  # no flip: the time stays

    # A component that refuses a configuration keeps its generation; Stalled, an event, no promotion.
    async def refuse(settings):
        raise ValueError("maxLeverage above what this account allows")

    ts.controls["risk"].on_configure.append(refuse)
    ts.patch(risk={"maxLeverage": 50})
    wait_until(lambda: ts.condition("Stalled").get("status") == "True", what="Stalled")
    assert "maxLeverage above" in ts.condition("Stalled")["message"] and ts.condition("Ready")["status"] == "False"
    assert ts.controls["risk"].config_generation == 2 and ts.controls["strategy"].config_generation == 3
    wait_until(lambda: "ConfigurationNotApplied" in {e.get("reason") for e in ts.events()}, what="event")
    ts.controls["risk"].on_configure.remove(refuse)
    wait_until(lambda: ts.controls["risk"].config_generation == 3 and ts.condition("Stalled").get("status") == "False",
               what="applied once it is accepted")
    ts.delete()
    assert all(c.halted for c in ts.controls.values())  # the finalizer halts before the objects go


def test_a_restarted_component_comes_back_as_decided(cluster, operator):
    """The desired state is where a pod reads it at start, and the operator corrects any component that
    reports otherwise: demoted stays demoted, halted stays halted."""
    ts = System(cluster, "restart", mode="simulation")
    ts.wait_mode(Mode.SIMULATION)
    ts.patch(halted=True)
    wait_until(lambda: all(c.halted for c in ts.controls.values()) and ts.desired()["halted"], what="halted")
    ts.patch(mode="observation")
    ts.wait_mode(Mode.OBSERVATION, "demoted")
    assert ts.desired()["mode"] == "observation" and ts.desired()["halted"] is True
    # "Restart" execution as a pod that ignored its desired state would: simulation (its old mode), unhalted.
    execution = ts.controls["execution"]
    execution.mode, execution.halted, execution.halt_reason = Mode.SIMULATION, False, ""
    execution.config_generation = 0
    wait_until(lambda: execution.mode is Mode.OBSERVATION and execution.halted, what="corrected within a tick")
    wait_until(lambda: execution.config_generation == ts.get()["metadata"]["generation"], what="configuration")
    wait_until(lambda: "ModeCorrected" in {e.get("reason") for e in ts.events()}, what="ModeCorrected")  # queued
    # A component's own halt (an emergency stop) is reported and never lifted by the operator.
    ts.patch(halted=False)
    wait_until(lambda: not ts.controls["risk"].halted, what="resumed")
    ts.controls["risk"].halted, ts.controls["risk"].halt_reason = True, "EMERGENCY STOP: drawdown"
    wait_until(lambda: "EMERGENCY STOP" in ts.condition("Halted").get("message", ""), what="own halt reported")
    time.sleep(1.5)  # three operator ticks: it must still be halted (the absence of a resume is the property)
    assert ts.controls["risk"].halted and ts.status()["phase"] == "Halted"
    ts.delete()


def test_a_promotion_reaches_every_component_or_none(cluster, operator):
    ts = System(cluster, "atomic", create=False)

    async def refuse(mode):
        if mode is Mode.SIMULATION:
            raise RuntimeError("strategy cannot start simulation: paper account unavailable")

    ts.controls["strategy"].on_mode.append(refuse)
    ts.create(mode="simulation")
    wait_until(lambda: "PromotionRolledBack" in {e.get("reason") for e in ts.events()}, what="rolled back")
    wait_until(lambda: all(c.mode is Mode.OBSERVATION for c in ts.controls.values()), what="all back")
    status = ts.status()
    assert status["mode"] == "observation" and status["lastModeChange"]["result"] == "rolled back"
    assert {c: s.get("mode") for c, s in status["components"].items()} == {c: "observation" for c in COMPONENTS}
    ts.controls["strategy"].on_mode.remove(refuse)
    ts.wait_mode(Mode.SIMULATION, "promoted once every component accepts")
    ts.delete()


@pytest.mark.parametrize("gate, break_it", [
    ("reconciliation", lambda c: setattr(c["account"], "details", lambda: {"mismatches": "1"})),
    ("criticalAlerts", lambda c: setattr(c["risk"], "details", lambda: {"critical_alerts": "3"})),
    ("errorBudget", lambda c: setattr(c["execution"], "details", lambda: {
        "stats": json.dumps({"submitted": 100, "rejected": 30})})),
    ("componentsReady", lambda c: setattr(c["account"], "ready", False)),
])
def test_each_gate_fails_blocks_below_live_and_demotes_live_without_flapping(cluster, operator, gate, break_it):
    name = f"gate-{gate.lower()}"
    ts = System(cluster, name, mode="live", approvedForLive=True)
    ts.wait_mode(Mode.LIVE, "live through the gates", timeout=20)
    break_it(ts.controls)
    ts.wait_mode(Mode.SIMULATION, f"demoted by {gate}")
    status = ts.status()
    assert gate in status["history"][-1]["reason"] and status["abort"]["reason"].find(gate) >= 0
    assert ts.condition("Stalled")["status"] == "True" and status["phase"] in ("Aborted", "Degraded")
    # Healthy again, approval still true, spec unchanged: it stays demoted (no flapping).
    for c in ts.controls.values():
        c.details, c.ready = (lambda: {}), True
    time.sleep(2.0)  # four ticks; the absence of a re-promotion is the property
    assert ts.status()["mode"] == "simulation" and ts.controls["execution"].mode is Mode.SIMULATION
    # A retry alone is not enough: live needs an approval granted after the abort.
    ts.annotate(**{"celeris.dev/retry": "1"})
    wait_until(lambda: "approve again" in ts.status()["stage"].get("waiting", ""), what="needs a new approval")
    ts.reapprove()
    ts.wait_mode(Mode.LIVE, "live again with a new approval", timeout=20)
    ts.delete()


def test_approval_is_revoked_by_a_new_image(cluster, operator):
    # Halted, so that nothing is promoted while the approval and the image edit happen (a promotion to live
    # on the approval of the image it runs, before the edit, would be right, and a race).
    ts = System(cluster, "approval", mode="live", halted=True)
    wait_until(lambda: ts.status().get("halted"), what="halted")
    ts.patch(approvedForLive=True)
    wait_until(lambda: (ts.status().get("approval") or {}).get("image") == "celeris:0.1.0", what="approval recorded")
    ts.patch(image="celeris:0.2.0")
    wait_until(lambda: (ts.status().get("approval") or {}).get("revoked"), what="revoked")
    ts.patch(halted=False)
    ts.wait_mode(Mode.SIMULATION)
    wait_until(lambda: "set approvedForLive to false" in (ts.status().get("stage") or {}).get("waiting", "")
               or ts.status().get("mode") == "live", what="held by the revoked approval")
    assert ts.status()["mode"] == "simulation"
    ts.reapprove()
    ts.wait_mode(Mode.LIVE, "live with the approval of the new image", timeout=20)
    assert ts.status()["approval"]["image"] == "celeris:0.2.0"
    ts.delete()


def test_pruning_and_drift_correction(cluster, operator):
    ts = System(cluster, "prune")
    wait_until(lambda: len(ts.objects("Deployment")) == 6, what="deployments")
    api = cluster.api
    # A deleted child comes back; an edited one is put back.
    cluster.call("DELETE", "/apis/apps/v1/namespaces/trading/deployments/prune-risk")
    wait_until(lambda: any(d["metadata"]["name"] == "prune-risk" for d in ts.objects("Deployment")), what="restored")
    cluster.call("PATCH", "/apis/apps/v1/namespaces/trading/deployments/prune-strategy",
                 {"spec": {"replicas": 3}}, "application/merge-patch+json")
    wait_until(lambda: next(d for d in ts.objects("Deployment") if d["metadata"]["name"] == "prune-strategy")
               ["spec"]["replicas"] == 1, what="edit reverted")
    # A topology switch leaves one order manager: the old one goes before the new one is created.
    start = api.rv
    ts.patch(topology="colocated")
    wait_until(lambda: {d["metadata"]["name"] for d in ts.objects("Deployment")} ==
               {"prune-hotpath", "prune-risk", "prune-account", "prune-dashboard"}, what="pruned and replaced")
    assert {s["metadata"]["name"] for s in ts.objects("Service")} == \
        {"prune-hotpath", "prune-risk", "prune-account", "prune-dashboard"}
    live: set[str] = set()
    for rv, res, event, obj in api.log:
        if rv <= start or res[2] != "deployments" or not obj["metadata"]["name"].startswith("prune-"):
            continue
        runs_orders = any(c["name"] == "execution" for c in obj["spec"]["template"]["spec"]["containers"])
        (live.discard if event == "DELETED" else live.add)(obj["metadata"]["name"]) if runs_orders else None
        assert len(live) <= 1, f"two order managers at once: {live}"
    ts.delete()


def test_a_topology_edit_that_reaches_a_live_system_moves_no_pods(cluster, operator):
    """Defence in depth behind the CRD's 'no topology change while live' rule: under a CRD without it (an
    older chart's) the edit is stored, and the operator still keeps the live system's order manager and
    reports why, instead of replacing execution with a hot path under live orders."""
    ts = System(cluster, "topolive", mode="live", approvedForLive=True)
    ts.wait_mode(Mode.LIVE, timeout=20)
    rules = cluster.api.schema["x-kubernetes-validations"]
    kept = list(rules)
    rules[:] = [r for r in rules if "spec.topology" not in r["rule"]]
    try:
        ts.patch(topology="colocated")
    finally:
        rules[:] = kept
    wait_until(lambda: "changed while the system is live" in json.dumps(ts.status().get("conditions")),
               what="the refusal reported")
    names = {d["metadata"]["name"] for d in ts.objects("Deployment")}
    assert "topolive-execution" in names and "topolive-hotpath" not in names, names
    assert ts.status()["mode"] == "live"
    ts.delete()


def test_halt_image_rollout_rollback_and_rbac(cluster, operator):
    ts = System(cluster, "images")
    wait_until(lambda: ts.condition("Ready").get("status") == "True", what="Ready")
    ts.patch(halted=True)
    wait_until(lambda: all(c.halted for c in ts.controls.values()), what="halted")
    wait_until(lambda: ts.status().get("phase") == "Halted" and ts.condition("Halted")["status"] == "True",
               what="Halted")
    ts.patch(halted=False)
    wait_until(lambda: not any(c.halted for c in ts.controls.values()), what="resumed")
    ts.patch(image="celeris:0.2.0")
    wait_until(lambda: ts.status().get("lastGoodImage") == "celeris:0.2.0", what="rollout")
    assert {c["image"] for d in ts.objects("Deployment") for c in d["spec"]["template"]["spec"]["containers"]} == \
        {"celeris:0.2.0"}
    cluster.api.never_ready.add("celeris:broken")
    ts.patch(image="celeris:broken")
    wait_until(lambda: (ts.status().get("lastRollout") or {}).get("result") == "rolled back", timeout=20,
               what="rollback")
    assert {c["image"] for d in ts.objects("Deployment") for c in d["spec"]["template"]["spec"]["containers"]} == \
        {"celeris:0.2.0"}
    assert ts.status()["lastRollout"]["failedComponent"] == "marketdata"
    assert ts.condition("Degraded")["status"] == "True"
    # kopf posts events from a queue: they may land after the status that reports what they announce.
    wait_until(lambda: {"Halted", "Resumed", "RolledBack"} <= {e.get("reason") for e in ts.events()},
               what="the Halted, Resumed and RolledBack events")
    ts.delete()

    # RBAC: the ClusterRole grants exactly the verbs the operator used (the test's own calls are urllib's).
    from tests.operator.test_manifests import ADMISSION_ONLY, cluster_role
    used = {v for v in cluster.api.operator_verbs}
    called = cluster_role() - ADMISSION_ONLY
    assert used == called, f"unused: {called - used}; missing: {used - called}"


@pytest.fixture(scope="module")
def kstatus_bin():
    from tests.operator import status_contract

    try:
        return status_contract.kstatus_binary()
    except status_contract.KstatusUnavailable as exc:
        if status_contract.ci():
            raise
        pytest.skip(f"kstatus could not be built: {exc}")


def test_gitops_tools_read_the_real_status(cluster, operator, kstatus_bin):
    """The operator's own status, read by Argo CD's health check and by kstatus, in each state it reaches."""
    from tests.operator.status_contract import argocd_health, kstatus

    def read():
        obj = ts.get()
        return argocd_health(obj)["status"], kstatus(obj, kstatus_bin)["status"]

    ts = System(cluster, "gitops", mode="simulation")
    wait_until(lambda: ts.status().get("mode") == "simulation" and ts.condition("Ready").get("status") == "True",
               what="Ready in simulation")
    assert read() == ("Healthy", "Current")
    ts.patch(mode="live")  # no approval: waits in simulation
    wait_until(lambda: "approvedForLive" in (ts.status().get("stage") or {}).get("waiting", ""), what="waiting")
    assert read() == ("Progressing", "InProgress")
    ts.patch(halted=True)
    wait_until(lambda: ts.condition("Halted").get("status") == "True", what="Halted")
    assert read()[0] == "Suspended"
    ts.patch(halted=False, approvedForLive=True)
    ts.wait_mode(Mode.LIVE, timeout=20)
    wait_until(lambda: ts.condition("Ready").get("status") == "True", what="Ready in live")
    assert read() == ("Healthy", "Current")
    ts.controls["account"].details = lambda: {"mismatches": "2"}
    ts.wait_mode(Mode.SIMULATION, "demoted")
    wait_until(lambda: ts.condition("Stalled").get("status") == "True", what="Stalled")
    assert read() == ("Degraded", "Failed")
    ts.delete()


def test_a_forged_status_does_not_promote(cluster, operator):
    ts = System(cluster, "forged", mode="simulation")
    ts.wait_mode(Mode.SIMULATION)
    status, _ = cluster.call("PATCH", f"{BASE}/forged/status", {"status": {"mode": "live"}},
                             "application/merge-patch+json")
    assert status == 200
    wait_until(lambda: "StatusNotTheOperators" in {e.get("reason") for e in ts.events()}, what="not believed")
    wait_until(lambda: ts.status().get("mode") == "simulation", what="status put back")
    assert all(c.mode is Mode.SIMULATION for c in ts.controls.values())
    assert ts.desired()["mode"] == "simulation"
    # A forged soak (the stage's clock set back) is not believed either: the rollout is aborted instead.
    wait_until(lambda: ts.condition("Stalled").get("status") == "True", what="aborted")
    assert "someone other than the operator" in ts.status()["abort"]["reason"]
    ts.delete()


def test_a_forged_soak_or_approval_does_not_reach_live(cluster, operator):
    ts = System(cluster, "forged-soak", mode="live",
                rollout={"stages": [{"mode": "observation"}, {"mode": "simulation", "minDuration": "1h"},
                                    {"mode": "live"}], "autoPromote": True})
    ts.wait_mode(Mode.SIMULATION)
    stage = {**ts.status()["stage"], "enteredEpoch": 0, "readySince": 0}
    cluster.call("PATCH", f"{BASE}/forged-soak/status", {"status": {"stage": stage}}, "application/merge-patch+json")
    wait_until(lambda: "StatusNotTheOperators" in {e.get("reason") for e in ts.events()}, what="not believed")
    time.sleep(1.5)  # three ticks: live must not have been reached (the absence is the property)
    assert ts.status()["mode"] == "simulation" and all(c.mode is Mode.SIMULATION for c in ts.controls.values())
    assert ts.condition("Stalled")["status"] == "True"
    ts.delete()


def test_strategic_merge_patch_merges_by_key_as_the_real_server(cluster):
    from tests.operator.apiserver import strategic_merge_patch

    dep = {"spec": {"replicas": 1, "template": {"spec": {"containers": [
        {"name": "a", "image": "x:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "b", "image": "y:1"}]}}}}
    patched = strategic_merge_patch(dep, {"spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"name": "a", "env": [{"name": "B", "value": "3"}, {"name": "A", "$patch": "delete"}]}]}}}})
    a, b = patched["spec"]["template"]["spec"]["containers"]
    assert patched["spec"]["replicas"] == 2 and a["image"] == "x:1" and b == {"name": "b", "image": "y:1"}
    assert a["env"] == [{"name": "B", "value": "3"}]
    status, body = cluster.call("PATCH", f"{BASE}/nothing", {"spec": {}}, "application/strategic-merge-patch+json")
    assert status in (404, 415)


def test_the_operator_survives_api_failures_and_a_compaction(cluster, operator):
    """Injected 500s, 429s and 409s on the calls a pass makes, and a watch history compacted away (410
    Gone): every pass that fails is retried, nothing is left half done, and a system created after the
    compaction is still seen (kopf lists again)."""
    api = cluster.api
    ts = System(cluster, "faults", create=False)
    api.inject("GET", "/apis/apps/v1/namespaces/trading/deployments", 500, times=3)
    api.inject("PATCH", f"{BASE}/faults/status", 409, times=2)
    api.inject("PATCH", "/api/v1/namespaces/trading/configmaps/faults-desired", 429, times=2)
    ts.create(mode="simulation")
    ts.wait_mode(Mode.SIMULATION, "simulation despite the failures", timeout=30)
    wait_until(lambda: ts.condition("Ready").get("status") == "True", timeout=30, what="Ready")
    assert all(f[3] == 0 for f in api.faults), api.faults  # every injected failure was met
    asyncio.run_coroutine_threadsafe(_compact(api), cluster.loop).result(5)
    later = System(cluster, "after-compaction")
    wait_until(lambda: len(later.objects("Deployment")) == 6, timeout=30, what="a system created after compaction")
    ts.patch(risk={"maxLeverage": 4})
    wait_until(lambda: all(c.config_generation == 2 for c in ts.controls.values()), what="configured after 410")
    later.delete()
    ts.delete()


async def _compact(api):
    api.compact()
    await api._notify()


def test_a_deleted_control_secret_rolls_the_pods_and_a_recreated_resource_is_configured(cluster, operator):
    """Review: with its Secret deleted the operator minted a token the running pods did not hold and lost
    them; with the resource created again (generation back to 1) components holding generation 7
    refused every new configuration."""
    ts = System(cluster, "relock", create=False)
    for c in ts.controls.values():
        c.config_generation = 7  # from an earlier incarnation of the same system
    ts.create()
    wait_until(lambda: len(ts.objects("Deployment")) == 6, what="deployments")
    wait_until(lambda: all(c.config_generation == 8 for c in ts.controls.values()), what="moved past 7")
    assert ts.desired()["generation"] == 8 and ts.status()["generationOffset"] == 7
    ts.patch(risk={"maxLeverage": 2})
    wait_until(lambda: all(c.config_generation == 9 for c in ts.controls.values()), what="new limits applied")
    assert ts.controls["risk"].config["risk"]["maxLeverage"] == 2

    def digests():
        return {d["spec"]["template"]["metadata"]["annotations"]["celeris.dev/control-token"]
                for d in ts.objects("Deployment")}

    before = digests()
    assert len(before) == 1 and "" not in before
    secret = "/api/v1/namespaces/trading/secrets/relock-control"
    token = cluster.call("GET", secret)[1]["data"]["token"]
    assert token not in json.dumps(ts.get()) and token not in json.dumps(ts.objects("Deployment"))
    cluster.call("DELETE", secret)
    wait_until(lambda: cluster.call("GET", secret)[0] == 200 and len(digests()) == 1 and digests() != before,
               what="new token, every pod group rolled")
    ts.delete()
