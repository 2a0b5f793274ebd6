"""The simulator's load mode (`celeris sim --load-depth-rate N`): exactly N depth events per second and symbol,
each one a valid continuation of the stream's chain, so a client's book stays the venue's."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from celeris.domain.book import OrderBook, SyncedBook, Verdict
from celeris.domain.clock import TestClock
from celeris.domain.instruments import Instrument
from celeris.exchange_sim.server import SimVenue
from celeris.exchange_sim.websocket import Connection
from celeris.venues.binance import codec

from tests.sim.conftest import API_KEY, API_SECRET, START_NS


def _subscribed(venue: SimVenue, *streams: str) -> Connection:
    venue._publish_market(venue.now_ms())  # the opening ladder goes out as the first tick would send it
    conn = Connection(ws=None, combined=False, streams=set(streams), queue=asyncio.Queue())  # type: ignore[arg-type]
    venue.connections.append(conn)
    return conn


def _frames(conn: Connection) -> list[dict]:
    assert conn.queue is not None
    out = []
    while not conn.queue.empty():
        out.append(json.loads(conn.queue.get_nowait()))
    return out


def _client_book(venue: SimVenue, symbol: str) -> tuple[SyncedBook, codec.LevelParser]:
    """A client's synced book, started from the venue's full depth as the REST snapshot would give it."""
    ins = Instrument.from_exchange_info(venue.entries[symbol])
    parser = codec.LevelParser(ins)
    synced = SyncedBook(OrderBook(symbol))
    book = venue.engine.books[symbol]
    bids, asks = book.depth(1000)
    synced.on_snapshot(book.update_id, bids, asks)
    return synced, parser


@pytest.mark.parametrize("rate,symbols,elapsed_ms", [(10_000, ["BTCUSDT"], 250), (1_000, ["BTCUSDT", "ETHUSDT"], 1_500),
                                                     (7, ["BTCUSDT"], 1_000)])
def test_the_rate_is_exact_on_the_venue_clock_and_every_event_continues_the_chain(rate, symbols, elapsed_ms):
    clock = TestClock(start_ns=START_NS)
    venue = SimVenue(symbols=symbols, api_key=API_KEY, api_secret=API_SECRET, clock=clock, seed=5,
                     tick_ms=3_600_000, load_depth_per_s=rate)
    conns = {s: _subscribed(venue, f"{s.lower()}@depth@0ms") for s in symbols}
    books = {s: _client_book(venue, s) for s in symbols}
    assert venue.load is not None and venue.load.emit_due() == 0  # starts the clock
    for _ in range(elapsed_ms // 50):  # the loop wakes late and early; the count follows the clock
        clock.advance(ms=50)
        venue.load.emit_due()
    expected = rate * elapsed_ms // 1000
    for symbol in symbols:
        frames = _frames(conns[symbol])
        assert len(frames) == expected
        synced, parser = books[symbol]
        for frame in frames:
            assert len(frame["b"]) + len(frame["a"]) == 1  # one level changed per event
            verdict = synced.on_event(codec.depth_event(codec.decode_raw(json.dumps(frame)), parser))
            assert verdict is Verdict.APPLY
        venue_bids, venue_asks = venue.engine.books[symbol].depth(20)
        assert synced.book.bids(20) == venue_bids and synced.book.asks(20) == venue_asks
    assert venue.load.stats()["emitted_per_symbol"] == expected


def test_slower_speeds_aggregate_the_load_instead_of_sending_every_change():
    clock = TestClock(start_ns=START_NS)
    venue = SimVenue(symbols=["BTCUSDT"], api_key=API_KEY, api_secret=API_SECRET, clock=clock, seed=5,
                     tick_ms=3_600_000, load_depth_per_s=10_000)
    fast, slow = _subscribed(venue, "btcusdt@depth@0ms"), _subscribed(venue, "btcusdt@depth@100ms")
    synced, parser = _client_book(venue, "BTCUSDT")
    assert venue.load is not None
    venue.load.emit_due()
    for _ in range(10):
        clock.advance(ms=50)
        venue.load.emit_due()
    slow_frames = _frames(slow)
    assert len(_frames(fast)) == 5_000
    assert 4 <= len(slow_frames) <= 6  # one per 100 ms of the 500 ms
    for frame in slow_frames:
        assert synced.on_event(codec.depth_event(codec.decode_raw(json.dumps(frame)), parser)) is Verdict.APPLY


def test_a_rate_that_is_not_positive_is_refused_with_one_line():
    exe = Path(sys.executable).with_name("celeris")
    result = subprocess.run([str(exe), "sim", "--api-key", "k", "--api-secret", "s", "--load-depth-rate", "-5"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "load rate must be positive" in result.stderr


async def test_celeris_sim_in_load_mode_streams_a_continuous_chain_over_a_real_socket():
    exe = Path(sys.executable).with_name("celeris")
    proc = subprocess.Popen([str(exe), "sim", "--port", "0", "--api-key", API_KEY, "--api-secret", API_SECRET,
                             "--symbols", "BTCUSDT", "--load-depth-rate", "5000"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        info = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(info["ws_url"] + "/ws/btcusdt@depth@0ms") as ws:
                previous_u = None
                received = 0
                async with asyncio.timeout(60):
                    while received < 3_000:
                        event = json.loads((await ws.receive()).data)
                        if previous_u is not None:
                            assert event["pu"] == previous_u
                        previous_u = event["u"]
                        received += 1
            async with session.get(info["admin_url"] + "/state") as resp:
                load = (await resp.json())["load"]
        assert load["per_symbol_per_s"] == 5000 and load["emitted_per_symbol"] >= 3_000
    finally:
        proc.terminate()
        proc.wait(timeout=10)
