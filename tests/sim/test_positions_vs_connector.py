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
       wallet=st.integers(0, 10**6))
def test_random_fills_give_the_same_position_figures(entry, sequence, mark, rate, wallet):
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
    w = wallet * 10**MONEY_SCALE
    num, den = brackets.liquidation_notional(brackets.table(entry["symbol"]), long=sim.qty_steps > 0,
                                             entry_value=sim.entry_value(), collateral=w)
    lp = liquidation_ticks(connector, w, brackets=table)
    if num <= 0:
        assert lp == 0
        return
    # the venue's notional at liquidation (exact) and the connector's price on the tick: within half a tick
    tick_value = contract.notional_exact(1, abs(sim.qty_steps)) * 10**MONEY_SCALE
    assert abs(Fraction(num, den) - lp * tick_value) <= tick_value / 2
