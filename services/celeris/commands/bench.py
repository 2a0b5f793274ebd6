"""`celeris bench`: every benchmark in one run, a table of figures, or one JSON object with --json.

Runs the scripts under bench/ (book, market data, execution, risk, account, dashboard, backtest) with short
settings, then tick-to-order wire to wire in both topologies (bench/tick_to_order.py: the simulator
stamps the depth frame it wrote and the order request it received; medians of runs, a bare-client
baseline), and memory growth of the in-process system over a bounded soak. Figures are printed, never
judged: targets are shown beside them.
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
    ("book", ["book.py", "--runs", "3"]),
    ("marketdata", ["marketdata.py", "--repeat", "2"]),
    ("execution", ["execution.py", "--count", "1000"]),
    ("risk", ["risk.py", "--count", "1000", "--runs", "5"]),
    ("account", ["account.py", "--count", "300"]),
    ("dashboard", ["dashboard.py", "--clients", "100", "--duration", "2.5", "--runs", "5"]),
    ("load", ["load.py", "--runs", "1", "--seconds", "2", "--only", "load"]),
    ("backtest", ["backtest.py", "--runs", "3"]),
]


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="run the benchmark suite (about a minute) and print the figures")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--soak-seconds", type=float, default=10.0, help="in-process run for tick-to-order and memory")
    p.add_argument("--soak-warmup-seconds", type=float, default=None,
                   help="trading before the soak's first memory reading (default: a third of the soak, at most "
                        "3 s). A soak that claims flat memory needs more than execution's closed-order retention "
                        "(600 s): the working set fills until then")
    p.add_argument("--services-seconds", type=float, default=8.0, help="(unused: see --t2o-runs)")
    p.add_argument("--t2o-runs", type=int, default=5, help="tick-to-order runs per topology")
    p.add_argument("--t2o-samples", type=int, default=1000, help="frame -> order samples per run")
    p.add_argument("--t2o-transports", default="websocket",
                   help="order transports to measure: websocket (the default path), rest, or both (websocket,rest)")
    p.add_argument("--only", default="", help="comma-separated subset: book,marketdata,...,tick_to_order; "
                                              "soak alone: the memory soak")
    p.set_defaults(func=cmd_bench)


def _script(args: list[str], timeout_s: float = 180) -> dict[str, Any]:
    result = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:], "--json"], capture_output=True,
                            text=True, timeout=timeout_s, cwd=ROOT)
    if result.returncode != 0:
        return {"error": _error_line(result.stderr)}
    return json.loads(result.stdout.strip().splitlines()[-1])


def _error_line(stderr: str) -> str:
    """The exception a failed script ended with: the last line of its last traceback, not a warning printed
    after it at interpreter exit (such as an un-awaited coroutine of an object collected late)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if "Traceback (most recent call last):" in lines:
        tail = lines[len(lines) - 1 - lines[::-1].index("Traceback (most recent call last):"):]
        for line in tail[1:]:
            if not line.startswith((" ", "\t")):
                return line.strip()
    return lines[-1] if lines else "failed"


def _pct(samples: list[int]) -> dict[str, float]:
    return {"count": len(samples), "p50_us": round((percentile(samples, 0.5) or 0) / 1000, 1),
            "p99_us": round((percentile(samples, 0.99) or 0) / 1000, 1)}


def _wire_figures(out: dict[str, Any], name: str) -> dict[str, Any]:
    """One configuration of bench/tick_to_order.py: medians of its runs, their min-max, all samples."""
    figures: dict[str, Any] = {"count": out.get(f"{name}_samples_total", 0)}
    for q in ("p50", "p99", "p999"):
        figures[f"{q}_us"] = out.get(f"{name}_{q}_us_median")
        figures[f"{q}_us_min"], figures[f"{q}_us_max"] = out.get(f"{name}_{q}_us_min"), out.get(f"{name}_{q}_us_max")
    return figures


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


