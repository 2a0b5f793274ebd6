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
