"""The simulator's order filters and the connector's, against what the venue answers, and against each other.

The simulator (exchange_sim/filters.py) and the connector (celeris.domain.instruments) read exchangeInfo
and check orders independently, so that a mistake in one is not mirrored by the other. No recorded venue
answer to a filter failure exists in data/binance/samples (the recorded answers are successes), so the
venue's answers here are built from the recorded exchangeInfo filters (mainnet capture, 3 symbols, the
entries the simulator serves, and one derived entry whose MARKET_LOT_SIZE differs from its LOT_SIZE) and the error codes PROTOCOL.md documents for each filter:
-1111 too many decimals, -4014 off tick, -4023 off step, -4003 zero quantity, -4005 above max quantity,
-4001 / -4013 / -4002 price bounds, -4016 / -4024 percent price against the mark, -4164 min notional
(reduce-only exempt), -4015 client order id, and MAX_NUM_ORDERS (-2025, simulator only: the connector
does not count open orders per symbol). The connector has no codes of its own for unreadable numbers; its
grid errors are mapped as PROTOCOL.md names them (OffGridError: -4014 price / -4023 quantity,
DecimalFormatError: -1111). A hypothesis property then checks both agree on random prices and quantities
on and off the grids.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeris.domain.instruments import Instrument, OrderType, check_order
from celeris.domain.orders import valid_client_order_id
from celeris.domain.values import DecimalFormatError, OffGridError, Side, format_units
from celeris.exchange_sim import filters
from celeris.exchange_sim.contract import Contract
from celeris.exchange_sim.contract import OrderType as SimOrderType
from celeris.exchange_sim.state import VenueError
from tests.conftest import load_sample
from tests.sim.conftest import API_KEY

RECORDED = load_sample("nautilus/py_http_futures_market_exchange_info.json")["symbols"]
SERVED = json.loads((Path(filters.__file__).with_name("symbols.json")).read_text())["symbols"]


def _derived_market_lot() -> dict:
    """The recorded BTCUSDT with today's shape of lot filters: MARKET_LOT_SIZE narrower than LOT_SIZE
    (maxQty 120 against 1000) and a LOT_SIZE minQty of two steps, so that the two lot filters and the
    minimum quantity are told apart (in the recorded entries they coincide)."""
    entry = json.loads(json.dumps(next(e for e in RECORDED if e["symbol"] == "BTCUSDT")))
    for f in entry["filters"]:
        if f["filterType"] == "MARKET_LOT_SIZE":
            f["maxQty"] = "120"
        if f["filterType"] == "LOT_SIZE":
            f["minQty"] = "0.002"
    return entry


ENTRIES = ({f"recorded:{e['symbol']}": e for e in RECORDED} | {f"served:{e['symbol']}": e for e in SERVED}
           | {"derived:BTCUSDT-lots": _derived_market_lot()})


def by_filter(entry: dict) -> dict[str, dict]:
    return {f["filterType"]: f for f in entry["filters"]}


# -- the two verdicts ------------------------------------------------------------------------------
def sim_verdict(entry: dict, order_type: str, qty: str, price: str | None, mark: str | None,
                reduce_only: bool) -> int | None:
    contract = Contract.from_entry(entry)
    refusal = filters.check_new_order(contract, order_type=SimOrderType(order_type), quantity=qty, price=price,
                                      mark_ticks=contract.price(mark) if mark else None, reduce_only=reduce_only)
    return refusal.code if refusal else None


def connector_verdict(entry: dict, order_type: str, qty: str, price: str | None, mark: str | None,
                      reduce_only: bool) -> int | None:
    ins = Instrument.from_exchange_info(entry)
    try:
        qty_steps = ins.qty(qty)
    except OffGridError:
        return -4023
    except DecimalFormatError:
        return -1111
    try:
        price_ticks = ins.price(price) if price is not None else None
    except OffGridError:
        return -4014
    except DecimalFormatError:
        return -1111
    violation = check_order(ins, side=Side.BUY, order_type=OrderType(order_type), qty_steps=qty_steps,
                            price_ticks=price_ticks, mark_price_ticks=ins.price(mark) if mark else None,
                            reduce_only=reduce_only)
    return violation.code if violation else None


# -- the venue's answers, from the recorded filters ---------------------------------------------------
@dataclass(frozen=True)
class Case:
    what: str
    order_type: str
    qty: str
    price: str | None
    venue_code: int | None
    mark: str | None = None
    reduce_only: bool = False
    connector_code: int | None | str = "venue"
    """What the connector's own check says when it refuses before sending ("venue": the venue's code)."""


def cases_for(entry: dict) -> list[Case]:
    """Orders one step either side of each recorded filter bound, with the code the venue answers."""
    f = by_filter(entry)
    contract = Contract.from_entry(entry)
    ps, qs = contract.price_scale, contract.qty_scale
    tick, step = contract.tick_units, contract.step_units
    lo_q, hi_q = contract.limit_qty_units
    min_p, max_p = contract.min_price_units, contract.max_price_units

    def p(units: int) -> str:
        return format_units(units, ps)

    def q(units: int) -> str:
        return format_units(units, qs)

    # A price where the minimum quantity clears MIN_NOTIONAL, on the grid, inside PRICE_FILTER.
    notional = contract.min_notional
    mid = ((min_p + max_p) // 2 // tick) * tick
    qty_ok = max(math.ceil(math.ceil(notional * 10**(ps + qs) / mid) / step) * step, lo_q, step)
    out = [
        Case("on every grid, inside every bound", "LIMIT", q(qty_ok), p(mid), None),
        Case("a MARKET order has no price", "MARKET", q(qty_ok), None, None),
        Case("one decimal more than the price precision", "LIMIT", q(qty_ok), p(mid) + "1", -1111),
        Case("one decimal more than the quantity precision", "LIMIT", q(qty_ok) + "1", p(mid), -1111),
        Case("zero quantity", "LIMIT", q(0), p(mid), -4003),
        # A sign is outside the venue's DECIMAL grammar (-1100); the connector, which reads the sign, refuses
        # the order itself before sending it (-4003 / -4001).
        Case("negative quantity", "LIMIT", "-" + q(step), p(mid), -1100, connector_code=-4003),
        Case("LOT_SIZE maxQty plus one step", "LIMIT", q(hi_q + step), p(mid), -4005),
        Case("LOT_SIZE maxQty", "LIMIT", q(hi_q), p(mid), None),
        Case("MARKET_LOT_SIZE maxQty plus one step", "MARKET",
             q(contract.market_qty_units[1] + step), None, -4005),
        Case("zero price", "LIMIT", q(qty_ok), p(0), -4001),
        Case("negative price", "LIMIT", q(qty_ok), "-" + p(tick), -1100, connector_code=-4001),
        Case("PRICE_FILTER maxPrice plus one tick", "LIMIT", q(max(lo_q, step)), p(max_p // tick * tick + tick), -4002),
        Case("PRICE_FILTER maxPrice", "LIMIT", q(max(lo_q, step)), p(max_p // tick * tick), None),
    ]
    market_max = contract.market_qty_units[1]
    if market_max < hi_q:
        out.append(Case("MARKET above MARKET_LOT_SIZE maxQty, within LOT_SIZE", "MARKET", q(market_max + step),
                        None, -4005))
        out.append(Case("LIMIT above MARKET_LOT_SIZE maxQty, within LOT_SIZE", "LIMIT", q(market_max + step),
                        p(mid), None))
    if min_p > tick:
        below = (-(-min_p // tick) - 1) * tick
        out.append(Case("PRICE_FILTER minPrice minus one tick", "LIMIT", q(hi_q), p(below), -4013))
    if tick > 1:
        out.append(Case("between two ticks", "LIMIT", q(qty_ok), p(mid + tick // 2), -4014))
    if step > 1:
        out.append(Case("between two steps", "LIMIT", q(qty_ok + step // 2), p(mid), -4023))
    if lo_q > step:
        out.append(Case("LOT_SIZE minQty minus one step", "LIMIT", q(lo_q - step), p(mid), -4004))
    low = max(math.ceil(min_p / tick), 1) * tick  # the lowest price PRICE_FILTER allows
    small = max(lo_q, step)
    if notional and contract.notional_exact(low // tick, small // step) < notional:
        out.append(Case("below MIN_NOTIONAL", "LIMIT", q(small), p(low), -4164))
        out.append(Case("below MIN_NOTIONAL, reduce only", "LIMIT", q(small), p(low), None, reduce_only=True))
        out.append(Case("below MIN_NOTIONAL at the mark, MARKET", "MARKET", q(small), None, -4164, mark=p(low)))
    percent = f.get("PERCENT_PRICE")
    if percent:
        # A mark whose bounds fall exactly on ticks, so "at the bound" is tested as equality.
        whole = math.lcm(contract.multiplier_up.denominator, contract.multiplier_down.denominator)
        mark = max(mid // 2 // tick // whole, 1) * whole * tick
        up = math.floor(contract.multiplier_up * mark / tick) * tick
        down = math.ceil(contract.multiplier_down * mark / tick) * tick
        out += [
            Case("PERCENT_PRICE up bound", "LIMIT", q(hi_q), p(up), None, mark=p(mark)),
            Case("PERCENT_PRICE down bound", "LIMIT", q(hi_q), p(down), None, mark=p(mark)),
            Case("PERCENT_PRICE up bound plus one tick", "LIMIT", q(hi_q), p(up + tick), -4016, mark=p(mark)),
            Case("PERCENT_PRICE down bound minus one tick", "LIMIT", q(hi_q), p(down - tick), -4024, mark=p(mark)),
            Case("PERCENT_PRICE is for LIMIT only: a STOP above it", "STOP", q(hi_q), p(up + tick), None,
                 mark=p(mark)),
        ]
    return out


CASES = [(name, case) for name, entry in ENTRIES.items() for case in cases_for(entry)]


@pytest.mark.parametrize(("symbol", "case"), CASES, ids=[f"{n}-{c.what}" for n, c in CASES])
def test_both_filters_answer_as_the_venue(symbol, case):
    entry = ENTRIES[symbol]
    args = (entry, case.order_type, case.qty, case.price, case.mark, case.reduce_only)
    assert sim_verdict(*args) == case.venue_code, "simulator"
    expected = case.venue_code if case.connector_code == "venue" else case.connector_code
    assert connector_verdict(*args) == expected, "connector"


def test_every_refusal_code_the_filters_document_is_exercised():
    exercised = {case.venue_code for _, case in CASES}
    assert {-1100, -1111, -4001, -4002, -4003, -4004, -4005, -4013, -4014, -4016, -4024, -4164, None} <= exercised


@pytest.mark.parametrize(("client_order_id", "valid"), [
    ("x", True), ("a" * 36, True), ("a" * 37, False), ("", False), ("web_.:/-AZaz09", True),
    ("has space", False), ("dollar$", False), ("unicodé", False), ("semi;colon", False),
])
def test_client_order_id_format(client_order_id, valid):
    """PROTOCOL.md: newClientOrderId matches ^[\\.A-Z\\:/a-z0-9_-]{1,36}$, else -4015."""
    assert valid_client_order_id(client_order_id) is valid
    if valid:
        filters.check_client_order_id(client_order_id)
    else:
        with pytest.raises(VenueError) as refused:
            filters.check_client_order_id(client_order_id)
        assert refused.value.code == -4015


@pytest.mark.parametrize("symbol", sorted(ENTRIES))
def test_max_num_orders_is_read_alike_and_enforced_by_the_simulator(symbol):
    entry = ENTRIES[symbol]
    limit = int(by_filter(entry)["MAX_NUM_ORDERS"]["limit"])
    contract = Contract.from_entry(entry)
    assert contract.max_open_orders == Instrument.from_exchange_info(entry).max_num_orders == limit
    filters.check_open_orders(contract, limit - 1)
    with pytest.raises(VenueError) as refused:
        filters.check_open_orders(contract, limit)
    assert refused.value.code == -2025


@pytest.mark.parametrize("case", [c for n, c in CASES if n == "served:BTCUSDT" and c.venue_code],
                         ids=lambda c: c.what)
def test_the_engine_refuses_with_the_same_code_on_the_order_endpoint(venue, case):
    """The filters are what the simulated venue answers: an order refused by them never reaches the book."""
    book = venue.engine.books["BTCUSDT"]
    # The case's mark, or none at all (the engine falls back to the last price, so clear both).
    book.mark_ticks = book.last_price_ticks = book.instrument.price(case.mark) if case.mark else 0
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": case.order_type, "quantity": case.qty}
    if case.price is not None:
        params |= {"price": case.price, "timeInForce": "GTC"}
    if case.order_type == "STOP":
        params["stopPrice"] = case.price
    if case.reduce_only:
        params["reduceOnly"] = "true"
    with pytest.raises(VenueError) as refused:
        venue.engine.place(venue.engine.accounts[API_KEY], params)
    assert refused.value.code == case.venue_code


# -- property: the two agree on random orders ---------------------------------------------------------
@st.composite
def random_orders(draw):
    symbol = draw(st.sampled_from(sorted(ENTRIES)))
    contract = Contract.from_entry(ENTRIES[symbol])
    # One extra decimal on either number puts it between two increments (or past the precision).
    extra_p = draw(st.integers(0, 1))
    extra_q = draw(st.integers(0, 1))
    on_tick = draw(st.booleans())
    price_units = draw(st.integers(-2 * contract.tick_units, contract.max_price_units * 11 // 10))
    if on_tick:
        price_units -= price_units % contract.tick_units
    qty_units = draw(st.integers(-contract.step_units, contract.limit_qty_units[1] + 3 * contract.step_units))
    if draw(st.booleans()):
        qty_units -= qty_units % contract.step_units
    order_type = draw(st.sampled_from(["LIMIT", "MARKET", "STOP", "TAKE_PROFIT"]))
    price = None if order_type == "MARKET" else format_units(price_units * 10**extra_p + draw(
        st.integers(0, 9)) * extra_p, contract.price_scale + extra_p)
    qty = format_units(qty_units * 10**extra_q + draw(st.integers(0, 9)) * extra_q, contract.qty_scale + extra_q)
    mark = None
    if draw(st.booleans()):
        mark_ticks = draw(st.integers(1, contract.max_price_units // contract.tick_units))
        mark = contract.format_price(mark_ticks)
    return ENTRIES[symbol], order_type, qty, price, mark, draw(st.booleans())


@settings(max_examples=600, deadline=None)
@given(random_orders())
def test_simulator_and_connector_agree_on_random_orders(order):
    _, _, qty, price, _, _ = order
    if qty.startswith("-") or (price or "").startswith("-"):
        # outside the venue's grammar: -1100 there (quantity is read first, so a price's sign can come after a
        # quantity's refusal); the connector refuses such an order before sending it
        verdict = sim_verdict(*order)
        assert verdict is not None and connector_verdict(*order) is not None
        assert verdict == -1100 or not qty.startswith("-")
    else:
        assert sim_verdict(*order) == connector_verdict(*order)


def test_both_read_the_same_ticks_and_steps_from_every_entry():
    """Ticks and steps are the unit both sides count in (positions, book levels): they must coincide."""
    for entry in ENTRIES.values():
        contract, ins = Contract.from_entry(entry), Instrument.from_exchange_info(entry)
        for text in ("1", "402", "61800.20", "0.1", "1246396.6"):
            try:
                expected = ins.price(text)
            except ValueError:
                continue
            assert contract.price(text) == expected and contract.format_price(expected) == ins.format_price(expected)
        assert contract.qty("0.005") == ins.qty("0.005") and contract.format_qty(7) == ins.format_qty(7)
        # (maintenance margin is by leverage tier now: tests/sim/test_positions_vs_connector.py compares it)
