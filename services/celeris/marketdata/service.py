"""The market data service: the core wired to the venue, the bus, metrics and the stores.

Owns the asyncio side of market data: the stream client (reconnects reported to the core so books go
stale and resync), snapshot fetching for the core's requests, periodic verification against REST
snapshots, publication on the in-process bus (topics `book.{symbol}`, `trade.{symbol}`,
`mark.{symbol}`), the Prometheus metrics named in the spec, and the optional Redis, PostgreSQL and
shared-memory outputs. `celeris up` builds one of these in-process; `celeris marketdata` runs it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from celeris.domain.topics import book_topic, mark_topic, trade_topic
from celeris.domain.book import BookState
from celeris.domain.clock import Clock
from celeris.domain.instruments import Instrument
from celeris.marketdata.core import MarketDataCore, Sink
from celeris.marketdata.model import WINDOWS_S
from celeris.domain.messages import BookUpdate, MarkUpdate, TradeUpdate
from celeris.transport.bus import InProcessBus
from celeris.venues.binance import errors
from celeris.venues.binance.rest import BinanceRestClient
from celeris.venues.binance.streams import StreamClient, StreamConfig
from celeris.transport.tasks import supervised

log = logging.getLogger(__name__)

STATE_VALUE = {BookState.LIVE: 1, BookState.STALE: 0, BookState.AWAITING_SNAPSHOT: -1}


@dataclass(frozen=True)
class MarketDataConfig:
    symbols: tuple[str, ...]
    depth_levels: int = 20
    """Levels per side in snapshots published to subscribers."""
    snapshot_limit: int = 1000
    """Levels requested from REST for (re)synchronisation."""
    verify_interval_s: float = 60.0
    """How often a live book is checked against an independent REST snapshot (0 = never)."""
    depth_speed: str = "@100ms"
    trade_stream: str = "aggTrade"
    stream: StreamConfig = StreamConfig()
    resync_backoff_s: float = 0.5


class MarketDataMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.websocket_connected = Gauge("websocket_connected", "1 while the venue stream is connected",
                                         registry=registry)
        self.messages = Counter("messages_received_total", "Venue stream messages received", registry=registry)
        self.malformed = Counter("malformed_messages_total", "Venue messages that could not be decoded",
                                 registry=registry)
        self.latency = Histogram("processing_latency_microseconds", "Receipt to publication, microseconds",
                                 buckets=(5, 10, 25, 50, 100, 250, 500, 1000, 5000), registry=registry)
        self.book_updates = Counter("order_book_updates_total", "Book updates published", ["symbol"],
                                    registry=registry)
        self.gaps = Counter("order_book_gaps_total", "Sequence gaps detected", ["symbol"], registry=registry)
        self.resyncs = Counter("order_book_resyncs_total", "Snapshots fetched to (re)synchronise", ["symbol"],
                               registry=registry)
        self.mismatches = Counter("order_book_verification_mismatches_total",
                                  "Live book disagreed with a REST snapshot", ["symbol"], registry=registry)
        self.state = Gauge("order_book_state", "1 live, 0 stale, -1 awaiting snapshot", ["symbol"],
                           registry=registry)
        self.trades = Counter("trades_received_total", "Trades received", ["symbol"], registry=registry)
        self.flow = Gauge("trade_flow_net_qty", "Net taker buy minus sell quantity over a window",
                          ["symbol", "window"], registry=registry)
        self.reconnects = Counter("websocket_reconnects_total", "Stream reconnections", registry=registry)


class MarketDataService:
    def __init__(self, config: MarketDataConfig, rest: BinanceRestClient, ws_url: str, clock: Clock,
                 bus: InProcessBus, registry: CollectorRegistry, instruments: list[Instrument] | None = None,
                 outputs: list[Any] | None = None) -> None:
        self.config = config
        self.rest = rest
        self.ws_url = ws_url
        self.clock = clock
        self.bus = bus
        self.registry = registry
        self.metrics = MarketDataMetrics(registry)
        self.instruments = instruments
        self.outputs = outputs or []
        self.core: MarketDataCore | None = None
        self.stream: StreamClient | None = None
        self._snapshot_queue: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._gaps_seen: dict[str, int] = {}
        self.started_at = time.time()

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self.instruments is None:
            info = await self.rest.exchange_info()
            by_symbol = {s["symbol"]: s for s in info["symbols"]}
            missing = [s for s in self.config.symbols if s not in by_symbol]
            if missing:
                raise ValueError(f"symbols not listed by the venue: {', '.join(missing)}")
            self.instruments = [Instrument.from_exchange_info(by_symbol[s]) for s in self.config.symbols]
        sink = Sink(book=self._publish_book, trade=self._publish_trade, mark=self._publish_mark)
        self.core = MarketDataCore(self.instruments, self.clock, sink, depth=self.config.depth_levels,
                                   on_snapshot_needed=self._snapshot_queue.put_nowait)
        streams = []
        for ins in self.instruments:
            lower = ins.symbol.lower()
            streams += [f"{lower}@depth{self.config.depth_speed}", f"{lower}@{self.config.trade_stream}",
                        f"{lower}@markPrice@1s", f"{lower}@bookTicker"]
        self.stream = StreamClient(self.ws_url, streams, self._on_raw, self._on_stream_state, self.config.stream)
        for output in self.outputs:
            await output.start(self)
        self._tasks.append(supervised("md-snapshots", self._snapshot_worker))
        if self.config.verify_interval_s > 0:
            self._tasks.append(supervised("md-verify", self._verify_loop))
        self._tasks.append(supervised("md-flow", self._flow_metrics_loop))
        self.stream.start()  # snapshots are requested once it connects (core.on_connect)

    async def stop(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for output in self.outputs:
            await output.stop()

    # -- stream input --------------------------------------------------------------------------
    def _on_raw(self, raw: bytes | str) -> None:
        assert self.core is not None
        self.metrics.messages.inc()
        malformed = self.core.stats.malformed
        self.core.on_message(raw)
        if self.core.stats.malformed != malformed:
            self.metrics.malformed.inc()

    async def _on_stream_state(self, connected: bool) -> None:
        assert self.core is not None
        self.metrics.websocket_connected.set(1 if connected else 0)
        if connected:
            if self.stream is not None and self.stream.connects > 1:
                self.metrics.reconnects.inc()
            self.core.on_connect()
        else:
            # Events are lost while we are away: books go stale now and resync on reconnection.
            self.core.on_disconnect()
        self._update_state_metrics()

    # -- snapshots -----------------------------------------------------------------------------
    async def _snapshot_worker(self) -> None:
        assert self.core is not None
        while True:
            symbol = await self._snapshot_queue.get()
            while True:
                try:
                    raw = await self.rest.depth(symbol, self.config.snapshot_limit)
                    break
                except errors.RateLimited as exc:
                    await asyncio.sleep(exc.retry_after_s)
                except errors.VenueError as exc:
                    log.warning("snapshot for %s failed: %s; retrying", symbol, exc)
                    await asyncio.sleep(self.config.resync_backoff_s)
            self.metrics.resyncs.labels(symbol).inc()
            # Buffered events must have reached the snapshot's id; give the stream a moment if not.
            state = self.core.on_snapshot(symbol, raw)
            if state is not BookState.LIVE:
                await asyncio.sleep(self.config.resync_backoff_s)
            self._update_state_metrics()

    async def _verify_loop(self) -> None:
        assert self.core is not None
        while True:
            await asyncio.sleep(self.config.verify_interval_s)
            await self.verify_now()

    async def verify_now(self) -> None:
        """Check every live book against a fresh REST snapshot (NFR-MD-004)."""
        assert self.core is not None
        for symbol, state in self.core.symbols.items():
            if state.synced.state is not BookState.LIVE:
                continue
            try:
                raw = await self.rest.depth(symbol, self.config.snapshot_limit)
            except errors.VenueError as exc:
                log.warning("verification snapshot for %s failed: %s", symbol, exc)
                continue
            before = state.verification_mismatches
            self.core.begin_verification(symbol, raw)
            if state.verification_mismatches != before:
                self.metrics.mismatches.labels(symbol).inc()

    # -- publication ---------------------------------------------------------------------------
    def _publish_book(self, update: BookUpdate) -> None:
        self.bus.publish(book_topic(update.symbol), update)
        self.metrics.book_updates.labels(update.symbol).inc()
        if update.ts_recv_ns:
            self.metrics.latency.observe((self.clock.now_ns() - update.ts_recv_ns) / 1000)
        if update.state is not BookState.LIVE or update.snapshot:
            self._update_state_metrics()

    def _publish_trade(self, update: TradeUpdate) -> None:
        self.bus.publish(trade_topic(update.symbol), update)
        self.metrics.trades.labels(update.symbol).inc()

    def _publish_mark(self, update: MarkUpdate) -> None:
        self.bus.publish(mark_topic(update.symbol), update)

    def _update_state_metrics(self) -> None:
        if self.core is None:
            return
        for symbol, state in self.core.symbols.items():
            self.metrics.state.labels(symbol).set(STATE_VALUE[state.synced.state])
            gaps = state.synced.stats.gaps
            seen = self._gaps_seen.get(symbol, 0)
            if gaps > seen:
                self.metrics.gaps.labels(symbol).inc(gaps - seen)
                self._gaps_seen[symbol] = gaps

    async def _flow_metrics_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.core is None:
                continue
            now = self.clock.now_ns()
            for symbol, state in self.core.symbols.items():
                for window in WINDOWS_S:
                    net = state.flow.net(now, window)
                    self.metrics.flow.labels(symbol, f"{window}s").set(float(state.instrument.qty_fraction(net)))
            self._update_state_metrics()

    # -- reads ---------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """The /health document: status, connection and per-book facts."""
        assert self.core is not None
        now = self.clock.now_ns()
        books = {}
        for symbol, state in self.core.symbols.items():
            stats = state.synced.stats
            books[symbol] = {
                "state": state.synced.state.value, "last_update_id": state.synced.book.last_update_id,
                "last_event_age_ms": (now - state.last_event_ns) // 1_000_000 if state.last_event_ns else None,
                "gaps": stats.gaps, "resyncs": stats.resyncs, "applied": stats.applied,
                "verifications": state.verifications, "verification_mismatches": state.verification_mismatches,
            }
        connected = bool(self.stream and self.stream.connected)
        all_live = all(b["state"] == "live" for b in books.values())
        return {
            "status": "ok" if connected and all_live else "degraded",
            "service": "marketdata", "uptime_s": round(time.time() - self.started_at, 1),
            "websocket_connected": connected, "messages_received": self.core.stats.messages,
            "malformed_messages": self.core.stats.malformed,
            "reconnects": self.stream.reconnects if self.stream else 0, "books": books,
        }

    @property
    def ready(self) -> bool:
        return self.core is not None and all(s.synced.state is BookState.LIVE for s in self.core.symbols.values())
