"""What the second issue-18 review found driving the simulator with ccxt, python-binance and
binance-futures-connector, as regressions over a real socket on 127.0.0.1: GET /fapi/v1/symbolConfig says
the same maxNotionalValue as POST /fapi/v1/leverage and the position's brackets (it said 1,000,000 whatever
the leverage, so ccxt's fetch_leverage and a client sizing from it read a cap the venue does not apply)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.sim.test_errors_and_admin import _signed


@pytest.mark.parametrize("leverage", [1, 20, 50, 100, 125])
async def test_symbol_config_says_the_max_notional_the_leverage_call_says(live_venue, leverage):
    async with aiohttp.ClientSession() as s:
        status, changed = await _signed(s, live_venue, "POST", "/fapi/v1/leverage",
                                        {"symbol": "BTCUSDT", "leverage": leverage})
        assert status == 200, changed
        status, config = await _signed(s, live_venue, "GET", "/fapi/v1/symbolConfig", {"symbol": "BTCUSDT"})
        assert status == 200, config
        status, risk = await _signed(s, live_venue, "GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"})
    assert config[0]["leverage"] == leverage
    assert config[0]["maxNotionalValue"] == changed["maxNotionalValue"] == risk[0]["maxNotionalValue"]
