"""Shared by the benchmarks: the real capture's lines and the BTCUSDT instrument."""

from __future__ import annotations

import gzip
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "services"))

from celeris.domain.instruments import Instrument  # noqa: E402

CAPTURE = ROOT / "data" / "binance" / "hftbacktest_usdm_btcusdt_20240808_first60s.txt.gz"
EXCHANGE_INFO = ROOT / "data" / "binance" / "samples" / "nautilus" / "py_http_futures_market_exchange_info.json"


def load_messages() -> list[bytes]:
    """Every message of the capture in arrival order, receive timestamps stripped (snapshot included)."""
    with gzip.open(CAPTURE, "rb") as fh:
        return [line.split(b" ", 1)[1].rstrip(b"\n") for line in fh]


def btcusdt() -> Instrument:
    info = json.loads(EXCHANGE_INFO.read_text())
    return Instrument.from_exchange_info(next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT"))


def summarize(samples_ns: list[int], wall_s: float) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000

    return {"events": len(ordered), "events_per_s": len(ordered) / wall_s, "p50_us": pct(0.5),
            "p99_us": pct(0.99), "mean_us": statistics.fmean(ordered) / 1000}
