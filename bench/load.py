#!/usr/bin/env python3
"""Market data under load: the simulator's load mode against the production market data service.

Each scenario starts `celeris sim --load-depth-rate N` (N diff-depth events/s per symbol on @depth@0ms,
besides its normal market) and runs the market data service `celeris up` builds (WebSocket client, codec,
synced books, publication on the in-process bus) in this process against it. After every book is live it
measures a window of --seconds:
- received: depth events published on the bus; the venue's emitted count comes from /_sim/state, so
  `drops` = sequence gaps + resyncs seen by the books, and `backlog_frames` what the venue still had queued
  for us at the end (a client that keeps up has ~0);
- lag: subscriber callback time - the event's E (the venue's ms clock, so up to 1 ms is rounding);
- CPU: this process's CPU per depth event, and the simulator's own CPU share.
The baseline in the same run is a bare aiohttp WebSocket reader of the same streams (no parsing, no book):
the floor of reading frames in Python. `received` also counts the depth events of the simulator's normal
market tick, so it can exceed the load offered. Scenarios: 1 symbol x 10,000/s and 10 x 1,000/s (the load
targets), then 2, 10 and 50 symbols at --scaling-rate each (CPU per event as symbols grow).
Every figure is the median of --runs runs with min-max; `--json` prints one object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "services"))

import aiohttp  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from celeris.domain.stats import percentile  # noqa: E402
from celeris.domain.topics import book_topic  # noqa: E402
from celeris.marketdata.service import MarketDataConfig, MarketDataService  # noqa: E402
from celeris.runtime.clock import SystemClock  # noqa: E402
from celeris.transport.bus import InProcessBus  # noqa: E402
from celeris.venues.binance.rest import BinanceRestClient  # noqa: E402

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def symbols_for(count: int) -> list[str]:
    real = ["BTCUSDT", "ETHUSDT"]
    return (real + [f"L{i:02d}USDT" for i in range(count)])[:count]


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime + stime


async def sim_state(session: aiohttp.ClientSession, admin_url: str) -> dict[str, Any]:
    async with session.get(admin_url + "/state") as resp:
        return await resp.json()


async def measure_celeris(info: dict[str, Any], symbols: list[str], seconds: float,
                          session: aiohttp.ClientSession, sim_pid: int) -> dict[str, Any]:
    clock, bus = SystemClock(), InProcessBus()
    rest = BinanceRestClient(info["rest_url"], clock)
    service = MarketDataService(MarketDataConfig(symbols=tuple(symbols), depth_speed="@0ms", verify_interval_s=0),
                                rest, info["ws_url"], clock, bus, CollectorRegistry())
    lags: list[int] = []
    counting = [False]

    def on_book(update: Any) -> None:
        if counting[0] and not update.snapshot:
            lags.append(time.time_ns() - update.ts_event_ns)

    for symbol in symbols:
        bus.subscribe(book_topic(symbol), on_book)
    await service.start()
    try:
        async with asyncio.timeout(60):
            while not service.ready:
                await asyncio.sleep(0.05)
        assert service.core is not None
        stats = [s.synced.stats for s in service.core.symbols.values()]
        gaps0 = sum(s.gaps + s.resyncs for s in stats)
        before = await sim_state(session, info["admin_url"])
        cpu0, sim0, t0 = time.process_time(), proc_cpu_s(sim_pid), time.perf_counter()
        counting[0] = True
        await asyncio.sleep(seconds)
        counting[0] = False
        cpu1, sim1, elapsed = time.process_time(), proc_cpu_s(sim_pid), time.perf_counter() - t0
        after = await sim_state(session, info["admin_url"])
        gaps = sum(s.gaps + s.resyncs for s in stats) - gaps0
    finally:
        await service.stop()
        await rest.close()
    emitted = (after["load"]["emitted_per_symbol"] - before["load"]["emitted_per_symbol"]) * len(symbols)
    lags.sort()
    received = len(lags)
    return {"received": received, "emitted": emitted, "events_per_s": received / elapsed, "drops": gaps,
            "backlog_frames": after["queued_frames"],
            "lag_p50_ms": (percentile(lags, 0.5) or 0) / 1e6, "lag_p99_ms": (percentile(lags, 0.99) or 0) / 1e6,
            "cpu_us_per_event": (cpu1 - cpu0) * 1e6 / max(received, 1), "cpu_share": (cpu1 - cpu0) / elapsed,
            "sim_cpu_share": (sim1 - sim0) / elapsed}


async def measure_bare(info: dict[str, Any], symbols: list[str], seconds: float,
                       session: aiohttp.ClientSession) -> dict[str, Any]:
    """Baseline: read the same depth frames and do nothing with them."""
    streams = "/".join(f"{s.lower()}@depth@0ms" for s in symbols)
    received = 0
    async with session.ws_connect(f"{info['ws_url']}/stream?streams={streams}", max_msg_size=0) as ws:
        await ws.receive()  # connected and flowing
        cpu0, t0 = time.process_time(), time.perf_counter()
        deadline = t0 + seconds
        while time.perf_counter() < deadline:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            received += 1
        cpu1, elapsed = time.process_time(), time.perf_counter() - t0
    return {"events_per_s": received / elapsed, "cpu_us_per_event": (cpu1 - cpu0) * 1e6 / max(received, 1)}


async def scenario(count: int, rate: int, seconds: float) -> dict[str, Any]:
    symbols = symbols_for(count)
    exe = Path(sys.executable).with_name("celeris")
    proc = subprocess.Popen([str(exe), "sim", "--port", "0", "--api-key", "load-key", "--api-secret", "load-secret",
                             "--symbols", ",".join(symbols), "--load-depth-rate", str(rate)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        info = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as session:
            celeris = await measure_celeris(info, symbols, seconds, session, proc.pid)
            bare = await measure_bare(info, symbols, seconds, session)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {"celeris": celeris, "bare": bare}


def median_spread(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [r[key] for r in runs]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(name: str, count: int, rate: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    celeris = [r["celeris"] for r in runs]
    out: dict[str, Any] = {"scenario": name, "symbols": count, "rate_per_symbol_per_s": rate,
                           "offered_events_per_s": count * rate, "runs": len(runs)}
    for key, digits in (("events_per_s", 0), ("lag_p50_ms", 2), ("lag_p99_ms", 2), ("cpu_us_per_event", 1),
                        ("cpu_share", 2), ("sim_cpu_share", 2), ("backlog_frames", 0)):
        spread = median_spread(celeris, key)
        out[key] = round(spread["median"], digits)
        out[f"{key}_min"], out[f"{key}_max"] = round(spread["min"], digits), round(spread["max"], digits)
    out["drops_total"] = sum(r["drops"] for r in celeris)
    out["received_total"] = sum(r["received"] for r in celeris)
    out["emitted_total"] = sum(r["emitted"] for r in celeris)
    out["baseline_events_per_s"] = round(statistics.median(r["bare"]["events_per_s"] for r in runs))
    out["baseline_cpu_us_per_event"] = round(statistics.median(r["bare"]["cpu_us_per_event"] for r in runs), 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured window per run")
    parser.add_argument("--scaling-rate", type=int, default=200, help="events/s per symbol in the scaling runs")
    parser.add_argument("--only", default="", help="comma-separated: load,scaling")
    args = parser.parse_args()
    wanted = {s for s in args.only.split(",") if s} or {"load", "scaling"}
    plan = []
    if "load" in wanted:
        plan += [("1x10000", 1, 10_000), ("10x1000", 10, 1_000)]
    if "scaling" in wanted:
        plan += [(f"scaling-{n}", n, args.scaling_rate) for n in (2, 10, 50)]
    results = []
    for name, count, rate in plan:
        runs = [asyncio.run(scenario(count, rate, args.seconds)) for _ in range(args.runs)]
        results.append(summarize(name, count, rate, runs))
    out = {"benchmark": "load", "seconds_per_run": args.seconds, "scenarios": results,
           "target": "0 drops; lag bounded; >= 10,000 depth events/s for 1 symbol and 10 x 1,000/s"}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"market data under load: median of {args.runs} runs of {args.seconds} s (min-max); "
          "baseline: a bare WebSocket reader of the same frames")
    print(f"{'scenario':12} {'load/s':>10} {'received/s':>18} {'drops':>6} {'lag p99 ms':>16} "
          f"{'cpu us/ev':>14} {'bare us/ev':>10} {'core':>5} {'sim':>5} {'backlog':>8}")
    for r in results:
        print(f"{r['scenario']:12} {r['offered_events_per_s']:>10,} "
              f"{r['events_per_s']:>8,.0f} ({r['events_per_s_min']:,.0f}-{r['events_per_s_max']:,.0f}) "
              f"{r['drops_total']:>6} {r['lag_p99_ms']:>6} ({r['lag_p99_ms_min']}-{r['lag_p99_ms_max']}) "
              f"{r['cpu_us_per_event']:>5} ({r['cpu_us_per_event_min']}-{r['cpu_us_per_event_max']}) "
              f"{r['baseline_cpu_us_per_event']:>10} {r['cpu_share']:>5} {r['sim_cpu_share']:>5} "
              f"{r['backlog_frames']:>8}")
        if r["drops_total"] or r["events_per_s"] < 0.95 * r["offered_events_per_s"]:
            print(f"  MISSED: {r['scenario']} did not keep up (drops {r['drops_total']}, "
                  f"received {r['received_total']:,} of {r['emitted_total']:,} emitted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
