"""Shared test fixtures: paths to the project's data and a loader for the real BTCUSDT instrument."""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis  # noqa: F401 - imported up front: CPython 3.11.7 can fail to compile it lazily at session end
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "binance"
SAMPLES = DATA / "samples"
CAPTURE_60S = DATA / "hftbacktest_usdm_btcusdt_20240808_first60s.txt.gz"


def load_sample(relative: str):
    return json.loads((SAMPLES / relative).read_text())


@pytest.fixture(scope="session")
def btcusdt():
    from celeris.domain.instruments import Instrument

    info = load_sample("nautilus/py_http_futures_market_exchange_info.json")
    entry = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    return Instrument.from_exchange_info(entry)


@pytest.fixture(scope="session")
def redis_server():
    from tests.support.servers import RedisServer

    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    from tests.support.servers import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()
