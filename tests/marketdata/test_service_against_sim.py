"""Market data against the simulator: sync, gaps, reconnects, malformed input, the gRPC stream."""


import aiohttp
import grpc
import pytest

from celeris.api.v1 import marketdata_pb2, marketdata_pb2_grpc
from celeris.domain.book import BookState
from celeris.marketdata.service import MarketDataConfig, MarketDataService
from celeris.domain.topics import book_topic
from celeris.marketdata import servicer as md_servicer
from celeris.runtime import grpc_server, metrics
from celeris.runtime.clock import SystemClock
from celeris.transport.bus import InProcessBus
from celeris.venues.binance.rest import BinanceRestClient
from celeris.venues.binance.streams import StreamConfig
from tests.sim.conftest import API_KEY, API_SECRET, live_venue  # noqa: F401 - fixture
from tests.support.waits import wait_for


@pytest.fixture
async def md(live_venue):  # noqa: F811
    clock = SystemClock()
    rest = BinanceRestClient(live_venue.base_url, clock, api_key=API_KEY, api_secret=API_SECRET)
    config = MarketDataConfig(symbols=("BTCUSDT", "ETHUSDT"), verify_interval_s=0, resync_backoff_s=0.05,
                              stream=StreamConfig(backoff_initial_s=0.05, stall_s=2.0))
    service = MarketDataService(config, rest, live_venue.ws_url, clock, InProcessBus(), metrics.new_registry())
    await service.start()
    yield service
    await service.stop()
    await rest.close()


def books_equal(service, venue, symbol="BTCUSDT", depth=20):
    state = service.core.symbols[symbol]
    sim_book = venue.engine.books[symbol]
    if state.synced.state is not BookState.LIVE or state.synced.book.last_update_id != sim_book.update_id:
        return False
    bids, asks = sim_book.depth(depth)
    return state.synced.book.bids(depth) == bids and state.synced.book.asks(depth) == asks


async def test_books_go_live_and_equal_the_venue(md, live_venue):
    assert await wait_for(lambda: md.ready)
    assert await wait_for(lambda: books_equal(md, live_venue))
    assert await wait_for(lambda: books_equal(md, live_venue, "ETHUSDT"))
    health = md.health()
    assert health["status"] == "ok" and health["websocket_connected"]
    assert health["books"]["BTCUSDT"]["gaps"] == 0


async def test_skipped_events_are_detected_resynced_and_the_book_is_right_again(md, live_venue):
    assert await wait_for(lambda: md.ready)
    published = []
    md.bus.subscribe(book_topic("BTCUSDT"), published.append)
    async with aiohttp.ClientSession() as s:
        await s.post(f"{live_venue.base_url}/_sim/faults", json={"skip_depth_events": {"BTCUSDT": 2}})
    state = md.core.symbols["BTCUSDT"]
    assert await wait_for(lambda: state.synced.stats.gaps >= 1)
    assert await wait_for(lambda: state.synced.stats.resyncs >= 1 and md.ready)
    assert await wait_for(lambda: books_equal(md, live_venue))
    # Between the gap and the resync nothing was published as live but a state change.
    stale_at = next(i for i, u in enumerate(published) if u.state is BookState.STALE)
    live_again = next(i for i, u in enumerate(published) if i > stale_at and u.snapshot)
    assert all(not u.bids and not u.asks for u in published[stale_at:live_again])
    text = metrics_text(md)
    assert 'order_book_gaps_total{symbol="BTCUSDT"} 1.0' in text


def metrics_text(md):
    from prometheus_client import generate_latest
    md._update_state_metrics()
    return generate_latest(md.registry).decode()


async def test_dropped_connection_reconnects_and_resyncs(md, live_venue):
    assert await wait_for(lambda: md.ready)
    resyncs = md.core.symbols["BTCUSDT"].synced.stats.resyncs
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{live_venue.base_url}/_sim/drop", json={"which": "market"}) as r:
            assert (await r.json())["dropped"] >= 1
    assert await wait_for(lambda: md.stream.connects >= 2)
    assert await wait_for(lambda: md.core.symbols["BTCUSDT"].synced.stats.resyncs > resyncs and md.ready)
    assert await wait_for(lambda: books_equal(md, live_venue))


async def test_malformed_messages_are_counted_and_skipped(md, live_venue):
    assert await wait_for(lambda: md.ready)
    async with aiohttp.ClientSession() as s:
        await s.post(f"{live_venue.base_url}/_sim/faults", json={"malformed_messages": 3})
    assert await wait_for(lambda: md.core.stats.malformed >= 3)
    assert md.stream.connected
    # A truncated depth event is a lost event: the chain check catches it and the book recovers.
    assert await wait_for(lambda: books_equal(md, live_venue), timeout=8)


async def test_verification_against_rest_snapshot(md, live_venue):
    assert await wait_for(lambda: md.ready)
    state = md.core.symbols["BTCUSDT"]
    await md.verify_now()  # with the market moving: the shadow book catches up through recent events
    assert await wait_for(lambda: state.verifications >= 1, timeout=8)
    assert state.verification_mismatches == 0
    # Corrupt our book behind its back while the venue is quiet (so no event can heal the damage):
    # the next verification must catch it and resync.
    tick = live_venue.tick
    live_venue.tick = lambda: None
    try:
        # Quiet means every depth event the venue published has been applied (an event still in flight
        # would overwrite the corrupted level and heal it); the venue publishes nothing more meanwhile.
        published = {chain[0] for (symbol, _), chain in live_venue._depth_chain.items() if symbol == "BTCUSDT"}
        assert await wait_for(lambda: state.synced.book.last_update_id in published, timeout=8)
        best = state.synced.book.best_bid()
        state.synced.book.apply_diff([(best[0], best[1] + 7)], [])
        await md.verify_now()
        assert state.verification_mismatches == 1
    finally:
        live_venue.tick = tick
    assert await wait_for(lambda: books_equal(md, live_venue))


async def test_grpc_stream_book_snapshot_then_sequenced_deltas(md, live_venue):
    assert await wait_for(lambda: md.ready)
    bound = grpc_server.create_server([md_servicer.registrar(md)], port=0)
    await bound.server.start()
    try:
        async with grpc.aio.insecure_channel(bound.target) as channel:
            stub = marketdata_pb2_grpc.MarketDataStub(channel)
            call = stub.StreamBook(marketdata_pb2.StreamBookRequest(symbols=["BTCUSDT"], depth=10))
            first = await call.read()
            assert first.header.snapshot and first.header.sequence == 1 and len(first.bids) == 10
            assert first.state == marketdata_pb2.BOOK_STATE_LIVE
            seqs = [first.header.sequence]
            for _ in range(10):
                msg = await call.read()
                seqs.append(msg.header.sequence)
            assert seqs == list(range(1, 12))
            call.cancel()
            book = await stub.GetBook(marketdata_pb2.GetBookRequest(symbol="BTCUSDT", depth=5))
            assert len(book.asks) == 5 and book.bids[0].price.scale == 2
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetBook(marketdata_pb2.GetBookRequest(symbol="NOPE"))
            assert err.value.code() is grpc.StatusCode.NOT_FOUND
    finally:
        await bound.server.stop(None)
