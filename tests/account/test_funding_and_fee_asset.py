"""Fee asset and funding in the account.

A commission in BNB (Binance's fee discount) is counted in BNB: it never reduces the USDT wallet or the USDT
PnL, it is valued in USDT only at a known BNBUSDT mark and otherwise reported apart (never BNB units added
as USDT). ACCOUNT_UPDATE balances of every asset are kept (BNB, BNFCR). A FUNDING_FEE ACCOUNT_UPDATE is a
funding payment: in the wallet, in realized and total PnL, per symbol when the event names it, else named
later by the venue's income history (each record once; the total unchanged by naming).
"""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace

from hypothesis import given, settings, strategies as st

from celeris.account.engine import AccountConfig, AccountMonitor, VenueAccount
from celeris.account.pnl import UNATTRIBUTED
from celeris.account.venue_reader import parse_funding_income
from celeris.domain.clock import TestClock
from celeris.domain.funding import asset_to_money
from celeris.domain.instruments import Instrument
from celeris.domain.values import money_str
from celeris.venues.binance import codec
from celeris.venues.binance.orders import BinanceOrderVenue
from tests.conftest import SAMPLES, load_sample

M = 10**8


def instruments():
    info = load_sample("nautilus/py_http_futures_market_exchange_info.json")
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    eth = next(s for s in info["symbols"] if s["symbol"] == "ETHUSDT")
    bnb = dict(eth, symbol="BNBUSDT", baseAsset="BNB")  # ETHUSDT's grids (tick 0.01) under BNB's name
    return {"BTCUSDT": Instrument.from_exchange_info(btc), "BNBUSDT": Instrument.from_exchange_info(bnb)}


class Venue:
    def __init__(self, wallet=10_000):
        self.state = VenueAccount(wallet * M, {}, {"BTCUSDT": Fraction(60_000)}, {"BTCUSDT": 20})
        self.income: list[dict] = []
        self.income_reads: list[int] = []

    async def account(self):
        return self.state

    async def funding_income(self, start_ms):
        self.income_reads.append(start_ms)
        return parse_funding_income(self.income)


async def make(venue=None):
    monitor = AccountMonitor(instruments(), TestClock(), venue or Venue(), None, AccountConfig(confirm_delay_s=0))
    await monitor.start()
    return monitor


def trade(rp: str, n: str, asset: str):
    return codec.decode_user_event(json.dumps({"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {
        "s": "BTCUSDT", "c": "c1", "S": "SELL", "o": "MARKET", "f": "GTC", "q": "0.100", "p": "0", "ap": "60000",
        "x": "TRADE", "X": "FILLED", "i": 1, "l": "0.100", "z": "0.100", "L": "60000.00", "N": asset, "n": n,
        "T": 1, "t": 7, "m": False, "R": False, "ps": "BOTH", "rp": rp}}))


def account_update(reason: str, balances: list[tuple[str, str]], positions=(), t_ms=1_723_190_400_000):
    return codec.decode_user_event(json.dumps({"e": "ACCOUNT_UPDATE", "E": t_ms, "T": t_ms, "a": {
        "m": reason, "B": [{"a": a, "wb": wb, "cw": wb, "bc": "0"} for a, wb in balances],
        "P": [{"s": s, "pa": pa, "ep": "60000", "up": "0", "mt": "isolated", "ps": "BOTH"} for s, pa in positions]}}))


def units(text: str) -> int:
    return int(Decimal(text) * M)


# -- fee asset ----------------------------------------------------------------------------------------
async def test_a_bnb_commission_is_bnb_and_reported_apart_without_a_price():
    m = await make()
    m.on_user_event(trade("10.00000000", "0.00012345", "BNB"))
    m.on_user_event(trade("0", "1.20000000", "USDT"))
    assert m.fees_by_asset == {"BNB": 12_345, "USDT": 120_000_000}
    pnl = m.pnl()
    assert pnl["fees_usdt"] == Decimal("1.2") and pnl["fees_bnb"] == Decimal("0.00012345")
    assert pnl["fees_bnb_usdt"] is None  # no BNBUSDT mark: reported apart
    assert pnl["fees"] == Decimal("1.2")  # never 1.2 + 0.00012345
    assert pnl["usdt_pnl"] == pnl["total"] == Decimal("10") - Decimal("1.2")  # unrealized 0: flat
    assert m.wallet == 10_000 * M  # the stream's wallet is the venue's; a fill's fee is not taken twice


