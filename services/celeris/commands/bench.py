"""`celeris bench`: every benchmark in one run, a table of figures, or one JSON object with --json.

Runs the scripts under bench/ (book, market data, execution, risk, account, dashboard) with short
settings, then measures tick-to-order (venue WebSocket message received -> signed order request handed to
the socket) on a running system in both topologies against a simulator process, and memory growth of
the in-process system over a bounded soak. Figures are printed, never judged: targets are shown beside
them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from celeris.domain.stats import percentile

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "bench"

SCRIPTS = [
    ("book", ["book.py", "--repeat", "2"]),
    ("marketdata", ["marketdata.py", "--repeat", "2"]),
    ("execution", ["execution.py", "--count", "1000"]),
    ("risk", ["risk.py", "--count", "2000"]),
    ("account", ["account.py", "--count", "300"]),
    ("dashboard", ["dashboard.py", "--clients", "100", "--duration", "1.5"]),
]


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="run the benchmark suite (about 45 s) and print the figures")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--soak-seconds", type=float, default=10.0, help="in-process run for tick-to-order and memory")
    p.add_argument("--services-seconds", type=float, default=8.0)
    p.add_argument("--only", default="", help="comma-separated subset: book,marketdata,...,tick_to_order")
    p.set_defaults(func=cmd_bench)


def _script(args: list[str]) -> dict[str, Any]:
    result = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:], "--json"], capture_output=True,
                            text=True, timeout=180, cwd=ROOT)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def _pct(samples: list[int]) -> dict[str, float]:
    return {"count": len(samples), "p50_us": round((percentile(samples, 0.5) or 0) / 1000, 1),
            "p99_us": round((percentile(samples, 0.99) or 0) / 1000, 1)}


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _start_sim(api_key: str, api_secret: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen([sys.executable, "-m", "celeris.cli", "sim", "--port", "0", "--api-key", api_key,
                             "--api-secret", api_secret], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    info = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
    return proc, info


def _up_args(extra: list[str]) -> argparse.Namespace:
    from celeris.commands import up as up_mod

    parser = argparse.ArgumentParser()
    up_mod.register(parser.add_subparsers())
    return parser.parse_args(["up", "--quiet", "--dashboard-port", "0", *extra])


async def _inproc(seconds: float) -> dict[str, Any]:
    """The in-process system against a simulator process: tick-to-order and memory over the soak."""
    from celeris.assembly.inprocess import InProcessSystem
    from celeris.commands.up import Up

    sim, info = _start_sim("bench-key", "bench-secret")
    try:
        args = _up_args(["--venue-rest-url", info["rest_url"], "--venue-ws-url", info["ws_url"], "--api-key",
                         "bench-key", "--api-secret", "bench-secret", "--mode", "live"])
        system = InProcessSystem(Up(args))
        await system.start()
        warmup = min(3.0, seconds / 3)
        await asyncio.sleep(warmup)
        rss_start = _rss_kb()
        await asyncio.sleep(max(0.0, seconds - warmup))
        rss_end = _rss_kb()
        t2o = _pct(list(system.execution.tick_to_order_ns))
        await system.stop()
    finally:
        sim.terminate()
        sim.wait(10)
    return {"tick_to_order": t2o, "soak_seconds": seconds, "rss_start_kb": rss_start, "rss_end_kb": rss_end,
            "memory_growth_pct": round((rss_end - rss_start) * 100 / max(rss_start, 1), 2)}


async def _services(seconds: float) -> dict[str, Any]:
    from celeris.api.v1 import control_pb2, control_pb2_grpc
    from celeris.runtime import grpc_server
    from celeris.commands.up import ServicesSystem, Up

    system = ServicesSystem(Up(_up_args(["--topology", "services"])))
    try:
        await system.start()
        await asyncio.sleep(seconds)
        async with grpc_server.insecure_channel(f"127.0.0.1:{system.ports.execution}") as channel:
            status = await control_pb2_grpc.ControlStub(channel).GetStatus(control_pb2.GetStatusRequest(), timeout=5)
        figures = json.loads(status.details.get("tick_to_order", "{}"))
    finally:
        await system.stop()
    return {"count": figures.get("count", 0), "p50_us": round(figures.get("p50_us", 0.0), 1),
            "p99_us": round(figures.get("p99_us", 0.0), 1)}


def cmd_bench(args: argparse.Namespace) -> int:
    only = {s for s in args.only.split(",") if s}
    started = time.monotonic()
    results: dict[str, Any] = {}
    for name, script in SCRIPTS:
        if not only or name in only:
            if not args.json:
                print(f"running {name} ...", file=sys.stderr, flush=True)
            results[name] = _script(script)
    if not only or "tick_to_order" in only:
        if not args.json:
            print("running tick-to-order (in-process, then services) ...", file=sys.stderr, flush=True)
        from celeris.runtime import logs
        logs.setup("bench", "ERROR", "text")
        inproc = asyncio.run(_inproc(args.soak_seconds))
        services = asyncio.run(_services(args.services_seconds))
        results["tick_to_order"] = {"inproc": inproc["tick_to_order"], "services": services,
                                    "target_inproc_p50_us": 60, "target_inproc_p99_us": 250,
                                    "target_services_p99_us": 2000}
        results["soak"] = {k: v for k, v in inproc.items() if k != "tick_to_order"}
        results["soak"]["target_memory_growth_pct"] = 5
    results["duration_s"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(results))
        return 0
    rows = [
        ("book events/s", results.get("book", {}).get("events_per_s"), results.get("book", {}).get("baseline_events_per_s"), ">= 150,000"),
        ("book p99 us/event", results.get("book", {}).get("p99_us"), results.get("book", {}).get("baseline_p99_us"), ""),
        ("market data events/s", results.get("marketdata", {}).get("events_per_s"), results.get("marketdata", {}).get("baseline_events_per_s"), ">= 150,000"),
        ("market data p99 us", results.get("marketdata", {}).get("p99_us"), results.get("marketdata", {}).get("baseline_p99_us"), "<= 100"),
        ("order submit p50 us", results.get("execution", {}).get("p50_us"), results.get("execution", {}).get("baseline_p50_us"), ""),
        ("order submit p99 us", results.get("execution", {}).get("p99_us"), results.get("execution", {}).get("baseline_p99_us"), "<= 1,000"),
        ("risk check p99 us", results.get("risk", {}).get("p99_us"), results.get("risk", {}).get("baseline_p99_us"), "<= 1,000"),
        ("risk checks/s over gRPC", results.get("risk", {}).get("grpc_checks_per_s"), "", ">= 1,000"),
        ("account query p99 us", results.get("account", {}).get("p99_us"), results.get("account", {}).get("baseline_p99_us"), "< 100,000"),
        ("dashboard web p99 ms", results.get("dashboard", {}).get("web_p99_staleness_ms"), results.get("dashboard", {}).get("baseline_p99_staleness_ms"), "<= 50"),
        ("dashboard tui p99 ms", results.get("dashboard", {}).get("tui_p99_staleness_ms"), "", "<= 50"),
    ]
    t2o = results.get("tick_to_order")
    if t2o:
        rows += [("tick-to-order inproc p50 us", t2o["inproc"]["p50_us"], "", "<= 60"),
                 ("tick-to-order inproc p99 us", t2o["inproc"]["p99_us"], "", "<= 250"),
                 ("tick-to-order services p50 us", t2o["services"]["p50_us"], "", ""),
                 ("tick-to-order services p99 us", t2o["services"]["p99_us"], "", "<= 2,000"),
                 ("memory growth % over soak", results["soak"]["memory_growth_pct"], "", "< 5")]
    print(f"{'figure':32} {'celeris':>12} {'baseline':>12} {'target':>12}")
    for name, value, baseline, target in rows:
        fmt = lambda v: f"{v:,}" if isinstance(v, (int, float)) else str(v if v is not None else "-")  # noqa: E731
        print(f"{name:32} {fmt(value):>12} {fmt(baseline):>12} {target:>12}")
    print(f"(suite took {results['duration_s']} s)")
    return 0

