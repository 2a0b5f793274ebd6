#!/usr/bin/env python3
"""Market data benchmark: raw WebSocket message -> published book update, on the real capture.

Feeds every message of the first 60 s of the real BTCUSDT capture to the production MarketDataCore,
whose output goes through the in-process bus to a subscriber (the strategy engine's position in
`celeris up`). Receipt is the moment the raw frame is handed over; publication is the moment the
subscriber holds the update. Prints events/s (all messages) and p50/p99 receipt -> publication in
microseconds for depth events (bookTicker, 77 % of the messages, publishes nothing and is not in the
latency), as the median of `--runs` runs with their min-max, with a naive baseline (json + Decimal + dict
book + dict message) interleaved in the same runs. `--json` prints one JSON object. Targets: >= 150,000 events/s; p99 <= 100 us (NFR-MD-001).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _capture import CAPTURE, NaiveBook, btcusdt, load_messages, summarize  # noqa: E402

from celeris.domain.clock import TestClock  # noqa: E402
from celeris.marketdata.core import MarketDataCore, Sink  # noqa: E402
from celeris.domain.topics import book_topic
from celeris.transport.bus import InProcessBus  # noqa: E402


def run_celeris(messages: list[bytes]) -> tuple[list[int], float, dict[str, int]]:
    clock = TestClock(start_ns=0)
    bus = InProcessBus()
    published_at: list[int] = []
    stamp = time.perf_counter_ns
    bus.subscribe(book_topic("BTCUSDT"), lambda update: published_at.append(stamp()))
    core = MarketDataCore([btcusdt()], clock, Sink(book=lambda u: bus.publish(book_topic(u.symbol), u)))
    core.start()
    latencies = []
    on_message = core.on_message
    depth_ns = 0
    start_wall = time.perf_counter()
    for raw in messages:
        if raw[2] == 108:  # b'l': the REST snapshot line
            core.on_snapshot("BTCUSDT", raw, 0)
            continue
        before = len(published_at)
        received = stamp()
        on_message(raw, 0)
        if len(published_at) != before:
            latency = published_at[-1] - received
            latencies.append(latency)
            depth_ns += latency
    wall = time.perf_counter() - start_wall
    state = core.symbols["BTCUSDT"]
    return latencies, wall, {"gaps": state.synced.stats.gaps, "published": len(published_at),
                             "messages": core.stats.messages, "depth_s": depth_ns / 1e9}


def run_naive(messages: list[bytes]) -> tuple[list[int], float]:
    book = NaiveBook()
    published: list[dict] = []
    latencies = []
    stamp = time.perf_counter_ns
    start_wall = time.perf_counter()
    for raw in messages:
        received = stamp()
        kind, data = book.on_message(raw)
        if kind != "depth":
            continue
        published.append({"symbol": data["s"], "bids": sorted(book.bids.items(), reverse=True)[:20],
                          "asks": sorted(book.asks.items())[:20]})
        latencies.append(stamp() - received)
    return latencies, time.perf_counter() - start_wall


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--runs", "--repeat", dest="runs", type=int, default=5)
    args = parser.parse_args()
    messages = load_messages()
    levels = sorted(depth_levels(messages))
    runs, base_runs = [], []
    for _ in range(args.runs):  # interleaved, so both see the same machine
        latencies, wall, facts = run_celeris(messages)
        lat = summarize(latencies, wall)
        runs.append({"events_per_s": facts["messages"] / wall, "depth_events_per_s": len(latencies) / facts["depth_s"],
                     "p50_us": lat["p50_us"], "p99_us": lat["p99_us"], "facts": facts, "samples": len(latencies)})
        latencies, wall = run_naive(messages)
        base = summarize(latencies, wall)
        base_runs.append({"events_per_s": (len(messages) - 1) / wall, "p50_us": base["p50_us"], "p99_us": base["p99_us"]})
    facts = runs[-1]["facts"]
    figures = {k: spread([r[k] for r in runs]) for k in ("events_per_s", "depth_events_per_s", "p50_us", "p99_us")}
    baseline = {k: spread([r[k] for r in base_runs]) for k in ("events_per_s", "p50_us", "p99_us")}
    r = lambda v, n=2: round(v, n)  # noqa: E731
    out = {
        "benchmark": "marketdata", "input": CAPTURE.name, "runs": args.runs, "events": facts["messages"],
        "depth_events_per_run": runs[-1]["samples"], "book_updates_published": facts["published"],
        "depth_levels_per_event_median": levels[len(levels) // 2], "depth_levels_per_event_p99": levels[int(len(levels) * 0.99)],
        "events_per_s": round(figures["events_per_s"]["median"]),
        "events_per_s_min": round(figures["events_per_s"]["min"]), "events_per_s_max": round(figures["events_per_s"]["max"]),
        "depth_events_per_s": round(figures["depth_events_per_s"]["median"]),
        "p50_us": r(figures["p50_us"]["median"]), "p50_us_min": r(figures["p50_us"]["min"]),
        "p50_us_max": r(figures["p50_us"]["max"]),
        "p99_us": r(figures["p99_us"]["median"]), "p99_us_min": r(figures["p99_us"]["min"]),
        "p99_us_max": r(figures["p99_us"]["max"]),
        "baseline_events_per_s": round(baseline["events_per_s"]["median"]),
        "baseline_p50_us": r(baseline["p50_us"]["median"]), "baseline_p99_us": r(baseline["p99_us"]["median"]),
        "speedup_x": r(figures["events_per_s"]["median"] / baseline["events_per_s"]["median"]),
        "target_events_per_s": 150_000, "target_p99_us": 100, "gaps": facts["gaps"],
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"market data: raw frame -> published book update ({out['events']} messages, "
              f"{out['depth_events_per_run']} depth events of median {out['depth_levels_per_event_median']} and p99 "
              f"{out['depth_levels_per_event_p99']} levels; median of {args.runs} runs, min-max)")
        print(f"{'':10} {'events/s (all)':>26} {'p50 us (depth)':>22} {'p99 us (depth)':>22}")
        print(f"{'celeris':10} {out['events_per_s']:>10,} ({out['events_per_s_min']:,}-{out['events_per_s_max']:,})"
              f" {out['p50_us']:>8} ({out['p50_us_min']}-{out['p50_us_max']}) {out['p99_us']:>8} "
              f"({out['p99_us_min']}-{out['p99_us_max']})")
        print(f"{'naive':10} {out['baseline_events_per_s']:>10,} {'':15} {out['baseline_p50_us']:>8} {'':13} "
              f"{out['baseline_p99_us']:>8}")
        print(f"speed-up x{out['speedup_x']}; depth events alone {out['depth_events_per_s']:,}/s; targets >= 150,000 "
              f"events/s, p99 <= 100 us; gaps {out['gaps']}, book updates {out['book_updates_published']}")
    return 0


def depth_levels(messages: list[bytes]) -> list[int]:
    out = []
    for raw in messages:
        if b'"depthUpdate"' in raw[:80]:
            data = json.loads(raw)["data"]
            out.append(len(data["b"]) + len(data["a"]))
    return out


if __name__ == "__main__":
    sys.exit(main())
