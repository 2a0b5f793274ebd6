"""Binance's Algo Order API in the simulated venue: conditional orders held apart from the book until triggered.

Owns reading a new algo order's parameters with the venue's checks and error codes (algoType, types,
triggerPrice, workingType, callbackRate, closePosition / reduceOnly rules, clientAlgoId, the symbol's
filters on quantity, price and trigger price, margin), cancels and look-ups by algoId or clientAlgoId, and
the lifecycle on each tick: the trigger reached (last or mark price, trailing stops with activation and
callback: the same rules as conditional orders on /fapi/v1/order, from triggers.py), priceProtect holding
an order back while mark and last price are further apart than the symbol's triggerProtect, the actual
order placed in the matching engine under the clientAlgoId (then matched as any order, with its
ORDER_TRADE_UPDATE events), the algo order FINISHED once that order is done, REJECTED when the matching
engine refuses it, EXPIRED past a GTD goodTillDate. Statuses move only through algo_state.TRANSITIONS.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any, Iterator

from celeris.domain.values import Side, parse_decimal
from celeris.exchange_sim import filters, params as strict
from celeris.exchange_sim.algo_state import AlgoStatus, SimAlgoOrder
from celeris.exchange_sim.contract import Contract, OrderType, TimeInForce
from celeris.exchange_sim.state import Account, EngineConfig, SimOrder, SymbolBook, VenueError

WORKING_TYPES = ("CONTRACT_PRICE", "MARK_PRICE")
PRICE_MATCHES = ("NONE", "OPPONENT", "OPPONENT_5", "OPPONENT_10", "OPPONENT_20", "QUEUE", "QUEUE_5", "QUEUE_10",
                 "QUEUE_20")
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
RESPONSE_TYPES = ("ACK", "RESULT")
POSITION_SIDES = ("BOTH", "LONG", "SHORT")
GTD_MIN_AHEAD_MS = 600_000
GTD_MAX_MS = 253_402_300_799_000
GTD_INVALID = "The goodTillDate timestamp must be greater than the current time plus 600 seconds and smaller than " \
              "253402300799000"
REDUCE_ONLY_REJECT = "Reduce Only reject"
"""ALGO_UPDATE "rm" when the triggered order had nothing to reduce (the venue's own wording)."""


class AlgoOrders:
    """Mixin of MatchingEngine: the algo service of the venue."""

    # Provided by MatchingEngine (engine.py).
    books: dict[str, SymbolBook]
    accounts: dict[str, Account]
    config: EngineConfig
    _order_ids: Iterator[int]
    _algo_ids: Iterator[int]
    _auto_ids: Iterator[int]

    if TYPE_CHECKING:  # the other mixins' members this one calls
        def now_ms(self) -> int: ...
        def instrument(self, symbol: str) -> Contract: ...
        def mark(self, symbol: str) -> int: ...
        def available_balance(self, account: Account) -> int: ...
        def _execute(self, account: Account, order: SimOrder) -> None: ...
        def _check_market_protection(self, book: SymbolBook, side: Side) -> None: ...
        def _reference(self, book: SymbolBook, working_type: str) -> int: ...
        def _triggered(self, book: SymbolBook, order_type: OrderType, side: Side, stop: int,
                       working_type: str) -> bool: ...
        def _trail(self, book: SymbolBook, order: Any) -> bool: ...
        def _order_event(self, account: Account, order: SimOrder, execution: str, **fill: Any) -> None: ...
        def _algo_event(self, account: Account, algo: SimAlgoOrder) -> None: ...

    # -- entry ---------------------------------------------------------------------------------
    def place_algo(self, account: Account, params: dict[str, str]) -> SimAlgoOrder:
        """POST /fapi/v1/algoOrder: validate and accept one conditional order; raises VenueError on refusal."""
        algo_type = _required(params, "algoType")
        if algo_type != "CONDITIONAL":
            raise VenueError(-1130, "Data sent for parameter 'algoType' is not valid.")
        symbol = _required(params, "symbol")
        ins = self.instrument(symbol)
        book = self.books[symbol]
        side = _enum(Side, _required(params, "side"), -1117, "Invalid side.")
        order_type = _enum(OrderType, _required(params, "type"), -1116, "Invalid orderType.")
        if not order_type.is_conditional:
            raise VenueError(-1116, "Invalid orderType.")
        check_position_side(account, params)
        tif = _enum(TimeInForce, params.get("timeInForce") or "GTC", -1115, "Invalid timeInForce.")
        working_type = params.get("workingType") or "CONTRACT_PRICE"
        if working_type not in WORKING_TYPES:
            raise VenueError(-4031, f"Invalid parameter working type: {working_type[:64]}")
        price_match = read_price_match(params)
        stp_mode = read_stp_mode(params)
        if (params.get("newOrderRespType") or "ACK") not in RESPONSE_TYPES:
            raise VenueError(-1136, "Invalid newOrderRespType.")
        close_position = strict.boolean(params, "closePosition")
        price_protect = strict.boolean(params, "priceProtect")
        reduce_only = strict.boolean(params, "reduceOnly")
        if close_position:
            if order_type not in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET):
                raise VenueError(-1106, "Parameter 'closePosition' sent when not required.")
            if params.get("quantity"):
                raise VenueError(-4137, "Quantity must be zero with closePosition equals true.")
            if "reduceOnly" in params:
                raise VenueError(-1106, "Parameter 'reduceonly' sent when not required.")
        if price_match != "NONE" and not order_type.has_limit_price:
            raise price_match_types()
        price_ticks = 0
        if order_type.has_limit_price and price_match == "NONE":
            price_ticks = filters.parse_price(ins, "price", _required(params, "price"))
        elif params.get("price") not in (None, "", "0"):
            raise VenueError(-1106, "Parameter 'price' sent when not required.")
        trigger_ticks = 0
        callback = None
        activation = 0
        if order_type is OrderType.TRAILING_STOP_MARKET:
            callback = _callback_rate(_required(params, "callbackRate"))
            # The venue's REST documents activatePrice; its WebSocket API page says activationPrice.
            text = params.get("activatePrice") or params.get("activationPrice")
            activation = _trigger(ins, text, "activatePrice") if text else self._reference(book, working_type)
            trigger_ticks = activation
        else:
            trigger_ticks = _trigger(ins, _required(params, "triggerPrice"), "triggerPrice")
        qty_steps = 0 if close_position else filters.parse_qty(ins, "quantity", _required(params, "quantity"))
        good_till = 0
        if tif is TimeInForce.GTD:
            good_till = read_good_till(params, self.now_ms())
        client_id = params.get("clientAlgoId") or f"simalgo{next(self._auto_ids):015d}"
        filters.check_client_order_id(client_id)
        if any(a.client_algo_id == client_id and a.status.is_open for a in account.algo_orders.values()):
            raise VenueError(-4116, "ClientOrderId is duplicated.")
        mark = self.mark(symbol) or None
        if not close_position:
            refusal = filters.check_order(ins, order_type=order_type, qty_steps=qty_steps,
                                          price_ticks=price_ticks if price_ticks else None, mark_ticks=mark,
                                          reduce_only=reduce_only)
            if refusal is not None:
                raise refusal
            if not reduce_only:
                needed = ins.notional(price_ticks or trigger_ticks or mark or 0, qty_steps) // account.leverage[symbol]
                if needed > self.available_balance(account):
                    raise VenueError(-2019, "Margin is insufficient.")
        if order_type is not OrderType.TRAILING_STOP_MARKET and \
                self._triggered(book, order_type, side, trigger_ticks, working_type):
            raise VenueError(-2021, "Order would immediately trigger.")
        now = self.now_ms()
        algo = SimAlgoOrder(next(self._algo_ids), client_id, symbol, side, order_type, tif, qty_steps, price_ticks,
                            trigger_ticks, working_type, price_match, close_position, price_protect, reduce_only,
                            activation, callback, 0, stp_mode, good_till, create_ms=now, update_ms=now)
        account.algo_orders[algo.algo_id] = algo
        self._algo_event(account, algo)
        return algo

    def find_algo(self, account: Account, algo_id: int | None, client_algo_id: str | None) -> SimAlgoOrder | None:
        if algo_id is None and not client_algo_id:
            raise VenueError(-1102, "Param 'algoId' or 'clientAlgoId' must be sent, but both were empty/null!")
        if algo_id is not None:
            return account.algo_orders.get(algo_id)
        matches = [a for a in account.algo_orders.values() if a.client_algo_id == client_algo_id]
        open_ = [a for a in matches if a.status.is_open]
        return (open_ or matches or [None])[-1]

    def cancel_algo(self, account: Account, algo_id: int | None, client_algo_id: str | None) -> SimAlgoOrder:
        algo = self.find_algo(account, algo_id, client_algo_id)
        if algo is None or not algo.status.is_open:
            raise VenueError(-2011, "Unknown order sent.")
        algo.move(AlgoStatus.CANCELED, self.now_ms())
        self._algo_event(account, algo)
        return algo

    def cancel_all_algos(self, account: Account, symbol: str) -> int:
        self.instrument(symbol)
        open_ = [a for a in account.algo_orders.values() if a.symbol == symbol and a.status.is_open]
        for algo in open_:
            self.cancel_algo(account, algo.algo_id, None)
        return len(open_)

    # -- lifecycle -----------------------------------------------------------------------------
    def check_algo_triggers(self, symbol: str) -> None:
        """Expire GTD orders past their date, then trigger those whose condition the market reached."""
        book = self.books[symbol]
        now = self.now_ms()
        for account in list(self.accounts.values()):
            for algo in list(account.algo_orders.values()):
                if algo.symbol != symbol or algo.status is not AlgoStatus.NEW:
                    continue
                if algo.good_till_ms and now >= algo.good_till_ms:
                    algo.move(AlgoStatus.EXPIRED, now)
                    self._algo_event(account, algo)
                    continue
                if algo.order_type is OrderType.TRAILING_STOP_MARKET:
                    reached = self._trail(book, algo)
                else:
                    reached = self._triggered(book, algo.order_type, algo.side, algo.trigger_ticks, algo.working_type)
                if reached and not (algo.price_protect and self._prices_diverge(book)):
                    self._trigger_algo(account, algo)

    def _prices_diverge(self, book: SymbolBook) -> bool:
        """priceProtect: mark and last price further apart, relative to the mark, than triggerProtect."""
        mark, last = book.mark_ticks, book.last_price_ticks
        if not mark or not last:
            return False
        return Fraction(abs(last - mark), mark) > book.instrument.trigger_protect

    def _trigger_algo(self, account: Account, algo: SimAlgoOrder) -> None:
        now = self.now_ms()
        algo.trigger_ms = now
        algo.move(AlgoStatus.TRIGGERING, now)
        self._algo_event(account, algo)
        try:
            order = self._actual_order(account, algo)
        except VenueError as refusal:
            algo.reject_reason = REDUCE_ONLY_REJECT if refusal.code == -2022 else refusal.msg
            algo.move(AlgoStatus.REJECTED, self.now_ms())
            self._algo_event(account, algo)
            return
        account.orders[order.order_id] = order
        account.algo_by_order[order.order_id] = algo
        algo.actual_order_id = order.order_id
        algo.move(AlgoStatus.TRIGGERED, now)
        self._algo_event(account, algo)
        self._order_event(account, order, "NEW")
        self._execute(account, order)

    def _actual_order(self, account: Account, algo: SimAlgoOrder) -> SimOrder:
        """The order a triggered algo order puts in the matching engine, or the engine's refusal of it."""
        book = self.books[algo.symbol]
        ins = book.instrument
        position = account.positions[algo.symbol].qty_steps
        reduce_only = algo.reduce_only or algo.close_position
        qty = abs(position) if algo.close_position else algo.qty_steps
        if reduce_only and (position == 0 or (position > 0) == (algo.side is Side.BUY)):
            raise VenueError(-2022, "ReduceOnly Order is rejected.")
        order_type = algo.actual_type
        price = algo.price_ticks
        if order_type is OrderType.LIMIT and algo.price_match != "NONE":
            best = book.match_price(algo.side, algo.price_match)
            if best is None:
                raise no_depth()
            price = best
        if not reduce_only:
            needed = ins.notional(price or self.mark(algo.symbol), qty) // account.leverage[algo.symbol]
            if needed > self.available_balance(account):
                raise VenueError(-2019, "Margin is insufficient.")
        if order_type is OrderType.MARKET:
            self._check_market_protection(book, algo.side)
        now = self.now_ms()
        return SimOrder(next(self._order_ids), algo.client_algo_id, algo.symbol, algo.side, order_type,
                        algo.time_in_force, qty, price, 0, reduce_only, algo.close_position, algo.working_type,
                        time_ms=now, update_ms=now, stp_mode=algo.stp_mode)

    def _after_order_event(self, account: Account, order: SimOrder) -> None:
        """An actual order that is done (filled, expired, cancelled) finishes the algo order that placed it."""
        algo = account.algo_by_order.get(order.order_id)
        if algo is not None and algo.status is AlgoStatus.TRIGGERED and not order.is_open:
            algo.move(AlgoStatus.FINISHED, self.now_ms())
            self._algo_event(account, algo)


