"""The simulated venue's WebSocket side: connections, subscriptions and the market streams' fan-out.

Owns the paths (/ws, /ws/<streams>, /stream, under "", /public, /market, /private), the control
messages (SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY), raw vs combined
framing, and what each tick publishes: diff depth with its own U/u/pu chain per stream speed, partial
depth, trades and aggTrades, bookTicker on a change of the touch, the
24-hour ticker, klines, liquidations, mark price every second (or three),
with the stream faults (swallowed depth events, stalls, delays, truncated frames) applied on the way out.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from celeris.exchange_sim.contract import Contract
from celeris.exchange_sim.engine import MatchingEngine
from celeris.exchange_sim.history import INTERVALS_MS, Candle
from celeris.exchange_sim.routes_history import trade_kline
from celeris.exchange_sim.wire import mark_str, rate_str

DEPTH_SPEEDS_MS = {"": 250, "@100ms": 100, "@0ms": 0, "@500ms": 500, "@250ms": 250}
TICKER_INTERVAL_MS = 1000
"""How often <symbol>@ticker is pushed: a fixed cadence, as the venue's (none of our recordings shows its period)."""
KLINE_INTERVAL_MS = 250
"""How often <symbol>@kline_<interval> is pushed while its candle is open."""
TICKER_KEYS = {"p": "priceChange", "P": "priceChangePercent", "w": "weightedAvgPrice", "c": "lastPrice",
               "Q": "lastQty", "o": "openPrice", "h": "highPrice", "l": "lowPrice", "v": "volume",
               "q": "quoteVolume", "O": "openTime", "C": "closeTime", "F": "firstId", "L": "lastId", "n": "count"}


@dataclass
class Connection:
    ws: web.WebSocketResponse
    combined: bool
    streams: set[str] = field(default_factory=set)
    opened_ms: int = 0
    queue: asyncio.Queue[str] | None = None


