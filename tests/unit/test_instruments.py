from fractions import Fraction

import pytest

from celeris.domain.instruments import FilterViolation, OrderType, check_order
from celeris.domain.values import Side


def test_from_real_exchange_info(btcusdt):
    assert btcusdt.symbol == "BTCUSDT"
    assert btcusdt.price_grid.increment == "0.10" and btcusdt.qty_grid.increment == "0.001"
    assert btcusdt.format_price(btcusdt.min_price_ticks) == "402.00"
    assert btcusdt.format_qty(btcusdt.max_qty_steps) == "1000.000"
    assert btcusdt.min_notional == 10 * 10**8
    assert btcusdt.multiplier_up == Fraction(11, 10)
    assert btcusdt.maint_margin_rate == Fraction(25, 1000)


def _check(ins, **kw):
    base = dict(side=Side.BUY, order_type=OrderType.LIMIT, qty_steps=ins.qty("0.010"),
                price_ticks=ins.price("60000.00"), mark_price_ticks=ins.price("60000.00"))
    base.update(kw)
    return check_order(ins, **base)


def test_valid_order_passes(btcusdt):
    assert _check(btcusdt) is None


@pytest.mark.parametrize("override,code", [
    ({"qty_steps": 0}, -4003),
    ({"qty_steps": 1_000_001}, -4005),
    ({"price_ticks": 4000}, -4013),  # 400.0 < minPrice 402
    ({"price_ticks": 700_000}, -4016),  # 70000 > mark * 1.1
    ({"price_ticks": 300_000}, -4024),  # 30000 < mark * 0.5454
    ({"qty_steps": 1, "price_ticks": 5000, "mark_price_ticks": 5000}, -4164),  # 0.001 x 500 = 0.5 USDT
])
def test_filter_codes(btcusdt, override, code):
    violation = _check(btcusdt, **override)
    assert isinstance(violation, FilterViolation) and violation.code == code, violation


def test_reduce_only_is_exempt_from_min_notional(btcusdt):
    small = dict(qty_steps=1, price_ticks=5000, mark_price_ticks=5000)
    assert _check(btcusdt, **small).code == -4164
    assert _check(btcusdt, reduce_only=True, **small) is None


def test_market_orders_use_market_lot_and_mark_notional(btcusdt):
    assert _check(btcusdt, order_type=OrderType.MARKET, price_ticks=None) is None
    v = _check(btcusdt, order_type=OrderType.MARKET, price_ticks=None, qty_steps=1, mark_price_ticks=5000)
    assert v.code == -4164
