#!/usr/bin/env python3
"""Market data benchmark: raw WebSocket message -> published book update, on the real capture.

Feeds every message of the first 60 s of the real BTCUSDT capture to the production MarketDataCore,
whose output goes through the in-process bus to a subscriber (the strategy engine's position in
`celeris up`). Receipt is the moment the raw frame is handed over; publication is the moment the
subscriber holds the update. Prints events/s (all messages) and p50/p99 receipt -> publication in
microseconds for depth events, with a naive baseline (json + Decimal + dict book + dict message) in the
same run. `--json` prints one JSON object. Targets: >= 150,000 events/s; p99 <= 100 us (NFR-MD-001).
"""

from __future__ import annotations

import argparse
import json
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
    start_wall = time.perf_counter()
    for raw in messages:
        if raw[2] == 108:  # b'l': the REST snapshot line
            core.on_snapshot("BTCUSDT", raw, 0)
            continue
        before = len(published_at)
        received = stamp()
        on_message(raw, 0)
        if len(published_at) != before:
            latencies.append(published_at[-1] - received)
    wall = time.perf_counter() - start_wall
    state = core.symbols["BTCUSDT"]
    return latencies, wall, {"gaps": state.synced.stats.gaps, "published": len(published_at),
                             "messages": core.stats.messages}


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    messages = load_messages()
    best = None
    for _ in range(args.repeat):
        latencies, wall, facts = run_celeris(messages)
        eps = facts["messages"] / wall
        if best is None or eps > best[0]:
            best = (eps, summarize(latencies, wall), facts)
    base = None
    for _ in range(max(1, args.repeat // 2)):
        latencies, wall = run_naive(messages)
        eps = (len(messages) - 1) / wall
        if base is None or eps > base[0]:
            base = (eps, summarize(latencies, wall))
    assert best is not None and base is not None
    eps, lat, facts = best
    out = {
        "benchmark": "marketdata", "input": CAPTURE.name, "events": facts["messages"],
        "events_per_s": round(eps), "book_updates_published": facts["published"],
        "p50_us": round(lat["p50_us"], 2), "p99_us": round(lat["p99_us"], 2), "mean_us": round(lat["mean_us"], 2),
        "baseline_events_per_s": round(base[0]), "baseline_p50_us": round(base[1]["p50_us"], 2),
        "baseline_p99_us": round(base[1]["p99_us"], 2), "speedup_x": round(eps / base[0], 2),
        "target_events_per_s": 150_000, "target_p99_us": 100, "gaps": facts["gaps"],
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"market data: raw frame -> published book update ({out['events']} messages, best of {args.repeat})")
        print(f"{'':10} {'events/s':>12} {'p50 us':>8} {'p99 us':>8}   (latency of depth events)")
        print(f"{'celeris':10} {out['events_per_s']:>12,} {out['p50_us']:>8} {out['p99_us']:>8}")
        print(f"{'naive':10} {out['baseline_events_per_s']:>12,} {out['baseline_p50_us']:>8} "
              f"{out['baseline_p99_us']:>8}")
        print(f"speed-up x{out['speedup_x']}; targets >= 150,000 events/s, p99 <= 100 us; "
              f"gaps {out['gaps']}, book updates {out['book_updates_published']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
