"""The real kopf operator (kopf run, via KopfRunner) against the emulated Kubernetes API, with the
components' real Control gRPC servers: create, spec change, promotion through gates, illegal jump,
halt, demotion, image rollout and rollback, delete with finalizer."""

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
OPERATOR_ENV = {"CELERIS_OPERATOR_INTERVAL_S": "0.5", "CELERIS_OPERATOR_IMAGE_TIMEOUT_S": "2"}

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


def trading_system(cluster, name="btc-perp", **spec):
    body = {"apiVersion": "celeris.dev/v1alpha1", "kind": "TradingSystem",
            "metadata": {"name": name, "annotations": {"celeris.dev/control-targets": json.dumps(cluster.targets)}},
            "spec": {"image": "celeris:0.1.0", "symbols": ["BTCUSDT"], "mode": "observation",
                     "venue": {"kind": "binance-usdm", "restUrl": "https://testnet.example/fapi",
                               "wsUrl": "wss://testnet.example/ws", "credentialsSecret": "binance-api"},
                     "rollout": {"stages": [{"mode": "observation"}, {"mode": "simulation"}, {"mode": "live"}]},
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


def test_schema_and_cel_refuse_bad_resources(cluster):
    bad = trading_system(cluster, name="bad-jump", mode="live")
    del bad["spec"]["rollout"]
    status, body = cluster.call("POST", BASE, bad)
    assert status == 422 and "observation -> simulation -> live" in body["message"]
    nonsense = trading_system(cluster, name="bad-values", risk={"maxDailyDrawdownPct": 400})
    status, body = cluster.call("POST", BASE, nonsense)
    assert status == 422 and "maxDailyDrawdownPct" in body["message"]
    lower = trading_system(cluster, name="bad-symbol", symbols=["btc-usdt"])
    assert cluster.call("POST", BASE, lower)[0] == 422


def test_lifecycle_through_the_operator(cluster, operator):
    status, created = cluster.call("POST", BASE, trading_system(cluster))
    assert status == 201
    api = cluster.api
    wait_until(lambda: len(api.by_kind("Deployment")) == 6 and len(api.by_kind("PodDisruptionBudget")) == 6,
               what="deployments and disruption budgets")
    deployments = api.by_kind("Deployment")
    assert all(d["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"] for d in deployments)
    hot = next(d for d in deployments if d["metadata"]["name"] == "btc-perp-execution")
    pod = hot["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["requests"] == pod["containers"][0]["resources"]["limits"]  # Guaranteed
    assert pod["tolerations"][0]["value"] == "hotpath" and pod["containers"][0]["readinessProbe"]["grpc"]
    assert {s["metadata"]["name"] for s in api.by_kind("Service")} >= {"btc-perp-execution", "btc-perp-dashboard"}
    configmap = api.by_kind("ConfigMap")[0]
    assert "binance-api" not in json.dumps(configmap) and "apiSecret" not in json.dumps(configmap)
    assert len(api.by_kind("PodDisruptionBudget")) == 6 and len(api.by_kind("NetworkPolicy")) == 1
    wait_until(lambda: cluster.get("btc-perp").get("status", {}).get("phase") == "Running", what="Running")
    ts = cluster.get("btc-perp")
    assert ts["status"]["observedGeneration"] == 1 and ts["status"]["mode"] == "observation"

    # Changed strategy parameters reach the running components without a restart.
    assert all(c.config_generation == 1 for c in cluster.controls.values())
    cluster.patch_spec("btc-perp", {"strategies": [{"name": "mom-btc", "type": "momentum", "symbol": "BTCUSDT",
                                                    "orderSize": "0.002", "params": {"lookback": 20}}]})
    wait_until(lambda: all(c.config_generation == 2 for c in cluster.controls.values()), what="configuration")
    assert cluster.controls["strategy"].config["strategies"][0]["params"] == {"lookback": 20}
    wait_until(lambda: set(cluster.get("btc-perp")["status"].get("appliedGeneration", {}).values()) == {2},
               what="applied generation in status")

    # A component that refuses a configuration keeps its generation; status and an event say so.
    async def refuse(settings):
        raise ValueError("maxLeverage above what this account allows")

    cluster.controls["risk"].on_configure.append(refuse)
    cluster.patch_spec("btc-perp", {"risk": {"maxLeverage": 50}})
    wait_until(lambda: str(cluster.get("btc-perp")["status"]["appliedGeneration"].get("risk")).startswith("failed"),
               what="refused configuration in status")
    assert cluster.controls["risk"].config_generation == 2 and cluster.controls["strategy"].config_generation == 3
    assert "ConfigurationNotApplied" in {e.get("reason") for e in cluster.api.by_kind("Event")}
    cluster.controls["risk"].on_configure.remove(refuse)

    # Promotion through the gates, one stage at a time; live needs an approval.
    cluster.patch_spec("btc-perp", {"mode": "live"})
    wait_until(lambda: cluster.get("btc-perp")["status"].get("mode") == "simulation", what="simulation")
    assert all(c.mode is Mode.SIMULATION for c in cluster.controls.values())
    # The gate's verdict is in the status: it waits for the approval, and holds the mode meanwhile.
    wait_until(lambda: "approvedForLive" in (cluster.get("btc-perp")["status"].get("stage") or {}).get("waiting", []),
               what="the approval gate")
    ts = cluster.get("btc-perp")
    assert ts["status"]["mode"] == "simulation" and "approvedForLive" in ts["status"]["stage"]["waiting"]
    cluster.patch_spec("btc-perp", {"approvedForLive": True})
    wait_until(lambda: cluster.get("btc-perp")["status"].get("mode") == "live", what="live")
    assert all(c.mode is Mode.LIVE for c in cluster.controls.values())
    history = [h["mode"] for h in cluster.get("btc-perp")["status"]["history"]]
    assert history[-2:] == ["simulation", "live"]

    # A failed gate in live demotes to simulation with the reason.
    cluster.controls["risk"].ready = False
    wait_until(lambda: cluster.get("btc-perp")["status"].get("mode") == "simulation", what="demotion")
    assert "componentsReady" in cluster.get("btc-perp")["status"]["history"][-1]["reason"]
    assert cluster.controls["execution"].mode is Mode.SIMULATION
    cluster.controls["risk"].ready = True

    # Halt and resume from the spec.
    cluster.patch_spec("btc-perp", {"halted": True})
    wait_until(lambda: all(c.halted for c in cluster.controls.values()), what="halted components")
    wait_until(lambda: cluster.get("btc-perp")["status"].get("phase") == "Halted", what="Halted phase")
    cluster.patch_spec("btc-perp", {"halted": False})
    wait_until(lambda: not any(c.halted for c in cluster.controls.values()), what="resumed")

    # Image rollout: component by component; a broken image is rolled back.
    cluster.patch_spec("btc-perp", {"image": "celeris:0.2.0"})
    wait_until(lambda: cluster.get("btc-perp")["status"].get("lastGoodImage") == "celeris:0.2.0", what="rollout")
    assert {c["image"] for d in api.by_kind("Deployment") for c in d["spec"]["template"]["spec"]["containers"]} == \
        {"celeris:0.2.0"}
    api.never_ready.add("celeris:broken")
    cluster.patch_spec("btc-perp", {"image": "celeris:broken"})
    wait_until(lambda: (cluster.get("btc-perp")["status"].get("lastRollout") or {}).get("result") == "rolled back",
               timeout=20, what="rollback")
    assert {c["image"] for d in api.by_kind("Deployment") for c in d["spec"]["template"]["spec"]["containers"]} == \
        {"celeris:0.2.0"}
    ts = cluster.get("btc-perp")
    assert ts["status"]["lastRollout"]["failedComponent"] == "marketdata"

    # An illegal jump on an existing resource is refused by the API.
    status, body = cluster.call("PATCH", f"{BASE}/btc-perp", {"spec": {"rollout": None, "mode": "live"}},
                                "application/merge-patch+json")
    assert status == 422

    # Events were posted for the transitions.
    reasons = {e.get("reason") for e in api.by_kind("Event")}
    assert {"Promoted", "Demoted", "Halted", "RolledBack"} <= reasons

    # Delete: the finalizer halts the components first, then everything goes.
    for ctl in cluster.controls.values():
        ctl.halted = False
    cluster.call("DELETE", f"{BASE}/btc-perp")
    wait_until(lambda: cluster.call("GET", f"{BASE}/btc-perp")[0] == 404, what="deletion")
    assert all(c.halted for c in cluster.controls.values())
    assert api.by_kind("Deployment") == []
