"""The one parser of Binance's account: /fapi/v2/account and premiumIndex into integers and domain Positions."""

from fractions import Fraction

import pytest

from celeris.domain.values import DecimalFormatError, money
from celeris.venues.binance.account import parse_account, parse_marks, read_account

ACCOUNT = {
    "totalWalletBalance": "10100.12345678", "availableBalance": "9000.50000000",
    "totalOpenOrderInitialMargin": "12.30000000",
    "assets": [{"asset": "BNB", "walletBalance": "1.00000000"}, {"asset": "USDT", "walletBalance": "10000.00000000"}],
    "positions": [
        {"symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "0.500", "entryPrice": "58000.123456",
         "leverage": "10"},
        {"symbol": "BTCUSDT", "positionSide": "LONG", "positionAmt": "0", "entryPrice": "0.0", "leverage": "10"},
        {"symbol": "DOGEUSDT", "positionSide": "BOTH", "positionAmt": "100", "entryPrice": "0.1"},
    ],
}


def test_account_in_money_units_steps_and_exact_entries(btcusdt):
    account = parse_account(ACCOUNT, {"BTCUSDT": btcusdt})
    assert account.usdt_wallet == 10_000 * 10**8  # the USDT asset, not every asset's total
    assert account.total_wallet == money("10100.12345678") and account.available == money("9000.5")
    assert account.open_order_margin == money("12.3")
    assert set(account.positions) == {("BTCUSDT", "BOTH"), ("BTCUSDT", "LONG")}  # no instrument, not ours
    both = account.positions[("BTCUSDT", "BOTH")]
    assert both.qty_steps == 500 and both.entry_price == Fraction("58000.123456")  # an average, kept exactly
    assert account.positions[("BTCUSDT", "LONG")].qty_steps == 0
    assert account.leverage == {"BTCUSDT": 10}


def test_missing_usdt_asset_falls_back_to_the_total_and_defaults(btcusdt):
    body = {"totalWalletBalance": "5.00000000", "positions": [
        {"symbol": "BTCUSDT", "positionAmt": "-0.001", "entryPrice": "60000.0"}]}
    account = parse_account(body, {"BTCUSDT": btcusdt})
    assert account.usdt_wallet == account.total_wallet == 5 * 10**8
    assert account.positions[("BTCUSDT", "BOTH")].qty_steps == -1
    assert account.leverage["BTCUSDT"] == 20 and account.available == 0


def test_malformed_values_are_refused_not_rounded(btcusdt):
    with pytest.raises(DecimalFormatError):
        parse_account({**ACCOUNT, "totalWalletBalance": "1.000000001"}, {"BTCUSDT": btcusdt})
    with pytest.raises(ValueError):
        parse_account({**ACCOUNT, "totalWalletBalance": "1e3"}, {"BTCUSDT": btcusdt})


def test_marks_are_ticks_at_the_nearest_tick(btcusdt):
    marks = [{"symbol": "BTCUSDT", "markPrice": "60000.14000000"}, {"symbol": "XUSDT", "markPrice": "1"}]
    assert parse_marks(marks, {"BTCUSDT": btcusdt}) == {"BTCUSDT": 600_001}  # 0.10 tick
    assert parse_marks({"symbol": "BTCUSDT", "markPrice": "60000.25"}, {"BTCUSDT": btcusdt}) == {"BTCUSDT": 600_002}


async def test_read_account_asks_both_endpoints(btcusdt):
    calls = []

    class Rest:
        async def request(self, method, path, params=None, *, signed=False, weight=1):
            calls.append((method, path, signed, weight))
            return ACCOUNT if path == "/fapi/v2/account" else [{"symbol": "BTCUSDT", "markPrice": "60000.00"}]

    account, marks = await read_account(Rest(), {"BTCUSDT": btcusdt})
    assert account.usdt_wallet == 10_000 * 10**8 and marks == {"BTCUSDT": 600_000}
    assert sorted(calls) == [("GET", "/fapi/v1/premiumIndex", False, 1), ("GET", "/fapi/v2/account", True, 5)]
