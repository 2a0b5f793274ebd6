"""The simulated venue's state machine: one MatchingEngine per venue, synchronous and without I/O.

Owns the venue itself (its symbols' books, its accounts, order and trade ids) and order entry: reading
a new order's parameters with the venue's checks and error codes (types, TIF, reduce-only, close-position,
duplicate client ids, filters from exchange_sim/filters.py, margin), cancels and look-ups. The rest of
the engine is split by concern into mixins: matching.py (the book), margin.py (margin, funding,
liquidation), triggers.py (conditional orders), algo.py and algo_wire.py (the Algo Order API) and wire.py
(answers and user-data events). It shares
only domain values (decimals, Side, MONEY_SCALE, the clock) and never the connector's rules.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any, Callable

from celeris.domain.clock import Clock
from celeris.domain.values import MONEY_SCALE, Side, parse_decimal
from celeris.exchange_sim import filters, params as strict
from celeris.exchange_sim.algo import (
    GTD_INVALID,
    GTD_MAX_MS,
    GTD_MIN_AHEAD_MS,
    RESPONSE_TYPES,
    WORKING_TYPES,
    AlgoOrders,
    check_position_side,
    no_depth,
    price_match_types,
    read_good_till,
    read_price_match,
    read_stp_mode,
)
from celeris.exchange_sim.algo_wire import AlgoWire
from celeris.exchange_sim.contract import Contract, OrderType, TimeInForce
from celeris.exchange_sim.margin import Margin
from celeris.exchange_sim.matching import Matching
from celeris.exchange_sim.positions import SimPosition
from celeris.exchange_sim.state import (
    NS_PER_MS,
    Account,
    EngineConfig,
    SimOrder,
    SymbolBook,
    VenueError,
)
from celeris.exchange_sim.triggers import Triggers
from celeris.exchange_sim.wire import WireRendering, price_str

STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
MAX_MODIFICATIONS = 9_999
"""Binance: "one order can only be modified for less than 10000 times" (-5026 beyond)."""
MAX_AMENDMENTS = 10_000
"""Amendment history kept per account (the venue keeps three months; a simulator bounds its memory)."""

# Names other modules imported from here before the split.
_price_str = price_str
__all__ = ["GTD_INVALID", "GTD_MAX_MS", "GTD_MIN_AHEAD_MS", "NS_PER_MS", "Account", "EngineConfig", "MatchingEngine", "SimOrder", "SymbolBook", "VenueError"]


class MatchingEngine(Matching, Margin, Triggers, AlgoOrders, WireRendering, AlgoWire):
    """One venue: symbols, their books, and the accounts trading them."""

    def __init__(self, instruments: list[Contract], clock: Clock, config: EngineConfig | None = None) -> None:
        self.clock = clock
        self.config = config or EngineConfig()
        self.books = {ins.symbol: SymbolBook(ins) for ins in instruments}
        self.accounts: dict[str, Account] = {}
        self._order_ids = itertools.count(8_000_000_001)
        self._trade_ids = itertools.count(500_000_001)
        self._auto_ids = itertools.count(1)
        self._algo_ids = itertools.count(1_000_000_000_000_001)  # the venue's algoIds are this large
        self._amendment_ids = itertools.count(1)
        self.on_account_event: Callable[[Account], None] | None = None
        self.insurance_fund = 0

    def _next_trade_id(self) -> int:
        return next(self._trade_ids)

    # -- accounts ------------------------------------------------------------------------------
    def add_account(self, api_key: str, api_secret: str, wallet_usdt: int | None = None) -> Account:
        wallet = (self.config.initial_wallet_usdt if wallet_usdt is None else wallet_usdt) * 10**MONEY_SCALE
        account = Account(api_key, api_secret, wallet)
        for symbol, book in self.books.items():
            account.leverage[symbol] = self.config.default_leverage
            account.margin_type[symbol] = "cross"
            account.positions[symbol] = SimPosition(book.instrument)
        self.accounts[api_key] = account
        return account

    def now_ms(self) -> int:
        return self.clock.now_ns() // NS_PER_MS

    def instrument(self, symbol: str) -> Contract:
        book = self.books.get(symbol)
        if book is None:
            raise VenueError(-1121, "Invalid symbol.")
        return book.instrument

    # -- order entry ---------------------------------------------------------------------------
    def place(self, account: Account, params: dict[str, str]) -> SimOrder:
        """Validate and place one order from request parameters; raises VenueError on refusal."""
        symbol = _required(params, "symbol")
        ins = self.instrument(symbol)
        side = _enum(Side, _required(params, "side"), -1117, "Invalid side.")
        order_type = _enum(OrderType, _required(params, "type"), -1116, "Invalid orderType.")
        if order_type.is_conditional and not self.config.conditional_on_order_endpoint:
            raise VenueError(-4120, "Order type not supported for this endpoint. "
                                    "Please use the Algo Order API endpoints instead.")
        check_position_side(account, params)
        close_position = strict.boolean(params, "closePosition")
        if close_position:
            if order_type not in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET):
                raise VenueError(-1106, "Parameter 'closePosition' sent when not required.")
            if params.get("quantity"):
                raise VenueError(-4137, "Quantity must be zero with closePosition equals true.")
        reduce_only = strict.boolean(params, "reduceOnly")
        strict.boolean(params, "priceProtect")  # read strictly; it only matters on the Algo Order API
        working_type = params.get("workingType") or "CONTRACT_PRICE"
        if working_type not in WORKING_TYPES:
            raise VenueError(-4031, f"Invalid parameter working type: {working_type[:64]}")
        if (params.get("newOrderRespType") or "ACK") not in RESPONSE_TYPES:
            raise VenueError(-1136, "Invalid newOrderRespType.")
        tif_text = params.get("timeInForce")
        if order_type.has_limit_price:
            if tif_text is None:
                raise VenueError(-1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, "
                                        "or malformed.")
        tif = _enum(TimeInForce, tif_text or "GTC", -1115, "Invalid timeInForce.")
        price_match = read_price_match(params)
        if price_match != "NONE" and not order_type.has_limit_price:
            raise price_match_types()
        price_ticks = 0
        if order_type.has_limit_price and price_match == "NONE":
            price_ticks = filters.parse_price(ins, "price", _required(params, "price"))
        elif params.get("price") not in (None, "", "0"):
            raise VenueError(-1106, "Parameter 'price' sent when not required.")
        elif price_match != "NONE":
            matched = self.books[symbol].match_price(side, price_match)
            if matched is None:
                raise no_depth()
            price_ticks = matched
        good_till = 0
        if tif is TimeInForce.GTD:
            good_till = read_good_till(params, self.now_ms())
        elif params.get("goodTillDate") not in (None, "", "0"):
            raise VenueError(-1106, "Parameter 'goodTillDate' sent when not required.")
        stop_ticks = 0
        if order_type.has_stop_price:
            stop_ticks = filters.parse_price(ins, "stopPrice", _required(params, "stopPrice"))
        callback = None
        activation = 0
        if order_type is OrderType.TRAILING_STOP_MARKET:
            callback = _fraction(_required(params, "callbackRate"), "callbackRate")
            if not Fraction(1, 10) <= callback <= 10:
                raise VenueError(-2007, "Invalid callBack rate.")
            if params.get("activationPrice"):
                activation = filters.parse_price(ins, "activationPrice", params["activationPrice"])
        pos = account.positions[symbol]
        if close_position:
            qty_steps = abs(pos.qty_steps) or 0
            reduce_only = True
        else:
            qty_steps = filters.parse_qty(ins, "quantity", _required(params, "quantity"))
        stp_mode = read_stp_mode(params)
        client_id = params.get("newClientOrderId") or f"sim{next(self._auto_ids):016d}"
        filters.check_client_order_id(client_id)
        if any(o.client_order_id == client_id and o.is_open for o in account.orders.values()):
            raise VenueError(-4116, "ClientOrderId is duplicated.")
        mark = self.mark(symbol) or None
        if not close_position:
            refusal = filters.check_order(ins, order_type=order_type, qty_steps=qty_steps,
                                          price_ticks=price_ticks if order_type.has_limit_price else None,
                                          mark_ticks=mark, reduce_only=reduce_only)
            if refusal is not None:
                raise refusal
        filters.check_open_orders(ins, sum(1 for o in account.orders.values() if o.is_open and o.symbol == symbol))
        if reduce_only and not order_type.is_conditional:
            if pos.qty_steps == 0 or (pos.qty_steps > 0) == (side is Side.BUY):
                raise VenueError(-2022, "ReduceOnly Order is rejected.")
        if not reduce_only:
            price = price_ticks or mark or 0
            self.check_max_notional(account, symbol, side, qty_steps, price)
            needed = ins.notional(price, qty_steps) // account.leverage[symbol]
            if needed > self.available_balance(account):
                raise VenueError(-2019, "Margin is insufficient.")
        book = self.books[symbol]
        if order_type is OrderType.LIMIT and tif is TimeInForce.GTX and self._would_take(book, side, price_ticks):
            if self.config.fok_gtx_sync_reject:
                raise VenueError(-5022, "Due to the order could not be executed as maker, the Post Only order "
                                        "will be rejected. The order will not be recorded in the order history")
        if order_type is OrderType.LIMIT and tif is TimeInForce.FOK and \
                self._fillable(book, side, price_ticks, qty_steps) < qty_steps:
            if self.config.fok_gtx_sync_reject:
                raise VenueError(-5021, "Due to the order could not be filled immediately, the FOK order has "
                                        "been rejected. The order will not be recorded in the order history")
        if order_type is OrderType.MARKET:
            self._check_market_protection(book, side)
        if order_type.is_conditional and order_type is not OrderType.TRAILING_STOP_MARKET and \
                self._triggered(book, order_type, side, stop_ticks, working_type):
            raise VenueError(-2021, "Order would immediately trigger.")
        now = self.now_ms()
        order = SimOrder(next(self._order_ids), client_id, symbol, side, order_type, tif, qty_steps, price_ticks,
                         stop_ticks, reduce_only, close_position, working_type,
                         callback, activation, 0, "NEW", 0, 0, now, now, stp_mode=stp_mode,
                         price_match=price_match, good_till_ms=good_till)
        account.orders[order.order_id] = order
        self._order_event(account, order, "NEW")
        if not order_type.is_conditional:
            self._execute(account, order)
        return order

    def cancel(self, account: Account, symbol: str, order_id: int | None, client_id: str | None) -> SimOrder:
        order = self.find(account, symbol, order_id, client_id)
        if order is None or not order.is_open:
            raise VenueError(-2011, "Unknown order sent.")
        self._remove_resting(order)
        order.status = "CANCELED"
        order.update_ms = self.now_ms()
        self._order_event(account, order, "CANCELED")
        return order

    def cancel_all(self, account: Account, symbol: str) -> int:
        self.instrument(symbol)
        count = 0
        for order in list(account.orders.values()):
            if order.symbol == symbol and order.is_open:
                self.cancel(account, symbol, order.order_id, None)
                count += 1
        return count

    def amend(self, account: Account, params: dict[str, str]) -> SimOrder:
        """PUT /fapi/v1/order: a resting LIMIT order's price and quantity change in place; it keeps its ids,
        loses its queue priority (to the back of its new level) and may trade at once if the new price crosses.
        Refused, it stays as it was, except where Binance says the amendment cancels it: a post-only order whose
        new price would trade, a partially filled one whose new quantity is not above its fill."""
        symbol = _required(params, "symbol")
        ins = self.instrument(symbol)
        order = self.find(account, symbol, strict.optional_integer(params, "orderId"), params.get("origClientOrderId"))
        if order is None or not order.is_open:
            raise VenueError(-2013, "Order does not exist.")
        if order.order_type is not OrderType.LIMIT:
            raise VenueError(-5025, "Only limit order is supported.")
        if order.amendments >= MAX_MODIFICATIONS:
            raise VenueError(-5026, "Exceed maximum modify order limit.")
        side = _enum(Side, _required(params, "side"), -1117, "Invalid side.")
        if side is not order.side:
            raise VenueError(-1117, "Invalid side: an order's side cannot be modified.")
        qty_steps = filters.parse_qty(ins, "quantity", _required(params, "quantity"))
        price_match = read_price_match(params)
        if price_match == "NONE":
            price_ticks = filters.parse_price(ins, "price", _required(params, "price"))
        elif params.get("price") not in (None, "", "0"):
            raise VenueError(-1106, "Parameter 'price' sent when not required.")
        else:  # the new price comes from the book now, as at placement
            matched = self.books[symbol].match_price(side, price_match)
            if matched is None:
                raise no_depth()
            price_ticks = matched
        if (qty_steps, price_ticks) == (order.qty_steps, order.price_ticks):
            raise VenueError(-5027, "No need to modify the order.")
        if order.filled_steps and qty_steps <= order.filled_steps:
            # Binance: "the order will be cancelled by the amendment" when it is partially filled and the new
            # quantity is not above what it filled (the refusal's code is ours: Binance's is undocumented).
            self._finish(account, order, "CANCELED")
            raise VenueError(-1102, "Parameter 'quantity' must be more than the order's filled quantity.")
        refusal = filters.check_order(ins, order_type=order.order_type, qty_steps=qty_steps, price_ticks=price_ticks,
                                      mark_ticks=self.mark(symbol) or None, reduce_only=order.reduce_only)
        if refusal is not None and refusal.code == -4164:  # an amendment's own code: MODIFICATION_MIN_NOTIONAL
            refusal = VenueError(-5029, refusal.msg.replace(" (unless you choose reduce only)", ""))
        if refusal is not None:
            raise refusal
        if order.time_in_force is TimeInForce.GTX and self._would_take(self.books[symbol], side, price_ticks):
            self._finish(account, order, "CANCELED")  # Binance: such an amendment cancels the post-only order
            raise VenueError(-5022, "Due to the order could not be executed as maker, the Post Only order "
                                    "will be rejected. The order will not be recorded in the order history")
        self._record_amendment(account, order, qty_steps, price_ticks)
        self._remove_resting(order)
        order.qty_steps, order.price_ticks, order.price_match = qty_steps, price_ticks, price_match
        order.update_ms = self.now_ms()
        self._order_event(account, order, "AMENDMENT")
        self._execute(account, order)
        return order

    def _record_amendment(self, account: Account, order: SimOrder, qty_steps: int, price_ticks: int) -> None:
        """One entry of GET /fapi/v1/orderAmendment: the terms before and after, and the order's count so far."""
        ins = self.books[order.symbol].instrument
        order.amendments += 1
        account.amendments.append({
            "amendmentId": next(self._amendment_ids), "symbol": order.symbol, "pair": order.symbol,
            "orderId": order.order_id, "clientOrderId": order.client_order_id, "time": self.now_ms(),
            "amendment": {
                "price": {"before": ins.format_price(order.price_ticks), "after": ins.format_price(price_ticks)},
                "origQty": {"before": ins.format_qty(order.qty_steps), "after": ins.format_qty(qty_steps)},
                "count": order.amendments}})
        del account.amendments[:-MAX_AMENDMENTS]

    def set_countdown(self, account: Account, symbol: str, countdown_ms: int) -> None:
        """countdownCancelAll: every open order of `symbol` is cancelled `countdown_ms` from now unless the
        call is repeated in time (a dead-man's switch); 0 disarms it."""
        self.instrument(symbol)
        if countdown_ms < 0:
            raise VenueError(-1130, "Data sent for parameter 'countdownTime' is not valid.")
        if countdown_ms == 0:
            account.countdowns.pop(symbol, None)
        else:
            account.countdowns[symbol] = self.now_ms() + countdown_ms

    def check_countdowns(self) -> None:
        """Cancel the open orders of every symbol whose countdown ran out (then the countdown is gone)."""
        now = self.now_ms()
        for account in self.accounts.values():
            for symbol, deadline in list(account.countdowns.items()):
                if now >= deadline:
                    del account.countdowns[symbol]
                    self.cancel_all(account, symbol)

    def expire_good_till(self) -> None:
        """GTD orders whose goodTillDate has come are EXPIRED by the venue (with their user-data event)."""
        now = self.now_ms()
        for account in self.accounts.values():
            for order in list(account.orders.values()):
                if order.good_till_ms and order.is_open and now >= order.good_till_ms:
                    self._finish(account, order, "EXPIRED")

    def find(self, account: Account, symbol: str, order_id: int | None, client_id: str | None) -> SimOrder | None:
        self.instrument(symbol)
        if order_id is None and not client_id:
            raise VenueError(-1102, "Param 'orderId' or 'origClientOrderId' must be sent, but both were "
                                    "empty/null!")
        if order_id is not None:
            order = account.orders.get(order_id)
            return order if order is not None and order.symbol == symbol else None
        matches = [o for o in account.orders.values() if o.symbol == symbol and o.client_order_id == client_id]
        if not matches:
            return None
        open_ = [o for o in matches if o.is_open]
        return open_[-1] if open_ else matches[-1]


_required = strict.required


def _enum(enum_cls: Any, value: str, code: int, msg: str) -> Any:
    try:
        return enum_cls(value)
    except ValueError:
        raise VenueError(code, msg) from None


def _fraction(text: str, name: str) -> Fraction:
    mantissa, scale = parse_decimal(strict.decimal(name, text))
    return Fraction(mantissa, 10**scale)