class MarketStreams:
    """Part of SimVenue: WebSocket connections and the market data they are sent."""

    engine: MatchingEngine
    faults: Any
    connections: list[Connection]
    listen_keys: dict[str, tuple[str, int]]
    stats: dict[str, int]
    tick_ms: int
    ping_interval_s: float
    mark_interval_ms: int
    _next_funding_ms: int
    _last_mark_ms: int
    _last_ticker_ms: int
    _last_kline_ms: int
    _kline_open: dict[str, int]
    _depth_chain: dict[tuple[str, int], list[int]]
    _pending_levels: dict[tuple[str, int], dict[tuple[bool, int], None]]
    _last_top: dict[str, tuple[int | None, int | None, int, int]]
    _skip_left: dict[tuple[str, int], int]
    probe: Any

    if TYPE_CHECKING:  # members of SimVenue and its other parts this one uses
        def now_ms(self) -> int: ...
        def _ticker(self, book: Any, now: int) -> dict[str, Any]: ...

    def _publish_market(self, now: int) -> None:
        wanted = self._wanted_streams()
        for symbol, book in self.engine.books.items():
            lower = symbol.lower()
            ins = book.instrument
            self._publish_depth(symbol, now, wanted, every_tick=True)
            for trade in book.trades_out:
                price, qty = ins.format_price(trade["p"]), ins.format_qty(trade["q"])
                self._send(f"{lower}@trade", {"e": "trade", "E": now, "T": trade["T"], "s": symbol,
                                              "t": trade["t"], "p": price, "q": qty, "X": "MARKET",
                                              "m": trade["m"]}, wanted)
                self._send(f"{lower}@aggTrade", {"e": "aggTrade", "E": now, "a": trade["t"], "s": symbol,
                                                 "p": price, "q": qty, "nq": qty, "f": trade["t"],
                                                 "l": trade["t"], "T": trade["T"], "m": trade["m"]}, wanted)
            book.trades_out.clear()
            if book.liquidation_out is not None:  # the venue pushes the latest liquidation as a snapshot
                self._send(f"{lower}@forceOrder", {"e": "forceOrder", "E": now, "o": book.liquidation_out}, wanted)
                book.liquidation_out = None
            bid, ask = book.best(True), book.best(False)
            top = (bid, ask, book.level_qty(True, bid) if bid else 0, book.level_qty(False, ask) if ask else 0)
            if top != self._last_top.get(symbol):
                self._last_top[symbol] = top
                self._send(f"{lower}@bookTicker", {
                    "e": "bookTicker", "u": book.update_id, "E": now, "T": now, "s": symbol,
                    "b": ins.format_price(bid or 0), "B": ins.format_qty(top[2]),
                    "a": ins.format_price(ask or 0), "A": ins.format_qty(top[3])}, wanted)
        self._publish_tickers(now, wanted)
        self._publish_klines(now, wanted)
        if now - self._last_mark_ms >= self.mark_interval_ms:
            self._last_mark_ms = now
            for symbol, book in self.engine.books.items():
                ins = book.instrument
                payload = {"e": "markPriceUpdate", "E": now, "s": symbol,
                           "p": mark_str(ins, book.mark_ticks), "i": mark_str(ins, book.index_ticks),
                           "P": mark_str(ins, book.index_ticks), "r": rate_str(book.funding_rate),
                           "T": self._next_funding_ms}
                self._send(f"{symbol.lower()}@markPrice@1s", payload, wanted)
                if now // 1000 % 3 == 0:
                    self._send(f"{symbol.lower()}@markPrice", payload, wanted)

    def _publish_depth(self, symbol: str, now: int, wanted: set[str], every_tick: bool) -> None:
        """The book's changed levels onto each depth speed's chain; a speed's event goes out when due.

        `every_tick`: called from the market tick, which flushes every speed not slower than the tick. The
        load generator (exchange_sim/load.py) calls it per change, so only the time rule flushes there.
        """
        book = self.engine.books[symbol]
        changed = dict(book.changed)
        book.changed.clear()
        first_id = book.first_changed_id
        for speed in (0, 100, 250, 500):
            key = (symbol, speed)
            pending = self._pending_levels.setdefault(key, {})
            chain = self._depth_chain.setdefault(key, [first_id - 1 if changed else book.update_id, 0, now])
            if changed:
                if not pending:
                    chain[1] = first_id
                pending.update(changed)
            if pending and (now - chain[2] >= speed or (every_tick and speed <= self.tick_ms)):
                event = self._depth_event(book, book.instrument, pending, chain, now)
                chain[0] = event["u"]
                chain[2] = now
                pending.clear()
                if self._swallow_depth(symbol, speed):
                    continue
                self._send_depth(symbol.lower(), speed, event, book, book.instrument, wanted)

    def _publish_tickers(self, now: int, wanted: set[str]) -> None:
        """<symbol>@ticker and @miniTicker: the rolling 24-hour statistics of GET /fapi/v1/ticker/24hr under
        the events' one-letter keys, every TICKER_INTERVAL_MS (computed only while someone subscribes)."""
        if now - self._last_ticker_ms < TICKER_INTERVAL_MS:
            return
        self._last_ticker_ms = now
        for symbol, book in self.engine.books.items():
            full, mini = f"{symbol.lower()}@ticker", f"{symbol.lower()}@miniTicker"
            if full not in wanted and mini not in wanted:
                continue
            t = {short: self._ticker(book, now)[name] for short, name in TICKER_KEYS.items()}
            self._send(full, {"e": "24hrTicker", "E": now, "s": symbol, **t}, wanted)
            self._send(mini, {"e": "24hrMiniTicker", "E": now, "s": symbol,
                              **{k: t[k] for k in ("c", "o", "h", "l", "v", "q")}}, wanted)

    def _publish_klines(self, now: int, wanted: set[str]) -> None:
        """<symbol>@kline_<interval>: the trade candle now open, every KLINE_INTERVAL_MS while subscribed; when
        the interval rolls over, the finished candle once more with x=true before the new one."""
        if now - self._last_kline_ms < KLINE_INTERVAL_MS:
            return
        self._last_kline_ms = now
        for stream in sorted(wanted):
            symbol, _, kind = stream.partition("@kline_")
            book = self.engine.books.get(symbol.upper())
            if book is None or kind not in INTERVALS_MS:
                continue
            candles = book.history.trades.candles(kind, now)
            if not candles:
                continue
            last_open = self._kline_open.get(stream)
            if last_open is not None and last_open != candles[-1].open_ms:
                closed = next((c for c in candles if c.open_ms == last_open), None)
                if closed is not None:
                    self._send(stream, self._kline_event(book, kind, closed, now, closed=True), wanted)
            self._kline_open[stream] = candles[-1].open_ms
            self._send(stream, self._kline_event(book, kind, candles[-1], now, closed=False), wanted)

    @staticmethod
    def _kline_event(book: Any, interval: str, c: Candle, now: int, *, closed: bool) -> dict[str, Any]:
        ins = book.instrument
        row = trade_kline(ins, interval, c)  # the REST row: the same figures, the same formats
        return {"e": "kline", "E": now, "s": ins.symbol, "k": {
            "t": row[0], "T": row[6], "s": ins.symbol, "i": interval, "f": c.first_id, "L": c.last_id,
            "o": row[1], "c": row[4], "h": row[2], "l": row[3], "v": row[5], "n": row[8], "x": closed,
            "q": row[7], "V": row[9], "Q": row[10], "B": row[11]}}

    def _depth_event(self, book: Any, ins: Contract, pending: dict[tuple[bool, int], None],
                     chain: list[int], now: int) -> dict[str, Any]:
        bids = [[ins.format_price(p), ins.format_qty(book.level_qty(True, p))] for (b, p) in pending if b]
        asks = [[ins.format_price(p), ins.format_qty(book.level_qty(False, p))] for (b, p) in pending if not b]
        return {"e": "depthUpdate", "E": now, "T": now, "s": book.instrument.symbol, "U": chain[1],
                "u": book.update_id, "pu": chain[0], "b": bids, "a": asks}

    def _swallow_depth(self, symbol: str, speed: int) -> bool:
        # Each stream speed has its own chain, so each loses its next N events.
        requested = self.faults.skip_depth_events.get(symbol, 0)
        if requested:
            for each in (0, 100, 250, 500):
                self._skip_left[(symbol, each)] = self._skip_left.get((symbol, each), 0) + requested
            self.faults.skip_depth_events[symbol] = 0
        left = self._skip_left.get((symbol, speed), 0)
        if left:
            self._skip_left[(symbol, speed)] = left - 1
            return True
        return False

    def _send_depth(self, lower: str, speed: int, event: dict[str, Any], book: Any, ins: Contract,
                    wanted: set[str]) -> None:
        names = [f"{lower}@depth{suffix}" for suffix, ms in DEPTH_SPEEDS_MS.items() if ms == speed]
        for name in names:
            self._send(name, event, wanted)
        for n in (5, 10, 20):
            partial_names = [f"{lower}@depth{n}{suffix}" for suffix, ms in DEPTH_SPEEDS_MS.items()
                             if ms == speed and suffix != "@0ms"]
            if not any(p in wanted for p in partial_names):
                continue
            bids, asks = book.depth(n)
            partial = dict(event, b=[[ins.format_price(p), ins.format_qty(q)] for p, q in bids],
                           a=[[ins.format_price(p), ins.format_qty(q)] for p, q in asks])
            for name in partial_names:
                self._send(name, partial, wanted)

    def _wanted_streams(self) -> set[str]:
        wanted: set[str] = set()
        for conn in self.connections:
            wanted |= conn.streams
        return wanted

    def _send(self, stream: str, payload: dict[str, Any], wanted: set[str]) -> None:
        if stream not in wanted:
            return
        if self.faults.stall_until_ms > self.now_ms():
            return
        raw = json.dumps(payload, separators=(",", ":"))
        if self.faults.malformed_messages > 0 and stream not in self.listen_keys:
            self.faults.malformed_messages -= 1
            raw = raw[: len(raw) // 2]
            for conn in self.connections:
                if stream in conn.streams and conn.queue is not None:
                    conn.queue.put_nowait(raw)
            return
        for conn in self.connections:
            if stream in conn.streams and conn.queue is not None:
                conn.queue.put_nowait(json.dumps({"stream": stream, "data": payload}, separators=(",", ":"))
                                      if conn.combined else raw)

    async def _ws_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=self.ping_interval_s, autoping=True)
        await ws.prepare(request)
        path = request.path
        combined = "/stream" in path
        conn = Connection(ws, combined, opened_ms=self.now_ms(), queue=asyncio.Queue())
        streams: list[str] = []
        if request.query.get("streams"):
            streams += request.query["streams"].split("/")
        if request.query.get("listenKey"):
            streams.append(request.query["listenKey"])
        if "/ws/" in path:
            streams += [s for s in path.split("/ws/", 1)[1].split("/") if s]
        conn.streams.update(s for s in streams if self._valid_stream(s))
        self.connections.append(conn)
        sender = asyncio.create_task(self._ws_sender(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    reply = self._ws_control(conn, msg.data)
                    if reply is not None:
                        await ws.send_str(json.dumps(reply))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            sender.cancel()
            if conn in self.connections:
                self.connections.remove(conn)
        return ws

    async def _ws_sender(self, conn: Connection) -> None:
        assert conn.queue is not None
        while True:
            raw = await conn.queue.get()
            if self.faults.ws_delay_ms:
                await asyncio.sleep(self.faults.ws_delay_ms / 1000)
            try:
                await conn.ws.send_str(raw)
                if self.probe is not None:
                    self.probe.on_sent(raw)
                self.stats["ws_messages"] += 1
            except (ConnectionResetError, RuntimeError):
                return

    def _valid_stream(self, name: str) -> bool:
        if name in self.listen_keys:
            return True
        symbol, _, kind = name.partition("@")
        return symbol.upper() in self.engine.books and bool(kind)

    def _ws_control(self, conn: Connection, data: str) -> dict[str, Any] | None:
        try:
            msg = json.loads(data)
        except ValueError as exc:
            return {"code": 3, "msg": f"Invalid JSON: {exc}"}
        if not isinstance(msg, dict):
            return {"code": 2, "msg": "Invalid request: request must be an object"}
        method, req_id = msg.get("method"), msg.get("id")
        params = msg.get("params", [])
        if method == "SUBSCRIBE":
            bad = [p for p in params if not isinstance(p, str) or not self._valid_stream(p)]
            if bad:
                return {"code": 2, "msg": f"Invalid request: unknown stream {bad[0]!r}", "id": req_id}
            conn.streams.update(params)
            return {"result": None, "id": req_id}
        if method == "UNSUBSCRIBE":
            conn.streams.difference_update(params)
            return {"result": None, "id": req_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(conn.streams), "id": req_id}
        if method == "SET_PROPERTY":
            if params[:1] == ["combined"] and len(params) == 2:
                if not isinstance(params[1], bool):
                    return {"code": 1, "msg": "Invalid value type: expected Boolean", "id": req_id}
                conn.combined = params[1]
                return {"result": None, "id": req_id}
            return {"code": 0, "msg": "Unknown property", "id": req_id}
        if method == "GET_PROPERTY":
            if params[:1] == ["combined"]:
                return {"result": conn.combined, "id": req_id}
            return {"code": 0, "msg": "Unknown property", "id": req_id}
        return {"code": 2, "msg": f"Invalid request: unknown method {method!r}", "id": req_id}
