"""One simulated perpetual contract as the simulator reads it from the exchangeInfo entry it serves.

Owns the simulator's own reading of a symbol entry: the price and quantity increments and display
precisions, the raw filter values (PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, MIN_NOTIONAL, PERCENT_PRICE,
MAX_NUM_ORDERS), the maintenance margin rate, triggerProtect, and conversions between wire strings and integer ticks
(price / tickSize) and steps (quantity / stepSize). It shares only the domain's decimal VALUES with the
connector; it deliberately does not use celeris.domain.instruments, so a mistake in how the connector
reads exchangeInfo is not mirrored here. The order rules themselves live in filters.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping

from celeris.domain.values import (
    MONEY_SCALE,
    format_units,
    parse_decimal,
    rescale,
    to_units,
)


class OrderType(enum.Enum):
    """The order types the simulator accepts on /fapi/v1/order (the wire's own spelling)."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP = "STOP"
    STOP_MARKET = "STOP_MARKET"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"
    TRAILING_STOP_MARKET = "TRAILING_STOP_MARKET"

    @property
    def is_market(self) -> bool:
        return self in (OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET,
                        OrderType.TRAILING_STOP_MARKET)

    @property
    def is_conditional(self) -> bool:
        return self not in (OrderType.LIMIT, OrderType.MARKET)

    @property
    def has_limit_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP, OrderType.TAKE_PROFIT)

    @property
    def has_stop_price(self) -> bool:
        return self in (OrderType.STOP, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_MARKET)


