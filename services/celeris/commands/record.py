"""`celeris record FILE`: the venue's live market data written in the capture format the backtest reads.

Owns the recorder: one combined-stream connection (the connector's StreamClient, so reconnects, pings and
stall detection are the live system's) to `<sym>@depth@<speed>`, `<sym>@bookTicker`, `<sym>@trade` and
`<sym>@markPrice@1s`, each frame written as it arrives as `<local receive ns> <raw JSON>` (hftbacktest's
collector format, as data/binance/hftbacktest_usdm_btcusdt_20240808.gz), plus the REST depth snapshot
(`GET /fapi/v1/depth`, the bare body on its own line) after the first depth frame of every connection, so
a reader can sync its book at the start and again after each reconnect. A `.gz` name is gzip. One symbol
per file, as the collector does (the snapshot body does not name its symbol). Yesterday's market is
tonight's backtest: `celeris record btc.gz --duration 3600` then `celeris replay btc.gz`.

The receive time is the wall clock on purpose: it is what a live system would have seen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

DEFAULT_REST_URL = "https://fapi.binance.com"
DEFAULT_WS_URL = "wss://fstream.binance.com"
DEPTH_SPEEDS = ("0ms", "100ms", "250ms", "500ms")
FLUSH_EVERY_NS = 1_000_000_000


def register(sub: Any) -> None:
    p = sub.add_parser("record", help="write the venue's live market data to a capture file for backtests")
    p.add_argument("file", type=Path, help="the capture to write (.gz: gzip)")
    p.add_argument("--symbol", default="BTCUSDT")
    p.add_argument("-f", "--file-spec", dest="spec", type=Path,
                   help="a TradingSystem spec: its venue URLs (default: Binance USD-M production)")
    p.add_argument("--venue-rest-url", default="")
    p.add_argument("--venue-ws-url", default="")
    p.add_argument("--depth-speed", default="0ms", choices=DEPTH_SPEEDS,
                   help="the diff-depth stream's speed (0ms is every update, as the bundled capture)")
    p.add_argument("--duration", type=float, default=0.0, help="seconds to record (0: until Ctrl-C)")
    p.add_argument("--max-messages", type=int, default=0, help="stop after this many stream messages (0: no bound)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.set_defaults(func=cmd_record)


def cmd_record(args: argparse.Namespace) -> int:
    if args.file.exists() and not args.force:
        print(f"error: {args.file} exists (a capture is not overwritten without --force)", file=sys.stderr)
        return 2
    if args.duration < 0 or args.max_messages < 0:
        print("error: --duration and --max-messages must not be negative", file=sys.stderr)
        return 2
    rest_url, ws_url = args.venue_rest_url, args.venue_ws_url
    if args.spec is not None:
        from celeris.config.spec import load_spec

        try:
            _, spec = load_spec(args.spec)
        except Exception as exc:  # the spec loader's messages are one line each
            print(f"error: {args.spec}: {exc}", file=sys.stderr)
            return 2
        if spec.venue.kind == "simulator":
            print("error: the spec's venue is the bundled simulator: give --venue-rest-url and --venue-ws-url "
                  "of a running one (celeris sim prints them)", file=sys.stderr)
            return 2
        rest_url, ws_url = rest_url or spec.venue.restUrl or "", ws_url or spec.venue.wsUrl or ""
    symbol = args.symbol.upper()
    if not symbol.isalnum():
        print(f"error: {args.symbol!r} is not a symbol", file=sys.stderr)
        return 2
    from celeris.runtime import logs

    logs.setup("record", "WARNING", "text")
    recorder = Recorder(args.file, symbol, rest_url or DEFAULT_REST_URL, ws_url or DEFAULT_WS_URL,
                        args.depth_speed, args.max_messages)
    summary = asyncio.run(recorder.run(args.duration))
    print(json.dumps(summary) if args.json else
          f"recorded {summary['messages']} messages and {summary['snapshots']} snapshots of {symbol} "
          f"in {summary['seconds']} s to {args.file}", file=sys.stdout if args.json else sys.stderr)
    return 0 if summary["messages"] else 1


class Recorder:
    def __init__(self, path: Path, symbol: str, rest_url: str, ws_url: str, depth_speed: str,
                 max_messages: int) -> None:
        self.path, self.symbol = path, symbol
        self.rest_url, self.ws_url = rest_url, ws_url
        lower = symbol.lower()
        self.streams = [f"{lower}@depth@{depth_speed}", f"{lower}@bookTicker", f"{lower}@trade",
                        f"{lower}@markPrice@1s"]
        self.depth_stream = self.streams[0]
        self.max_messages = max_messages
        self.messages = 0
        self.snapshots = 0
        self.connects = 0
        self._need_snapshot = True
        self._snapshot_task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._out: IO[str] | None = None
        self.snapshot_errors = 0
        self.rest: Any = None
        self._flushed_ns = 0

    def _write(self, recv_ns: int, raw: str) -> None:
        assert self._out is not None
        self._out.write(f"{recv_ns} {raw}\n")
        if recv_ns - self._flushed_ns >= FLUSH_EVERY_NS:
            # A sync flush each second: a crash or a kill -9 loses at most the last second, and the file
            # can be read while it is being written.
            self._out.flush()
            self._flushed_ns = recv_ns

    def on_message(self, raw: bytes | str) -> None:
        if self._done.is_set():
            return
        text = raw.decode() if isinstance(raw, bytes) else raw
        if '"stream"' not in text[:40]:
            return  # subscription answers and the like are not market data
        self._write(time.time_ns(), text)
        self.messages += 1
        if self._need_snapshot and f'"{self.depth_stream}"' in text[:60]:
            # After the first diff of a connection, as a book syncs: the snapshot's lastUpdateId then
            # falls inside the diffs that follow it in the file.
            self._need_snapshot = False
            self._snapshot_task = asyncio.get_running_loop().create_task(self._snapshot())
        if self.max_messages and self.messages >= self.max_messages:
            self._done.set()

    async def on_state(self, connected: bool) -> None:
        if connected:
            self.connects += 1
        else:  # the book a reader keeps is stale from here: the next connection's first diff gets a snapshot
            self._need_snapshot = True

    async def _snapshot(self) -> None:
        from celeris.venues.binance import errors

        try:
            body = await self.rest.request("GET", "/fapi/v1/depth", {"symbol": self.symbol, "limit": 1000},
                                           weight=20, raw=True)
        except (errors.VenueError, OSError) as exc:
            self.snapshot_errors += 1
            print(f"warning: depth snapshot failed ({exc}); the next connection asks again", file=sys.stderr)
            self._need_snapshot = True
            return
        if not self._done.is_set():
            self._write(time.time_ns(), body.decode().strip())
            self.snapshots += 1
            assert self._out is not None
            self._out.flush()  # a snapshot is a point a reader can sync from: on disk at once

    async def run(self, duration_s: float) -> dict[str, Any]:
        from celeris.runtime.clock import SystemClock
        from celeris.venues.binance.rest import BinanceRestClient
        from celeris.venues.binance.streams import StreamClient

        started = time.monotonic()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._done.set)
        opener = gzip.open if self.path.suffix == ".gz" else open
        self.rest = BinanceRestClient(self.rest_url, SystemClock())
        client = StreamClient(self.ws_url, self.streams, self.on_message, self.on_state)
        with opener(self.path, "wt") as out:  # type: ignore[operator]
            self._out = out
            try:
                client.start()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._done.wait(), duration_s or None)
            finally:
                self._done.set()
                await client.stop()
                if self._snapshot_task is not None:
                    self._snapshot_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._snapshot_task
                await self.rest.close()
                self._out = None
        return {"file": str(self.path), "symbol": self.symbol, "messages": self.messages,
                "snapshots": self.snapshots, "reconnects": max(0, self.connects - 1),
                "snapshot_errors": self.snapshot_errors, "seconds": round(time.monotonic() - started, 3)}
