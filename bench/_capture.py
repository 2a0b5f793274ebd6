"""Shared by the benchmarks: the real capture's lines, the BTCUSDT instrument and the naive baseline book."""

from __future__ import annotations

import gzip
import json
import statistics
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "services"))

from celeris.domain.instruments import Instrument  # noqa: E402
from celeris.domain.stats import percentile  # noqa: E402

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
        return (percentile(ordered, q) or 0) / 1000

    return {"events": len(ordered), "events_per_s": len(ordered) / wall_s, "p50_us": pct(0.5),
            "p99_us": pct(0.99), "mean_us": statistics.fmean(ordered) / 1000}


class NaiveBook:
    """The baseline a first version would be: json.loads and Decimal-keyed dicts, applying each depth
    event newer than the snapshot (the sequence rules are left out, which flatters the baseline)."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.last_u: int | None = None

    def on_message(self, raw: bytes) -> tuple[str, dict[str, Any]]:
        """("snapshot" | "depth" | "stale" | the event type, the payload), after applying what applies."""
        msg = json.loads(raw)
        if "lastUpdateId" in msg:
            self.bids = {Decimal(p): Decimal(q) for p, q in msg["bids"]}
            self.asks = {Decimal(p): Decimal(q) for p, q in msg["asks"]}
            self.last_u = msg["lastUpdateId"]
            return "snapshot", msg
        data = msg["data"]
        if data["e"] != "depthUpdate":
            return data["e"], data
        if self.last_u is None or data["u"] < self.last_u:
            return "stale", data
        for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
            for p, q in levels:
                price, qty = Decimal(p), Decimal(q)
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.last_u = data["u"]
        return "depth", data
