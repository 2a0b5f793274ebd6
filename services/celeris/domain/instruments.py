"""Instruments and the venue's order filters, checked exactly as Binance USD-M checks them.

Owns `Instrument` (one perpetual contract: grids, limits, margin rates) built from an exchangeInfo symbol
entry, and `check_order`, which answers with a `FilterViolation` carrying the venue's own error code
(-4014 tick, -4023 step, -4164 min notional, ...) or None. The exchange simulator and the execution
engine both call it, so what we reject locally is exactly what the venue would reject.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping

from celeris.domain.values import (
    MONEY_SCALE,
    Grid,
    Side,
    money,
    parse_decimal,
    rescale,
    to_units,
)


class OrderType(enum.Enum):
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


class TimeInForce(enum.Enum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"  # post-only
    GTD = "GTD"  # good till `goodTillDate` (ms)


class WorkingType(enum.Enum):
    """The price a conditional order's trigger watches."""

    CONTRACT_PRICE = "CONTRACT_PRICE"  # the last trade price (the venue's default)
    MARK_PRICE = "MARK_PRICE"


class SelfTradePrevention(enum.Enum):
    """selfTradePreventionMode: what the venue does when our order would trade against our own."""

    NONE = "NONE"
    EXPIRE_TAKER = "EXPIRE_TAKER"
    EXPIRE_MAKER = "EXPIRE_MAKER"
    EXPIRE_BOTH = "EXPIRE_BOTH"


class PriceMatch(enum.Enum):
    """priceMatch: the venue prices a LIMIT order from the book at arrival (no price may be sent with it)."""

    NONE = "NONE"
    OPPONENT = "OPPONENT"
    OPPONENT_5 = "OPPONENT_5"
    OPPONENT_10 = "OPPONENT_10"
    OPPONENT_20 = "OPPONENT_20"
    QUEUE = "QUEUE"
    QUEUE_5 = "QUEUE_5"
    QUEUE_10 = "QUEUE_10"
    QUEUE_20 = "QUEUE_20"


CALLBACK_RATE_SCALE = 100
"""A trailing stop's callbackRate is kept in hundredths of a percent (basis points): "0.1" % -> 10."""
MIN_CALLBACK_RATE_BPS = 10
MAX_CALLBACK_RATE_BPS = 1000


@dataclass(frozen=True, slots=True)
class FilterViolation:
    """Why the venue would refuse an order: its error code and message, as a value."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class Instrument:
    """One USD-M perpetual contract and its filters. Prices are ticks, quantities are steps."""

    symbol: str
    base_asset: str
    quote_asset: str
    margin_asset: str
    price_grid: Grid
    qty_grid: Grid
    min_price_ticks: int
    max_price_ticks: int
    min_qty_steps: int
    max_qty_steps: int
    market_min_qty_steps: int
    market_max_qty_steps: int
    min_notional: int
    """Minimum order notional in money units (MONEY_SCALE)."""
    multiplier_up: Fraction
    multiplier_down: Fraction
    multiplier_decimal: int
    maint_margin_rate: Fraction
    """exchangeInfo's maintMarginPercent / 100: a placeholder (2.5 % for BTCUSDT, whose first bracket is 0.4 %).
    Only the fallback when the venue's leverage brackets are unknown (celeris.domain.positions.flat_brackets)."""
    max_num_orders: int = 200
    status: str = "TRADING"

    @classmethod
    def from_exchange_info(cls, entry: Mapping[str, Any]) -> Instrument:
        """Build from one element of exchangeInfo["symbols"], exactly as the venue shapes it."""
        filters = {f["filterType"]: f for f in entry["filters"]}
        price_precision = int(entry["pricePrecision"])
        qty_precision = int(entry["quantityPrecision"])
        pf, lot = filters["PRICE_FILTER"], filters["LOT_SIZE"]
        mlot = filters.get("MARKET_LOT_SIZE", lot)
        price_grid = _grid_with_precision(pf["tickSize"], price_precision)
        qty_grid = _grid_with_precision(lot["stepSize"], qty_precision)
        pp = filters.get("PERCENT_PRICE", {"multiplierUp": "1000", "multiplierDown": "0",
                                           "multiplierDecimal": "4"})
        return cls(
            symbol=entry["symbol"],
            base_asset=entry.get("baseAsset", ""),
            quote_asset=entry.get("quoteAsset", "USDT"),
            margin_asset=entry.get("marginAsset", "USDT"),
            price_grid=price_grid,
            qty_grid=qty_grid,
            min_price_ticks=_ceil_div(to_units(pf["minPrice"], price_grid.scale), price_grid.step_units),
            max_price_ticks=to_units(pf["maxPrice"], price_grid.scale) // price_grid.step_units,
            min_qty_steps=qty_grid.parse(lot["minQty"]),
            max_qty_steps=qty_grid.parse(lot["maxQty"]),
            market_min_qty_steps=qty_grid.parse(mlot["minQty"]),
            market_max_qty_steps=qty_grid.parse(mlot["maxQty"]),
            min_notional=money(filters.get("MIN_NOTIONAL", {"notional": "0"})["notional"]),
            multiplier_up=_fraction(pp["multiplierUp"]),
            multiplier_down=_fraction(pp["multiplierDown"]),
            multiplier_decimal=int(pp.get("multiplierDecimal", 4)),
            maint_margin_rate=_fraction(entry.get("maintMarginPercent", "2.5")) / 100,
            max_num_orders=int(filters.get("MAX_NUM_ORDERS", {"limit": 200})["limit"]),
            status=entry.get("status", "TRADING"),
        )

    # -- conversions at the edge -------------------------------------------------------------
    def price(self, text: str) -> int:
        """Price string -> ticks (raises OffGridError / DecimalFormatError)."""
        return self.price_grid.parse(text)

    def qty(self, text: str) -> int:
        return self.qty_grid.parse(text)

    def format_price(self, ticks: int) -> str:
        return self.price_grid.format(ticks)

    def format_qty(self, steps: int) -> str:
        return self.qty_grid.format(steps)

    @property
    def notional_scale(self) -> int:
        """Scale of price_units * qty_units products."""
        return self.price_grid.scale + self.qty_grid.scale

    def notional(self, price_ticks: int, qty_steps: int) -> int:
        """Exact notional of price x qty in money units (MONEY_SCALE), rounded half-even if finer."""
        raw = self.price_grid.units(price_ticks) * self.qty_grid.units(qty_steps)
        return rescale(raw, self.notional_scale, MONEY_SCALE)

    def price_fraction(self, ticks: int) -> Fraction:
        return Fraction(self.price_grid.units(ticks), 10**self.price_grid.scale)

    def qty_fraction(self, steps: int) -> Fraction:
        return Fraction(self.qty_grid.units(steps), 10**self.qty_grid.scale)


