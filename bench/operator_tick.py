#!/usr/bin/env python3
"""Operator benchmark: the CPU one reconcile tick over 20 TradingSystems costs the operator process.

Setup, outside this process so their CPU is not counted: the emulated Kubernetes API server
(tests/operator/apiserver.py) and the six components' real Control gRPC servers, in one child process.
Twenty TradingSystems point at those components (the control-targets annotation). A tick is what the
kopf timer does every interval: one reconcile pass per TradingSystem (fresh read, owned objects listed,
drift checked, components' status read and compared, gates judged, one status write). The first tick
creates every object and is not measured. Measured: this process's CPU time (time.process_time) per tick
in steady state, median of the ticks with min-max, and wall time; kopf's own overhead is not in it. The
baseline in the same run is the floor a tick cannot go below: the same twenty reads and status reads
(one GET of each TradingSystem and six GetStatus calls each) with nothing decided or written.
Target: < 1 s of operator CPU per tick. `--json` prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVERS = textwrap.dedent("""
    import asyncio, json, sys
    from concurrent import futures
    import grpc
    from aiohttp import web
    from celeris.api.v1 import control_pb2_grpc
    from celeris.domain.clock import TestClock
    from celeris.runtime import control
    from tests.operator.apiserver import ApiServer
    from tests.operator.test_operator import COMPONENTS, SyncControl

    async def main():
        runner = web.AppRunner(ApiServer().app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        targets = {}
        for name in COMPONENTS:
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
            control_pb2_grpc.add_ControlServicer_to_server(SyncControl(control.ComponentControl(name, TestClock())), server)
            targets[name] = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
            server.start()
        print(json.dumps({"port": site._server.sockets[0].getsockname()[1], "targets": targets}), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")


def trading_system(name: str, targets: dict[str, str]) -> dict:
    return {"apiVersion": "celeris.dev/v1alpha1", "kind": "TradingSystem",
            "metadata": {"name": name, "annotations": {"celeris.dev/control-targets": json.dumps(targets)}},
            "spec": {"image": "celeris:0.1.0", "symbols": ["BTCUSDT"], "mode": "observation",
                     "venue": {"kind": "simulator", "restUrl": "http://127.0.0.1:1", "wsUrl": "ws://127.0.0.1:1"},
                     "strategies": [{"name": "mom", "type": "momentum", "symbol": "BTCUSDT", "orderSize": "0.001"}]}}


def use_kubeconfig(tmp: Path, port: int) -> None:
    import kubernetes.config.kube_config

    path = tmp / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "bench",
        "clusters": [{"name": "bench", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
        "users": [{"name": "bench", "user": {"token": "bench"}}]}))
    os.environ["KUBECONFIG"] = str(path)
    kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(path)


async def run(systems: int, ticks: int, tmp: Path) -> dict[str, float | int]:
    server = subprocess.Popen([sys.executable, "-c", SERVERS], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "services"),
                                                                                str(ROOT / "operator")])})
    try:
        info = json.loads(server.stdout.readline())
        use_kubeconfig(tmp, info["port"])
        from celeris_operator import kube, reconciler
        from celeris_operator.controls import Controls
        from kubernetes import client

        kube.api_client.cache_clear()
        api = client.CustomObjectsApi(kube.api_client())
        return await _measure(info, systems, ticks, api, kube, reconciler, Controls)
    finally:
        server.terminate()
        server.wait(10)


async def _measure(info, systems, ticks, api, kube, reconciler, Controls):  # type: ignore[no-untyped-def]
    names = [f"ts-{i:02d}" for i in range(systems)]
    for name in names:
        await asyncio.to_thread(api.create_namespaced_custom_object, "celeris.dev", "v1alpha1", "trading",
                                "tradingsystems", trading_system(name, info["targets"]))
    controls = Controls()
    env = reconciler.Env(kube, controls, allow_targets_annotation=True)

    async def tick() -> None:
        for name in names:
            await reconciler.reconcile(env, "trading", name)

    async def floor() -> None:
        for name in names:
            body = await asyncio.to_thread(kube.read_ts, "trading", name)
            await controls.statuses(reconciler.targets(body), "")

    await tick()  # creates every object: not steady state
    await tick()
    samples: dict[str, list[float]] = {"tick": [], "floor": [], "wall": []}
    for _ in range(ticks):
        for kind, fn in (("tick", tick), ("floor", floor)):
            cpu, wall = time.process_time(), time.perf_counter()
            await fn()
            samples[kind].append(time.process_time() - cpu)
            if kind == "tick":
                samples["wall"].append(time.perf_counter() - wall)
    applied = 0
    for name in names:
        body = await asyncio.to_thread(kube.read_ts, "trading", name)
        applied += int(body["status"].get("objectsApplied", 0))
    await controls.close()
    med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    return {"systems": systems, "ticks": ticks, "tick_cpu_ms_median": round(med["tick"], 1),
            "tick_cpu_ms_min": round(min(samples["tick"]) * 1000, 1),
            "tick_cpu_ms_max": round(max(samples["tick"]) * 1000, 1),
            "tick_wall_ms_median": round(med["wall"], 1), "floor_cpu_ms_median": round(med["floor"], 1),
            "target_tick_cpu_ms": 1000, "objects_reapplied_in_last_tick": applied}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", type=int, default=20)
    p.add_argument("--ticks", type=int, default=7)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(args.systems, args.ticks, Path(tmp)))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"operator reconcile tick over {result['systems']} TradingSystems ({result['ticks']} ticks):")
        print(f"  CPU per tick   {result['tick_cpu_ms_median']:8.1f} ms  [{result['tick_cpu_ms_min']}-"
              f"{result['tick_cpu_ms_max']}]   target < {result['target_tick_cpu_ms']} ms")
        print(f"  wall per tick  {result['tick_wall_ms_median']:8.1f} ms")
        print(f"  floor (reads only) {result['floor_cpu_ms_median']:6.1f} ms CPU")
        print(f"  objects re-applied in the last tick: {result['objects_reapplied_in_last_tick']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
