#!/usr/bin/env python3
"""NautilusTrader's Binance adapter depth path on the real capture, for bench/depth.py to compare against.

Runs in the peer environment (.venv/peers, `scripts/install --bench`), where nautilus_trader is installed;
it never imports Celeris. The path is the adapter's own (nautilus_trader/adapters/binance/data.py
`_handle_book_diff_update`): msgspec-decode the combined frame into `BinanceOrderBookMsg`, build
`OrderBookDeltas` with `parse_to_order_book_deltas`, apply them to an L2 `OrderBook` (Rust core), after the
REST snapshot is installed the same way. Nautilus does not check the `pu` chain, which flatters it.

Usage: nautilus_depth.py CAPTURE RUNS  -> one JSON line per run: {"events", "seconds"}.
"""

from __future__ import annotations

import gzip
import json
import sys
import time

import msgspec
from nautilus_trader.adapters.binance.common.schemas.market import BinanceDepth, BinanceOrderBookMsg
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.identifiers import InstrumentId


def main() -> int:
    capture, runs = sys.argv[1], int(sys.argv[2])
    with gzip.open(capture, "rb") as fh:
        lines = [line.split(b" ", 1)[1].rstrip(b"\n") for line in fh]
    snapshot = next(line for line in lines if line[2] == 108)  # b'l': {"lastUpdateId": ...
    depth = [line for line in lines if b'"depthUpdate"' in line]
    instrument_id = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    snap_decoder = msgspec.json.Decoder(BinanceDepth)
    for _ in range(runs):
        decoder = msgspec.json.Decoder(BinanceOrderBookMsg)
        book = OrderBook(instrument_id, BookType.L2_MBP)
        book.apply_deltas(snap_decoder.decode(snapshot).parse_to_order_book_snapshot(instrument_id, 0))
        start = time.perf_counter()
        for raw in depth:
            msg = decoder.decode(raw)
            book.apply_deltas(msg.data.parse_to_order_book_deltas(instrument_id, 0))
        seconds = time.perf_counter() - start
        best = book.best_bid_price(), book.best_ask_price()
        print(json.dumps({"events": len(depth), "seconds": seconds, "best": [str(best[0]), str(best[1])]}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
