"""`celeris replay FILE`: the strategies over a recorded capture, filled by the simulation-mode model.

Feeds a capture (hftbacktest's `<recv_ns> <raw JSON>` lines, e.g. data/binance/hftbacktest_usdm_btcusdt_20240808.gz)
through the same market data core, strategy engine and execution engine (simulation mode: the paper
venue's queue-position fill model, and funding at the markPrice stream's funding times) on the capture's
own clock, and prints the result as JSON (net PnL = realized - fees + funding + unrealized); `--plot
FILE.png` also draws the PnL over the capture's time. Deterministic: the same file gives the same result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

from celeris.domain.values import MONEY_SCALE, money_str


MONEY = 10**MONEY_SCALE
START_WALLET = 100_000 * MONEY
"""The paper account's wallet at the start of a replay (money units)."""


def register(sub: Any) -> None:
    p = sub.add_parser("replay", help="run the strategies over a recorded capture (simulation fill model)")
    p.add_argument("file", type=Path)
    p.add_argument("--symbol", default="BTCUSDT")
    p.add_argument("--strategies", default="", help="JSON list (default: momentum + market making)")
    p.add_argument("--plot", type=Path, help="write the PnL curve to this PNG")
    p.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    if not args.file.exists():
        print(f"error: {args.file} does not exist", file=sys.stderr)
        return 2
    if not _looks_like_capture(args.file):
        print(f"error: {args.file} is not a capture (a gzip of Binance depth/trade messages, one JSON per line, "
              f"as data/binance/*.gz)", file=sys.stderr)
        return 2
    from celeris.runtime import logs

    logs.setup("replay", "ERROR", "text")
    result = asyncio.run(replay(args.file, args.symbol, json.loads(args.strategies) if args.strategies else None,
                                args.plot))
    print(json.dumps(result))
    return 0


def _looks_like_capture(path: Path) -> bool:
    """A gzip whose first line is a Binance stream message (maybe after a local timestamp)."""
    import gzip

    try:
        with gzip.open(path, "rt") as f:
            line = f.readline(1 << 20)
    except (OSError, EOFError, UnicodeDecodeError):
        return False
    return '"e"' in line or '"stream"' in line or '"lastUpdateId"' in line


