"""The account monitor computes with the venue's leverage brackets: read at start, read again for a symbol
whose leverage changed, and exchangeInfo's flat rate (said in a warning) when they cannot be read."""

from __future__ import annotations

import logging
from decimal import Decimal

from celeris.account.engine import AccountConfig, AccountMonitor, VenueAccount
from celeris.domain.clock import TestClock
from celeris.venues.binance.account import parse_leverage_brackets
from tests.support import leverage_brackets

M = 10**8


class Venue:
    """1 BTC long at 60,000 on a 10,000 USDT wallet: issue 18's position."""

    def __init__(self):
        self.state = VenueAccount(10_000 * M, {("BTCUSDT", "BOTH"): (1000, "60000")}, {"BTCUSDT": "60000"},
                                  {"BTCUSDT": 20})

    async def account(self):
        return self.state


class Brackets:
    def __init__(self, fail=False):
        self.calls: list[str | None] = []
        self.fail = fail

    async def leverage_brackets(self, symbol=None):
        self.calls.append(symbol)
        if self.fail:
            raise ConnectionError("venue unreachable")
        return parse_leverage_brackets(leverage_brackets.BODY_NUMBERS)


async def test_monitor_uses_the_brackets_and_reads_them_again_on_a_leverage_change(btcusdt):
    venue, source = Venue(), Brackets()
    monitor = AccountMonitor({"BTCUSDT": btcusdt}, TestClock(), venue, None, AccountConfig(confirm_delay_s=0),
                             brackets=source)
    await monitor.start()
    try:
        assert source.calls == [None]
        assert monitor.liquidation_price(("BTCUSDT", "BOTH")) == Decimal("50201.0")  # not 51,282.1
        assert monitor.maint_margin() == 250  # 60,000 x 0.5 % - 50
        assert monitor.margin_ratio() == Decimal("0.025")
        await monitor.reconcile()
        assert source.calls == [None]  # same leverage: not read again
        venue.state.leverage = {"BTCUSDT": 50}
        await monitor.reconcile()
        assert source.calls == [None, "BTCUSDT"]
    finally:
        await monitor.stop()


async def test_without_brackets_the_flat_rate_and_a_warning(btcusdt, caplog):
    source = Brackets(fail=True)
    monitor = AccountMonitor({"BTCUSDT": btcusdt}, TestClock(), Venue(), None, AccountConfig(confirm_delay_s=0),
                             brackets=source)
    with caplog.at_level(logging.WARNING):
        await monitor.start()
    try:
        assert monitor.liquidation_price(("BTCUSDT", "BOTH")) == Decimal("51282.1")
        assert monitor.maint_margin() == 1500  # 2.5 % of 60,000
        assert "flat maintenance rate" in caplog.text
    finally:
        await monitor.stop()


async def test_an_isolated_position_is_liquidated_on_its_own_wallet(btcusdt):
    """Issue 18's long, isolated with 10,000 USDT of a 50,000 USDT wallet: its
    liquidation price is the isolated formula's (50,201.0) whatever the rest of the wallet; the cross wallet
    excludes it."""
    import json

    from celeris.account import alert_rules
    from celeris.account.alert_rules import AlertThresholds
    from celeris.venues.binance import codec

    venue = Venue()
    venue.state = VenueAccount(50_000 * M, {("BTCUSDT", "BOTH"): (1000, "60000")}, {"BTCUSDT": "60000"},
                               {"BTCUSDT": 20}, {("BTCUSDT", "BOTH"): 10_000 * M})
    monitor = AccountMonitor({"BTCUSDT": btcusdt}, TestClock(), venue, None, AccountConfig(confirm_delay_s=0),
                             brackets=Brackets())
    await monitor.start()
    try:
        assert monitor.liquidation_price(("BTCUSDT", "BOTH")) == Decimal("50201.0")
        assert monitor.ledger.cross_wallet() == 40_000 * M and monitor.ledger.margin_ratio_ppm() == 0
        assert monitor.ledger.position_margin_ratio_ppm(("BTCUSDT", "BOTH")) == 25_000  # 250 / 10,000
        # the stream moves it to cross: the whole wallet now holds it up
        monitor.on_user_event(codec.decode_user_event(json.dumps({"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {
            "m": "MARGIN_TYPE_CHANGE", "B": [], "P": [{"s": "BTCUSDT", "pa": "1.000", "ep": "60000", "up": "0",
                                                       "mt": "cross", "iw": "0", "ps": "BOTH"}]}})))
        assert monitor.liquidation_price(("BTCUSDT", "BOTH")) < Decimal("20000")
        # and back to isolated with a thin wallet: its own ratio raises the alert, the cross one does not
        monitor.on_user_event(codec.decode_user_event(json.dumps({"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {
            "m": "MARGIN_TYPE_CHANGE", "B": [], "P": [{"s": "BTCUSDT", "pa": "1.000", "ep": "60000", "up": "0",
                                                       "mt": "isolated", "iw": "300", "ps": "BOTH"}]}})))
        kinds = {a.kind for a in alert_rules.evaluate(monitor.ledger, monitor.stats, AlertThresholds())}
        assert "margin_ratio:BTCUSDT" in kinds and "margin_ratio" not in kinds
    finally:
        await monitor.stop()


def test_the_v2_account_says_which_positions_are_isolated(btcusdt):
    from celeris.venues.binance.account import parse_account
    from tests.conftest import load_sample

    body = load_sample("ccxt/ccxt_fapi_v2_account_no_positions.json")
    body["positions"] = [{"symbol": "BTCUSDT", "positionAmt": "0.500", "entryPrice": "60000", "leverage": "10",
                          "isolated": True, "isolatedWallet": "1234.5", "positionSide": "BOTH"}]
    account = parse_account(body, {"BTCUSDT": btcusdt})
    assert account.isolated_wallets == {("BTCUSDT", "BOTH"): 123_450_000_000}
    body["positions"][0]["isolated"] = False
    assert parse_account(body, {"BTCUSDT": btcusdt}).isolated_wallets == {}
