"""`celeris replay` settles funding: the real 60 s capture with a markPrice stream laid over it (a funding
time every 5 s at 0.01 %, the mark at the last trade price; the real capture has no markPrice events) gives
the same trading as the capture alone, and the report's net PnL differs by exactly the funding it reports;
deterministic, and net PnL = realized - fees + funding + unrealized to the money unit."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

from celeris.commands.replay import replay
from tests.conftest import CAPTURE_60S


def with_marks(src: Path, dst: Path, rate: str, every_ms: int = 5000) -> int:
    """Copy the capture, adding a markPrice event after each second of it; returns how many it added."""
    out, added, last_ms, price = [], 0, 0, None
    with gzip.open(src, "rt") as f:
        for line in f:
            out.append(line)
            stamp, _, raw = line.partition(" ")
            if '"e":"trade"' in raw:
                price = json.loads(raw)["data"]["p"]
            ms = int(stamp) // 1_000_000
            if price is None or ms - last_ms < 1000:
                continue
            last_ms = ms
            mark = price + "000000"  # 8 decimals, as the stream shows it
            event = {"e": "markPriceUpdate", "E": ms, "s": "BTCUSDT", "p": mark, "P": mark, "i": mark, "r": rate,
                     "T": (ms // every_ms + 1) * every_ms}
            out.append(f"{stamp} " + json.dumps({"stream": "btcusdt@markPrice@1s", "data": event},
                                                separators=(",", ":")) + "\n")
            added += 1
    with gzip.open(dst, "wt") as f:
        f.writelines(out)
    return added


async def test_replay_reports_funding_and_counts_it_in_net_pnl(tmp_path):
    marked = tmp_path / "with_marks.gz"
    added = with_marks(CAPTURE_60S, marked, "0.00010000")
    plain = await replay(CAPTURE_60S, "BTCUSDT")
    funded = await replay(marked, "BTCUSDT")
    assert funded == await replay(marked, "BTCUSDT")  # deterministic
    assert funded["messages"] == plain["messages"] + added
    assert plain["funding"] == "0.00000000" and plain["funding_payments"] == 0
    assert funded["funding_payments"] > 0 and Decimal(funded["funding"]) != 0
    for key in ("signals", "orders", "fills", "position", "realized_pnl", "unrealized_pnl", "fees"):
        assert funded[key] == plain[key], key  # marks do not change the trading, only the money
    d = {k: Decimal(funded[k]) for k in ("realized_pnl", "fees", "funding", "unrealized_pnl", "net_pnl")}
    assert d["net_pnl"] == d["realized_pnl"] - d["fees"] + d["funding"] + d["unrealized_pnl"]
    assert d["net_pnl"] - Decimal(plain["net_pnl"]) == d["funding"]


async def test_the_sign_of_the_rate_decides_who_pays(tmp_path):
    up, down = tmp_path / "up.gz", tmp_path / "down.gz"
    with_marks(CAPTURE_60S, up, "0.00010000")
    with_marks(CAPTURE_60S, down, "-0.00010000")
    paid_up = Decimal((await replay(up, "BTCUSDT"))["funding"])
    paid_down = Decimal((await replay(down, "BTCUSDT"))["funding"])
    assert paid_up == -paid_down != 0  # the same positions at the same marks: mirrored payments
