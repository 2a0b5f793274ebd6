"""A gRPC client of market data for other processes: book and trade streams back into model values.

Used where market data runs in another pod (the paper venue and the execution engine's marks in the
distributed topology). A stream that breaks is reopened; the first message after reopening is a
snapshot, so the consumer's copy of the book is rebuilt, never patched across a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable

import grpc

from celeris.api.v1 import marketdata_pb2, marketdata_pb2_grpc
from celeris.domain.book import BookState
from celeris.domain.instruments import Instrument
from celeris.domain.messages import BookUpdate, MarkUpdate, TradeUpdate
from celeris.runtime import grpc_server
from celeris.transport.tasks import supervised

log = logging.getLogger(__name__)

STATE_IN = {marketdata_pb2.BOOK_STATE_LIVE: BookState.LIVE, marketdata_pb2.BOOK_STATE_STALE: BookState.STALE,
            marketdata_pb2.BOOK_STATE_AWAITING_SNAPSHOT: BookState.AWAITING_SNAPSHOT}


def _ticks(ins: Instrument, dec: object, qty: bool) -> int:
    grid = ins.qty_grid if qty else ins.price_grid
    mantissa, scale = dec.mantissa, dec.scale  # type: ignore[attr-defined]
    units = mantissa * 10 ** (grid.scale - scale) if grid.scale >= scale else mantissa // 10 ** (scale - grid.scale)
    return units // grid.step_units


def book_update(msg: marketdata_pb2.BookUpdate, ins: Instrument) -> BookUpdate:
    return BookUpdate(msg.symbol, msg.header.sequence, STATE_IN.get(msg.state, BookState.STALE), msg.header.snapshot,
                      [(_ticks(ins, lv.price, False), _ticks(ins, lv.qty, True)) for lv in msg.bids],
                      [(_ticks(ins, lv.price, False), _ticks(ins, lv.qty, True)) for lv in msg.asks],
                      msg.venue_update_id, msg.header.ts_event_ns, msg.ts_recv_ns)


class MarketDataClient:
    def __init__(self, target: str, instruments: dict[str, Instrument], on_book: Callable[[BookUpdate], None],
                 on_trade: Callable[[TradeUpdate], None] | None = None, depth: int = 50,
                 on_mark: Callable[[MarkUpdate], None] | None = None) -> None:
        self.target = target
        self.instruments = instruments
        self.on_book = on_book
        self.on_trade = on_trade
        self.on_mark = on_mark
        self.depth = depth
        self._tasks: list[asyncio.Task[None]] = []
        self.reconnects = 0

    def start(self) -> None:
        self._tasks.append(supervised("md-client-books", self._books))
        if self.on_trade is not None:
            self._tasks.append(supervised("md-client-trades", self._trades))
        if self.on_mark is not None:
            self._tasks.append(supervised("md-client-marks", self._marks))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _books(self) -> None:
        while True:
            try:
                async with grpc_server.insecure_channel(self.target) as channel:
                    stub = marketdata_pb2_grpc.MarketDataStub(channel)
                    request = marketdata_pb2.StreamBookRequest(symbols=list(self.instruments), depth=self.depth)
                    async for msg in stub.StreamBook(request):
                        self.on_book(book_update(msg, self.instruments[msg.symbol]))
            except grpc.aio.AioRpcError as exc:
                log.warning("market data book stream lost (%s); reopening", exc.code().name)
            for symbol in self.instruments:  # until the new snapshot arrives nothing is live
                self.on_book(BookUpdate(symbol, 0, BookState.STALE, False, [], [], 0, 0, 0))
            self.reconnects += 1
            await asyncio.sleep(0.5)

    async def _trades(self) -> None:
        assert self.on_trade is not None
        while True:
            try:
                async with grpc_server.insecure_channel(self.target) as channel:
                    stub = marketdata_pb2_grpc.MarketDataStub(channel)
                    async for msg in stub.StreamTrades(marketdata_pb2.StreamTradesRequest(symbols=list(self.instruments))):
                        ins = self.instruments[msg.symbol]
                        self.on_trade(TradeUpdate(msg.symbol, msg.header.sequence, msg.trade_id,
                                                  _ticks(ins, msg.price, False), _ticks(ins, msg.qty, True),
                                                  msg.buyer_is_maker, msg.header.ts_event_ns, msg.ts_recv_ns))
            except grpc.aio.AioRpcError as exc:
                log.warning("market data trade stream lost (%s); reopening", exc.code().name)
            await asyncio.sleep(0.5)

    async def _marks(self) -> None:
        assert self.on_mark is not None
        while True:
            try:
                async with grpc_server.insecure_channel(self.target) as channel:
                    stub = marketdata_pb2_grpc.MarketDataStub(channel)
                    async for msg in stub.StreamMarks(marketdata_pb2.StreamMarksRequest(symbols=list(self.instruments))):
                        self.on_mark(MarkUpdate(msg.symbol, msg.mark_price, msg.index_price, msg.funding_rate,
                                                msg.next_funding_ms, msg.header.ts_event_ns))
            except grpc.aio.AioRpcError as exc:
                log.warning("market data mark stream lost (%s); reopening", exc.code().name)
            await asyncio.sleep(0.5)
