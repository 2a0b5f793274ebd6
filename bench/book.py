#!/usr/bin/env python3
"""Order book benchmark on the real BTCUSDT capture: raw JSON lines -> parsed -> sequence check -> book.

Replays the first 60 s of data/binance/hftbacktest_usdm_btcusdt_20240808_first60s.txt.gz (depthUpdate
@0ms, bookTicker and trade messages, plus the REST snapshot) through the production path
(celeris.venues.binance.codec + celeris.domain.book.SyncedBook), then through a naive baseline
(json.loads, Decimal, dict book, sorted() for the best levels) in the same run. Prints events/s and
p50/p99 microseconds per event; `--json` prints one JSON object. Single-threaded: one core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _capture import CAPTURE, NaiveBook, btcusdt, load_messages, summarize  # noqa: E402

from celeris.domain.book import OrderBook, SyncedBook  # noqa: E402
from celeris.domain.instruments import Instrument  # noqa: E402
from celeris.venues.binance import codec  # noqa: E402


def run_celeris(messages: list[bytes], instrument: Instrument) -> tuple[list[int], dict[str, int]]:
    parser = codec.LevelParser(instrument)
    synced = SyncedBook(OrderBook(instrument.symbol))
    decode, depth_event = codec.decode_combined, codec.depth_event
    DepthUpdate, BookTicker, Trade = codec.DepthUpdate, codec.BookTicker, codec.Trade
    clock = time.perf_counter_ns
    samples = []
    append = samples.append
    top_checks = trades = 0
    last_trade = 0
    for raw in messages:
        start = clock()
        if raw[2] == 108:  # b'l': the REST snapshot line
            snap = codec.decode_snapshot(raw)
            synced.on_snapshot(snap.lastUpdateId, *codec.snapshot_levels(snap, parser))
            continue
        data = decode(raw).data
        if type(data) is DepthUpdate:
            synced.on_event(depth_event(data, parser))
        elif type(data) is BookTicker:
            # The cheap top-of-book feed: parsed to ticks, used by strategies between depth events.
            bid, ask = parser.price(data.b), parser.price(data.a)
            top_checks += bid < ask
        elif type(data) is Trade:
            last_trade = parser.price(data.p)
            trades += parser.qty(data.q) > 0
        append(clock() - start)
    stats = synced.stats
    return samples, {"gaps": stats.gaps, "applied": stats.applied, "crossed": stats.crossed,
                     "bid_levels": synced.book.depth[0], "last_trade_ticks": last_trade}


def run_naive(messages: list[bytes]) -> list[int]:
    book = NaiveBook()
    samples = []
    clock = time.perf_counter_ns
    for raw in messages:
        start = clock()
        kind, data = book.on_message(raw)
        if kind == "snapshot":
            continue
        if kind == "depth":
            if book.bids and book.asks:
                max(book.bids), min(book.asks)
        elif kind == "bookTicker":
            Decimal(data["b"]) < Decimal(data["a"])
        elif kind != "stale":
            Decimal(data["p"]), Decimal(data["q"])
        samples.append(clock() - start)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=5, help="replays of the 60 s (best run is reported)")
    args = parser.parse_args()

    messages = load_messages()
    instrument = btcusdt()
    best = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        samples, facts = run_celeris(messages, instrument)
        wall = time.perf_counter() - start
        result = summarize(samples, wall)
        if best is None or result["events_per_s"] > best[0]["events_per_s"]:
            best = (result, facts)
    baseline = None
    for _ in range(max(1, args.repeat // 2)):
        start = time.perf_counter()
        samples = run_naive(messages)
        result = summarize(samples, time.perf_counter() - start)
        if baseline is None or result["events_per_s"] > baseline["events_per_s"]:
            baseline = result
    assert best is not None and baseline is not None
    celeris, facts = best
    out = {
        "benchmark": "book",
        "input": CAPTURE.name,
        "events": celeris["events"],
        "events_per_s": round(celeris["events_per_s"]),
        "p50_us": round(celeris["p50_us"], 2),
        "p99_us": round(celeris["p99_us"], 2),
        "mean_us": round(celeris["mean_us"], 2),
        "baseline_events_per_s": round(baseline["events_per_s"]),
        "baseline_p50_us": round(baseline["p50_us"], 2),
        "baseline_p99_us": round(baseline["p99_us"], 2),
        "speedup_x": round(celeris["events_per_s"] / baseline["events_per_s"], 2),
        "target_events_per_s": 150_000,
        "gaps": facts["gaps"],
        "depth_events_applied": facts["applied"],
        "crossed_books": facts["crossed"],
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"order book replay of {out['input']} ({out['events']} events, best of {args.repeat})")
        print(f"{'':10} {'events/s':>12} {'p50 us':>8} {'p99 us':>8}")
        print(f"{'celeris':10} {out['events_per_s']:>12,} {out['p50_us']:>8} {out['p99_us']:>8}")
        print(f"{'naive':10} {out['baseline_events_per_s']:>12,} {out['baseline_p50_us']:>8} "
              f"{out['baseline_p99_us']:>8}")
        print(f"speed-up x{out['speedup_x']}; target {out['target_events_per_s']:,} events/s; "
              f"gaps {out['gaps']}, depth events applied {out['depth_events_applied']}, "
              f"crossed {out['crossed_books']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
