"""The simulator's position arithmetic (exchange_sim/positions.py) against the connector's (domain.positions).

The two are written independently so that the account tests compare two computations of the venue's
figures; here random fill sequences on the recorded BTCUSDT and ETHUSDT entries must give both the same
size, exact cost, realized PnL (rounded per fill), unrealized PnL, maintenance margin by leverage tier,
fees and liquidation price, in integer money units (the venue's leverageBracket answer read by the connector).
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from celeris.domain.instruments import Instrument
from celeris.domain.positions import Position, fee, liquidation_ticks
from celeris.domain.values import MONEY_SCALE, Side
from celeris.exchange_sim import brackets
from celeris.exchange_sim.contract import Contract
from celeris.exchange_sim.positions import SimPosition, fill_commission
from celeris.venues.binance.account import parse_leverage_brackets
from tests.conftest import load_sample

ENTRIES = [e for e in load_sample("nautilus/py_http_futures_market_exchange_info.json")["symbols"]
           if e["symbol"] in ("BTCUSDT", "ETHUSDT")]

fills = st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 5_000), st.integers(5_000, 700_000)),
                 min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(entry=st.sampled_from(ENTRIES), sequence=fills, mark=st.integers(5_000, 700_000),
       rate=st.sampled_from([Fraction(2, 10_000), Fraction(4, 10_000), Fraction(1, 3_000)]),
       wallet=st.integers(0, 10**6), other_maint=st.integers(0, 10**4), other_upnl=st.integers(-10**5, 10**5))
def test_random_fills_give_the_same_position_figures(entry, sequence, mark, rate, wallet, other_maint, other_upnl):
    contract, ins = Contract.from_entry(entry), Instrument.from_exchange_info(entry)
    sim, connector = SimPosition(contract), Position(ins)
    for side, qty, price in sequence:
        assert fill_commission(contract, price, qty, rate) == fee(ins, price, qty, rate)
        realized = sim.apply_fill(side, qty, price)
        assert realized == connector.apply_fill(side, qty, price).realized_pnl
        assert (sim.qty_steps, sim.cost, sim.realized_pnl) == (connector.qty_steps, connector.cost,
                                                               connector.realized_pnl)
        assert sim.entry_price == connector.entry_price
    # The connector reads the venue's tiers from its leverageBracket answer, as it does from the real one.
    table = parse_leverage_brackets(brackets.wire_entry(entry["symbol"], brackets.table(entry["symbol"])))
    table = table[entry["symbol"]]
    assert sim.unrealized_pnl(mark) == connector.unrealized_pnl(mark)
    assert sim.maint_margin(mark) == connector.maint_margin(mark, table)
    assert sim.notional(mark) == connector.notional(mark)
    assert sim.entry_value() == connector.entry_value()
    if not sim.qty_steps:
        return
    # cross margin: the other positions' maintenance margin and PnL count against / for the wallet
    w, om, ou = (x * 10**MONEY_SCALE for x in (wallet, other_maint, other_upnl))
    num, den = brackets.liquidation_notional(brackets.table(entry["symbol"]), long=sim.qty_steps > 0,
                                             entry_value=sim.entry_value(), collateral=w - om + ou)
    lp = liquidation_ticks(connector, w, om, ou, brackets=table)
    if num <= 0:
        assert lp == 0
        return
    # the venue's notional at liquidation (exact) and the connector's price on the tick: within half a tick
    tick_value = contract.notional_exact(1, abs(sim.qty_steps)) * 10**MONEY_SCALE
    assert abs(Fraction(num, den) - lp * tick_value) <= tick_value / 2


async def test_the_venues_liquidation_price_is_the_connectors_over_the_wire(stepped_venue):
    """Positions driven in the simulator over REST; the connector reads the account and the leverage brackets
    as it does from Binance, and its domain computation must give the venue's positionRisk figures."""
    from decimal import Decimal

    from celeris.account.ledger import AccountLedger, VenueAccount
    from celeris.domain.instruments import Instrument
    from celeris.venues.binance.account import read_account, read_leverage_brackets
    from celeris.venues.binance.rest import BinanceRestClient
    from tests.sim.conftest import API_KEY, API_SECRET

    venue = stepped_venue
    venue.step(2)
    instruments = {s: Instrument.from_exchange_info(e) for s, e in venue.entries.items()}
    async with BinanceRestClient(venue.base_url, venue.clock, api_key=API_KEY, api_secret=API_SECRET) as rest:
        await rest.request("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 50}, signed=True)
        # more than the book's depth: what fills is a size a 100,000 USDT wallet does not cover to zero
        for symbol, side, qty in (("BTCUSDT", "BUY", "8.000"), ("ETHUSDT", "SELL", "150.000")):
            await rest.request("POST", "/fapi/v1/order", {"symbol": symbol, "side": side, "type": "MARKET",
                                                          "quantity": qty}, signed=True)
        btc = venue.engine.books["BTCUSDT"]
        for mark_move in (100, 97, 103):  # the marks move; every figure follows them
            btc.mark_ticks = btc.mark_ticks * mark_move // 100
            held = venue.engine.accounts[API_KEY].positions
            assert held["BTCUSDT"].qty_steps > 1000 and held["ETHUSDT"].qty_steps < 0  # as deep as the book went
            risk = {p["symbol"]: p for p in await rest.request("GET", "/fapi/v3/positionRisk", signed=True)}
            account, marks = await read_account(rest, instruments)
            ledger = AccountLedger(instruments)
            ledger.brackets = await read_leverage_brackets(rest)
            ledger.update_marks(marks)
            ledger.adopt(VenueAccount(account.usdt_wallet, {k: p for k, p in account.positions.items() if p.qty_steps},
                                      marks, account.leverage))
            totals = await rest.request("GET", "/fapi/v2/account", signed=True)
            assert Decimal(totals["totalMaintMargin"]) * 10**MONEY_SCALE == ledger.maint_margin()
            for symbol in ("BTCUSDT", "ETHUSDT"):
                ins = instruments[symbol]
                key = (symbol, "BOTH")
                assert Decimal(risk[symbol]["maintMargin"]) * 10**MONEY_SCALE == ledger.maint_margin_of(key)
                ticks = ledger.liquidation_ticks((symbol, "BOTH"))
                tick = Decimal(ins.price_grid.increment)
                assert ticks and abs(Decimal(risk[symbol]["liquidationPrice"]) - ticks * tick) <= tick / 2, \
                    (symbol, risk[symbol], ticks)


async def test_an_isolated_position_over_the_wire_is_the_connectors_too(stepped_venue):
    """BTCUSDT isolated beside ETHUSDT cross: the venue's liquidation prices (its own wallet for one, the
    cross wallet for the other) are the connector's, read from /fapi/v2/account's isolated flags."""
    from decimal import Decimal

    from celeris.account.ledger import AccountLedger, VenueAccount
    from celeris.domain.instruments import Instrument
    from celeris.venues.binance.account import read_account, read_leverage_brackets
    from celeris.venues.binance.rest import BinanceRestClient
    from tests.sim.conftest import API_KEY, API_SECRET

    venue = stepped_venue
    venue.step(2)
    instruments = {s: Instrument.from_exchange_info(e) for s, e in venue.entries.items()}
    async with BinanceRestClient(venue.base_url, venue.clock, api_key=API_KEY, api_secret=API_SECRET) as rest:
        await rest.request("POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "ISOLATED"}, signed=True)
        await rest.request("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 25}, signed=True)
        for symbol, side, qty in (("BTCUSDT", "BUY", "1.000"), ("ETHUSDT", "SELL", "150.000")):
            await rest.request("POST", "/fapi/v1/order", {"symbol": symbol, "side": side, "type": "MARKET",
                                                          "quantity": qty}, signed=True)
        risk = {p["symbol"]: p for p in await rest.request("GET", "/fapi/v3/positionRisk", signed=True)}
        account, marks = await read_account(rest, instruments)
        assert set(account.isolated_wallets) == {("BTCUSDT", "BOTH")}
        ledger = AccountLedger(instruments)
        ledger.brackets = await read_leverage_brackets(rest)
        ledger.update_marks(marks)
        ledger.adopt(VenueAccount(account.usdt_wallet, {k: p for k, p in account.positions.items() if p.qty_steps},
                                  marks, account.leverage, account.isolated_wallets))
        btc = ledger.positions[("BTCUSDT", "BOTH")]
        # 25x: the isolated wallet is the notional at the fill over 25, rounded up
        assert Decimal(risk["BTCUSDT"]["isolatedWallet"]) > 0 and risk["ETHUSDT"]["isolatedWallet"] == "0.00000000"
        assert abs(ledger.isolated[("BTCUSDT", "BOTH")] * 25 - btc.entry_value()) <= 25
        for symbol in ("BTCUSDT", "ETHUSDT"):
            ins = instruments[symbol]
            ticks = ledger.liquidation_ticks((symbol, "BOTH"))
            tick = Decimal(ins.price_grid.increment)
            assert ticks and abs(Decimal(risk[symbol]["liquidationPrice"]) - ticks * tick) <= tick / 2, \
                (symbol, risk[symbol], ticks)
