"""The market data engine's core: raw venue messages in, synchronized books and trades out.

Owns, per symbol, the book kept by the venue's futures procedure (celeris.domain.book.SyncedBook), the
decision that a book can no longer be trusted (a broken pu chain, a lost connection, a verification
mismatch), the request for a new snapshot, and what gets published: a full snapshot when a book becomes
live, the changed levels of every applied event, a state change when it goes stale, and nothing in
between. Synchronous and I/O-free: the service shell feeds it and fetches snapshots for it, and
`verify-capture` drives the very same code from a file.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from celeris.domain.book import BookState, DepthEvent, OrderBook, SyncedBook, Verdict
from celeris.domain.clock import Clock
from celeris.domain.instruments import Instrument
from celeris.marketdata.model import TradeFlow
from celeris.domain.messages import BookUpdate, MarkUpdate, TradeUpdate
from celeris.venues.binance import codec

log = logging.getLogger(__name__)

NS_PER_MS = 1_000_000


@dataclass
class SymbolState:
    instrument: Instrument
    parser: codec.LevelParser
    synced: SyncedBook
    flow: TradeFlow = field(default_factory=TradeFlow)
    sequence: int = 0
    trade_sequence: int = 0
    mark: MarkUpdate | None = None
    last_event_ns: int = 0
    snapshot_requested: bool = False
    resync_requests: int = 0
    verification_mismatches: int = 0
    bookticker_checks: int = 0
    bookticker_mismatches: int = 0
    events_while_not_live: int = 0
    verifications: int = 0
    shadow: SyncedBook | None = None
    recent: deque[DepthEvent] = field(default_factory=lambda: deque(maxlen=256))
    """The last applied events, replayed into a shadow book whose snapshot is older than the live book."""
    """A book built from a fresh REST snapshot and fed the same events (NFR-MD-004 verification)."""


@dataclass
class CoreStats:
    messages: int = 0
    malformed: int = 0
    unknown_symbol: int = 0


class Sink:
    """Where the core's output goes (the service wires these to the bus)."""

    def __init__(self, book: Callable[[BookUpdate], None] | None = None,
                 trade: Callable[[TradeUpdate], None] | None = None,
                 mark: Callable[[MarkUpdate], None] | None = None) -> None:
        self.book = book or (lambda update: None)
        self.trade = trade or (lambda update: None)
        self.mark = mark or (lambda update: None)


