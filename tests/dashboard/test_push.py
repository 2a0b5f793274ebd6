"""Pushes follow changes: within the coalescing window, a burst coalesced, a client that never reads skipped.

Real server, real sockets on 127.0.0.1. Nothing here waits for a duration: the window is checked on the
push the server schedules (its loop-time deadline), and everything else waits for a condition.
"""

import asyncio
import base64
import json
import os
import socket
import time

import aiohttp
import pytest

from celeris.dashboard.server import DashboardConfig, DashboardServer
from celeris.dashboard.sources import InProcessSource
from celeris.dashboard.state import DashboardState


async def start(**config):
    state = DashboardState()
    state.set("system.status", {"mode": "live"}, time.time_ns())
    srv = DashboardServer(state, None, DashboardConfig(token="t", **config))
    port = await srv.start("127.0.0.1", 0)
    srv.ws_url = f"ws://127.0.0.1:{port}/ws?token=t&format=json"
    srv.port = port
    return srv


def record_pushes(srv):
    """Loop times of the server's push rounds."""
    times = []
    push = srv._push

    def recorded():
        times.append(srv._loop.time())
        push()
    srv._push = recorded
    return times


async def until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


async def next_update(ws, timeout=5.0):
    while True:
        msg = json.loads((await ws.receive(timeout=timeout)).data)
        if msg["type"] == "update":
            return msg


async def test_a_change_is_scheduled_within_the_window_and_arrives():
    srv = await start(push_interval_ms=200)
    loop = asyncio.get_running_loop()
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(srv.ws_url) as ws:
            assert json.loads((await ws.receive(timeout=5)).data)["type"] == "snapshot"
            await until(lambda: srv._push_handle is None)
            # A change after a quiet spell is pushed as soon as the interval since the last push allows.
            changed_at = loop.time()
            changed_ns = time.time_ns()
            srv.state.set("markets.BTCUSDT", {"mid": "1"}, changed_ns)
            assert srv._push_handle is not None
            assert srv._push_handle.when() <= max(changed_at, srv._last_push + 0.2) + 0.001
            update = await next_update(ws)
            assert update["changes"] == {"markets.BTCUSDT": {"mid": "1"}}
            assert update["source_ts"] == changed_ns // 1_000_000
            # A change right after a push waits for the interval, never longer.
            changed_at = loop.time()
            srv.state.set("markets.BTCUSDT", {"mid": "2"}, time.time_ns())
            when = srv._push_handle.when()
            assert srv._last_push + 0.2 - 0.001 <= when <= changed_at + 0.2 + 0.001
            assert (await next_update(ws))["changes"] == {"markets.BTCUSDT": {"mid": "2"}}
    finally:
        await srv.stop()


async def test_source_ts_is_the_first_change_the_client_has_not_seen():
    """Not the time of the newest value: a path changed twice is as stale as its first change."""
    state = DashboardState()
    state.set("markets.A", 1, 1_000)
    seen = state.version
    state.set("markets.A", 2, 2_000)
    state.set("system.x", 1, 2_500)
    state.set("markets.A", 3, 3_000)
    changes, _, oldest = state.changes_since(seen, None)
    assert changes == {"markets.A": 3, "system.x": 1} and oldest == 2_000
    assert state.changes_since(seen, {"system"})[2] == 2_500
    assert state.changes_since(state.version, None) == ({}, [], 0)


async def test_a_burst_is_coalesced_into_bounded_pushes():
    srv = await start(push_interval_ms=20)
    pushes = record_pushes(srv)
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(srv.ws_url) as ws:
            assert json.loads((await ws.receive(timeout=5)).data)["type"] == "snapshot"
            await until(lambda: srv._push_handle is None)
            # 10,000 changes between two turns of the loop: one push, carrying the last value.
            before = len(pushes)
            for i in range(10_000):
                srv.state.set("markets.BTCUSDT", {"mid": str(i)}, time.time_ns())
            update = await next_update(ws)
            assert update["changes"] == {"markets.BTCUSDT": {"mid": "9999"}}
            assert len(pushes) == before + 1
            # A burst spread over many turns of the loop: pushes at least the interval apart.
            received = []

            async def reader():
                while True:
                    received.append(await next_update(ws))

            task = asyncio.create_task(reader())
            start_push, i = len(pushes), 0
            while len(pushes) < start_push + 10:
                for _ in range(50):
                    i += 1
                    srv.state.set("markets.BTCUSDT", {"mid": f"b{i}"}, time.time_ns())
                await asyncio.sleep(0)
            await until(lambda: bool(received) and received[-1]["changes"]["markets.BTCUSDT"]["mid"] == f"b{i}")
            task.cancel()
            gaps = [b - a for a, b in zip(pushes[start_push - 1:], pushes[start_push:])]
            assert gaps and min(gaps) >= 0.020 - 1e-6, gaps
            assert len(received) <= len(pushes) - start_push + 1 < i / 50  # far fewer pushes than changes
    finally:
        await srv.stop()


