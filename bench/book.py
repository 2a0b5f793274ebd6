#!/usr/bin/env python3
"""Order book benchmark on the real BTCUSDT capture: depth frame -> parsed -> sequence check -> synced book.

Depth events are measured apart from other messages: the 6,551 diff-depth events of the full capture
(data/binance/hftbacktest_usdm_btcusdt_20240808.gz, 345 s, 68 levels per event on average) go through the
production path (celeris.venues.binance.codec + celeris.domain.book.SyncedBook) after its REST snapshot,
with a fresh level cache every run, so parsing cold prices counts. In the same run, alternating with it:
- a naive baseline (json.loads, Decimal, dict book, no sequence rules), and
- NautilusTrader's Binance adapter path (msgspec -> OrderBookDeltas -> its Rust L2 book), when the peer
  environment .venv/peers exists (`scripts/install --bench`); it runs in its own process
  (bench/peers/nautilus_depth.py) and its ratio is printed.
A second figure replays every message of the first 60 s (bookTicker and trades included) for the
all-message rate. Every figure is the median of --runs runs with their min-max; `--json` prints one object.
Targets (SPEC): >= 10,000 depth events/s on one core, >= 3x Nautilus's adapter path.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _capture import CAPTURE, ROOT, NaiveBook, btcusdt, load_messages  # noqa: E402

from celeris.domain.book import OrderBook, SyncedBook  # noqa: E402
from celeris.domain.instruments import Instrument  # noqa: E402
from celeris.domain.stats import percentile  # noqa: E402
from celeris.venues.binance import codec  # noqa: E402

FULL_CAPTURE = ROOT / "data" / "binance" / "hftbacktest_usdm_btcusdt_20240808.gz"
PEER_PYTHON = ROOT / ".venv" / "peers" / "bin" / "python"
PEER_SCRIPT = ROOT / "bench" / "peers" / "nautilus_depth.py"
TARGET_DEPTH_EVENTS_PER_S = 10_000
TARGET_NAUTILUS_RATIO = 3.0


def depth_frames() -> tuple[bytes, list[bytes]]:
    """The full capture's REST snapshot line and its diff-depth frames, receive timestamps stripped."""
    with gzip.open(FULL_CAPTURE, "rb") as fh:
        lines = [line.split(b" ", 1)[1].rstrip(b"\n") for line in fh]
    snapshot = next(line for line in lines if line[2] == 108)  # b'l': {"lastUpdateId": ...
    return snapshot, [line for line in lines if b'"depthUpdate"' in line]


def run_depth(snapshot: bytes, frames: list[bytes], instrument: Instrument) -> tuple[float, list[int], SyncedBook]:
    """Celeris: seconds for all frames, nanoseconds per frame, the final book."""
    parser = codec.LevelParser(instrument)
    synced = SyncedBook(OrderBook(instrument.symbol))
    snap = codec.decode_snapshot(snapshot)
    synced.on_snapshot(snap.lastUpdateId, *codec.snapshot_levels(snap, parser))
    decode, depth_event, on_event, clock = codec.decode_combined, codec.depth_event, synced.on_event, time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    started = time.perf_counter()
    for raw in frames:
        t0 = clock()
        on_event(depth_event(decode(raw).data, parser))
        append(clock() - t0)
    return time.perf_counter() - started, samples, synced


def run_naive_depth(snapshot: bytes, frames: list[bytes]) -> tuple[float, NaiveBook]:
    book = NaiveBook()
    book.on_message(snapshot)
    started = time.perf_counter()
    for raw in frames:
        book.on_message(raw)
        if book.bids and book.asks:
            max(book.bids), min(book.asks)
    return time.perf_counter() - started, book


def run_all_messages(messages: list[bytes], instrument: Instrument) -> float:
    """Every message of the first 60 s through the codec; depth into the synced book. Seconds."""
    parser = codec.LevelParser(instrument)
    synced = SyncedBook(OrderBook(instrument.symbol))
    DepthUpdate, BookTicker, Trade = codec.DepthUpdate, codec.BookTicker, codec.Trade
    started = time.perf_counter()
    for raw in messages:
        if raw[2] == 108:
            snap = codec.decode_snapshot(raw)
            synced.on_snapshot(snap.lastUpdateId, *codec.snapshot_levels(snap, parser))
            continue
        data = codec.decode_combined(raw).data
        if type(data) is DepthUpdate:
            synced.on_event(codec.depth_event(data, parser))
        elif type(data) is BookTicker:
            parser.price(data.b) < parser.price(data.a)
        elif type(data) is Trade:
            parser.price(data.p), parser.qty(data.q)
    return time.perf_counter() - started


