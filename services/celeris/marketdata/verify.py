"""`celeris marketdata verify-capture FILE`: replay a real capture through the live sync code.

Reads hftbacktest's collector format (gzip or plain text, one `<recv_ns> <raw JSON>` per line: combined
stream frames, plus bare REST depth snapshots where the collector fetched one) and feeds it to the same
MarketDataCore the service runs. Snapshot lines answer the core's snapshot requests; a gap with no later
snapshot in the file leaves the book stale (and says so) rather than guessing. Every bookTicker whose
update id matches the book's is compared with our best bid/ask.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from celeris.domain.book import BookState
from celeris.domain.clock import TestClock
from celeris.domain.instruments import Instrument
from celeris.marketdata.core import MarketDataCore

SNAPSHOT_FILE = Path(__file__).resolve().parent.parent / "venues" / "binance" / "exchange_info_snapshot.json"


def bundled_instruments() -> dict[str, Instrument]:
    table = json.loads(SNAPSHOT_FILE.read_text())
    return {s["symbol"]: Instrument.from_exchange_info(s) for s in table["symbols"]}


def _open(path: Path) -> Any:
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def verify_capture(path: Path, symbol: str = "BTCUSDT", instrument: Instrument | None = None) -> dict[str, Any]:
    instrument = instrument or bundled_instruments()[symbol]
    clock = TestClock(start_ns=0)
    core = MarketDataCore([instrument], clock)
    core.start()
    lines = 0
    with _open(path) as fh:
        for line in fh:
            lines += 1
            stamp, _, raw = line.partition(b" ")
            try:
                ts = int(stamp)
                if ts > clock.now_ns():
                    clock.set(ts)
            except ValueError:
                core.stats.malformed += 1
                continue
            if raw.startswith(b'{"lastUpdateId"'):
                core.on_snapshot(symbol, raw, ts)
            else:
                core.on_message(raw, ts)
    state = core.symbols[symbol]
    stats = state.synced.stats
    return {
        "file": path.name, "symbol": symbol, "lines": lines, "events": core.stats.messages,
        "depth_events_applied": stats.applied, "gaps": stats.gaps,
        "resyncs": max(0, state.resync_requests - 1), "resyncs_completed": stats.resyncs,
        "stale_dropped": stats.stale_dropped, "crossed_books": stats.crossed,
        "bookticker_checks": state.bookticker_checks, "bookticker_mismatches": state.bookticker_mismatches,
        "malformed": core.stats.malformed, "final_state": state.synced.state.value,
        "events_while_not_live": state.events_while_not_live,
        "ok": stats.gaps == 0 and state.bookticker_mismatches == 0 and state.synced.state is BookState.LIVE,
    }
