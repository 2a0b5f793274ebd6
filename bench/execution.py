#!/usr/bin/env python3
"""Execution benchmark: order request -> signed HTTP request on the socket, and orders/s through validation.

An in-process loopback HTTP server stands in for the venue: it timestamps the moment a request's bytes
arrive and answers with a venue-shaped ACK. Each sample is one `ExecutionEngine.submit` (validation,
idempotency bookkeeping, persistence to the in-memory hot state, signing, aiohttp) measured from the call
to the bytes arriving on the server socket. The baseline in the same run is the bare floor: one signed
aiohttp request with no engine at all. Also prints how many orders per second validation alone passes.
`--json` prints one JSON object. Target: p99 <= 1 ms internal (the spec allows 10 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _capture import btcusdt, summarize  # noqa: E402

import aiohttp  # noqa: E402

from celeris.domain.instruments import OrderType, TimeInForce  # noqa: E402
from celeris.domain.modes import Mode  # noqa: E402
from celeris.domain.values import Side  # noqa: E402
from celeris.execution.engine import ExecutionEngine  # noqa: E402
from celeris.execution.model import ExecutionConfig, PositionLimits
from celeris.domain.messages import OrderRequest
from celeris.venues.binance.orders import BinanceOrderVenue  # noqa: E402
from celeris.runtime.clock import SystemClock  # noqa: E402
from celeris.venues.binance.rest import BinanceRestClient  # noqa: E402


class FakeVenue(asyncio.Protocol):
    """Enough HTTP to answer POST /fapi/v1/order; records when each request's bytes arrive."""

    arrivals: dict[str, int] = {}

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            self.buffer = rest
            target = head.split(b" ", 2)[1].decode()
            query = parse_qs(urlsplit(target).query)
            client_id = query.get("newClientOrderId", ["x"])[0]
            FakeVenue.arrivals.setdefault(client_id, now)
            body = json.dumps({"orderId": len(FakeVenue.arrivals), "clientOrderId": client_id, "status": "NEW",
                               "executedQty": "0.000", "symbol": "BTCUSDT"}).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\nX-MBX-USED-WEIGHT-1M: 1\r\n\r\n" + body)


class BenchVenue(BinanceOrderVenue):
    async def start(self, on_event, on_reconnect):  # type: ignore[no-untyped-def]
        self._on_event = on_event

    async def stop(self) -> None:
        pass


async def run(count: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FakeVenue, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    clock = SystemClock()
    ins = btcusdt()
    rest = BinanceRestClient(base, clock, api_key="benchkey", api_secret="benchsecret")
    venue = BenchVenue(rest, "ws://127.0.0.1:1", {"BTCUSDT": ins}, clock)
    engine = ExecutionEngine(ExecutionConfig(("BTCUSDT",), PositionLimits(0, 10**9), venue_orders_per_10s=10**9,
                                             venue_orders_per_minute=10**9), {"BTCUSDT": ins}, clock,
                             {Mode.LIVE: venue}, lambda topic, msg: None, mode=Mode.LIVE)
    # Not engine.start(): the fake venue has no user stream or open orders to reconcile.
    engine._worker = asyncio.create_task(engine._event_worker())
    price = ins.price("60000.00")

    def make(i: int) -> OrderRequest:
        return OrderRequest(f"bench-{i}", "BTCUSDT", Side.BUY, OrderType.LIMIT, 10, price - i % 100, TimeInForce.GTC)

    for i in range(200):  # warm up the connection pool and caches
        await engine.submit(make(-1 - i))
    FakeVenue.arrivals.clear()
    samples = []
    start_wall = time.perf_counter()
    for i in range(count):
        request = make(i)
        started = time.perf_counter_ns()
        outcome = await engine.submit(request)
        samples.append(FakeVenue.arrivals[outcome.order.client_order_id] - started)
    wall = time.perf_counter() - start_wall
    engine_stats = summarize(samples, wall)

    # Baseline: one signed aiohttp request, nothing else.
    base_samples = []
    async with aiohttp.ClientSession() as session:
        for i in range(200):
            await _bare(session, base, f"warm{i}")
        FakeVenue.arrivals.clear()
        start_wall = time.perf_counter()
        for i in range(count):
            cid = f"bare{i}"
            started = time.perf_counter_ns()
            await _bare(session, base, cid)
            base_samples.append(FakeVenue.arrivals[cid] - started)
        base_wall = time.perf_counter() - start_wall
    base_stats = summarize(base_samples, base_wall)

    # Validation alone: how many order requests per second pass the checks.
    engine.rate.limit = 10**9
    n_validate = count * 10
    requests = [make(i) for i in range(n_validate)]
    start_wall = time.perf_counter()
    for request in requests:
        assert engine._validate(request) is None
    validate_per_s = n_validate / (time.perf_counter() - start_wall)
    server.close()
    await rest.close()
    return {"engine": engine_stats, "baseline": base_stats, "validate_per_s": validate_per_s}


async def _bare(session: aiohttp.ClientSession, base: str, cid: str) -> None:
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.010", "price": "60000.00",
              "timeInForce": "GTC", "newClientOrderId": cid, "timestamp": int(time.time() * 1000)}
    query = urlencode(params)
    sig = hmac.new(b"benchsecret", query.encode(), hashlib.sha256).hexdigest()
    async with session.post(f"{base}/fapi/v1/order?{query}&signature={sig}",
                            headers={"X-MBX-APIKEY": "benchkey"}) as resp:
        await resp.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args.count))
    e, b = result["engine"], result["baseline"]
    out = {"benchmark": "execution", "orders": args.count,
           "p50_us": round(e["p50_us"], 1), "p99_us": round(e["p99_us"], 1), "orders_per_s": round(e["events_per_s"]),
           "baseline_p50_us": round(b["p50_us"], 1), "baseline_p99_us": round(b["p99_us"], 1),
           "baseline_orders_per_s": round(b["events_per_s"]),
           "validation_orders_per_s": round(result["validate_per_s"]), "target_p99_us": 1000}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"execution: submit -> signed request on the socket ({args.count} sequential orders)")
        print(f"{'':22} {'p50 us':>8} {'p99 us':>8} {'orders/s':>10}")
        print(f"{'engine (full path)':22} {out['p50_us']:>8} {out['p99_us']:>8} {out['orders_per_s']:>10,}")
        print(f"{'bare signed aiohttp':22} {out['baseline_p50_us']:>8} {out['baseline_p99_us']:>8} "
              f"{out['baseline_orders_per_s']:>10,}")
        print(f"validation alone: {out['validation_orders_per_s']:,} orders/s; target p99 <= 1000 us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