async def test_a_bnb_commission_is_valued_at_the_bnbusdt_mark_and_leaves_the_usdt_pnl_alone():
    m = await make()
    m.on_user_event(trade("10.00000000", "0.02000000", "BNB"))
    m.on_mark("BNBUSDT", "512.34000000")
    pnl = m.pnl()
    assert pnl["fees_bnb_usdt"] == Decimal("10.2468")  # 0.02 x 512.34
    assert pnl["usdt_pnl"] == Decimal("10")  # the BNB fee discount: the USDT PnL is not reduced by it
    assert pnl["total"] == Decimal("10") - Decimal("10.2468") and pnl["fees"] == Decimal("10.2468")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**12), st.integers(0, 10**10), st.integers(-10**12, 10**12),
       st.one_of(st.none(), st.integers(1, 10**8)))
def test_fee_totals_never_mix_units(usdt_fee, bnb_fee, realized, bnb_mark_cents):
    import asyncio

    m = asyncio.run(make())
    m.on_user_event(trade(money_str(realized), money_str(usdt_fee), "USDT"))
    m.on_user_event(trade("0", money_str(bnb_fee), "BNB"))
    if bnb_mark_cents is not None:
        m.ledger.marks["BNBUSDT"] = bnb_mark_cents  # ticks of 0.01
    s = m.stats
    assert s.fees == usdt_fee and s.fees_by_asset["BNB"] == bnb_fee
    valued, by_asset = s.fees_valued(m.ledger.price_of)
    assert isinstance(valued, int)
    if bnb_mark_cents is None:
        assert by_asset["BNB"] is None and valued == usdt_fee
    else:
        exact = Fraction(bnb_fee, M) * Fraction(bnb_mark_cents, 100)
        assert by_asset["BNB"] == round(exact * M)  # half-even, integers only
        assert valued == usdt_fee + by_asset["BNB"]
    pnl = m.pnl()
    assert pnl["usdt_pnl"] == Decimal(realized - usdt_fee) / M  # whatever the BNB fee
    assert pnl["total"] == Decimal(realized - valued) / M


@given(st.integers(-10**15, 10**15), st.integers(1, 10**12), st.integers(0, 12))
def test_asset_to_money_is_exact_half_even(amount, price_units, price_scale):
    assert asset_to_money(amount, "BNB", price_units, price_scale) == round(
        Fraction(amount, M) * Fraction(price_units, 10**price_scale) * M)
    assert asset_to_money(amount, "USDT", price_units, price_scale) == amount


async def test_account_update_balances_of_every_asset():
    m = await make()
    m.on_user_event(account_update("ORDER", [("BNB", "1.50000000")]))
    assert m.balances == {"BNB": 150_000_000} and m.wallet == 10_000 * M  # BNB is not USDT
    m.on_user_event(codec.decode_user_event((SAMPLES / "nautilus/rs_account_update_bnfcr.json").read_text()))
    assert m.balances["BNFCR"] == 500_128_983_031 and m.wallet == 10_000 * M
    m.on_user_event(codec.decode_user_event((SAMPLES / "nautilus/rs_account_update.json").read_text()))
    assert m.wallet == units("122624.12345678")


def test_the_venue_connector_keeps_the_commission_asset():
    venue = SimpleNamespace(instruments=instruments())
    usdt = BinanceOrderVenue._convert(venue, codec.decode_user_event(
        (SAMPLES / "nautilus/rs_order_update_trade.json").read_text()))
    assert (usdt.commission, usdt.commission_asset, usdt.margin_commission) == (1_000_000, "USDT", 1_000_000)
    raw = json.loads((SAMPLES / "nautilus/rs_order_update_trade.json").read_text())
    raw["o"].update(N="BNB", n="0.00004567")
    bnb = BinanceOrderVenue._convert(venue, codec.decode_user_event(json.dumps(raw)))
    assert (bnb.commission, bnb.commission_asset, bnb.margin_commission) == (4_567, "BNB", 0)


# -- funding --------------------------------------------------------------------------------------------
async def test_funding_fee_moves_wallet_realized_and_total_on_the_named_symbol():
    m = await make()
    m.on_user_event(trade("10.00000000", "1.00000000", "USDT"))
    m.on_user_event(account_update("FUNDING_FEE", [("USDT", "9994.00000000")], [("BTCUSDT", "0.100")]))
    assert m.funding_by_symbol == {"BTCUSDT": -6 * M} and m.wallet == 9_994 * M
    pnl = m.pnl()
    assert pnl["funding"] == -6 and pnl["trading_pnl"] == 10 and pnl["realized"] == 4
    assert pnl["total"] == 4 - 1 + pnl["unrealized"]
    assert m.realized_by_symbol["BTCUSDT"] == 4 * M