def run_nautilus() -> dict[str, object] | None:
    """One run of the peer in its own environment, or None when it is not installed."""
    if not PEER_PYTHON.exists():
        return None
    result = subprocess.run([str(PEER_PYTHON), str(PEER_SCRIPT), str(FULL_CAPTURE), "1"], capture_output=True,
                            text=True, timeout=300)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=5, help="runs of each path; medians are reported")
    parser.add_argument("--repeat", type=int, help=argparse.SUPPRESS)  # the old name of --runs
    parser.add_argument("--no-peer", action="store_true", help="skip NautilusTrader even when installed")
    args = parser.parse_args()
    runs = args.repeat or args.runs

    instrument = btcusdt()
    snapshot, frames = depth_frames()
    messages = load_messages()
    celeris_rates, naive_rates, nautilus_rates, all_rates, ratios = [], [], [], [], []
    samples: list[int] = []
    peer_error = None
    peer_best: list[str] = []
    final: SyncedBook | None = None
    for _ in range(runs):  # alternate the paths so machine noise falls on all of them alike
        seconds, run_samples, final = run_depth(snapshot, frames, instrument)
        celeris_rates.append(len(frames) / seconds)
        samples += run_samples
        naive_seconds, naive = run_naive_depth(snapshot, frames)
        naive_rates.append(len(frames) / naive_seconds)
        all_rates.append(len(messages) / run_all_messages(messages, instrument))
        peer = None if args.no_peer else run_nautilus()
        if peer and "error" in peer:
            peer_error = peer["error"]
        elif peer:
            nautilus_rates.append(peer["events"] / peer["seconds"])  # type: ignore[operator]
            peer_best = peer["best"]  # type: ignore[assignment]
            ratios.append(celeris_rates[-1] / nautilus_rates[-1])
    assert final is not None
    samples.sort()
    depth = spread(celeris_rates)
    out: dict[str, object] = {
        "benchmark": "book",
        "input": FULL_CAPTURE.name,
        "runs": runs,
        "depth_events": len(frames),
        "depth_levels_per_event": round(sum(len(codec.decode_combined(f).data.b) + len(codec.decode_combined(f).data.a)
                                            for f in frames) / len(frames), 1),
        "depth_events_per_s": round(depth["median"]),
        "depth_events_per_s_min": round(depth["min"]),
        "depth_events_per_s_max": round(depth["max"]),
        "depth_p50_us": round((percentile(samples, 0.5) or 0) / 1000, 1),
        "depth_p99_us": round((percentile(samples, 0.99) or 0) / 1000, 1),
        "depth_samples": len(samples),
        "baseline_depth_events_per_s": round(statistics.median(naive_rates)),
        "speedup_vs_baseline_x": round(depth["median"] / statistics.median(naive_rates), 2),
        "all_messages_input": CAPTURE.name,
        "all_messages_per_s": round(statistics.median(all_rates)),
        "target_depth_events_per_s": TARGET_DEPTH_EVENTS_PER_S,
        "target_nautilus_ratio_x": TARGET_NAUTILUS_RATIO,
        "gaps": final.stats.gaps,
        "depth_events_applied": final.stats.applied,
        "crossed_books": final.stats.crossed,
        "best_bid_ticks": (final.book.best_bid() or (0, 0))[0],
        "best_ask_ticks": (final.book.best_ask() or (0, 0))[0],
    }
    if nautilus_rates:
        ratio = spread(ratios)
        out.update({"nautilus_depth_events_per_s": round(statistics.median(nautilus_rates)),
                    "nautilus_ratio_x": round(ratio["median"], 2), "nautilus_ratio_x_min": round(ratio["min"], 2),
                    "nautilus_ratio_x_max": round(ratio["max"], 2),
                    # Both books must end at the same top of book, or the comparison compares nothing.
                    "nautilus_same_top_of_book": peer_best == [instrument.price_grid.format(out["best_bid_ticks"]),
                                                               instrument.price_grid.format(out["best_ask_ticks"])]})
    else:
        out["nautilus"] = peer_error or ("skipped (--no-peer)" if args.no_peer else
                                         "not installed: scripts/install --bench creates .venv/peers")
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"depth frame -> synced book, {out['depth_events']} real BTCUSDT depth events "
          f"({out['depth_levels_per_event']} levels each), median of {runs} runs (min-max)")
    print(f"  celeris    {out['depth_events_per_s']:>9,} events/s ({out['depth_events_per_s_min']:,}-"
          f"{out['depth_events_per_s_max']:,})  p50 {out['depth_p50_us']} us  p99 {out['depth_p99_us']} us"
          f"  [target >= {TARGET_DEPTH_EVENTS_PER_S:,}{'' if depth['median'] >= TARGET_DEPTH_EVENTS_PER_S else '  MISSED'}]")
    print(f"  naive      {out['baseline_depth_events_per_s']:>9,} events/s (json + Decimal dict book)")
    if nautilus_rates:
        mark = "" if out["nautilus_ratio_x"] >= TARGET_NAUTILUS_RATIO else "  MISSED"  # type: ignore[operator]
        print(f"  nautilus   {out['nautilus_depth_events_per_s']:>9,} events/s (Binance adapter path); celeris is "
              f"x{out['nautilus_ratio_x']} ({out['nautilus_ratio_x_min']}-{out['nautilus_ratio_x_max']})"
              f"  [target >= x{TARGET_NAUTILUS_RATIO}{mark}]; same final top of book: {out['nautilus_same_top_of_book']}")
    else:
        print(f"  nautilus   {out['nautilus']}")
    print(f"all messages of the first 60 s (depth, bookTicker, trades): {out['all_messages_per_s']:,} messages/s")
    print(f"gaps {out['gaps']}, depth events applied {out['depth_events_applied']}, crossed {out['crossed_books']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