async def _inproc(seconds: float, warmup_s: float | None = None) -> dict[str, Any]:
    """The in-process system against a simulator process: tick-to-order and memory over the soak (RSS after
    `warmup_s` of trading, and `seconds` later), with the sizes of the tables that grow with trading."""
    from celeris.assembly.inprocess import InProcessSystem
    from celeris.commands.up import Up

    sim, info = _start_sim("bench-key", "bench-secret")
    try:
        args = _up_args(["--venue-rest-url", info["rest_url"], "--venue-ws-url", info["ws_url"], "--api-key",
                         "bench-key", "--api-secret", "bench-secret", "--mode", "live"])
        system = InProcessSystem(Up(args))
        await system.start()
        warmup = min(3.0, seconds / 3) if warmup_s is None else warmup_s
        await asyncio.sleep(warmup)
        rss_start, tables_start = _rss_kb(), _tables(system)
        await asyncio.sleep(seconds if warmup_s is not None else max(0.0, seconds - warmup))
        rss_end, tables_end = _rss_kb(), _tables(system)
        t2o = _pct(list(system.execution.tick_to_order_ns))  # in-process stamps only: see tick_to_order.py
        await system.stop()
    finally:
        sim.terminate()
        sim.wait(10)
    return {"tick_to_order": t2o, "soak_seconds": seconds, "warmup_s": warmup, "rss_start_kb": rss_start,
            "rss_end_kb": rss_end, "memory_growth_pct": round((rss_end - rss_start) * 100 / max(rss_start, 1), 2),
            "tables_start": tables_start, "tables_end": tables_end}


def _tables(system: Any) -> dict[str, int]:
    """Entries of the in-memory tables that grow with trading (each bounded by a window or a capacity)."""
    execution, strategy = system.execution, getattr(system, "strategy", None)
    out = {"execution_orders": len(execution.orders), "execution_ids_in_window": len(execution.retention.dropped_ids),
           "orders_placed": execution.stats.accepted}
    if strategy is not None:
        out["strategy_owner_index"] = len(strategy.sdk_owner)
    return out


Row = tuple[str, Any, Any, str]
"""(figure, celeris value, baseline value, target such as "<= 60" or ">= 10,000"; "" when none)."""


