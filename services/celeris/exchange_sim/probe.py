"""Latency probe of the simulated venue: wire-to-wire tick-to-order measured from outside the client.

With `celeris sim --latency-probe` the venue's own market stops moving and publishing; the book moves only
when a probe run asks for it (POST /_sim/probe {"steps", "symbol", "warmup", "timeout_ms", "quiet_ms"}).
Each step is one stimulus and one answer:

1. the account's open orders on the symbol (the last step's) are cancelled (the venue's user stream tells
   the client) and the probe waits `quiet_ms` so the client has taken the answers and settled;
2. the book moves (a cycle of four: touch quantity change, one tick up, quantity change, one tick down, so
   a mid-following strategy sees a move on every step) and the depth/bookTicker frames go out;
3. the probe waits for the next new-order request (or `timeout_ms`) and records
   order received - depth frame written.

Stamps, both `time.perf_counter_ns()` in this process (one clock, no cross-process skew):
- sent: right after `await ws.send_str()` of the step's first depthUpdate frame returns, i.e. aiohttp has
  handed the frame's bytes to the socket (transport write, kernel send buffer);
- received: at entry of the POST /fapi/v1/order handler, i.e. aiohttp has read and parsed the request
  line and headers (the body and the signature check come after, and are not counted); for an
  order.place over the WebSocket API (ws_api.py), when its frame has been read.
So a sample includes the loopback kernel path both ways, the client's frame read and parse, book, strategy,
risk and execution checks, signing and the HTTP write, and the venue's HTTP header parse. It excludes the
venue's own serialisation before the write and the order's processing after the headers.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from celeris.exchange_sim import admin_bodies as bodies

if TYPE_CHECKING:
    from celeris.exchange_sim.engine import MatchingEngine

MAX_STEPS = 100_000


class LatencyProbe:
    """The step driver and its stamps (one run at a time)."""

    def __init__(self) -> None:
        self.armed = False
        self.sent_ns = 0
        self.symbol = ""
        self._order: asyncio.Future[int] | None = None
        self._lock = asyncio.Lock()
        self.orders_seen = 0

    # -- hooks called by the venue ------------------------------------------------------------------
    def on_sent(self, raw: str) -> None:
        """A market frame was written; the first depthUpdate after arming is the step's stimulus."""
        if self.armed and not self.sent_ns and '"depthUpdate"' in raw:
            self.sent_ns = time.perf_counter_ns()

    def on_order(self, received_ns: int, symbol: str) -> None:
        self.orders_seen += 1
        fut = self._order
        if fut is not None and not fut.done() and symbol == self.symbol and self.sent_ns:
            fut.set_result(received_ns)

    # -- the run -----------------------------------------------------------------------------------
    async def run(self, venue: Any, symbol: str, steps: int, warmup: int, timeout_s: float,
                  quiet_s: float) -> dict[str, Any]:
        async with self._lock:
            engine: MatchingEngine = venue.engine
            book = engine.books[symbol]
            account = next(iter(engine.accounts.values()))
            self.symbol = symbol
            samples: list[int] = []
            timeouts = 0
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            i = 0
            # Until `steps` samples (a step without an order in `timeout_s` is counted and retried), at
            # most max(20, steps / 10) such misses.
            while len(samples) < steps and timeouts <= max(20, steps // 10):
                if any(o.is_open and o.symbol == symbol for o in account.orders.values()):
                    engine.cancel_all(account, symbol)
                    await venue._flush_users()
                await asyncio.sleep(quiet_s)  # the client takes the order's answer and the cancel
                self._move(book, i)
                self.sent_ns = 0
                self._order = loop.create_future()
                self.armed = True
                venue._publish_market(venue.now_ms())
                try:
                    received = await asyncio.wait_for(asyncio.shield(self._order), timeout_s)
                except TimeoutError:
                    received = 0
                self.armed = False
                if i >= warmup:
                    if received and self.sent_ns:
                        samples.append(received - self.sent_ns)
                    else:
                        timeouts += 1
                i += 1
            if any(o.is_open and o.symbol == symbol for o in account.orders.values()):
                engine.cancel_all(account, symbol)
                await venue._flush_users()
            self._order = None
        return {"symbol": symbol, "steps": steps, "warmup": warmup, "samples_ns": samples, "timeouts": timeouts, "steps_sent": i,
                "duration_s": round(time.monotonic() - started, 3)}

    @staticmethod
    def _move(book: Any, i: int) -> None:
        """Step i of the cycle: even steps change the touch quantities, odd ones shift the book one tick
        (up, then down): the mid over the last two steps always differs by one tick."""
        bids, asks = book.synthetic_bids, book.synthetic_asks
        best_bid, best_ask = max(bids), min(asks)
        if i % 2 == 0:
            step = book.instrument.min_qty_steps
            book.set_synthetic(True, best_bid, bids[best_bid] + step * (1 if i % 4 == 0 else -1))
            book.set_synthetic(False, best_ask, asks[best_ask] + step * (1 if i % 4 == 0 else -1))
            return
        low_bid, high_ask = min(bids), max(asks)
        if i % 4 == 1:  # up one tick: the best ask's level becomes a bid; the ladder keeps its size
            qty = asks[best_ask]
            book.set_synthetic(False, best_ask, 0)
            book.set_synthetic(True, best_ask, qty)
            book.set_synthetic(True, low_bid, 0)
            book.set_synthetic(False, high_ask + 1, qty)
        else:  # down one tick
            qty = bids[best_bid]
            book.set_synthetic(True, best_bid, 0)
            book.set_synthetic(False, best_bid, qty)
            book.set_synthetic(False, high_ask, 0)
            book.set_synthetic(True, low_bid - 1, qty)


class ProbeRoutes:
    """Part of SimVenue: POST /_sim/probe runs one probe run and answers its samples."""

    probe: LatencyProbe | None
    engine: Any

    async def _admin_probe(self, request: web.Request) -> web.Response:
        body = await bodies.read_object(request, {"symbol", "steps", "warmup", "timeout_ms", "quiet_ms"})
        symbol = bodies.symbol(body.get("symbol", next(iter(self.engine.books))), self.engine.books)
        steps = bodies.integer(body.get("steps", 1000), "steps", 1, MAX_STEPS)
        warmup = bodies.integer(body.get("warmup", 20), "warmup", 0, MAX_STEPS)
        timeout_ms = bodies.number(body.get("timeout_ms", 200), "timeout_ms", 0, 10_000, low_open=True)
        quiet_ms = bodies.number(body.get("quiet_ms", 2), "quiet_ms", 0, 1_000)
        if self.probe is None:
            return web.json_response({"code": -1000, "msg": "start the simulator with --latency-probe",
                                      "error": "start the simulator with --latency-probe"}, status=409)
        result = await self.probe.run(self, symbol, steps, warmup, timeout_ms / 1000, quiet_ms / 1000)
        return web.json_response(result)
