"""Available balance as the venue figures it for positions: margin balance less the positions' initial
margin (notional / leverage, rounded up), never below zero; shown by GetAccountState over gRPC. It was
margin balance less *maintenance* margin, which overstates what new orders can use by the leverage."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import grpc
from hypothesis import given, settings, strategies as st

from celeris.account import servicer
from celeris.account.engine import AccountConfig, AccountMonitor, VenueAccount
from celeris.api.v1 import account_pb2, account_pb2_grpc
from celeris.domain.clock import TestClock
from celeris.runtime import grpc_server
from tests.account.test_funding_and_fee_asset import M, instruments


class Venue:
    def __init__(self, wallet_units: int, qty_steps: int, entry: int, mark: int, leverage: int) -> None:
        positions = {("BTCUSDT", "BOTH"): (qty_steps, Fraction(entry))} if qty_steps else {}
        self.state = VenueAccount(wallet_units, positions, {"BTCUSDT": Fraction(mark)}, {"BTCUSDT": leverage})

    async def account(self):
        return self.state


async def monitor(*args) -> AccountMonitor:
    m = AccountMonitor(instruments(), TestClock(), Venue(*args), None, AccountConfig(confirm_delay_s=0))
    await m.start()
    return m


def reference(wallet_units, qty_steps, entry, mark, leverage) -> Decimal:
    """The same rule in Decimal, from the venue's numbers (BTCUSDT step 0.001)."""
    qty = Decimal(qty_steps) / 1000
    upnl = qty * (mark - entry)
    notional = abs(qty) * mark
    initial = (notional / leverage).quantize(Decimal("0.00000001"), rounding="ROUND_CEILING")
    return max(Decimal(0), Decimal(wallet_units) / M + upnl - initial)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**7 * M), st.integers(-50_000, 50_000), st.integers(20_000, 100_000),
       st.integers(20_000, 100_000), st.integers(1, 125))
async def test_available_is_margin_balance_less_initial_margin(wallet, qty, entry, mark, leverage):
    m = await monitor(wallet, qty, entry, mark, leverage)
    try:
        assert m.available_balance() == reference(wallet, qty, entry, mark, leverage)
    finally:
        await m.stop()


async def test_get_account_state_shows_it():
    # 1 BTC long at 60,000, mark 61,000, 10x: margin balance 11,000; initial margin 6,100 -> 4,900.
    m = await monitor(10_000 * M, 1_000, 60_000, 61_000, 10)
    server = grpc_server.create_server([servicer.registrar(m)])
    await server.server.start()
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            state = await account_pb2_grpc.AccountMonitorStub(channel).GetAccountState(account_pb2.AccountRequest())
        [balance] = state.balances
        available = Decimal(balance.available_balance.mantissa).scaleb(-balance.available_balance.scale)
        margin = Decimal(balance.margin_balance.mantissa).scaleb(-balance.margin_balance.scale)
        assert (available, margin) == (Decimal(4_900), Decimal(11_000))
    finally:
        await server.server.stop(None)
        await m.stop()
