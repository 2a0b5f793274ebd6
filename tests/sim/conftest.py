"""Simulator fixtures: a deterministic in-process venue, one on a real socket, and a `celeris sim` process."""

from __future__ import annotations

import hashlib
import hmac
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from celeris.domain.clock import TestClock
from celeris.domain.instruments import Instrument
from celeris.exchange_sim.server import SimVenue, start
from celeris.runtime.clock import SystemClock

API_KEY = "simtestkey0001"
API_SECRET = "simtestsecret0001"
START_NS = 1_790_000_000_000_000_000


@pytest.fixture
def clock():
    return TestClock(start_ns=1_790_000_000_000_000_000)


@pytest.fixture
def venue(clock):
    """A venue that only moves when a test calls tick(); no server, no tasks."""
    return SimVenue(symbols=["BTCUSDT", "ETHUSDT"], api_key=API_KEY, api_secret=API_SECRET, clock=clock, seed=1)


@pytest.fixture
async def live_venue():
    """A venue on a real socket on 127.0.0.1 with its market loop running (tick 20 ms)."""
    v = SimVenue(symbols=["BTCUSDT", "ETHUSDT"], api_key=API_KEY, api_secret=API_SECRET, clock=SystemClock(),
                 seed=3, tick_ms=20, mark_interval_ms=200)
    # What a client of this venue trades with: the connector's instruments, read from the exchangeInfo
    # entries the venue serves (the simulator itself has its own reading and never the connector's).
    v.instruments = [Instrument.from_exchange_info(entry) for entry in v.entries.values()]
    runner, port = await start(v, "127.0.0.1", 0)
    v.base_url = f"http://127.0.0.1:{port}"
    v.ws_url = f"ws://127.0.0.1:{port}"
    yield v
    await runner.cleanup()


@pytest.fixture
async def stepped_venue():
    """A venue on a real socket whose time moves only when the test steps it (its own loop sleeps an hour)."""
    clock = TestClock(start_ns=START_NS)
    venue = SimVenue(symbols=["BTCUSDT", "ETHUSDT"], api_key=API_KEY, api_secret=API_SECRET, clock=clock, seed=1,
                     tick_ms=3_600_000, funding_interval_s=120)
    runner, port = await start(venue, "127.0.0.1", 0)
    venue.base_url = f"http://127.0.0.1:{port}"
    venue.step = lambda seconds: [(clock.advance(ms=1000), venue.tick()) for _ in range(seconds)]
    await asyncio.sleep(0)
    yield venue
    await runner.cleanup()


def signed_query(params: dict, secret: str = API_SECRET, ts_ms: int | None = None) -> str:
    params = dict(params)
    params.setdefault("timestamp", ts_ms if ts_ms is not None else int(time.time() * 1000))
    query = urlencode(params)
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


@pytest.fixture(scope="session")
def sim_process():
    """`celeris sim` as users run it, on a free port; yields its first-line JSON."""
    exe = Path(sys.executable).with_name("celeris")
    proc = subprocess.Popen([str(exe), "sim", "--port", "0", "--api-key", API_KEY, "--api-secret", API_SECRET,
                             "--symbols", "BTCUSDT,ETHUSDT", "--tick-ms", "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        yield info
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
