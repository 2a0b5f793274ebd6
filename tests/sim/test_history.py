"""The simulator's market history endpoints (klines, mark/index klines, 24-hour ticker, funding history, open
interest): candle arithmetic under arbitrary trades (hypothesis), the REST answers over a real socket on a
test clock, and binance-futures-connector unchanged against `celeris sim`."""

from __future__ import annotations

import json

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeris.exchange_sim.history import INTERVALS_MS, MINUTE_MS, CandleSeries, bucket_start
from tests.sim.conftest import API_KEY, API_SECRET, START_NS, signed_query

trades = st.lists(st.tuples(st.integers(0, 3 * 86_400_000), st.integers(1, 10**9), st.integers(1, 10**6),
                            st.booleans()), min_size=1, max_size=200)


@settings(max_examples=150, deadline=None)
@given(trades, st.sampled_from([*INTERVALS_MS, "1M"]))
def test_every_interval_is_the_sum_of_its_minutes(raw, interval):
    """Whatever the trades: candles are contiguous and aligned, volumes and counts add up, the high/low are the
    extremes of the trades in that interval, and an interval without trades is flat at the previous close."""
    series = CandleSeries()
    t0 = START_NS // 1_000_000
    recorded = []
    now = t0
    for i, (dt_ms, price, qty, taker_buy) in enumerate(sorted(raw)):
        now = t0 + dt_ms
        series.record(now, price, qty, i, taker_buy)
        recorded.append((now, price, qty, taker_buy))
    candles = series.candles(interval, now)
    assert sum(c.volume for c in candles) == sum(q for _, _, q, _ in recorded)
    assert sum(c.trades for c in candles) == len(recorded)
    assert sum(c.taker_buy_volume for c in candles) == sum(q for _, _, q, b in recorded if b)
    for prev, cur in zip(candles, candles[1:]):
        assert cur.open_ms > prev.open_ms and bucket_start(interval, cur.open_ms) == cur.open_ms
        if not cur.trades:
            assert cur.open == cur.high == cur.low == cur.close == prev.close
    for c in candles:
        inside = [p for t, p, _, _ in recorded if bucket_start(interval, t) == c.open_ms]
        if inside:
            assert (c.high, c.low, c.open, c.close) == (max(inside), min(inside), inside[0], inside[-1])
    assert candles[-1].open_ms == bucket_start(interval, now)


async def _get(session, venue, path, headers=None):
    async with session.get(venue.base_url + path, headers=headers or {}) as resp:
        return resp.status, json.loads(await resp.text())


