"""The in-process dashboard source: exact decimals for display, and open orders kept from order events."""

from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from types import SimpleNamespace

from hypothesis import given, strategies as st

from celeris.dashboard.sources import InProcessSource, dec
from celeris.dashboard.state import DashboardState
from celeris.domain.clock import TestClock
from celeris.domain.instruments import OrderType
from celeris.domain.orders import Order, OrderEvent
from celeris.domain.values import Side
from bench._capture import btcusdt


@given(st.fractions(min_value=-10**12, max_value=10**12), st.integers(0, 8))
def test_dec_is_the_exact_value_rounded_half_to_even(value, places):
    expected = (Decimal(value.numerator) / Decimal(value.denominator)) if value.denominator != 1 else Decimal(value.numerator)
    exact = Fraction(value) * 10**places
    # The reference: exact rational rounding, then Decimal only for formatting an integer.
    units = round(exact)
    assert dec(value, places) == format(Decimal(units).scaleb(-places), f".{places}f")
    assert abs(Decimal(dec(value, places)) - expected.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)) \
        <= Decimal(1).scaleb(-places)


def test_dec_never_loses_digits_a_float_would():
    assert dec(Fraction(10**17 + 1, 100), 2) == "1000000000000000.01"  # float(...) prints ...000.00
    assert dec(Fraction(5, 1000), 2) == "0.00" and dec(Fraction(15, 1000), 2) == "0.02"  # half to even
    assert dec(None) == ""


class Execution:
    def __init__(self, orders):
        self.orders, self.calls = orders, 0

    def open_orders(self):
        self.calls += 1
        return [o for o in self.orders if o.status.is_open]


def _order(cid: str) -> Order:
    order = Order(client_order_id=cid, symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT, qty_steps=2,
                  price_ticks=600_000)
    order.apply(OrderEvent.SUBMIT)
    order.apply(OrderEvent.ACCEPT)
    return order


def test_open_orders_follow_order_events_without_scanning_execution():
    restored = _order("restored-1")
    execution = Execution([restored])
    system = SimpleNamespace(instruments={"BTCUSDT": btcusdt()}, execution=execution, clock=TestClock())
    source = InProcessSource(system, DashboardState())
    source.load_open_orders()
    calls = execution.calls
    new = _order("new-1")
    source._on_order(new)
    assert [d["id"] for d in source.state.entries["orders.open"].value] == ["restored-1", "new-1"]
    new.apply(OrderEvent.CANCEL_REQUEST)
    new.apply(OrderEvent.CANCEL)
    source._on_order(new)
    restored.apply(OrderEvent.FILL)
    source._on_order(restored)
    assert source.state.entries["orders.open"].value == []
    assert [d["status"] for d in source.state.entries["orders.recent"].value] == ["FILLED", "CANCELED"]
    assert execution.calls == calls  # no scan of every order per event