def table_rows(results: dict[str, Any]) -> list[Row]:
    """The figures with their baselines and the targets of SPEC/issue 16."""
    def get(section: str, key: str) -> Any:
        return results.get(section, {}).get(key)

    rows: list[Row] = [
        ("depth events/s -> synced book", get("book", "depth_events_per_s"), get("book", "baseline_depth_events_per_s"),
         ">= 10,000"),
        ("depth vs nautilus adapter (x)", get("book", "nautilus_ratio_x"), "", ">= 3"),
        ("depth p99 us/event", get("book", "depth_p99_us"), "", ""),
        ("market data events/s", get("marketdata", "events_per_s"), get("marketdata", "baseline_events_per_s"),
         ">= 150,000"),
        ("market data frame->published p99 us", get("marketdata", "p99_us"), get("marketdata", "baseline_p99_us"),
         "<= 100"),
        ("order submit p50 us", get("execution", "p50_us"), get("execution", "baseline_p50_us"), ""),
        ("order submit p99 us", get("execution", "p99_us"), get("execution", "baseline_p99_us"), "<= 1,000"),
        ("risk check p50 us", get("risk", "p50_us"), get("risk", "baseline_p50_us"), "<= 20"),
        ("risk check p99 us", get("risk", "p99_us"), get("risk", "baseline_p99_us"), ""),
        # The stream (CheckOrders through execution's client) is how the check meets the target; unary calls
        # stay shown against the health check, the ceiling of any unary call on the same server.
        ("risk checks/s over gRPC stream", get("risk", "grpc_stream_checks_per_s"), get("risk", "health_checks_per_s"),
         ">= 5,000"),
        ("risk check p99 us over gRPC stream", get("risk", "grpc_stream_p99_us"), "", ""),
        ("risk checks/s over gRPC unary", get("risk", "grpc_checks_per_s"), get("risk", "health_checks_per_s"), ""),
        ("account query p99 us", get("account", "p99_us"), get("account", "baseline_p99_us"), "< 100,000"),
        ("dashboard web p99 ms", get("dashboard", "web_p99_staleness_ms"), get("dashboard", "baseline_p99_staleness_ms"),
         "<= 50"),
        ("dashboard web push p99 ms", get("dashboard", "web_push_p99_staleness_ms"),
         get("dashboard", "baseline_push_p99_staleness_ms"), "<= 50"),
        ("dashboard tui p99 ms", get("dashboard", "tui_p99_staleness_ms"), get("dashboard", "baseline_p99_staleness_ms"),
         "<= 50"),
        ("dashboard burst p99 ms", get("dashboard", "burst_p99_staleness_ms"), "", "<= 50"),
        ("dashboard burst updates/s/client", get("dashboard", "burst_updates_per_client_per_s"), "", "<= 50"),
        ("backtest messages/s (real capture)", get("backtest", "messages_per_s"), "", ">= 50,000"),
        ("backtest messages/CPU-s", get("backtest", "messages_per_cpu_s"), "", ""),
        ("backtest messages/s, no strategies", get("backtest", "messages_per_s_no_strategies"), "", ""),
    ]
    for scenario in results.get("load", {}).get("scenarios", []):
        rows += [(f"load {scenario['scenario']} received/s", scenario["events_per_s"],
                  # keeping up: within 5 % of the load offered (the window's edges and the normal market move it)
                  scenario["baseline_events_per_s"], f">= {scenario['offered_events_per_s'] * 95 // 100:,}"),
                 (f"load {scenario['scenario']} drops", scenario["drops_total"], "", "<= 0"),
                 (f"load {scenario['scenario']} lag p99 ms", scenario["lag_p99_ms"], "", "")]
    t2o = results.get("tick_to_order")
    if t2o:
        base = t2o["baseline"]
        rows += [("tick-to-order inproc p50 us", t2o["inproc"]["p50_us"], base["p50_us"], "<= 60"),
                 ("tick-to-order inproc p99 us", t2o["inproc"]["p99_us"], base["p99_us"], "<= 250"),
                 ("tick-to-order services p50 us", t2o["services"]["p50_us"], base["p50_us"], ""),
                 ("tick-to-order services p99 us", t2o["services"]["p99_us"], base["p99_us"], "<= 2,000")]
        if "inproc_rest" in t2o and t2o.get("order_transport") != "rest":
            rest, rest_base = t2o["inproc_rest"], t2o.get("baseline_rest", {})
            rows += [("tick-to-order inproc p50 us (REST)", rest["p50_us"], rest_base.get("p50_us"), ""),
                     ("tick-to-order inproc p99 us (REST)", rest["p99_us"], rest_base.get("p99_us"), "")]
    if "soak" in results:
        rows.append(("memory growth % over soak", results["soak"]["memory_growth_pct"], "", "< 1"))
    return rows


def verdict(value: Any, target: str) -> str:
    """"ok", "MISS", or "" when there is no target."""
    if not target or not isinstance(value, (int, float)):
        return "" if not target else "MISS"  # a figure that is missing misses its target
    op, _, number = target.partition(" ")
    limit = float(number.replace(",", ""))
    ok = {"<=": value <= limit, ">=": value >= limit, "<": value < limit, ">": value > limit}[op]
    return "ok" if ok else "MISS"


def render_table(results: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:,}" if isinstance(v, (int, float)) else str(v if v not in (None, "") else "-")

    lines = [f"{'figure':38} {'celeris':>12} {'baseline':>12} {'target':>12}  "]
    for name, value, baseline, target in table_rows(results):
        if value is None and baseline in (None, ""):
            continue  # not run (--only)
        lines.append(f"{name:38} {fmt(value):>12} {fmt(baseline):>12} {target:>12}  {verdict(value, target)}")
    return "\n".join(lines)