def check_order(
    instrument: Instrument,
    *,
    side: Side,
    order_type: OrderType,
    qty_steps: int,
    price_ticks: int | None,
    mark_price_ticks: int | None,
    reduce_only: bool = False,
) -> FilterViolation | None:
    """Check one order against the instrument's filters; None means the filters pass.

    `price_ticks` is the limit price (None for market-style orders); the notional of a market order
    is taken at the mark price. Checks run in the venue's order: quantity, price, percent price, notional.
    """
    del side  # both sides use the same bounds on USD-M; kept for callers' clarity
    ins = instrument
    if qty_steps <= 0:
        return FilterViolation(-4003, "Quantity less than or equal to zero.")
    lo, hi = ((ins.market_min_qty_steps, ins.market_max_qty_steps) if order_type is OrderType.MARKET
              else (ins.min_qty_steps, ins.max_qty_steps))
    if qty_steps < lo:
        return FilterViolation(-4004, "Quantity less than min quantity.")
    if qty_steps > hi:
        return FilterViolation(-4005, "Quantity greater than max quantity.")
    if price_ticks is not None:
        if price_ticks <= 0:
            return FilterViolation(-4001, "Price less than 0.")
        if price_ticks < ins.min_price_ticks:
            return FilterViolation(-4013, "Price less than min price.")
        if price_ticks > ins.max_price_ticks:
            return FilterViolation(-4002, "Price greater than max price.")
        if mark_price_ticks is not None and order_type is OrderType.LIMIT:
            up = ins.multiplier_up * mark_price_ticks
            down = ins.multiplier_down * mark_price_ticks
            if price_ticks > up:
                return FilterViolation(-4016, f"Limit price can't be higher than "
                                              f"{ins.format_price(int(up))}.")
            if price_ticks < down:
                return FilterViolation(-4024, f"Limit price can't be lower than "
                                              f"{ins.format_price(-int(-down))}.")
    reference = price_ticks if price_ticks is not None else mark_price_ticks
    if not reduce_only and reference is not None and ins.min_notional:
        if ins.notional(reference, qty_steps) < ins.min_notional:
            minimum = rescale(ins.min_notional, MONEY_SCALE, 0)
            return FilterViolation(-4164, f"Order's notional must be no smaller than {minimum} "
                                          f"(unless you choose reduce only).")
    return None


def _grid_with_precision(increment: str, precision: int) -> Grid:
    # The venue's increment string may carry more zeros than its precision ("0.0010" on a
    # 3-decimal symbol) or fewer ("0.1" with pricePrecision 2); Grid.of normalizes both.
    _, inc_scale = parse_decimal(increment)
    return Grid.of(increment, max(precision, _significant_scale(increment)) if inc_scale else precision)


def _significant_scale(text: str) -> int:
    mantissa, scale = parse_decimal(text)
    while scale > 0 and mantissa % 10 == 0:
        mantissa //= 10
        scale -= 1
    return scale


def _fraction(text: str) -> Fraction:
    mantissa, scale = parse_decimal(str(text))
    return Fraction(mantissa, 10**scale)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)
