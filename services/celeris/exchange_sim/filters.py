"""The simulator's own order filters, answering with Binance USD-M's own error codes and messages.

Owns what the venue refuses about one order before it reaches the book: reading price and quantity
strings (-1100 not a decimal, per params.py; -1111 too many decimals, -4014 off tick, -4023 off step), LOT_SIZE and
MARKET_LOT_SIZE (-4003 / -4004 / -4005), PRICE_FILTER (-4001 / -4013 / -4002), PERCENT_PRICE against
the mark price (-4016 / -4024), MIN_NOTIONAL (-4164, reduce-only exempt), MAX_NUM_ORDERS (-2025) and the
newClientOrderId format (-4015). Written from the exchangeInfo filters the simulator serves and the codes
in PROTOCOL.md, independently of the connector's celeris.domain.instruments.check_order: the two are
compared in tests/sim/test_filters_vs_recorded.py, so a mistake in one is caught by the other instead of
being mirrored by it.
"""

from __future__ import annotations

import re
from fractions import Fraction

from celeris.domain.values import DecimalFormatError, format_units, to_units
from celeris.exchange_sim import params
from celeris.exchange_sim.contract import Contract, OrderType
from celeris.exchange_sim.state import VenueError

CLIENT_ORDER_ID = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")
"""newClientOrderId as the venue documents it: ^[\\.A-Z\\:/a-z0-9_-]{1,36}$."""


malformed = params.malformed


def parse_price(contract: Contract, name: str, text: str) -> int:
    """A price parameter (price, stopPrice, activationPrice) -> ticks, or the venue's refusal."""
    units = _units(name, text, contract.price_scale)
    ticks, rest = divmod(units, contract.tick_units)
    if rest:
        raise VenueError(-4014, "Price not increased by tick size.")
    return ticks


def parse_qty(contract: Contract, name: str, text: str) -> int:
    """The quantity parameter -> steps, or the venue's refusal."""
    units = _units(name, text, contract.qty_scale)
    steps, rest = divmod(units, contract.step_units)
    if rest:
        raise VenueError(-4023, "Quantity not increased by step size.")
    return steps


def _units(name: str, text: str, scale: int) -> int:
    # Outside the DECIMAL grammar (an exponent, a sign, NaN, 21 digits) is -1100; inside it, more
    # decimals than the asset has is a precision error.
    params.decimal(name, text)
    try:
        return to_units(text, scale)
    except DecimalFormatError:
        raise VenueError(-1111, "Precision is over the maximum defined for this asset.") from None


def check_client_order_id(client_order_id: str) -> None:
    if CLIENT_ORDER_ID.fullmatch(client_order_id) is None:
        raise VenueError(-4015, "Client order id is not valid.")


def check_order(contract: Contract, *, order_type: OrderType, qty_steps: int, price_ticks: int | None,
                mark_ticks: int | None, reduce_only: bool = False) -> VenueError | None:
    """LOT_SIZE, PRICE_FILTER, PERCENT_PRICE and MIN_NOTIONAL for one order; None when all pass.

    `price_ticks` is the limit price (None for market-style orders), `mark_ticks` the mark price (None
    before the first mark). Quantity is checked first, then price, percent price, notional.
    """
    qty_units = contract.qty_units(qty_steps)
    if qty_units <= 0:
        return VenueError(-4003, "Quantity less than or equal to zero.")
    # MARKET_LOT_SIZE bounds MARKET orders; every other type (conditional ones too) uses LOT_SIZE.
    low, high = contract.market_qty_units if order_type is OrderType.MARKET else contract.limit_qty_units
    if qty_units < low:
        return VenueError(-4004, "Quantity less than min quantity.")
    if qty_units > high:
        return VenueError(-4005, "Quantity greater than max quantity.")
    if price_ticks is not None:
        price_units = contract.price_units(price_ticks)
        if price_units <= 0:
            return VenueError(-4001, "Price less than 0.")
        if price_units < contract.min_price_units:
            return VenueError(-4013, "Price less than min price.")
        if price_units > contract.max_price_units:
            return VenueError(-4002, "Price greater than max price.")
        if mark_ticks is not None and order_type is OrderType.LIMIT:
            refusal = _percent_price(contract, price_ticks, mark_ticks)
            if refusal is not None:
                return refusal
    reference = price_ticks if price_ticks is not None else mark_ticks
    if not reduce_only and reference is not None and contract.min_notional:
        if contract.notional_exact(reference, qty_steps) < contract.min_notional:
            return VenueError(-4164, f"Order's notional must be no smaller than {_plain(contract.min_notional)} "
                                     f"(unless you choose reduce only).")
    return None


def _percent_price(contract: Contract, price_ticks: int, mark_ticks: int) -> VenueError | None:
    # A LIMIT price must lie within [mark x multiplierDown, mark x multiplierUp]; the message names the
    # bound rounded inwards to a whole tick.
    highest = contract.multiplier_up * mark_ticks
    lowest = contract.multiplier_down * mark_ticks
    if price_ticks > highest:
        return VenueError(-4016, f"Limit price can't be higher than {contract.format_price(int(highest))}.")
    if price_ticks < lowest:
        return VenueError(-4024, f"Limit price can't be lower than {contract.format_price(-int(-lowest))}.")
    return None


def check_open_orders(contract: Contract, open_orders: int) -> None:
    """MAX_NUM_ORDERS: one more order must not take the symbol's open orders past the limit."""
    if open_orders >= contract.max_open_orders:
        raise VenueError(-2025, "Reach max open order limit.")


def check_new_order(contract: Contract, *, order_type: OrderType, quantity: str, price: str | None,
                    mark_ticks: int | None, reduce_only: bool = False) -> VenueError | None:
    """The whole filter verdict on one order as sent on the wire (strings); None when accepted."""
    try:
        qty_steps = parse_qty(contract, "quantity", quantity)
        price_ticks = parse_price(contract, "price", price) if price is not None else None
    except VenueError as refusal:
        return refusal
    return check_order(contract, order_type=order_type, qty_steps=qty_steps, price_ticks=price_ticks,
                       mark_ticks=mark_ticks, reduce_only=reduce_only)


def _plain(value: Fraction) -> str:
    """A filter value as a short decimal: 10 -> "10", 5.5 -> "5.5"."""
    for scale in range(0, 19):
        if (value * 10**scale).denominator == 1:
            return format_units(int(value * 10**scale), scale)
    return str(float(value))