async def test_klines_tickers_funding_and_open_interest_over_the_wire(stepped_venue):
    venue = stepped_venue
    venue.step(600)  # ten minutes of venue time
    book = venue.engine.books["BTCUSDT"]
    async with aiohttp.ClientSession() as s:
        status, one = await _get(s, venue, "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1500")
        assert status == 200 and all(len(k) == 12 for k in one)
        assert all(b[0] - a[0] == MINUTE_MS for a, b in zip(one, one[1:]))
        assert all(k[6] == k[0] + MINUTE_MS - 1 and k[11] == "0" for k in one)
        assert all(float(k[3]) <= min(float(k[1]), float(k[4])) <= max(float(k[1]), float(k[4])) <= float(k[2])
                   for k in one)
        assert one[-1][4] == book.instrument.format_price(book.last_price_ticks)
        assert sum(k[8] for k in one) == book.trade_id  # every trade the venue printed is in a candle
        _, five = await _get(s, venue, "/fapi/v1/klines?symbol=BTCUSDT&interval=5m")
        for k in five:
            parts = [m for m in one if k[0] <= m[0] < k[0] + 5 * MINUTE_MS]
            assert k[1] == parts[0][1] and k[4] == parts[-1][4] and k[8] == sum(m[8] for m in parts)
            assert k[2] == max(parts, key=lambda m: float(m[2]))[2]
        # A window from startTime, and the latest `limit` without it.
        _, window = await _get(s, venue, f"/fapi/v1/klines?symbol=BTCUSDT&interval=1m&startTime={one[2][0]}"
                                         f"&endTime={one[5][0]}")
        assert window == one[2:6]
        _, latest = await _get(s, venue, "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=2")
        assert [k[0] for k in latest] == [k[0] for k in one[-2:]]
        _, marks = await _get(s, venue, "/fapi/v1/markPriceKlines?symbol=BTCUSDT&interval=1m")
        assert marks and all(k[5] == "0" and k[8] > 0 and len(k[1].split(".")[1]) == 8 for k in marks)
        _, index = await _get(s, venue, "/fapi/v1/indexPriceKlines?pair=BTCUSDT&interval=1h")
        assert len(index) == 1 and index[0][8] == sum(k[8] for k in marks) >= 600  # one sample per tick
        _, continuous = await _get(s, venue, "/fapi/v1/continuousKlines?pair=BTCUSDT&contractType=PERPETUAL"
                                             "&interval=1m&limit=1500")
        assert [k[:9] for k in continuous] == [k[:9] for k in one]

        _, day = await _get(s, venue, "/fapi/v1/ticker/24hr?symbol=BTCUSDT")
        assert day["count"] == book.trade_id and day["lastPrice"] == one[-1][4] and day["openPrice"] == one[0][1]
        assert abs(float(day["volume"]) - sum(float(k[5]) for k in one)) < 1e-9
        assert float(day["lowPrice"]) <= float(day["weightedAvgPrice"]) <= float(day["highPrice"])
        _, every = await _get(s, venue, "/fapi/v1/ticker/24hr")
        assert {t["symbol"] for t in every} == {"BTCUSDT", "ETHUSDT"}

        _, funding = await _get(s, venue, "/fapi/v1/fundingRate?symbol=BTCUSDT")
        assert len(funding) == 5  # every 120 s of the 600
        assert all(f["symbol"] == "BTCUSDT" and f["fundingRate"] and float(f["markPrice"]) > 0 for f in funding)
        assert [f["fundingTime"] for f in funding] == sorted(f["fundingTime"] for f in funding)
        _, limited = await _get(s, venue, f"/fapi/v1/fundingRate?startTime={funding[1]['fundingTime']}&limit=3")
        assert [f["fundingTime"] for f in limited] == sorted(f["fundingTime"] for f in limited) and len(limited) == 3

        _, oi = await _get(s, venue, "/fapi/v1/openInterest?symbol=BTCUSDT")
        assert oi["openInterest"] == "0.000"
        query = signed_query({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"},
                             ts_ms=venue.now_ms())
        async with s.post(f"{venue.base_url}/fapi/v1/order?{query}", headers={"X-MBX-APIKEY": API_KEY}) as resp:
            assert resp.status == 200, await resp.text()
        _, oi = await _get(s, venue, "/fapi/v1/openInterest?symbol=BTCUSDT")
        assert oi == {"openInterest": "0.010", "symbol": "BTCUSDT", "time": venue.now_ms()}


@pytest.mark.parametrize("path, code", [
    ("/fapi/v1/klines?symbol=BTCUSDT&interval=7m", -1120),
    ("/fapi/v1/klines?symbol=BTCUSDT", -1102),
    ("/fapi/v1/klines?interval=1m", -1102),
    ("/fapi/v1/klines?symbol=NOPEUSDT&interval=1m", -1121),
    ("/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=0", -1130),
    ("/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=abc", -1102),
    ("/fapi/v1/klines?symbol=BTCUSDT&interval=1m&startTime=-5", -1130),
    ("/fapi/v1/klines?symbol=BTCUSDT&interval=1m&endTime=1e99", -1102),
    ("/fapi/v1/continuousKlines?pair=BTCUSDT&contractType=CURRENT_QUARTER&interval=1m", -1130),
    ("/fapi/v1/indexPriceKlines?symbol=BTCUSDT&interval=1m", -1102),
    ("/fapi/v1/openInterest", -1102),
    ("/fapi/v1/fundingRate?limit=-1", -1130),
    ("/fapi/v1/ticker/24hr?symbol=nope", -1121),
    ("/fapi/v1/noSuchEndpoint", -5000),
])
async def test_bad_history_requests_get_the_venues_code_and_the_venue_keeps_serving(stepped_venue, path, code):
    venue = stepped_venue
    venue.step(5)
    async with aiohttp.ClientSession() as s:
        status, body = await _get(s, venue, path)
        assert 400 <= status < 500 and body["code"] == code and body["msg"], (status, body)
        status, _ = await _get(s, venue, "/fapi/v1/klines?symbol=BTCUSDT&interval=1m")
        assert status == 200


def test_binance_futures_connector_reads_history_unchanged(sim_process):
    """binance-futures-connector's own history calls, unchanged, against `celeris sim`."""
    from binance.um_futures import UMFutures

    from tests.support.waits import wait_until

    client = UMFutures(key=API_KEY, secret=API_SECRET, base_url=sim_process["rest_url"])
    wait_until(lambda: len(client.klines("BTCUSDT", "1m", limit=5)) >= 1, what="a first candle")
    klines = client.klines("BTCUSDT", "1m", limit=5)
    assert all(len(k) == 12 and float(k[2]) >= float(k[3]) for k in klines)
    assert client.continuous_klines("BTCUSDT", "PERPETUAL", "1m", limit=5)
    assert float(client.mark_price_klines("BTCUSDT", "1m", limit=5)[-1][4]) > 0
    assert float(client.index_price_klines("BTCUSDT", "1m", limit=5)[-1][4]) > 0
    day = client.ticker_24hr_price_change("BTCUSDT")
    assert day["symbol"] == "BTCUSDT" and float(day["lastPrice"]) > 0 and day["count"] >= 0
    assert isinstance(client.funding_rate("BTCUSDT", limit=10), list)
    assert client.open_interest("BTCUSDT")["symbol"] == "BTCUSDT"
