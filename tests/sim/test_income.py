"""GET /fapi/v1/income on the simulator: each funding payment the venue settles is an income record of
FUNDING_FEE in USDT, on its symbol, with a unique tranId; the venue's filters (incomeType, symbol,
startTime) apply; the records sum to the wallet's moves by funding."""

from __future__ import annotations

import aiohttp
import yarl

from celeris.domain.values import money
from tests.sim.conftest import API_KEY, signed_query, stepped_venue  # noqa: F401


async def income(venue, **params):
    query = signed_query(params, ts_ms=venue.now_ms())
    async with aiohttp.ClientSession() as s:
        async with s.get(yarl.URL(f"{venue.base_url}/fapi/v1/income?{query}", encoded=True),
                         headers={"X-MBX-APIKEY": API_KEY}) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


async def test_funding_payments_are_income_records(stepped_venue):  # noqa: F811
    venue = stepped_venue
    account = venue.engine.accounts[API_KEY]
    venue.step(2)
    venue.engine.place(account, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.500"})
    venue.engine.place(account, {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "2.000"})
    before = account.wallet
    venue.engine.apply_funding("BTCUSDT")
    venue.engine.apply_funding("ETHUSDT")
    first_ms = venue.now_ms()
    venue.step(2)
    venue.engine.apply_funding("BTCUSDT")
    records = await income(venue, incomeType="FUNDING_FEE")
    assert [r["symbol"] for r in records] == ["BTCUSDT", "ETHUSDT", "BTCUSDT"]
    assert len({r["tranId"] for r in records}) == 3
    assert all(r["incomeType"] == "FUNDING_FEE" and r["asset"] == "USDT" for r in records)
    assert sum(money(r["income"]) for r in records) == account.wallet - before
    assert money(records[0]["income"]) < 0 < money(records[1]["income"])  # positive rate: the long pays
    assert [r["symbol"] for r in await income(venue, incomeType="FUNDING_FEE", symbol="ETHUSDT")] == ["ETHUSDT"]
    later = await income(venue, incomeType="FUNDING_FEE", startTime=first_ms + 1)
    assert [r["tranId"] for r in later] == [records[2]["tranId"]]
    assert await income(venue, incomeType="COMMISSION") == []
