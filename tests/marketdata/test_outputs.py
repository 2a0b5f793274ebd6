"""Market data outputs against real Redis and PostgreSQL servers, and the shared-memory ring."""

import asyncio
import json
import multiprocessing
import uuid

import redis.asyncio as aioredis

from celeris.marketdata.outputs import PostgresOutput, RedisOutput, ShmRingOutput, orderbook_channel, trades_channel
from celeris.storage import postgres
from celeris.transport.shm_ring import TopOfBookRing
from tests.marketdata.test_service_against_sim import md, wait_for  # noqa: F401 - fixtures
from tests.sim.conftest import live_venue  # noqa: F401


async def test_redis_topics_carry_books_and_trades(md, redis_server):  # noqa: F811
    client = aioredis.from_url(redis_server.url)
    pubsub = client.pubsub()
    await pubsub.subscribe(orderbook_channel("BTCUSDT"), trades_channel("BTCUSDT"))
    output = RedisOutput(client, interval_s=0.02)
    await output.start(md)
    try:
        got: dict[str, list] = {"book": [], "trade": []}
        deadline = asyncio.get_running_loop().time() + 8
        while (not got["book"] or not got["trade"]) and asyncio.get_running_loop().time() < deadline:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if msg:
                kind = "book" if msg["channel"].endswith(b"orderbook") else "trade"
                got[kind].append(json.loads(msg["data"]))
        live = [b for b in got["book"] if b["state"] == "live"]
        assert live and len(live[0]["bids"]) == 20 and float(live[0]["bids"][0][0]) < float(live[0]["asks"][0][0])
        assert got["trade"] and {"price", "qty", "trade_id"} <= set(got["trade"][0])
        assert json.loads(await client.get("market_data:BTCUSDT"))["symbol"] == "BTCUSDT"
    finally:
        await output.stop()
        await pubsub.aclose()
        await client.aclose()


async def test_postgres_batches_snapshots_and_trades(md, postgres_server):  # noqa: F811
    pool = await postgres.connect_pool(postgres_server.dsn)
    try:
        result = await postgres.migrate(pool)
        again = await postgres.migrate(pool)
        assert again["applied"] == []  # idempotent
        assert result["timescaledb"] in (True, False)
        output = PostgresOutput(pool, interval_s=0.1)
        await output.start(md)
        assert await wait_for(lambda: output.rows_written > 5, timeout=8)
        await output.stop()
        async with pool.acquire() as conn:
            snaps = await conn.fetch("SELECT * FROM book_snapshots WHERE symbol = 'BTCUSDT' ORDER BY ts DESC")
            trades = await conn.fetchval("SELECT count(*) FROM trades")
        assert snaps and snaps[0]["best_bid"] < snaps[0]["best_ask"]
        assert snaps[0]["spread"] == snaps[0]["best_ask"] - snaps[0]["best_bid"]
        assert trades >= 1
        assert output.errors == 0
    finally:
        await pool.close()


def _reader(name, count, out):
    ring = TopOfBookRing.attach(name)
    records, next_seq, lost = [], 1, 0
    import time
    deadline = time.monotonic() + 10
    while len(records) < count and time.monotonic() < deadline:
        got, next_seq, missed = ring.read_from(next_seq)
        records += got
        lost += missed
    out.put((len(records), lost, records[-1] if records else None))
    ring.close()


def test_shm_ring_across_processes():
    name = f"celeris-test-{uuid.uuid4().hex[:8]}"
    ring = TopOfBookRing.create(name, slots=1024)
    try:
        # spawn, not fork: a forked copy of this process (with gRPC's threads) can spin in gRPC's fork handlers.
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        reader = ctx.Process(target=_reader, args=(name, 500, out))
        reader.start()
        for i in range(1, 501):
            ring.write("BTCUSDT", 1000 + i, 600_000 + i, 5, 600_001 + i, 7)
        count, lost, last = out.get(timeout=20)
        reader.join(10)
        assert count == 500 and lost == 0
        assert last == (500, "BTCUSDT", 1500, 600_500, 5, 600_501, 7)
    finally:
        ring.close(unlink=True)


def test_shm_ring_reports_what_a_slow_reader_lost():
    name = f"celeris-test-{uuid.uuid4().hex[:8]}"
    ring = TopOfBookRing.create(name, slots=16)
    try:
        for i in range(100):
            ring.write("ETHUSDT", i, 1, 1, 2, 1)
        records, next_seq, lost = ring.read_from(1)
        assert len(records) == 16 and lost == 84 and next_seq == 101
    finally:
        ring.close(unlink=True)


async def test_shm_output_writes_top_of_book(md):  # noqa: F811
    name = f"celeris-md-{uuid.uuid4().hex[:8]}"
    output = ShmRingOutput(name, slots=256)
    await output.start(md)
    try:
        reader = TopOfBookRing.attach(name)
        assert await wait_for(lambda: reader.head() > 3)
        records, _, _ = reader.read_from(max(1, reader.head() - 2))
        assert records and records[-1][3] < records[-1][5]  # bid < ask
        reader.close()
    finally:
        await output.stop()