def raw_client_that_never_reads(port):
    """A WebSocket handshake on a socket with a tiny receive buffer, then silence: never reads a frame."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws?token=t&format=json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


async def test_a_client_that_never_reads_is_skipped_bounded_and_dropped():
    srv = await start(push_interval_ms=10, slow_client_timeout_ms=60_000)
    big = "x" * 100_000  # each update is ~100 kB: the stuck client's socket buffers fill within a few
    try:
        stuck_sock = raw_client_that_never_reads(srv.port)
        await until(lambda: len(srv.clients) == 1)
        stuck = srv.clients[0]
        async with aiohttp.ClientSession() as s, s.ws_connect(srv.ws_url, max_msg_size=1 << 22) as ws:
            assert json.loads((await ws.receive(timeout=5)).data)["type"] == "snapshot"
            reader = next(c for c in srv.clients if c is not stuck)
            # What the stuck client may cost: aiohttp's 64 kB high-water mark plus a message being written,
            # plus the one in its mailbox; its socket buffers are the kernel's, bounded too.
            bound = 64 * 1024 + 2 * len(big)
            i = 0
            while stuck.skipped < 30:  # the stuck client has missed 30 pushes while the reader got each one
                i += 1
                assert i < 500, "the stuck client was never skipped"
                srv.state.set("markets.BTCUSDT", {"mid": str(i), "pad": big}, time.time_ns())
                update = await next_update(ws)
                assert update["changes"]["markets.BTCUSDT"]["mid"] == str(i)  # the reader is never held up
                assert stuck.transport.get_write_buffer_size() <= bound
            assert reader.skipped == 0
            # Past the timeout it is cut off, and the reader carries on.
            srv.config.slow_client_timeout_ms = 1
            srv.state.set("markets.BTCUSDT", {"mid": "last"}, time.time_ns())
            assert (await next_update(ws))["changes"]["markets.BTCUSDT"]["mid"] == "last"
            await until(lambda: stuck not in srv.clients)
            assert srv.metrics.registry.get_sample_value("dashboard_clients_dropped_total") == 1
        stuck_sock.close()
    finally:
        await srv.stop()


class Books:
    """Just enough of an in-process system for InProcessSource's book path."""
    def __init__(self):
        self.clock = type("C", (), {"now_ns": staticmethod(time.time_ns)})()


async def test_a_book_event_only_marks_the_book_dirty():
    state = DashboardState()
    woken = []
    state.on_change = lambda: woken.append(1)
    source = InProcessSource(Books(), state)
    formatted = []
    source._format_book = lambda symbol, ts_ns: formatted.append((symbol, ts_ns))
    update = type("U", (), {"symbol": "BTCUSDT"})()
    for _ in range(1_000):
        source._on_book(update)
    source._on_book(type("U", (), {"symbol": "ETHUSDT"})())
    assert formatted == [] and len(state.pending) == 1 and len(woken) == 1  # one mark per batch
    state.snapshot()  # a read (the server's push) formats each dirty book once
    assert [s for s, _ in formatted] == ["BTCUSDT", "ETHUSDT"] and state.pending == []
    source._on_book(update)
    assert len(state.pending) == 1 and len(woken) == 2  # the next batch marks again


async def test_refresh_spam_gets_one_snapshot_a_second_not_one_per_push():
    srv = await start(push_interval_ms=5)
    srv.now_ns = lambda: 10**18  # the server's clock stands still: every refresh below is within its second
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(srv.ws_url) as ws:
            assert json.loads((await ws.receive(timeout=5)).data)["type"] == "snapshot"
            kinds = []
            for i in range(5):
                await ws.send_str('{"type": "refresh"}')
                await ws.send_str('{"type": "ping"}')
                while json.loads((await ws.receive(timeout=5)).data)["type"] != "pong":
                    pass  # the refresh has been read once its ping is answered
                srv.state.set("system.tick", i, time.time_ns())  # a change: the next push goes out
                while True:
                    msg = json.loads((await ws.receive(timeout=5)).data)
                    if msg["type"] in ("snapshot", "update"):
                        kinds.append(msg["type"])
                        break
            assert kinds == ["snapshot"] + ["update"] * 4  # one refresh granted in the second, then updates
    finally:
        await srv.stop()
