"""Optional outputs of market data: Redis pub/sub, batched PostgreSQL writes, a shared-memory ring.

Each is an adapter subscribed to the in-process bus with bounded buffering: Redis gets the latest top-N
book per symbol (coalesced per flush interval) and every trade on `market_data.{symbol}.orderbook` and
`market_data.{symbol}.trades`; PostgreSQL gets book snapshots and trades in batches (default every
100 ms); the ring gets top of book for consumers on the same node. An output that fails counts its
errors and keeps the feed running.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from typing import Any

from celeris.domain.book import BookState
from celeris.domain.messages import BookUpdate, TradeUpdate
from celeris.marketdata.service import MarketDataService
from celeris.domain.topics import book_topic, trade_topic
from celeris.transport.tasks import supervised

log = logging.getLogger(__name__)


def orderbook_channel(symbol: str) -> str:
    return f"market_data.{symbol}.orderbook"


def trades_channel(symbol: str) -> str:
    return f"market_data.{symbol}.trades"


def _book_doc(service: MarketDataService, symbol: str) -> dict[str, Any] | None:
    assert service.core is not None
    state = service.core.symbols[symbol]
    if state.synced.state is not BookState.LIVE:
        return {"symbol": symbol, "state": state.synced.state.value, "sequence": state.sequence}
    ins, book = state.instrument, state.synced.book
    depth = service.config.depth_levels
    return {"symbol": symbol, "state": "live", "sequence": state.sequence, "update_id": book.last_update_id,
            "ts_ns": service.clock.now_ns(),
            "bids": [[ins.format_price(p), ins.format_qty(q)] for p, q in book.bids(depth)],
            "asks": [[ins.format_price(p), ins.format_qty(q)] for p, q in book.asks(depth)]}


class _Output:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.service: MarketDataService | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: list[Any] = []
        self.errors = 0
        self.flushes = 0
        self._dirty: set[str] = set()
        self._trades: list[TradeUpdate] = []
        self.max_trades = 100_000

    async def start(self, service: MarketDataService) -> None:
        self.service = service
        for symbol in service.config.symbols:
            self._unsubscribe.append(service.bus.subscribe(book_topic(symbol), self._on_book))
            self._unsubscribe.append(service.bus.subscribe(trade_topic(symbol), self._on_trade))
        await self._open()
        self._task = supervised(f"md-output-{type(self).__name__}", self._loop)

    async def stop(self) -> None:
        for off in self._unsubscribe:
            off()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()
        await self._close()

    def _on_book(self, update: BookUpdate) -> None:
        self._dirty.add(update.symbol)

    def _on_trade(self, update: TradeUpdate) -> None:
        if len(self._trades) >= self.max_trades:
            del self._trades[0]
            self.errors += 1
        self._trades.append(update)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush()
            except Exception:
                self.errors += 1
                log.exception("%s flush failed", type(self).__name__)

    async def flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        trades, self._trades = self._trades, []
        if dirty or trades:
            await self._write(dirty, trades)
            self.flushes += 1

    async def _open(self) -> None: ...

    async def _close(self) -> None: ...

    async def _write(self, dirty: set[str], trades: list[TradeUpdate]) -> None: ...


class RedisOutput(_Output):
    def __init__(self, redis: Any, interval_s: float = 0.05) -> None:
        super().__init__(interval_s)
        self.redis = redis

    async def _write(self, dirty: set[str], trades: list[TradeUpdate]) -> None:
        assert self.service is not None and self.service.core is not None
        pipe = self.redis.pipeline(transaction=False)
        for symbol in dirty:
            doc = _book_doc(self.service, symbol)
            payload = json.dumps(doc, separators=(",", ":"))
            pipe.publish(orderbook_channel(symbol), payload)
            pipe.set(f"market_data:{symbol}", payload, ex=300)
        for trade in trades:
            ins = self.service.core.symbols[trade.symbol].instrument
            pipe.publish(trades_channel(trade.symbol), json.dumps({
                "symbol": trade.symbol, "sequence": trade.sequence, "trade_id": trade.trade_id,
                "price": ins.format_price(trade.price_ticks), "qty": ins.format_qty(trade.qty_steps),
                "buyer_is_maker": trade.buyer_is_maker, "ts_ns": trade.ts_event_ns}, separators=(",", ":")))
        await pipe.execute()


class PostgresOutput(_Output):
    """Batched inserts (COPY) of book snapshots (one per symbol per batch) and trades."""

    def __init__(self, pool: Any, interval_s: float = 0.1) -> None:
        super().__init__(interval_s)
        self.pool = pool
        self.rows_written = 0

    async def _write(self, dirty: set[str], trades: list[TradeUpdate]) -> None:
        from decimal import Decimal

        assert self.service is not None and self.service.core is not None
        core = self.service.core
        books = []
        for symbol in dirty:
            state = core.symbols[symbol]
            book = state.synced.book
            bid, ask = book.best_bid(), book.best_ask()
            if state.synced.state is not BookState.LIVE or bid is None or ask is None:
                continue
            ins = state.instrument
            doc = _book_doc(self.service, symbol)
            assert doc is not None
            p = lambda ticks: Decimal(ins.format_price(ticks))  # noqa: E731
            books.append((_ts(self.service.clock.now_ns()), symbol, book.last_update_id, p(bid[0]), p(ask[0]),
                          Decimal(ins.format_qty(bid[1])), Decimal(ins.format_qty(ask[1])), p(ask[0] - bid[0]),
                          (p(bid[0]) + p(ask[0])) / 2, json.dumps(doc["bids"]), json.dumps(doc["asks"])))
        rows = []
        for t in trades:
            ins = core.symbols[t.symbol].instrument
            rows.append((_ts(t.ts_event_ns), t.symbol, t.trade_id, Decimal(ins.format_price(t.price_ticks)),
                         Decimal(ins.format_qty(t.qty_steps)), t.buyer_is_maker))
        async with self.pool.acquire() as conn:
            if books:
                await conn.copy_records_to_table("book_snapshots", records=books, columns=[
                    "ts", "symbol", "update_id", "best_bid", "best_ask", "bid_qty", "ask_qty", "spread",
                    "mid_price", "bids", "asks"])
            if rows:
                await conn.copy_records_to_table("trades", records=rows, columns=[
                    "ts", "symbol", "trade_id", "price", "qty", "buyer_is_maker"])
        self.rows_written += len(books) + len(rows)


def _ts(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc)


class ShmRingOutput(_Output):
    """Top of book of every update into a shared-memory ring (celeris.transport.shm_ring)."""

    def __init__(self, name: str, slots: int = 8192) -> None:
        super().__init__(interval_s=3600)
        from celeris.transport.shm_ring import TopOfBookRing

        self.ring = TopOfBookRing.create(name, slots)

    def _on_book(self, update: BookUpdate) -> None:
        assert self.service is not None and self.service.core is not None
        state = self.service.core.symbols[update.symbol]
        if state.synced.state is not BookState.LIVE:
            return
        bid, ask = state.synced.book.best_bid(), state.synced.book.best_ask()
        if bid and ask:
            self.ring.write(update.symbol, update.update_id, bid[0], bid[1], ask[0], ask[1])

    def _on_trade(self, update: TradeUpdate) -> None:
        pass

    async def _close(self) -> None:
        self.ring.close(unlink=True)