_required = strict.required


def price_match_types() -> VenueError:
    """priceMatch on a type without a limit price: Binance's UNSUPPORTED_ORDER_TYPE_PRICE_MATCH."""
    return VenueError(-5038, "Price match only supports order type: LIMIT, STOP AND TAKE_PROFIT")


def read_price_match(params: dict[str, str]) -> str:
    """priceMatch (absent: NONE); outside the venue's values, Binance's INVALID_PRICE_MATCH."""
    value = params.get("priceMatch") or "NONE"
    if value not in PRICE_MATCHES:
        raise VenueError(-5037, "Invalid price match")
    return value


def read_stp_mode(params: dict[str, str]) -> str:
    """selfTradePreventionMode (absent: NONE); outside its values, Binance's INVALID_SELF_TRADE_PREVENTION_MODE."""
    value = params.get("selfTradePreventionMode") or "NONE"
    if value not in STP_MODES:
        raise VenueError(-5039, "Invalid self trade prevention mode")
    return value


def no_depth() -> VenueError:
    """A priceMatch price wanted from an empty side of the book: Binance's BBO_ORDER_REJECT."""
    return VenueError(-5041, "No depth matches this BBO order")


def read_good_till(params: dict[str, str], now_ms: int) -> int:
    """goodTillDate of a GTD order, on /fapi/v1/order and the Algo Order API alike: whole seconds are kept,
    and it must lie more than 600 s ahead and before 253402300799000 (-5040)."""
    good_till = strict.required_integer(params, "goodTillDate") // 1000 * 1000
    if not now_ms + GTD_MIN_AHEAD_MS < good_till < GTD_MAX_MS:
        raise VenueError(-5040, GTD_INVALID)
    return good_till


