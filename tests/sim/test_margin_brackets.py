"""The simulated venue's leverage brackets: the table it serves, the caps it enforces, how it liquidates.

BTCUSDT's tiers must be Binance's recorded ones (tests/support/leverage_brackets.py), cum included, though
the venue derives cum itself; GET /fapi/v1/leverageBracket answers a list, or one object for one symbol
(PROTOCOL.md §5.3); a position larger than its leverage's tier is refused with -2027; a liquidation is one
CALCULATED ORDER_TRADE_UPDATE shaped like the recorded one, and the clearance fee goes to the insurance fund.
"""

from __future__ import annotations

import aiohttp
import pytest

from celeris.domain.values import MONEY_SCALE, money_str
from celeris.exchange_sim import brackets
from celeris.exchange_sim.engine import VenueError
from celeris.venues.binance.account import parse_leverage_brackets
from tests.conftest import load_sample
from tests.sim.conftest import API_KEY, signed_query
from tests.support import leverage_brackets

U = 10**MONEY_SCALE


def place(venue, **params):
    return venue.engine.place(venue.engine.accounts[API_KEY], {k: str(v) for k, v in params.items()})


def test_btcusdt_tiers_are_binances_recorded_ones_cum_included():
    assert parse_leverage_brackets(brackets.wire_entry("BTCUSDT", brackets.table("BTCUSDT"))) == \
        parse_leverage_brackets(leverage_brackets.BODY_STRINGS)


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
def test_every_table_is_continuous_at_its_boundaries(symbol):
    tiers = brackets.table(symbol)
    for lower, upper in zip(tiers, tiers[1:]):
        edge = upper.floor
        assert edge * lower.rate // brackets.RATE_DENOMINATOR - lower.cum == \
            edge * upper.rate // brackets.RATE_DENOMINATOR - upper.cum
        assert brackets.maint_margin(tiers, edge + 1) - brackets.maint_margin(tiers, edge) <= 1


async def test_leverage_bracket_shapes_over_the_wire(stepped_venue):
    venue = stepped_venue
    headers = {"X-MBX-APIKEY": API_KEY}
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{venue.base_url}/fapi/v1/leverageBracket?{signed_query({}, ts_ms=venue.now_ms())}",
                         headers=headers) as resp:
            every = await resp.json()
        query = signed_query({"symbol": "BTCUSDT"}, ts_ms=venue.now_ms())
        async with s.get(f"{venue.base_url}/fapi/v1/leverageBracket?{query}", headers=headers) as resp:
            one = await resp.json()
        async with s.get(f"{venue.base_url}/fapi/v1/leverageBracket", headers=headers) as resp:
            assert resp.status in (400, 401)  # USER_DATA: unsigned is refused
    assert isinstance(every, list) and {e["symbol"] for e in every} == {"BTCUSDT", "ETHUSDT"}
    assert isinstance(one, dict) and one["symbol"] == "BTCUSDT"
    first = one["brackets"][0]
    assert set(first) == {"bracket", "initialLeverage", "notionalCap", "notionalFloor", "maintMarginRatio", "cum"}
    assert (first["initialLeverage"], first["notionalCap"], first["maintMarginRatio"]) == (125, 50_000, 0.004)
    assert parse_leverage_brackets(one) == parse_leverage_brackets(leverage_brackets.BODY_NUMBERS)


