"""The same operator embedded in-process (kopf.operator() on its own loop, as a user embedding it in a
larger program would run it) against the emulated Kubernetes API: a colocated system is created,
promoted one stage, halted and deleted."""

from __future__ import annotations

import asyncio
import threading

import pytest

from celeris.domain.modes import Mode
from tests.operator.test_operator import BASE, cluster, trading_system, wait_until  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def inprocess_operator(cluster):  # noqa: F811
    import kopf

    import celeris_operator.handlers  # noqa: F401  (registers the handlers)

    stop, ready = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(kopf.operator(clusterwide=True, standalone=True, stop_flag=stop, ready_flag=ready))
        except BaseException as exc:  # reported by the fixture's teardown
            failure.append(exc)

    thread = threading.Thread(target=run, name="kopf-inprocess", daemon=True)
    thread.start()
    assert ready.wait(20), "the in-process operator did not become ready"
    yield
    stop.set()
    thread.join(20)
    assert not thread.is_alive() and not failure, failure


def test_colocated_system_through_the_embedded_operator(cluster, inprocess_operator):  # noqa: F811
    status, _ = cluster.call("POST", BASE, trading_system(cluster.targets, name="eth-perp", topology="colocated",
                                                          symbols=["ETHUSDT"], strategies=[{
        "name": "mom-eth", "type": "momentum", "symbol": "ETHUSDT", "orderSize": "0.01"}]))
    assert status == 201
    api = cluster.api
    wait_until(lambda: len(api.by_kind("Deployment")) == 4, what="colocated deployments")
    hot = next(d for d in api.by_kind("Deployment") if d["metadata"]["name"] == "eth-perp-hotpath")
    containers = hot["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["marketdata", "strategy", "execution"]
    ports = {c["name"]: {e["name"]: e.get("value") for e in c["env"]}["CELERIS_GRPC_PORT"] for c in containers}
    assert len(set(ports.values())) == 3  # one network namespace: distinct loopback ports
    wait_until(lambda: cluster.get("eth-perp").get("status", {}).get("phase") == "Running", what="Running")

    cluster.patch_spec("eth-perp", {"mode": "simulation"})
    wait_until(lambda: cluster.get("eth-perp")["status"].get("mode") == "simulation", what="simulation")
    assert all(c.mode is Mode.SIMULATION for c in cluster.controls.values())

    cluster.patch_spec("eth-perp", {"halted": True})
    wait_until(lambda: cluster.get("eth-perp")["status"].get("phase") == "Halted", what="Halted")
    assert all(c.halted for c in cluster.controls.values())

    cluster.call("DELETE", f"{BASE}/eth-perp")
    wait_until(lambda: cluster.call("GET", f"{BASE}/eth-perp")[0] == 404, what="deletion")
    assert api.by_kind("Deployment") == []