async def test_cross_margin_funding_is_named_by_the_income_history_once():
    venue = Venue()
    m = await make(venue)
    m.on_user_event(account_update("FUNDING_FEE", [("USDT", "10003.00000000")]))  # cross: balance only
    assert m.funding_by_symbol == {UNATTRIBUTED: 3 * M} and m.funding == 3 * M
    venue.income = [{"symbol": "BTCUSDT", "incomeType": "FUNDING_FEE", "income": "3.00000000", "asset": "USDT",
                     "time": 1_723_190_400_000, "tranId": 9001},
                    {"symbol": "BTCUSDT", "incomeType": "COMMISSION", "income": "-1.0", "asset": "USDT",
                     "time": 1_723_190_400_000, "tranId": 9002}]
    await m.reconcile()
    assert venue.income_reads == [1_723_190_400_000 - 60_000]
    assert m.funding_by_symbol == {"BTCUSDT": 3 * M} and m.funding == 3 * M  # named, the total unchanged
    await m.reconcile()
    assert venue.income_reads == [1_723_190_400_000 - 60_000]  # nothing left to name: not read again
    m.stats.apply_funding_income(parse_funding_income(venue.income))  # the same records again
    assert m.funding == 3 * M


async def test_an_income_record_the_stream_never_told_is_added():
    m = await make()
    m.on_user_event(account_update("FUNDING_FEE", [("USDT", "9998.00000000")]))  # -2 unattributed
    m.stats.apply_funding_income([(1, "BTCUSDT", -2 * M), (2, "ETHUSDT", -5 * M)])  # ETHUSDT's: missed
    assert m.funding_by_symbol == {"BTCUSDT": -2 * M, "ETHUSDT": -5 * M} and m.funding == -7 * M


# -- what the APIs show ---------------------------------------------------------------------------------
async def test_grpc_and_metrics_show_fees_per_asset_and_funding():
    import grpc

    from celeris.account import servicer
    from celeris.api.v1 import account_pb2, account_pb2_grpc
    from celeris.assembly.account import AccountCollector
    from celeris.runtime import grpc_server

    m = await make()
    m.on_user_event(trade("10.00000000", "0.00012345", "BNB"))
    m.on_user_event(trade("0", "1.20000000", "USDT"))
    m.on_user_event(account_update("FUNDING_FEE", [("USDT", "9994.00000000"), ("BNB", "2.00000000")],
                                   [("BTCUSDT", "0.100")]))
    server = grpc_server.create_server([servicer.registrar(m)])
    await server.server.start()
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = account_pb2_grpc.AccountMonitorStub(channel)
            pnl = await stub.GetPnL(account_pb2.AccountRequest())
            state = await stub.GetAccountState(account_pb2.AccountRequest())
    finally:
        await server.server.stop(None)
    fees = {f.asset: (f.amount.mantissa, f.amount.scale, f.valued) for f in pnl.fees_by_asset}
    assert fees == {"BNB": (12_345, 8, False), "USDT": (120_000_000, 8, True)}
    assert (pnl.fees.mantissa, pnl.fees.scale) == (120_000_000, 8)  # BNB is not in the USDT figure
    assert [(f.symbol, f.amount.mantissa) for f in pnl.funding_by_symbol] == [("BTCUSDT", -6 * M)]
    assert pnl.funding.mantissa == -6 * M and pnl.trading_pnl.mantissa == 10 * M
    assert {b.asset: b.wallet_balance.mantissa for b in state.balances} == {"USDT": 9_994 * M, "BNB": 2 * M}

    m.on_mark("BNBUSDT", "500.00000000")
    samples = {(metric.name, tuple(sorted(s.labels.items()))): s.value
               for metric in AccountCollector(m).collect() for s in metric.samples}
    assert samples[("fees_asset", (("asset", "BNB"),))] == 0.00012345
    assert samples[("fees_asset_usdt", (("asset", "BNB"),))] == 0.061725
    assert samples[("fees_usdt", ())] == 1.2 + 0.061725
    assert samples[("funding_pnl_usdt", ())] == -6
    assert samples[("funding_pnl_symbol_usdt", (("symbol", "BTCUSDT"),))] == -6