class MarketDataCore:
    def __init__(self, instruments: list[Instrument], clock: Clock, sink: Sink | None = None,
                 depth: int = 20, on_snapshot_needed: Callable[[str], None] | None = None) -> None:
        self.clock = clock
        self.sink = sink or Sink()
        self.depth = depth
        self.on_snapshot_needed = on_snapshot_needed or (lambda symbol: None)
        self.symbols: dict[str, SymbolState] = {
            ins.symbol: SymbolState(ins, codec.LevelParser(ins), SyncedBook(OrderBook(ins.symbol)))
            for ins in instruments
        }
        self.stats = CoreStats()

    # -- input ---------------------------------------------------------------------------------
    def on_message(self, raw: bytes | str, ts_recv_ns: int | None = None) -> None:
        """One combined-stream frame from the venue. Malformed input is counted and skipped."""
        ts_recv = self.clock.now_ns() if ts_recv_ns is None else ts_recv_ns
        self.stats.messages += 1
        try:
            data = codec.decode_combined(raw).data
            state = self.symbols.get(data.s)
            if state is None:
                self.stats.unknown_symbol += 1
                return
            kind = type(data)
            if kind is codec.DepthUpdate:
                self._on_depth(state, data, ts_recv)
            elif kind is codec.BookTicker:
                self._on_book_ticker(state, data)
            elif kind is codec.Trade or kind is codec.AggTrade:
                self._on_trade(state, data, ts_recv)
            else:
                self._on_mark(state, data)
        except codec.MalformedMessage as exc:
            self.stats.malformed += 1
            log.warning("malformed market message skipped: %s", exc)

    def on_snapshot(self, symbol: str, raw: bytes | str, ts_recv_ns: int | None = None) -> BookState:
        """A REST depth snapshot arrived for `symbol` (requested earlier)."""
        state = self.symbols[symbol]
        state.snapshot_requested = False
        try:
            snap = codec.decode_snapshot(raw)
            bids, asks = codec.snapshot_levels(snap, state.parser)
        except codec.MalformedMessage as exc:
            self.stats.malformed += 1
            log.warning("malformed depth snapshot for %s: %s", symbol, exc)
            self.request_snapshot(symbol)
            return state.synced.state
        result = state.synced.on_snapshot(snap.lastUpdateId, bids, asks)
        if result is BookState.LIVE:
            self._publish_snapshot(state, self.clock.now_ns() if ts_recv_ns is None else ts_recv_ns)
        else:
            self.request_snapshot(symbol)
        return result

    def on_disconnect(self) -> None:
        """The stream dropped: every book may miss events from now on. Resync waits for on_connect."""
        for state in self.symbols.values():
            if state.synced.state is BookState.LIVE:
                state.synced.mark_stale()
                self._publish_state(state)
            state.recent.clear()

    def on_connect(self) -> None:
        """The stream is (re)connected and buffering: fetch snapshots for every book not live."""
        for symbol, state in self.symbols.items():
            if state.synced.state is not BookState.LIVE:
                self.request_snapshot(symbol)

    def start(self) -> None:
        """Ask for the first snapshot of every symbol (events are buffered until it arrives)."""
        for symbol in self.symbols:
            self.request_snapshot(symbol)

    def request_snapshot(self, symbol: str) -> None:
        state = self.symbols[symbol]
        if not state.snapshot_requested:
            state.snapshot_requested = True
            state.resync_requests += 1
            self.on_snapshot_needed(symbol)

    def invalidate(self, symbol: str, reason: str) -> None:
        """Stop trusting a book (verification mismatch, operator request) and resync it."""
        state = self.symbols[symbol]
        log.warning("book %s invalidated: %s", symbol, reason)
        if state.synced.state is BookState.LIVE:
            state.synced.mark_stale()
            self._publish_state(state)
        self.request_snapshot(symbol)

    def begin_verification(self, symbol: str, raw: bytes | str) -> None:
        """Check the live book against an independent REST snapshot.

        The snapshot seeds a shadow book that is fed the same events; once both have applied the
        same update id, their top levels must be identical, or the live book is resynced.
        """
        state = self.symbols[symbol]
        try:
            snap = codec.decode_snapshot(raw)
            bids, asks = codec.snapshot_levels(snap, state.parser)
        except codec.MalformedMessage:
            self.stats.malformed += 1
            return
        shadow = SyncedBook(OrderBook(symbol))
        for event in state.recent:
            shadow.on_event(event)  # buffered; the snapshot decides which of them apply
        shadow.on_snapshot(snap.lastUpdateId, bids, asks)
        state.shadow = shadow
        self._compare_shadow(state)

    def _compare_shadow(self, state: SymbolState) -> None:
        shadow, main = state.shadow, state.synced
        if shadow is None or main.state is not BookState.LIVE:
            return
        if shadow.state is not BookState.LIVE:
            state.shadow = None
            return
        if shadow.book.last_update_id != main.book.last_update_id:
            return
        state.shadow = None
        state.verifications += 1
        if shadow.book.bids(self.depth) != main.book.bids(self.depth) or \
                shadow.book.asks(self.depth) != main.book.asks(self.depth):
            state.verification_mismatches += 1
            self.invalidate(state.instrument.symbol, "verification against a REST snapshot failed")

    # -- handlers ------------------------------------------------------------------------------
    def _on_depth(self, state: SymbolState, msg: codec.DepthUpdate, ts_recv: int) -> None:
        event = codec.depth_event(msg, state.parser)
        state.last_event_ns = ts_recv
        was_live = state.synced.state is BookState.LIVE
        verdict = state.synced.on_event(event)
        if state.shadow is not None:
            state.shadow.on_event(event)
            self._compare_shadow(state)
        if verdict is Verdict.APPLY:
            state.recent.append(event)
            state.sequence += 1
            self.sink.book(BookUpdate(state.instrument.symbol, state.sequence, BookState.LIVE, False,
                                      event.bids, event.asks, event.final_id,
                                      event.ts_event_ms * NS_PER_MS, ts_recv))
        elif verdict is Verdict.GAP:
            log.warning("sequence gap on %s: event U=%d u=%d pu=%d does not continue the book at %d", msg.s, msg.U,
                        msg.u, msg.pu, state.synced.book.last_update_id)
            if was_live:
                self._publish_state(state)
            self.request_snapshot(state.instrument.symbol)
        elif verdict is Verdict.BUFFER:
            state.events_while_not_live += 1

    def _on_book_ticker(self, state: SymbolState, msg: codec.BookTicker) -> None:
        # The venue's own best bid/ask, matched by update id, must agree with our book.
        book = state.synced.book
        if state.synced.state is not BookState.LIVE or book.last_update_id != msg.u:
            return
        state.bookticker_checks += 1
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None or bid[0] != state.parser.price(msg.b) or ask[0] != state.parser.price(msg.a):
            state.bookticker_mismatches += 1
            self.invalidate(state.instrument.symbol, "bookTicker disagrees with the book at the same update id")

    def _on_trade(self, state: SymbolState, msg: codec.Trade | codec.AggTrade, ts_recv: int) -> None:
        price, qty = state.parser.price(msg.p), state.parser.qty(msg.q)
        ts_event = msg.T * NS_PER_MS
        state.flow.add(ts_event, qty, msg.m)
        state.trade_sequence += 1
        trade_id = msg.t if isinstance(msg, codec.Trade) else msg.a
        self.sink.trade(TradeUpdate(state.instrument.symbol, state.trade_sequence, trade_id, price, qty, msg.m,
                                    ts_event, ts_recv))

    def _on_mark(self, state: SymbolState, msg: codec.MarkPriceUpdate) -> None:
        state.mark = MarkUpdate(msg.s, msg.p, msg.i, msg.r, msg.T, msg.E * NS_PER_MS)
        self.sink.mark(state.mark)

    # -- output --------------------------------------------------------------------------------
    def _publish_snapshot(self, state: SymbolState, ts_recv: int) -> None:
        book = state.synced.book
        state.sequence += 1
        self.sink.book(BookUpdate(state.instrument.symbol, state.sequence, BookState.LIVE, True,
                                  book.bids(self.depth), book.asks(self.depth), book.last_update_id, ts_recv,
                                  ts_recv))

    def _publish_state(self, state: SymbolState) -> None:
        state.sequence += 1
        now = self.clock.now_ns()
        self.sink.book(BookUpdate(state.instrument.symbol, state.sequence, state.synced.state, False, [], [],
                                  state.synced.book.last_update_id, now, now))

    def snapshot_update(self, symbol: str, depth: int | None = None) -> BookUpdate:
        """The current book as a snapshot update (for a new subscriber); not published."""
        state = self.symbols[symbol]
        book = state.synced.book
        live = state.synced.state is BookState.LIVE
        now = self.clock.now_ns()
        n = depth or self.depth
        return BookUpdate(symbol, state.sequence, state.synced.state, True, book.bids(n) if live else [],
                          book.asks(n) if live else [], book.last_update_id, now, now)