async def replay(path: Path, symbol: str, strategies: list[dict[str, Any]] | None = None,
                 plot: Path | None = None) -> dict[str, Any]:
    from celeris.domain.clock import TestClock
    from celeris.domain.modes import Mode
    from celeris.execution.engine import ExecutionEngine
    from celeris.domain.topics import fill_topic, order_topic
    from celeris.execution.model import ExecutionConfig, PositionLimits
    from celeris.execution.paper import PaperVenue
    from celeris.marketdata.core import MarketDataCore, Sink
    from celeris.domain.topics import book_topic, mark_topic, trade_topic
    from celeris.marketdata.verify import _open, bundled_instruments
    from celeris.strategy.component import parse_strategies
    from celeris.strategy.engine import StrategyEngine
    from celeris.transport.bus import InProcessBus
    from celeris.commands.up import default_strategies

    instruments = {symbol: bundled_instruments()[symbol]}
    clock = TestClock(start_ns=0)
    bus = InProcessBus()
    paper = PaperVenue(instruments, clock, latency_ms=0)
    execution = ExecutionEngine(ExecutionConfig((symbol,), PositionLimits(0, 10_000)), instruments, clock,
                                {Mode.SIMULATION: paper}, bus.publish, mode=Mode.SIMULATION)
    configs = parse_strategies(json.dumps(strategies or default_strategies([symbol])))
    strategy = StrategyEngine(configs, instruments, clock, execution, bus.publish, mode=Mode.SIMULATION)
    core = MarketDataCore(list(instruments.values()), clock,
                          Sink(book=lambda u: bus.publish(book_topic(u.symbol), u),
                               trade=lambda t: bus.publish(trade_topic(t.symbol), t),
                               mark=lambda m: bus.publish(mark_topic(m.symbol), m)))
    bus.subscribe(book_topic(symbol), paper.on_book)
    bus.subscribe(book_topic(symbol), strategy.on_book)
    bus.subscribe(trade_topic(symbol), paper.on_trade)
    bus.subscribe(mark_topic(symbol), paper.on_mark)  # funding at the capture's funding times
    bus.subscribe(trade_topic(symbol), strategy.on_trade)
    bus.subscribe(fill_topic(symbol), strategy.on_fill)
    bus.subscribe(order_topic(symbol), lambda o: None if o.is_open else strategy.on_order_closed(o.client_order_id))
    await execution.start()
    core.start()
    curve: list[tuple[float, float]] = []
    last_sample = 0
    first_ns = 0
    lines = 0
    with _open(path) as fh:
        for line in fh:
            stamp, _, raw = line.partition(b" ")
            try:
                ts = int(stamp)
            except ValueError:
                continue
            if ts > clock.now_ns():
                clock.set(ts)
            first_ns = first_ns or ts
            if raw.startswith(b'{"lastUpdateId"'):
                core.on_snapshot(symbol, raw, ts)
            else:
                core.on_message(raw, ts)
            lines += 1
            await asyncio.sleep(0)  # let the orders decided on this message go out, in order
            if ts - last_sample >= 1_000_000_000:
                last_sample = ts
                await execution.settle()
                pos = paper.account_positions[symbol]
                mid = paper.books[symbol].mid()
                units = paper.wallet - START_WALLET + (pos.unrealized_pnl(int(mid)) if mid else 0)
                curve.append(((ts - first_ns) / 1e9, float(units) / MONEY))  # a plot's y value: the float edge
    await strategy.stop()
    await execution.settle()
    pos = paper.account_positions[symbol]
    mid = paper.books[symbol].mid()
    unrealized = pos.unrealized_pnl(int(mid)) if mid else 0
    result = {"file": path.name, "symbol": symbol, "messages": lines, "capture_seconds": round(curve[-1][0], 1) if curve else 0,
              "signals": strategy.stats["signals"], "orders": execution.stats.accepted,
              "rejected": execution.stats.rejected, "fills": execution.stats.fills,
              "position": instruments[symbol].format_qty(pos.qty_steps),
              "realized_pnl": money_str(round(pos.realized_pnl)), "unrealized_pnl": money_str(round(unrealized)),
              "fees": money_str(round(pos.fees_paid)),
              "funding": money_str(paper.funding_total), "funding_payments": len(paper.fundings),
              "net_pnl": money_str(round(paper.wallet - START_WALLET + unrealized)),
              "gaps": core.symbols[symbol].synced.stats.gaps}
    if plot is not None:
        write_png(plot, curve)
        result["plot"] = str(plot)
    return result


def write_png(path: Path, points: list[tuple[float, float]], width: int = 800, height: int = 300) -> None:
    """A line chart of (x, y) points as a PNG, with a zero line; no plotting library needed."""
    pixels = bytearray([255] * (width * height * 3))

    def dot(x: int, y: int, color: tuple[int, int, int]) -> None:
        if 0 <= x < width and 0 <= y < height:
            i = (y * width + x) * 3
            pixels[i:i + 3] = bytes(color)

    if points:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1 = min(xs), max(xs) or 1
        y0, y1 = min(min(ys), 0.0), max(max(ys), 0.0)
        span_x, span_y = (x1 - x0) or 1, (y1 - y0) or 1
        to_px = lambda x, y: (int(10 + (x - x0) / span_x * (width - 20)),  # noqa: E731
                              int(height - 10 - (y - y0) / span_y * (height - 20)))
        zero_y = to_px(x0, 0.0)[1]
        for x in range(width):
            dot(x, zero_y, (180, 180, 180))
        previous = None
        for x, y in points:
            px = to_px(x, y)
            if previous is not None:
                steps = max(abs(px[0] - previous[0]), abs(px[1] - previous[1]), 1)
                for k in range(steps + 1):
                    dot(previous[0] + (px[0] - previous[0]) * k // steps,
                        previous[1] + (px[1] - previous[1]) * k // steps, (31, 111, 235))
            previous = px
    raw = b"".join(b"\x00" + bytes(pixels[y * width * 3:(y + 1) * width * 3]) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    path.write_bytes(png)