def cmd_bench(args: argparse.Namespace) -> int:
    only = {s for s in args.only.split(",") if s}
    started = time.monotonic()
    results: dict[str, Any] = {}
    for name, script in SCRIPTS:
        if not only or name in only:
            if not args.json:
                print(f"running {name} ...", file=sys.stderr, flush=True)
            results[name] = _script(script)
    if only == {"soak"}:  # the memory soak alone (e.g. --soak-seconds 600 --soak-warmup-seconds 660)
        soak = asyncio.run(_inproc(args.soak_seconds, args.soak_warmup_seconds))
        results["soak"] = {k: v for k, v in soak.items() if k != "tick_to_order"}
        results["soak"]["target_memory_growth_pct"] = 1
    if not only or "tick_to_order" in only:
        if not args.json:
            print("running tick-to-order (in-process, then services) ...", file=sys.stderr, flush=True)
        from celeris.runtime import logs
        logs.setup("bench", "ERROR", "text")
        transports = [t for t in args.t2o_transports.split(",") if t]
        wire = _script(["tick_to_order.py", "--runs", str(args.t2o_runs), "--samples", str(args.t2o_samples),
                        "--order-transport", ",".join(transports), "--budget-s", str(120 * len(transports))],
                       timeout_s=180 * len(transports) + 60)
        inproc = asyncio.run(_inproc(args.soak_seconds, args.soak_warmup_seconds))
        results["tick_to_order"] = {
            # The first transport is the row of the table; each measured one is under its own name too.
            **{t: _wire_figures(wire, f"{t}_{transports[0]}") for t in ("inproc", "services", "baseline")},
            **{f"{t}_{x}": _wire_figures(wire, f"{t}_{x}") for t in ("inproc", "services", "baseline")
               for x in transports},
            "order_transport": transports[0],
            "inproc_internal": inproc["tick_to_order"], "runs": args.t2o_runs, "samples_per_run": args.t2o_samples,
            "measured": "simulator: depth frame written -> order request headers parsed; median of runs",
            "target_inproc_p50_us": 60, "target_inproc_p99_us": 250, "target_services_p99_us": 2000,
            **({"error": wire["error"]} if "error" in wire else {})}
        results["soak"] = {k: v for k, v in inproc.items() if k != "tick_to_order"}
        results["soak"]["target_memory_growth_pct"] = 1
    results["duration_s"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(results))
        return 0
    print(render_table(results))
    t2o = results.get("tick_to_order")
    if t2o:
        print(f"(tick-to-order: wire to wire, measured by the simulator; orders over {t2o['order_transport']}; "
              f"median of {t2o['runs']} runs of {t2o['samples_per_run']} samples; baseline: a bare aiohttp client "
              f"answering each frame over the same transport)")
    soak = results.get("soak")
    if soak:
        print(f"(memory: RSS after {soak['warmup_s']:.0f} s of trading and {soak['soak_seconds']:.0f} s later; "
              f"execution's closed-order retention is 600 s, so a short soak still sees the working set fill)")
    dash = results.get("dashboard")
    if dash and "web_p99_staleness_ms" in dash:
        print(f"(dashboard: staleness from each change at the source to its arrival at {dash['clients']} clients over "
              f"WebSockets, {dash['steady_offered_changes_per_s']:.0f} changes/s and a {dash['burst_offered_changes_per_s']:,}/s burst; "
              f"push p99: the oldest change in each push; median of {dash['runs']} runs, web p99 "
              f"{dash['web_p99_staleness_ms_min']}-{dash['web_p99_staleness_ms_max']} ms; baseline: one client)")
    print(f"(suite took {results['duration_s']} s)")
    return 0

