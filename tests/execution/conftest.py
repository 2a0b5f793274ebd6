"""Execution fixtures: an engine trading on the simulator (live mode) over real sockets."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from celeris.domain.instruments import Instrument, OrderType, TimeInForce
from celeris.domain.modes import Mode
from celeris.domain.values import Side
from celeris.execution.engine import ExecutionEngine
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.domain.messages import OrderRequest
from celeris.execution.store import MemoryHotState, MemoryJournal
from celeris.venues.binance.orders import BinanceOrderVenue
from celeris.runtime.clock import SystemClock
from celeris.transport.bus import InProcessBus
from celeris.venues.binance.rest import BinanceRestClient
from celeris.venues.binance.streams import StreamConfig
from tests.sim.conftest import API_KEY, API_SECRET, live_venue  # noqa: F401
from tests.support.waits import wait_for  # noqa: F401 - used by the execution tests

_ids = itertools.count(1)


def request(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT, qty="0.010", price=None, tif=TimeInForce.GTC,
            instrument=None, **kw):
    rid = kw.pop("request_id", f"req-{next(_ids)}-{id(object())}")
    return OrderRequest(rid, symbol, side, order_type, instrument.qty(qty),
                        instrument.price(price) if price is not None else None, tif, **kw)


class Harness:
    def __init__(self, venue_sim, hot=None, journal=None, mode=Mode.LIVE, cancel_all_after_ms=0, ws_api=None,
                 **config):
        self.sim = venue_sim
        self.clock = SystemClock()
        self.instruments = {i.symbol: i for i in venue_sim.instruments}
        self.bus = InProcessBus()
        self.published = []
        self.hot = hot or MemoryHotState()
        self.journal = journal or MemoryJournal()
        self.rest = BinanceRestClient(venue_sim.base_url, self.clock, api_key=API_KEY, api_secret=API_SECRET)
        self.live = BinanceOrderVenue(self.rest, venue_sim.ws_url, self.instruments, self.clock,
                                      stream_config=StreamConfig(backoff_initial_s=0.05, stall_s=3600),
                                      cancel_all_after_ms=cancel_all_after_ms,
                                      ws_api=ws_api(self.rest) if ws_api is not None else None)
        limits = config.pop("limits", PositionLimits(max_position_usdt=0, max_orders_per_second=1000))
        # The simulator answers at once: a short window after a send of unknown outcome keeps the tests quick
        # (a test of a venue that answers late sets its own).
        config.setdefault("unknown_outcome_window_s", 0.3)
        self.engine = ExecutionEngine(ExecutionConfig(tuple(self.instruments), limits, retry_backoff_s=0.01,
                                                      **config),
                                      self.instruments, self.clock, {Mode.LIVE: self.live},
                                      self._publish, self.hot, self.journal, mode=mode)

    def _publish(self, topic, message):
        self.published.append((topic, message))
        self.bus.publish(topic, message)

    def ins(self, symbol="BTCUSDT") -> Instrument:
        return self.instruments[symbol]

    def best(self, is_bid, symbol="BTCUSDT"):
        return self.sim.engine.books[symbol].best(is_bid)

    async def start(self):
        await self.engine.start()
        await asyncio.sleep(0.1)  # user stream connected
        return self

    async def stop(self):
        await self.engine.stop()
        await self.rest.close()


@pytest.fixture
async def harness(live_venue):  # noqa: F811
    h = await Harness(live_venue).start()
    yield h
    await h.stop()
