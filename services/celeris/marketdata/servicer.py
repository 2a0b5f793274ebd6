"""gRPC shell of market data: snapshot-then-delta book streams, trades, books on request.

Translates only. A slow consumer gets a CoalescingQueue per stream: pending deltas of one symbol merge
into one, and anything that cannot be merged (a snapshot, a state change) becomes a fresh snapshot at
send time, so memory stays bounded and no stale level is ever sent as live.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc

from celeris.api.v1 import common_pb2, marketdata_pb2, marketdata_pb2_grpc
from celeris.domain.book import BookState
from celeris.domain.instruments import Instrument
from celeris.domain.messages import BookUpdate, MarkUpdate, TradeUpdate
from celeris.marketdata.service import MarketDataService
from celeris.domain.topics import book_topic, mark_topic, trade_topic
from celeris.transport.bus import CoalescingQueue

STATE_PB = {BookState.LIVE: marketdata_pb2.BOOK_STATE_LIVE, BookState.STALE: marketdata_pb2.BOOK_STATE_STALE,
            BookState.AWAITING_SNAPSHOT: marketdata_pb2.BOOK_STATE_AWAITING_SNAPSHOT}


@dataclass
class _Pending:
    symbol: str
    fresh_snapshot: bool
    update: BookUpdate | None
    levels: dict[tuple[bool, int], int] | None = None


def _merge(old: _Pending, new: _Pending) -> _Pending:
    if old.fresh_snapshot or new.fresh_snapshot:
        return _Pending(new.symbol, True, None)
    merged = dict(old.levels or {})
    merged.update(new.levels or {})
    return _Pending(new.symbol, False, new.update, merged)


def _pending(update: BookUpdate) -> _Pending:
    if update.snapshot or update.state is not BookState.LIVE:
        return _Pending(update.symbol, True, None)
    levels = {(True, p): q for p, q in update.bids}
    levels.update({(False, p): q for p, q in update.asks})
    return _Pending(update.symbol, False, update, levels)


def level_pb(ins: Instrument, price: int, qty: int) -> common_pb2.Level:
    return common_pb2.Level(
        price=common_pb2.Decimal(mantissa=ins.price_grid.units(price), scale=ins.price_grid.scale),
        qty=common_pb2.Decimal(mantissa=ins.qty_grid.units(qty), scale=ins.qty_grid.scale))


class MarketDataServicer(marketdata_pb2_grpc.MarketDataServicer):
    def __init__(self, service: MarketDataService) -> None:
        self._service = service

    def _instrument(self, symbol: str) -> Instrument | None:
        core = self._service.core
        state = core.symbols.get(symbol) if core else None
        return state.instrument if state else None

    def _book_pb(self, update: BookUpdate, sequence: int, snapshot: bool, now_ns: int) -> marketdata_pb2.BookUpdate:
        ins = self._instrument(update.symbol)
        assert ins is not None
        return marketdata_pb2.BookUpdate(
            header=common_pb2.StreamHeader(sequence=sequence, ts_event_ns=update.ts_event_ns, ts_publish_ns=now_ns,
                                           snapshot=snapshot),
            symbol=update.symbol, state=STATE_PB[update.state], venue_update_id=update.update_id,
            bids=[level_pb(ins, p, q) for p, q in update.bids], asks=[level_pb(ins, p, q) for p, q in update.asks],
            ts_recv_ns=update.ts_recv_ns)

    async def GetBook(self, request, context):  # type: ignore[no-untyped-def]
        if self._instrument(request.symbol) is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown symbol {request.symbol!r}")
        assert self._service.core is not None
        update = self._service.core.snapshot_update(request.symbol, request.depth or None)
        return self._book_pb(update, update.sequence, True, self._service.clock.now_ns())

    async def ListSymbols(self, request, context):  # type: ignore[no-untyped-def]
        core = self._service.core
        out = []
        for symbol, state in (core.symbols.items() if core else ()):
            ins = state.instrument
            out.append(marketdata_pb2.SymbolInfo(
                symbol=symbol,
                tick_size=common_pb2.Decimal(mantissa=ins.price_grid.step_units, scale=ins.price_grid.scale),
                step_size=common_pb2.Decimal(mantissa=ins.qty_grid.step_units, scale=ins.qty_grid.scale),
                min_notional=common_pb2.Decimal(mantissa=ins.min_notional, scale=8),
                state=STATE_PB[state.synced.state]))
        return marketdata_pb2.ListSymbolsResponse(request_id=request.request_id, symbols=out)

    async def StreamBook(self, request, context):  # type: ignore[no-untyped-def]
        core = self._service.core
        assert core is not None
        symbols = list(request.symbols) or list(core.symbols)
        unknown = [s for s in symbols if s not in core.symbols]
        if unknown:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown symbols: {', '.join(unknown)}")
        depth = request.depth or None
        queue: CoalescingQueue[_Pending] = CoalescingQueue(_merge)
        unsubscribe = [self._service.bus.subscribe(book_topic(s), lambda u: queue.put(u.symbol, _pending(u)))
                       for s in symbols]
        sequence = 0
        clock = self._service.clock
        try:
            for symbol in symbols:
                sequence += 1
                yield self._book_pb(core.snapshot_update(symbol, depth), sequence, True, clock.now_ns())
            while True:
                for item in await queue.get():
                    sequence += 1
                    if item.fresh_snapshot:
                        snap = core.snapshot_update(item.symbol, depth)
                        yield self._book_pb(snap, sequence, True, clock.now_ns())
                        continue
                    assert item.update is not None and item.levels is not None
                    levels = item.levels
                    update = BookUpdate(item.symbol, item.update.sequence, BookState.LIVE, False,
                                        [(p, q) for (b, p), q in levels.items() if b],
                                        [(p, q) for (b, p), q in levels.items() if not b],
                                        item.update.update_id, item.update.ts_event_ns, item.update.ts_recv_ns)
                    yield self._book_pb(update, sequence, False, clock.now_ns())
        finally:
            queue.close()
            for off in unsubscribe:
                off()

    async def StreamTrades(self, request, context):  # type: ignore[no-untyped-def]
        core = self._service.core
        assert core is not None
        symbols = list(request.symbols) or list(core.symbols)
        queue: asyncio.Queue[TradeUpdate] = asyncio.Queue(maxsize=10_000)
        dropped = 0

        def on_trade(update: TradeUpdate) -> None:
            nonlocal dropped
            if queue.full():
                dropped += 1  # trades are events, not state: a consumer this slow loses the oldest
                queue.get_nowait()
            queue.put_nowait(update)

        unsubscribe = [self._service.bus.subscribe(trade_topic(s), on_trade) for s in symbols]
        sequence = 0
        try:
            while True:
                trade = await queue.get()
                ins = self._instrument(trade.symbol)
                assert ins is not None
                sequence += 1
                yield marketdata_pb2.TradeUpdate(
                    header=common_pb2.StreamHeader(sequence=sequence, ts_event_ns=trade.ts_event_ns,
                                                   ts_publish_ns=self._service.clock.now_ns()),
                    symbol=trade.symbol, trade_id=trade.trade_id,
                    price=common_pb2.Decimal(mantissa=ins.price_grid.units(trade.price_ticks),
                                             scale=ins.price_grid.scale),
                    qty=common_pb2.Decimal(mantissa=ins.qty_grid.units(trade.qty_steps), scale=ins.qty_grid.scale),
                    buyer_is_maker=trade.buyer_is_maker, ts_recv_ns=trade.ts_recv_ns)
        finally:
            for off in unsubscribe:
                off()

    async def StreamMarks(self, request, context):  # type: ignore[no-untyped-def]
        core = self._service.core
        assert core is not None
        symbols = list(request.symbols) or list(core.symbols)
        latest: dict[str, MarkUpdate] = {}  # a mark replaces the previous one: only the newest is worth sending
        changed = asyncio.Event()

        def on_mark(update: MarkUpdate) -> None:
            latest[update.symbol] = update
            changed.set()

        unsubscribe = [self._service.bus.subscribe(mark_topic(s), on_mark) for s in symbols]
        sequence = 0
        try:
            while True:
                await changed.wait()
                changed.clear()
                pending, latest = list(latest.values()), {}
                for mark in pending:
                    sequence += 1
                    yield marketdata_pb2.MarkUpdate(
                        header=common_pb2.StreamHeader(sequence=sequence, ts_event_ns=mark.ts_event_ns,
                                                       ts_publish_ns=self._service.clock.now_ns()),
                        symbol=mark.symbol, mark_price=mark.mark_price, index_price=mark.index_price,
                        funding_rate=mark.funding_rate, next_funding_ms=mark.next_funding_ms)
        finally:
            for off in unsubscribe:
                off()


def registrar(service: MarketDataService):  # type: ignore[no-untyped-def]
    def register(server: grpc.aio.Server) -> None:
        marketdata_pb2_grpc.add_MarketDataServicer_to_server(MarketDataServicer(service), server)
    return register