def check_position_side(account: Account, params: dict[str, str]) -> None:
    """positionSide: junk is -1130; LONG / SHORT, or any order in hedge mode, is -4061 (hedge mode is not
    simulated)."""
    position_side = strict.choice(params, "positionSide", POSITION_SIDES, "BOTH")
    if position_side != "BOTH" or account.dual_side:
        raise VenueError(-4061, "Order's position side does not match user's setting.")


def _enum(enum_cls: Any, value: str, code: int, msg: str) -> Any:
    try:
        return enum_cls(value)
    except ValueError:
        raise VenueError(code, msg) from None


def _trigger(ins: Contract, text: str, name: str) -> int:
    """triggerPrice / activatePrice: on the tick grid and inside PRICE_FILTER, with the stop-price codes."""
    ticks = filters.parse_price(ins, name, text)
    if ticks <= 0:
        raise VenueError(-4006, "Stop price less than zero.")
    units = ins.price_units(ticks)
    if units > ins.max_price_units:
        raise VenueError(-4007, "Stop price greater than max price.")
    if units < ins.min_price_units:
        raise VenueError(-4013, "Price less than min price.")
    return ticks


def _callback_rate(text: str) -> Fraction:
    """callbackRate in percent: 0.1 to 10 in steps of 0.1, else the venue's -2007."""
    mantissa, scale = parse_decimal(strict.decimal("callbackRate", text))
    rate = Fraction(mantissa, 10**scale)
    if not Fraction(1, 10) <= rate <= 10 or (rate * 10).denominator != 1:
        raise VenueError(-2007, "Invalid callBack rate.")
    return rate
