"""A real execution process under the real operator (kopf against the emulated API): demoted and halted
by the operator, killed with SIGKILL and started again from the desired state the operator wrote (as the
kubelet mounts it) while its pod template still says live — it comes back demoted and halted and refuses
every order from the first one its port answers. Started from a stale copy (a volume the kubelet has not
refreshed yet), the operator's next pass corrects it.
"""

from __future__ import annotations

import asyncio
import json
import signal

import grpc
import pytest

from celeris.api.v1 import common_pb2, control_pb2, control_pb2_grpc
from tests.e2e.test_desired_state import AUTH, TOKEN, attack_execution, sim_orders, spawn, stop
from tests.operator.test_operator import BASE, System, cluster, operator  # noqa: F401  (fixtures)
from tests.sim.conftest import sim_process  # noqa: F401
from tests.support.servers import free_port
from tests.support.waits import wait_until

pytestmark = pytest.mark.slow


def kubelet_copy(ts: System, path) -> dict:
    """What the kubelet puts in the pod's volume: the operator's desired-state ConfigMap, as it is now."""
    state = ts.desired()
    path.write_text(json.dumps(state))
    return state


async def execution_status(target: str) -> control_pb2.ComponentStatus:
    async with grpc.aio.insecure_channel(target) as channel:
        return await control_pb2_grpc.ControlStub(channel).GetStatus(control_pb2.GetStatusRequest(), timeout=5,
                                                                     metadata=AUTH)


async def test_a_killed_execution_comes_back_as_the_operator_decided(cluster, operator, sim_process, tmp_path):  # noqa: F811
    port = free_port()
    target = f"127.0.0.1:{port}"
    ts = System(cluster, "restart-real", create=False)
    ts.targets["execution"] = target
    ts.controls.pop("execution")
    # The system's Control token, as the operator would find it (it never rewrites an existing one).
    status, _ = cluster.call("POST", "/api/v1/namespaces/trading/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "restart-real-control"},
        "stringData": {"token": TOKEN}})
    assert status == 201
    ts.create(mode="simulation", venue={"kind": "simulator", "restUrl": sim_process["rest_url"],
                                        "wsUrl": sim_process["ws_url"]})
    wait_until(lambda: any(o["metadata"]["name"] == "restart-real-desired" for o in ts.objects("ConfigMap")),
               what="the desired state")
    path = tmp_path / "desired.json"
    kubelet_copy(ts, path)
    proc = spawn("execution", sim_process, port, path, tmp_path / "execution-1.err")
    try:
        wait_until(lambda: ts.status().get("mode") == "simulation", timeout=60, what="promoted to simulation")
        assert (await execution_status(target)).mode == common_pb2.MODE_SIMULATION

        # The operator halts and demotes it; the desired state says so before the component is told.
        ts.patch(halted=True, mode="observation")
        wait_until(lambda: ts.status().get("mode") == "observation" and ts.desired()["halted"], what="demoted")
        status = await execution_status(target)
        assert status.halted and status.mode == common_pb2.MODE_OBSERVATION

        # SIGKILL; the pod starts again with its old template (mode=live) and the mounted desired state.
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        state = kubelet_copy(ts, path)
        assert state["mode"] == "observation" and state["halted"] and state["haltReason"] == "spec.halted"
        orders_before = await sim_orders(sim_process)
        proc = spawn("execution", sim_process, port, path, tmp_path / "execution-2.err")
        refusals, statuses = await attack_execution(target, proc, "observation", {"HALTED", "OBSERVATION_MODE"})
        assert statuses[-1].config_generation == state["generation"]
        assert await sim_orders(sim_process) == orders_before, "an order reached the venue"

        # A stale copy (the volume not refreshed yet: simulation, not halted): the next pass corrects it.
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        path.write_text(json.dumps({**state, "mode": "simulation", "halted": False, "haltReason": "",
                                    "generation": 1}))
        proc = spawn("execution", sim_process, port, path, tmp_path / "execution-3.err")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            assert loop.time() < deadline, "the operator did not correct the restarted component"
            assert proc.poll() is None, "execution exited"
            try:
                status = await execution_status(target)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.1)
                continue
            if status.halted and status.mode == common_pb2.MODE_OBSERVATION and \
                    status.config_generation == state["generation"]:
                break
            await asyncio.sleep(0.1)
        # The event is posted by kopf's own queue, after the correction the status shows.
        wait_until(lambda: "ModeCorrected" in {e.get("reason") for e in ts.events()}, timeout=15,
                   what="the ModeCorrected event")
    finally:
        stop(proc)
    ts.delete()
