"""In one process the strategy engine reads market data's own book (no copy of its own): on the real
capture it sees exactly the tops it saw with its own copy, update after update."""

import gzip
from pathlib import Path

from celeris.domain.clock import TestClock
from celeris.domain.modes import Mode
from celeris.domain.topics import book_topic
from celeris.marketdata.core import MarketDataCore, Sink
from celeris.strategy.engine import StrategyEngine
from celeris.transport.bus import InProcessBus
from tests.strategy.fakes import ControlledGateway

CAPTURE = Path(__file__).resolve().parents[2] / "data" / "binance" / "hftbacktest_usdm_btcusdt_20240808_first60s.txt.gz"


def test_the_engine_on_market_datas_book_sees_what_its_own_copy_sees(btcusdt):
    clock, bus = TestClock(start_ns=0), InProcessBus()
    core = MarketDataCore([btcusdt], clock, Sink(book=lambda u: bus.publish(book_topic(u.symbol), u)))
    instruments = {"BTCUSDT": btcusdt}
    own = StrategyEngine([], instruments, clock, ControlledGateway(), lambda t, m: None, mode=Mode.OBSERVATION)
    shared = StrategyEngine([], instruments, clock, ControlledGateway(), lambda t, m: None, mode=Mode.OBSERVATION,
                            books={"BTCUSDT": core.symbols["BTCUSDT"].synced.book})
    assert shared.books["BTCUSDT"] is core.symbols["BTCUSDT"].synced.book and own.books["BTCUSDT"] is not shared.books["BTCUSDT"]
    compared = 0

    def both(update):
        nonlocal compared
        own.on_book(update)
        shared.on_book(update)
        assert shared.top("BTCUSDT") == own.top("BTCUSDT")
        assert shared.books["BTCUSDT"].bids(20) == own.books["BTCUSDT"].bids(20)
        assert shared.books["BTCUSDT"].asks(20) == own.books["BTCUSDT"].asks(20)
        compared += 1

    bus.subscribe(book_topic("BTCUSDT"), both)
    core.start()
    with gzip.open(CAPTURE, "rb") as f:
        for line in f:
            stamp, _, raw = line.rstrip(b"\n").partition(b" ")
            clock.set(max(clock.now_ns(), int(stamp)))
            if raw.startswith(b'{"lastUpdateId"'):
                core.on_snapshot("BTCUSDT", raw, int(stamp))
            else:
                core.on_message(raw, int(stamp))
    assert compared > 1000
