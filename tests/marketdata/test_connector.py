"""The REST connector against the simulator: signing, clock offset, weights, typed errors, shared budget."""

import asyncio
import time

import aiohttp
import pytest
import redis.asyncio as aioredis

from celeris.runtime.clock import SystemClock
from celeris.venues.binance import errors
from celeris.venues.binance.ratelimit import LocalWeightBudget, RedisWeightBudget
from celeris.venues.binance.rest import BinanceRestClient
from celeris.venues.binance.streams import StreamConfig, backoff_delays
from tests.sim.conftest import API_KEY, API_SECRET, live_venue  # noqa: F401


async def test_clock_offset_prevents_timestamp_errors(live_venue):  # noqa: F811
    async with aiohttp.ClientSession() as s:
        await s.post(f"{live_venue.base_url}/_sim/faults", json={"clock_skew_ms": 7000})
    async with BinanceRestClient(live_venue.base_url, SystemClock(), api_key=API_KEY, api_secret=API_SECRET) as rest:
        # Without an offset the first signed call is refused (-1021), re-syncs, and succeeds.
        balance = await rest.request("GET", "/fapi/v2/balance", signed=True, weight=5)
        assert balance[0]["asset"] == "USDT"
        assert 6500 <= rest.server_clock.offset_ms <= 7500
        assert rest.last_used_weight > 0


async def test_typed_errors(live_venue):  # noqa: F811
    async with BinanceRestClient(live_venue.base_url, SystemClock(), api_key=API_KEY, api_secret="wrong") as bad:
        with pytest.raises(errors.InvalidSignature):
            await bad.request("GET", "/fapi/v2/balance", signed=True)
    async with BinanceRestClient(live_venue.base_url, SystemClock(), api_key="nobody", api_secret="x") as nokey:
        with pytest.raises(errors.AuthenticationFailed):
            await nokey.request("GET", "/fapi/v2/balance", signed=True)
    async with BinanceRestClient(live_venue.base_url, SystemClock(), api_key=API_KEY, api_secret=API_SECRET) as rest:
        with pytest.raises(errors.OrderRejected) as err:
            await rest.request("POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                          "timeInForce": "GTC", "quantity": "0.010",
                                                          "price": "60000.05"}, signed=True)
        assert err.value.code == -4014
        with pytest.raises(errors.UnknownOrder):
            await rest.request("GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": 1}, signed=True)
        async with aiohttp.ClientSession() as s:
            await s.post(f"{live_venue.base_url}/_sim/faults", json={"rest_unknown_503": 1})
        with pytest.raises(errors.UnknownExecutionStatus):
            await rest.request("POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                          "quantity": "0.001"}, signed=True)
        async with aiohttp.ClientSession() as s:
            await s.post(f"{live_venue.base_url}/_sim/faults", json={"rest_5xx": 1})
        with pytest.raises(errors.ServiceUnavailable):
            await rest.request("GET", "/fapi/v1/time")


async def test_429_blocks_every_request_for_retry_after(live_venue):  # noqa: F811
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        budget.blocked_until = 0  # time "passes"

    budget = LocalWeightBudget(limit=2400, sleep=fake_sleep, max_block_wait_s=120)
    async with aiohttp.ClientSession() as s:
        await s.post(f"{live_venue.base_url}/_sim/faults", json={"rest_429": 1})
    async with BinanceRestClient(live_venue.base_url, SystemClock(), budget=budget) as rest:
        with pytest.raises(errors.RateLimited) as err:
            await rest.request("GET", "/fapi/v1/time")
        assert err.value.retry_after_s == 60 and not err.value.banned
        assert budget.blocked_until > time.time()
        await rest.request("GET", "/fapi/v1/time")  # waits out the block first
        assert slept and 55 < slept[0] <= 60


async def test_weight_budget_backs_off_before_the_limit():
    clock = [120.0]
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    budget = LocalWeightBudget(limit=100, safety=0.9, wall=lambda: clock[0], sleep=fake_sleep)
    for _ in range(9):
        await budget.acquire(10)
    assert not slept
    await budget.acquire(10)  # would reach 100 > 90: waits for the next minute
    assert slept and budget.used == 10
    await budget.observe(85)  # the venue counted other processes on our IP too
    await budget.acquire(10)
    assert len(slept) == 2


async def test_redis_budget_is_shared_between_processes(redis_server):
    clock = [600.0]

    async def fake_sleep(seconds):
        clock[0] += seconds

    client_a = aioredis.from_url(redis_server.url)
    client_b = aioredis.from_url(redis_server.url)
    a = RedisWeightBudget(client_a, "203.0.113.7", limit=100, wall=lambda: clock[0], sleep=fake_sleep)
    b = RedisWeightBudget(client_b, "203.0.113.7", limit=100, wall=lambda: clock[0], sleep=fake_sleep,
                          max_block_wait_s=60)
    try:
        for _ in range(5):
            await a.acquire(10)
        for _ in range(4):
            await b.acquire(10)
        assert await a.used() == 90 and b.waits == 0
        await b.acquire(10)  # the shared budget is spent: b waits for the next minute
        assert b.waits == 1 and await a.used() == 10
        await a.block_for(30)  # a 429 seen by one process stops the other too
        before = clock[0]
        await b.acquire(1)
        assert clock[0] - before >= 29
    finally:
        await client_a.aclose()
        await client_b.aclose()


async def test_a_long_ban_fails_requests_at_once_instead_of_waiting():
    budget = LocalWeightBudget(limit=100, max_block_wait_s=10)
    await budget.block_for(120)
    with pytest.raises(errors.RateLimited) as err:
        await budget.acquire(1)
    assert err.value.retry_after_s > 100


def test_backoff_doubles_to_sixty_seconds_with_jitter():
    import random
    delays = backoff_delays(StreamConfig(), random.Random(1))
    values = [next(delays) for _ in range(10)]
    bases = [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    for value, base in zip(values, bases):
        assert base <= value <= base * 1.1


async def test_stream_client_detects_stalls_and_reconnects_before_the_age_cap(live_venue):  # noqa: F811
    from celeris.venues.binance.streams import StreamClient

    got = []
    client = StreamClient(live_venue.ws_url, ["btcusdt@depth@100ms"], got.append,
                          config=StreamConfig(stall_s=0.3, backoff_initial_s=0.05, max_connection_age_s=60))
    client.start()
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while not got and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        async with aiohttp.ClientSession() as s:
            await s.post(f"{live_venue.base_url}/_sim/faults", json={"stall_ms": 1000})
        while client.stalls == 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        assert client.stalls >= 1
    finally:
        await client.stop()
    aged = StreamClient(live_venue.ws_url, ["btcusdt@bookTicker"], lambda raw: None,
                        config=StreamConfig(max_connection_age_s=0.3, backoff_initial_s=5.0))
    aged.start()
    try:
        # Planned reconnects (every 0.3 s) do not wait for the (here 5 s) back-off: three within 4 s.
        deadline = asyncio.get_running_loop().time() + 4
        while aged.connects < 3 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        assert aged.connects >= 3 and aged.stalls == 0
    finally:
        await aged.stop()