class TimeInForce(enum.Enum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"  # post-only
    GTD = "GTD"


class OffIncrement(ValueError):
    """A price or quantity that is not a whole number of ticks or steps."""


def decimal_fraction(text: Any) -> Fraction:
    """An exchangeInfo decimal (string, or an int such as MAX_NUM_ORDERS' limit) as an exact rational."""
    mantissa, scale = parse_decimal(str(text))
    return Fraction(mantissa, 10**scale)


def _display_scale(increment: str, precision: int) -> int:
    # The wire shows `precision` decimals, unless the increment itself needs more ("0.10" needs 1,
    # "0.0010" needs 3); trailing zeros of the increment string do not count.
    mantissa, scale = parse_decimal(increment)
    while scale > 0 and mantissa % 10 == 0:
        mantissa //= 10
        scale -= 1
    return max(precision, scale)


@dataclass(frozen=True, slots=True)
class Contract:
    """A symbol's increments and filter values. Prices are ticks, quantities are steps (integers)."""

    symbol: str
    price_scale: int
    """Decimals prices are shown with (pricePrecision, or the tick's own decimals if finer)."""
    tick_units: int
    """tickSize in units of 10**-price_scale."""
    qty_scale: int
    step_units: int
    """stepSize in units of 10**-qty_scale."""
    min_price_units: int
    max_price_units: int
    limit_qty_units: tuple[int, int]
    """LOT_SIZE minQty, maxQty in qty units (limit-style orders)."""
    market_qty_units: tuple[int, int]
    """MARKET_LOT_SIZE minQty, maxQty in qty units (MARKET orders)."""
    min_notional: Fraction
    """MIN_NOTIONAL.notional in quote currency (0: no minimum)."""
    multiplier_up: Fraction
    multiplier_down: Fraction
    max_open_orders: int
    trigger_protect: Fraction = Fraction(5, 100)
    """triggerProtect: the largest relative gap between mark and last price at which a priceProtect
    conditional order may still trigger."""
    liquidation_fee_units: int = 0
    """liquidationFee (the clearance fee rate) in parts of 10**8: 0.012 is 1_200_000."""

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Contract:
        """Read one exchangeInfo["symbols"] element, as the simulator itself serves it."""
        by_type = {f["filterType"]: f for f in entry["filters"]}
        price_filter, lot = by_type["PRICE_FILTER"], by_type["LOT_SIZE"]
        market_lot = by_type.get("MARKET_LOT_SIZE", lot)
        price_scale = _display_scale(price_filter["tickSize"], int(entry["pricePrecision"]))
        qty_scale = _display_scale(lot["stepSize"], int(entry["quantityPrecision"]))
        percent = by_type.get("PERCENT_PRICE")
        return cls(
            symbol=entry["symbol"],
            price_scale=price_scale,
            tick_units=to_units(price_filter["tickSize"], price_scale),
            qty_scale=qty_scale,
            step_units=to_units(lot["stepSize"], qty_scale),
            min_price_units=to_units(price_filter["minPrice"], price_scale),
            max_price_units=to_units(price_filter["maxPrice"], price_scale),
            limit_qty_units=(to_units(lot["minQty"], qty_scale), to_units(lot["maxQty"], qty_scale)),
            market_qty_units=(to_units(market_lot["minQty"], qty_scale), to_units(market_lot["maxQty"], qty_scale)),
            min_notional=decimal_fraction(by_type.get("MIN_NOTIONAL", {"notional": "0"})["notional"]),
            # Without PERCENT_PRICE any limit price passes: bounds no price can reach.
            multiplier_up=decimal_fraction(percent["multiplierUp"]) if percent else Fraction(10**9),
            multiplier_down=decimal_fraction(percent["multiplierDown"]) if percent else Fraction(0),
            max_open_orders=int(by_type.get("MAX_NUM_ORDERS", {"limit": 200})["limit"]),
            trigger_protect=decimal_fraction(entry.get("triggerProtect", "0.05")),
            liquidation_fee_units=to_units(entry.get("liquidationFee", "0.0125"), 8),
        )

    # -- wire strings <-> integers -------------------------------------------------------------
    def price(self, text: str) -> int:
        """Price string -> ticks; ValueError when malformed, too precise or between two ticks."""
        return _whole(to_units(text, self.price_scale), self.tick_units, text)

    def qty(self, text: str) -> int:
        """Quantity string -> steps; ValueError when malformed, too precise or between two steps."""
        return _whole(to_units(text, self.qty_scale), self.step_units, text)

    def format_price(self, ticks: int) -> str:
        return format_units(ticks * self.tick_units, self.price_scale)

    def format_qty(self, steps: int) -> str:
        return format_units(steps * self.step_units, self.qty_scale)

    def price_units(self, ticks: int) -> int:
        """Ticks -> integer units of 10**-price_scale."""
        return ticks * self.tick_units

    def qty_units(self, steps: int) -> int:
        return steps * self.step_units

    @property
    def min_price_ticks(self) -> int:
        """The lowest price PRICE_FILTER allows, in whole ticks (minPrice rounded up to the grid)."""
        return -(-self.min_price_units // self.tick_units)

    @property
    def min_qty_steps(self) -> int:
        """LOT_SIZE minQty in whole steps (rounded up to the grid)."""
        return -(-self.limit_qty_units[0] // self.step_units)

    # -- exact values --------------------------------------------------------------------------
    @property
    def notional_scale(self) -> int:
        """Scale of price_units x qty_units products."""
        return self.price_scale + self.qty_scale

    def price_fraction(self, ticks: int) -> Fraction:
        return Fraction(ticks * self.tick_units, 10**self.price_scale)

    def qty_fraction(self, steps: int) -> Fraction:
        return Fraction(steps * self.step_units, 10**self.qty_scale)

    def notional_exact(self, price_ticks: int, qty_steps: int) -> Fraction:
        return self.price_fraction(price_ticks) * self.qty_fraction(qty_steps)

    def notional(self, price_ticks: int, qty_steps: int) -> int:
        """Notional of price x qty in money units (MONEY_SCALE), rounded half-even if finer."""
        return rescale(self.price_units(price_ticks) * self.qty_units(qty_steps), self.notional_scale, MONEY_SCALE)

    @property
    def tick_step_value(self) -> Fraction:
        """Quote value of one tick on one step: the unit of price_ticks x qty_steps products."""
        return Fraction(self.tick_units * self.step_units, 10**self.notional_scale)


def _whole(units: int, increment: int, text: str) -> int:
    count, rest = divmod(units, increment)
    if rest:
        raise OffIncrement(f"{text} is not a whole number of increments")
    return count