def test_position_notional_is_capped_by_the_leverages_tier(venue):
    engine, account = venue.engine, venue.engine.accounts[API_KEY]
    with pytest.raises(VenueError) as refused:
        engine.set_leverage(account, "BTCUSDT", 126)  # above the first tier's 125x
    assert refused.value.code == -4028
    engine.set_leverage(account, "BTCUSDT", 125)  # 125x: up to 50,000 USDT
    mark = engine.mark("BTCUSDT")
    ins = engine.instrument("BTCUSDT")
    fits = 50_000 * U // ins.notional(mark, 1)  # steps whose notional at the mark is within the cap
    place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity=ins.format_qty(fits // 2),
          price=ins.format_price(mark))
    with pytest.raises(VenueError) as refused:  # the open order counts with the new one
        place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
              quantity=ins.format_qty(fits - fits // 2 + 1), price=ins.format_price(mark))
    assert refused.value.code == -2027
    # the other side reduces the exposure: not refused
    place(venue, symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity=ins.format_qty(fits // 2),
          price=ins.format_price(mark * 105 // 100))
    engine.set_leverage(account, "BTCUSDT", 100)  # 100x: up to 250,000 USDT
    place(venue, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
          quantity=ins.format_qty(fits - fits // 2 + 1), price=ins.format_price(mark))


def test_leverage_change_refused_when_the_position_passes_the_new_cap(venue):
    engine, account = venue.engine, venue.engine.accounts[API_KEY]
    engine.set_leverage(account, "BTCUSDT", 20)
    place(venue, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="1")  # ~60,000 USDT
    assert account.positions["BTCUSDT"].qty_steps
    with pytest.raises(VenueError) as refused:
        engine.set_leverage(account, "BTCUSDT", 125)
    assert refused.value.code == -2027 and account.leverage["BTCUSDT"] == 20


def _liquidated_venue(clock, wallet_usdt):
    from celeris.exchange_sim.server import SimVenue

    v = SimVenue(symbols=["BTCUSDT"], api_key=API_KEY, api_secret="s", clock=clock, wallet_usdt=wallet_usdt)
    account = v.engine.accounts[API_KEY]
    v.engine.set_leverage(account, "BTCUSDT", 100)
    place(v, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.500")
    return v, account


@pytest.mark.parametrize("book_left", [True, False])
def test_liquidation_is_one_calculated_event_of_the_recorded_shape_and_pays_the_clearance_fee(clock, book_left):
    v, account = _liquidated_venue(clock, 1000)
    engine, book = v.engine, v.engine.books["BTCUSDT"]
    lp = engine.liquidation_price_units(account, "BTCUSDT")
    ins = engine.instrument("BTCUSDT")
    above = lp * 10**ins.price_scale // 10**8 // ins.tick_units + 2  # two ticks above: still standing
    book.mark_ticks = above
    engine.check_liquidations("BTCUSDT")
    assert account.positions["BTCUSDT"].qty_steps
    first = len(account.events)
    if not book_left:  # no bids: the insurance fund takes the position at the mark
        book.synthetic_bids.clear()
    book.mark_ticks = above - 4  # two ticks below the liquidation price
    fund_before = engine.insurance_fund
    engine.check_liquidations("BTCUSDT")
    assert account.positions["BTCUSDT"].qty_steps == 0
    events = account.events[first:]
    own = [e for e in events if e.get("e") == "ORDER_TRADE_UPDATE" and e["o"]["c"].startswith("autoclose-")]
    # pending (CALCULATED, NEW) then the fill (CALCULATED, FILLED); key sets and types against the recordings
    # are checked by tests/sim/test_payloads_vs_recorded.py
    assert [e["o"]["X"] for e in own] == ["NEW", "FILLED"] and not any(e.get("e") == "TRADE_LITE" for e in events)
    got = own[-1]["o"]
    assert (got["x"], got["X"], got["o"], got["ot"], got["z"]) == ("CALCULATED", "FILLED", "MARKET", "MARKET", "0.500")
    import json

    from celeris.venues.binance import codec
    decoded = codec.decode_user_event(json.dumps(own[-1]))  # the connector reads it as it reads the recorded one
    assert decoded.o.x == "CALCULATED" and decoded.o.rp == got["rp"]
    # The clearance fee: liquidated notional x liquidationFee (1.2 % for BTCUSDT), at most the margin left.
    notional = sum(ins.notional(ins.price(t["price"]), ins.qty(t["qty"])) for t in account.trades
                   if t["orderId"] == got["i"])
    clear = [e for e in events if e.get("e") == "ACCOUNT_UPDATE" and e["a"]["m"] == "INSURANCE_CLEAR"]
    fee = engine.insurance_fund - fund_before
    assert len(clear) == 1 and clear[0]["a"]["B"][0]["wb"] == money_str(account.wallet)
    assert fee == min(brackets.half_even(notional * 1_200_000, 10**8), account.wallet + fee) > 0
    if not book_left:
        # closed at the mark, a first-tier position keeps ~0.4 % of margin, less than the 1.2 % fee: all of it
        # goes to the insurance fund
        assert account.wallet == 0
    else:
        # closed against bids still near the old price: margin is left and the fee is the full rate
        assert account.wallet > 0 and fee == brackets.half_even(notional * 1_200_000, 10**8)


def test_isolated_margin_moves_with_the_position_and_liquidates_it_alone(clock):
    from celeris.exchange_sim.server import SimVenue

    v = SimVenue(symbols=["BTCUSDT", "ETHUSDT"], api_key=API_KEY, api_secret="s", clock=clock, wallet_usdt=10_000)
    engine, account = v.engine, v.engine.accounts[API_KEY]
    account.margin_type["BTCUSDT"] = "isolated"
    engine.set_leverage(account, "BTCUSDT", 50)
    place(v, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.400")
    place(v, symbol="ETHUSDT", side="BUY", type="MARKET", quantity="1.000")
    pos = account.positions["BTCUSDT"]
    held = account.isolated_wallet["BTCUSDT"]
    assert 0 <= held * 50 - pos.entry_value() < 50 * 10  # notional / 50 per fill, each rounded up
    assert engine.cross_wallet(account) == account.wallet - held
    place(v, symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.100", reduceOnly="true")  # a quarter
    assert abs(account.isolated_wallet["BTCUSDT"] - held * 300 // 400) <= 3  # released by fill, each rounded down
    held = account.isolated_wallet["BTCUSDT"]
    wallet_before, eth_before = account.wallet, account.positions["ETHUSDT"].qty_steps
    lp = engine.liquidation_price_units(account, "BTCUSDT")
    ins = engine.instrument("BTCUSDT")
    book = engine.books["BTCUSDT"]
    book.synthetic_bids.clear()  # taken over at the mark
    book.mark_ticks = lp * 10**ins.price_scale // 10**8 // ins.tick_units - 2
    engine.check_liquidations("BTCUSDT")
    assert pos.qty_steps == 0 and "BTCUSDT" not in account.isolated_wallet
    assert account.positions["ETHUSDT"].qty_steps == eth_before  # the cross position is untouched
    # the user loses the isolated wallet at most (the clearance fee comes out of it)
    assert wallet_before - held <= account.wallet <= wallet_before
    assert engine.insurance_fund > 0


async def test_the_connector_reads_2027_as_an_order_refusal(stepped_venue):
    from celeris.venues.binance import errors
    from celeris.venues.binance.rest import BinanceRestClient
    from tests.sim.conftest import API_SECRET

    venue = stepped_venue
    venue.step(2)
    async with BinanceRestClient(venue.base_url, venue.clock, api_key=API_KEY, api_secret=API_SECRET) as rest:
        await rest.request("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 125}, signed=True)
        with pytest.raises(errors.OrderRejected) as refused:  # 2 BTC: ~120,000 USDT past 125x's 50,000
            await rest.request("POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                          "quantity": "2"}, signed=True)
    assert refused.value.code == -2027
