import gzip
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from celeris.domain.book import BookState, DepthEvent, DepthSequencer, OrderBook, SyncedBook, Verdict
from celeris.venues.binance import codec
from tests.conftest import CAPTURE_60S


class NaiveBook:
    """Reference: plain dicts, best levels found by scanning."""

    def __init__(self):
        self.bids, self.asks = {}, {}

    def snapshot(self, bids, asks):
        self.bids = {p: q for p, q in bids if q}
        self.asks = {p: q for p, q in asks if q}

    def diff(self, bids, asks):
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, q in levels:
                if q:
                    side[p] = q
                else:
                    side.pop(p, None)

    def top(self, n):
        return (sorted(self.bids.items(), reverse=True)[:n], sorted(self.asks.items())[:n])


levels = st.lists(st.tuples(st.integers(1, 60), st.integers(0, 5)), max_size=25)


@settings(max_examples=300, deadline=None)
@given(levels, levels, st.lists(st.tuples(levels, levels), max_size=30))
def test_book_matches_naive_reference(snap_bids, snap_asks, diffs):
    book, ref = OrderBook("X"), NaiveBook()
    # A snapshot may repeat a price; the last occurrence wins in both.
    book.apply_snapshot(snap_bids, snap_asks)
    ref.snapshot(snap_bids, snap_asks)
    for bids, asks in diffs:
        book.apply_diff(bids, asks)
        ref.diff(bids, asks)
        ref_bids, ref_asks = ref.top(1000)
        assert book.bids() == ref_bids and book.asks() == ref_asks
        assert book.best_bid() == (ref_bids[0] if ref_bids else None)
        assert book.best_ask() == (ref_asks[0] if ref_asks else None)
        if ref_bids and ref_asks:
            assert book.spread() == ref_asks[0][0] - ref_bids[0][0]
            assert book.mid() * 2 == ref_asks[0][0] + ref_bids[0][0]
            assert book.is_crossed() == (ref_bids[0][0] >= ref_asks[0][0])
        assert book.bids(3) == ref_bids[:3]


def test_zero_quantity_deletes_and_unknown_delete_is_harmless():
    book = OrderBook("X")
    book.apply_snapshot([(100, 5), (99, 1)], [(101, 2)])
    book.apply_diff([(100, 0), (50, 0)], [(101, 0), (103, 4)])
    assert book.best_bid() == (99, 1) and book.best_ask() == (103, 4) and book.depth == (1, 1)
    assert book.spread() == 4 and not book.is_crossed()
    book.apply_diff([(104, 1)], [])
    assert book.is_crossed()


def test_empty_book_reads():
    book = OrderBook("X")
    assert book.best_bid() is None and book.mid() is None and book.spread() is None
    assert not book.is_crossed()


def test_sequencer_futures_rules():
    seq = DepthSequencer()
    assert seq.classify(1, 2, 0) is Verdict.BUFFER
    seq.reset(100)
    assert seq.classify(50, 90, 40) is Verdict.STALE  # u < lastUpdateId
    assert seq.classify(95, 105, 90) is Verdict.APPLY  # straddles
    assert seq.classify(110, 120, 105) is Verdict.APPLY  # pu == previous u (U need not be u+1)
    assert seq.classify(100, 120, 105) is Verdict.STALE  # duplicate
    assert seq.classify(130, 140, 125) is Verdict.GAP
    seq.reset(100)
    assert seq.classify(101, 110, 99) is Verdict.GAP  # first event after the snapshot: snapshot too old
    seq.reset(100)
    assert seq.classify(101, 110, 100) is Verdict.APPLY  # starts right after the snapshot: contiguous
    seq.reset(100)
    assert seq.classify(90, 100, 80) is Verdict.APPLY  # ends exactly at the snapshot id: straddles


def _ev(U, u, pu, bids=(), asks=()):
    return DepthEvent(U, u, pu, list(bids), list(asks))


def test_synced_book_buffers_replays_and_resyncs():
    sb = SyncedBook(OrderBook("X"))
    assert sb.on_event(_ev(90, 95, 80, bids=[(10, 1)])) is Verdict.BUFFER
    assert sb.on_event(_ev(96, 105, 95, bids=[(11, 1)])) is Verdict.BUFFER
    assert sb.on_snapshot(100, [(9, 1)], [(20, 1)]) is BookState.LIVE
    assert sb.book.best_bid() == (11, 1) and sb.stats.stale_dropped == 1 and sb.stats.applied == 1
    assert sb.on_event(_ev(106, 110, 105, asks=[(19, 2)])) is Verdict.APPLY
    assert sb.on_event(_ev(120, 130, 115)) is Verdict.GAP  # a dropped message
    assert sb.state is BookState.STALE and sb.stats.gaps == 1
    sb.on_event(_ev(131, 140, 130, bids=[(12, 3)]))
    assert sb.on_snapshot(125, [(8, 1)], [(21, 1)]) is BookState.LIVE
    assert sb.stats.resyncs == 1 and sb.book.best_bid() == (12, 3)


def _capture_events():
    with gzip.open(CAPTURE_60S, "rt") as fh:
        for line in fh:
            _, raw = line.split(" ", 1)
            yield raw


def test_real_capture_syncs_with_zero_gaps_and_never_crosses(btcusdt):
    parser = codec.LevelParser(btcusdt)
    sb = SyncedBook(OrderBook("BTCUSDT"))
    tops = 0
    for raw in _capture_events():
        if raw.startswith('{"lastUpdateId"'):
            snap = codec.decode_snapshot(raw)
            bids, asks = codec.snapshot_levels(snap, parser)
            assert sb.on_snapshot(snap.lastUpdateId, bids, asks) is BookState.LIVE
            continue
        frame = codec.decode_combined(raw)
        if isinstance(frame.data, codec.DepthUpdate):
            sb.on_event(codec.depth_event(frame.data, parser))
        elif isinstance(frame.data, codec.BookTicker) and sb.state is BookState.LIVE:
            # The venue's own best bid/ask must agree with our book whenever our book is as new.
            if sb.book.last_update_id == frame.data.u:
                assert sb.book.best_bid()[0] == parser.price(frame.data.b)
                assert sb.book.best_ask()[0] == parser.price(frame.data.a)
                tops += 1
    assert sb.state is BookState.LIVE
    assert sb.stats.gaps == 0 and sb.stats.crossed == 0
    assert sb.stats.applied > 1000
    assert tops > 0


def test_dropped_event_in_real_capture_is_detected(btcusdt):
    parser = codec.LevelParser(btcusdt)
    sb = SyncedBook(OrderBook("BTCUSDT"))
    depth_seen = 0
    for raw in _capture_events():
        if raw.startswith('{"lastUpdateId"'):
            snap = codec.decode_snapshot(raw)
            sb.on_snapshot(snap.lastUpdateId, *codec.snapshot_levels(snap, parser))
            continue
        data = json.loads(raw)["data"]
        if data["e"] != "depthUpdate":
            continue
        depth_seen += 1
        if depth_seen == 200:
            continue  # the network ate this one
        sb.on_event(codec.depth_event(codec.decode_raw(json.dumps(data)), parser))
    assert sb.stats.gaps == 1 and sb.state is BookState.STALE
