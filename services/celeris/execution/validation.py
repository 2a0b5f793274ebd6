"""Pre-trade validation: every rule an order must pass before it is reserved, with no I/O.

Owns the decisions, not the state: the gate (mode, halt, drain), the request's own shape (request id,
owner, client order id, price and stop price for its type), the venue's filters, the reduce-only rule,
the exposure and position limits (celeris.domain.exposure), the margin with working orders counted, the
daily loss, our order rate and the venue's own order windows. Everything here is synchronous: the
engine calls it between two awaits, so two requests can never both pass on the same headroom.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Mapping

from celeris.domain.breaker import CircuitBreaker, SlidingWindowLimit
from celeris.domain.clock import Clock, utc_day_start_ns
from celeris.domain.exposure import BreachCode, ExposureLedger
from celeris.domain.instruments import (
    MAX_CALLBACK_RATE_BPS,
    MIN_CALLBACK_RATE_BPS,
    Instrument,
    OrderType,
    PriceMatch,
    TimeInForce,
    WorkingType,
    check_order,
)
from celeris.domain.messages import (
    AmendRequest,
    OrderRequest,
    RejectCode,
    Rejection,
    client_order_id_for,
    venue_tag,
)
from celeris.domain.modes import Mode
from celeris.domain.orders import Order, OrderStatus
from celeris.domain.positions import Position
from celeris.domain.values import Side
from celeris.execution.model import ExecutionConfig

log = logging.getLogger(__name__)

FLATTEN_OWNER = "emergency-flatten"
"""The owner of the emergency stop's reduce-only orders (no strategy may use it)."""
EXTERNAL_OWNER = "external"
"""The owner of an order found at the venue that this engine did not place."""
RESERVED_OWNERS = frozenset({FLATTEN_OWNER, EXTERNAL_OWNER})
MANUAL_OWNER = "manual"
"""The owner of an order that came without one (a person or a tool on the Execution API)."""


@functools.lru_cache(maxsize=4096)
def owner_tag(owner: str) -> str:
    """An owner as it appears in the venue's client order id (case and punctuation folded)."""
    return re.sub(r"[^a-z0-9]+", "-", owner.lower()).strip("-")


RESERVED_TAGS = frozenset(owner_tag(o) for o in RESERVED_OWNERS)
RESERVED_VENUE_TAGS = frozenset(venue_tag(o) for o in RESERVED_OWNERS)


def gate(request: OrderRequest, flatten: bool, mode: Mode, halted: bool, halt_reason: str,
         draining: bool) -> Rejection | None:
    """The first refusals, before anything else is looked at: observation, a halt, a drain. The flatten
    passes all three (a halt's own reduce-only orders must get out)."""
    if mode is Mode.OBSERVATION and not flatten:
        log.info("observation mode: order not sent", extra={"request_id": request.request_id,
                                                            "symbol": request.symbol})
        return Rejection(RejectCode.OBSERVATION_MODE, "observation mode: orders are logged, not sent")
    if halted and not (flatten and request.reduce_only):
        return Rejection(RejectCode.HALTED, f"trading halted: {halt_reason}")
    if draining and not flatten:
        return Rejection(RejectCode.DRAINING, "execution is draining for shutdown")
    return None


def late_gate(order: Order, order_mode: Mode | None, flatten: bool, mode: Mode, halted: bool, halt_reason: str,
              draining: bool) -> Rejection | None:
    """What may have changed while a reserved order waited: a halt, a drain, a switch to observation or
    to another mode than the one it was reserved in, a cancel."""
    if order.status not in (OrderStatus.NEW, OrderStatus.PENDING_SUBMIT):
        return Rejection(RejectCode.HALTED if halted else RejectCode.NOT_CANCELABLE,
                         order.reject_reason or f"order was {order.status.value} before it was sent")
    if flatten:
        return None
    if halted:
        return Rejection(RejectCode.HALTED, f"trading halted: {halt_reason}")
    if draining:
        return Rejection(RejectCode.DRAINING, "execution is draining for shutdown")
    if mode is Mode.OBSERVATION or mode is not order_mode:
        return Rejection(RejectCode.OBSERVATION_MODE if mode is Mode.OBSERVATION else RejectCode.HALTED,
                         f"mode changed to {mode.value} before the order was sent")
    return None


def check_shape(request: OrderRequest, flatten: bool) -> Rejection | None:
    """The request on its own: an id that makes retries safe, an owner that is not reserved, a client
    order id that is ours to derive, a price and stop price that fit the order type."""
    if not request.request_id:
        return Rejection(RejectCode.INVALID_REQUEST, "request_id is required (it makes retries safe)")
    if not flatten and (owner_tag(request.strategy_id) in RESERVED_TAGS
                        or venue_tag(request.strategy_id) in RESERVED_VENUE_TAGS):
        return Rejection(RejectCode.INVALID_REQUEST, f"owner {request.strategy_id!r} is reserved "
                                                     f"(or reads as a reserved one at the venue)")
    if request.client_order_id and not flatten and \
            request.client_order_id != client_order_id_for(request.request_id, request.strategy_id):
        return Rejection(RejectCode.INVALID_REQUEST, "client_order_id is derived from request_id and the owner "
                                                     "(leave it empty): the venue's order list must say whose "
                                                     "each order is")
    return None


_PRICED = frozenset({OrderType.LIMIT, OrderType.STOP, OrderType.TAKE_PROFIT})
_CLOSING = frozenset({OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET})
GTD_MIN_AHEAD_MS = 600_000
"""The venue refuses a goodTillDate not more than 600 s ahead (-5040); we refuse it first."""
GTD_MAX_MS = 253_402_300_799_000


def check_surface(request: OrderRequest, now_ms: int | None = None) -> Rejection | None:
    """Which of the venue's parameters each order type takes, and the combinations it refuses."""
    kind = request.order_type
    priced = request.price_match is PriceMatch.NONE
    if request.price_match is not PriceMatch.NONE:
        if kind not in _PRICED:
            return _invalid(f"priceMatch is for LIMIT, STOP and TAKE_PROFIT orders, not {kind.value}")
        if request.price_ticks is not None:
            return _invalid("priceMatch sets the price: the order must not carry one")
    if kind in _PRICED and priced and request.price_ticks is None:
        return _invalid(f"a {kind.value} order needs a price (or a priceMatch)")
    if kind not in _PRICED and request.price_ticks is not None:
        return _invalid(f"a {kind.value} order takes no price")
    if kind is OrderType.TRAILING_STOP_MARKET:
        rate = request.callback_rate_bps
        if rate is None:
            return _invalid("a TRAILING_STOP_MARKET order needs a callbackRate")
        if not MIN_CALLBACK_RATE_BPS <= rate <= MAX_CALLBACK_RATE_BPS or rate % 10:
            return _invalid(f"callbackRate must be 0.1 % to 10 % in steps of 0.1 % (got {rate} bps)")
        if request.stop_price_ticks is not None:
            return _invalid("a TRAILING_STOP_MARKET order takes no stop price (activationPrice, callbackRate)")
    else:
        if request.callback_rate_bps is not None or request.activation_price_ticks is not None:
            return _invalid("callbackRate and activationPrice are for TRAILING_STOP_MARKET orders only")
        if kind.is_conditional and request.stop_price_ticks is None:
            return _invalid(f"a {kind.value} order needs a stop price")
        if not kind.is_conditional and request.stop_price_ticks is not None:
            return _invalid(f"a {kind.value} order takes no stop price")
    if not kind.is_conditional and (request.price_protect or request.working_type is not WorkingType.CONTRACT_PRICE):
        return _invalid("workingType and priceProtect are for conditional orders only")
    if request.close_position:
        if kind not in _CLOSING:
            return _invalid("closePosition is for STOP_MARKET and TAKE_PROFIT_MARKET orders only")
        if request.qty_steps:
            return _invalid("closePosition closes the whole position: send no quantity")
        if request.reduce_only:
            return _invalid("closePosition and reduceOnly cannot be sent together")
    elif request.qty_steps <= 0:
        return _invalid("order quantity must be positive")
    if request.time_in_force is TimeInForce.GTD:
        if not request.good_till_ms:
            return _invalid("a GTD order needs goodTillDate")
        # The venue keeps whole seconds of goodTillDate and wants them strictly more than 600 s ahead.
        kept = request.good_till_ms // 1000 * 1000
        if now_ms is not None and not now_ms + GTD_MIN_AHEAD_MS < kept < GTD_MAX_MS:
            return _invalid("goodTillDate must be more than 600 s ahead in whole seconds (and before year 10000)")
    elif request.good_till_ms:
        return _invalid("goodTillDate is for GTD orders only")
    return None


def _invalid(message: str) -> Rejection:
    return Rejection(RejectCode.INVALID_REQUEST, message)


def amend_adds_exposure(order: Order, qty_steps: int, price_ticks: int) -> bool:
    """Could these terms take more risk than the order's current ones? A larger quantity, or a price
    more aggressive (higher to buy, lower to sell: it may make a resting order marketable). A reduce-only
    order never adds exposure (the venue clamps it to the position)."""
    if order.reduce_only:
        return False
    if qty_steps > order.qty_steps:
        return True
    old = order.price_ticks
    if old is None:
        return True
    return price_ticks > old if order.side is Side.BUY else price_ticks < old


def check_amend_shape(order: Order | None, request: AmendRequest) -> Rejection | None:
    if not request.request_id:
        return _invalid("request_id is required (it makes retries safe)")
    if order is None or order.symbol != request.symbol:
        return Rejection(RejectCode.UNKNOWN_ORDER, "unknown order")
    if order.order_type is not OrderType.LIMIT or order.is_algo or order.price_match is not PriceMatch.NONE:
        return _invalid(f"only LIMIT orders can be amended (this one is {order.order_type.value})")
    if order.status not in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED):
        return Rejection(RejectCode.NOT_CANCELABLE, f"order is {order.status.value}: it cannot be amended now")
    if request.qty_steps <= order.filled_steps:
        return _invalid("the amended quantity must be above what has filled")
    return None


def working_margin(exposure: ExposureLedger, instruments: Mapping[str, Instrument], marks: Mapping[str, int],
                   leverage: int) -> int:
    """Initial margin (money units) the working, not yet filled, orders will need: the venue's balance does
    not show orders it has not seen yet."""
    total = 0
    for symbol, book in exposure.symbols.items():
        price = book.highest_price(marks.get(symbol))
        if price is None:
            continue
        qty = book.pending(Side.BUY) + book.pending(Side.SELL)
        total += instruments[symbol].notional(price, qty) // max(1, leverage)
    return total


class DailyPnl:
    """Realized - fees + unrealized since 00:00 UTC (money units), for the daily-loss limit: the total at
    the first look of a UTC day is that day's zero."""

    def __init__(self) -> None:
        self.day_start_ns = 0
        self.day_start_pnl = 0

    def since_day_start(self, now_ns: int, positions: Mapping[str, Position], marks: Mapping[str, int]) -> int:
        total = 0
        for symbol, pos in positions.items():
            total += pos.realized_pnl - pos.fees_paid
            mark = marks.get(symbol)
            if mark is not None and pos.qty_steps:
                total += pos.unrealized_pnl(mark)
        day = utc_day_start_ns(now_ns)
        if day != self.day_start_ns:
            self.day_start_ns, self.day_start_pnl = day, total
        return total - self.day_start_pnl


class OrderRates:
    """Our own orders-per-second limit and the venue's order-count windows (Binance USD-M: 300 per 10 s,
    1,200 per minute, kept at 90 %): a -1015 there refuses every new order for a while, the flatten's
    included. A token is taken only by an order that passed every other check."""

    def __init__(self, clock: Clock, config: ExecutionConfig) -> None:
        self.config = config
        self.per_second = SlidingWindowLimit(clock, config.limits.max_orders_per_second)
        self.venue_windows = (SlidingWindowLimit(clock, config.venue_orders_per_10s, 10.0),
                              SlidingWindowLimit(clock, config.venue_orders_per_minute, 60.0))

    def acquire(self) -> Rejection | None:
        if not self.per_second.try_acquire():
            return Rejection(RejectCode.RATE_LIMIT, f"more than {self.config.limits.max_orders_per_second} "
                                                    f"orders per second")
        # Room in every window first, then a token from each (a list, not a generator: every window takes
        # its token, none is skipped by short-circuiting); a refusal takes none.
        if not (all(w.has_room() for w in self.venue_windows)
                and all([w.try_acquire() for w in self.venue_windows])):  # noqa: C419
            return Rejection(RejectCode.RATE_LIMIT, f"the venue's order limits ({self.config.venue_orders_per_10s} "
                                                    f"per 10 s, {self.config.venue_orders_per_minute} per minute, "
                                                    f"90 % of the venue's) are reached")
        return None


BATCH_ORDER_COUNT_10S = 5
"""The venue counts a batchOrders request as 5 on its 10-second order window, whatever its size."""


def batch_surcharge(rates: OrderRates, elements: int) -> Rejection | None:
    """Before a batch: the venue's 10 s window takes 5 for it, and each element takes one of those when it
    is reserved, so the rest is taken now; a window without room for all 5 refuses the batch whole."""
    extra = BATCH_ORDER_COUNT_10S - elements
    window = rates.venue_windows[0]
    if window.room() < max(elements, BATCH_ORDER_COUNT_10S):
        return Rejection(RejectCode.RATE_LIMIT, f"the venue's 10 s order window has no room for a batch (it counts "
                                                f"{BATCH_ORDER_COUNT_10S})")
    for _ in range(max(0, extra)):
        window.try_acquire()
    return None


class PreTradeChecks:
    """The whole pre-trade check, in its fixed order (the first refusal wins, and a rate token is spent
    only when everything before it passed). Holds references to the engine's live state (positions,
    marks, the exposure ledger, the breaker); the gate flags and the balance are passed per call."""

    def __init__(self, config: ExecutionConfig, instruments: Mapping[str, Instrument], clock: Clock,
                 positions: Mapping[str, Position], marks: Mapping[str, int], exposure: ExposureLedger,
                 breaker: CircuitBreaker, rates: OrderRates) -> None:
        self.config = config
        self.instruments = instruments
        self.clock = clock
        self.positions = positions
        self.marks = marks
        self.exposure = exposure
        self.breaker = breaker
        self.rates = rates
        self.daily = DailyPnl()

    def check(self, request: OrderRequest, flatten: bool, mode: Mode, halted: bool, halt_reason: str,
              draining: bool, available_balance: int | None) -> Rejection | None:
        rejection = gate(request, flatten, mode, halted, halt_reason, draining)
        if rejection is not None:
            return rejection
        ins = self.instruments.get(request.symbol)
        if ins is None:
            return Rejection(RejectCode.UNKNOWN_SYMBOL, f"unknown symbol {request.symbol}")
        rejection = check_shape(request, flatten) or check_surface(request, self.clock.now_ns() // 1_000_000)
        if rejection is not None:
            return rejection
        if request.close_position:
            # Closes whatever the position is when it triggers: it is reducing, and sized by it for our books.
            position = self.positions[request.symbol]
            if position.qty_steps == 0 or (position.qty_steps > 0) == (request.side is Side.BUY):
                return Rejection(RejectCode.FILTER, "closePosition order would not reduce the position", -2022)
            return None if flatten else self.rates.acquire()
        if self.breaker.is_open:
            return Rejection(RejectCode.CIRCUIT_OPEN, "circuit breaker open: the venue is failing")
        mark = self.marks.get(request.symbol)
        violation = check_order(ins, side=request.side, order_type=request.order_type, qty_steps=request.qty_steps,
                                price_ticks=request.price_ticks, mark_price_ticks=mark,
                                reduce_only=request.reduce_only)
        if violation is not None:
            return Rejection(RejectCode.FILTER, violation.message, violation.code)
        position = self.positions[request.symbol]
        if request.reduce_only:
            if flatten:
                pass  # sized from the venue's own position just now; the venue enforces reduce-only
            elif position.qty_steps == 0 or (position.qty_steps > 0) == (request.side is Side.BUY):
                return Rejection(RejectCode.FILTER, "reduce-only order would not reduce the position", -2022)
        else:
            rejection = self._limits(request, ins, request.price_ticks or mark, available_balance)
            if rejection is not None:
                return rejection
        if flatten:
            return None  # the flatten must get out whatever the rates say; the venue has the last word
        return self.rates.acquire()

    def _limits(self, request: OrderRequest, ins: Instrument, reference: int | None,
                available_balance: int | None) -> Rejection | None:
        """Exposure, position and daily-loss limits with working orders counted, then the margin."""
        limits = self.config.exposure_limits()
        breach = self.exposure_view().check(request.symbol, request.side, request.qty_steps, request.price_ticks,
                                            False, self.marks, limits,
                                            self.day_pnl() if limits.max_daily_loss else 0)
        if breach is not None:
            code = RejectCode.POSITION_LIMIT if breach.code is BreachCode.POSITION_LIMIT else RejectCode.EXPOSURE_LIMIT
            return Rejection(code, f"{breach.code.value}: {breach.message}")
        if reference is not None and available_balance is not None:
            leverage = self.config.limits.leverage
            margin = ins.notional(reference, request.qty_steps) // max(1, leverage)
            if margin > available_balance - working_margin(self.exposure, self.instruments, self.marks, leverage):
                return Rejection(RejectCode.INSUFFICIENT_MARGIN, "available margin is insufficient "
                                 "(working orders included)", -2019)
        return None

    def check_amend(self, order: Order, request: AmendRequest, mode: Mode, halted: bool, halt_reason: str,
                    draining: bool, available_balance: int | None) -> Rejection | None:
        """An amendment is an order: one that can add exposure passes every check a new order passes
        (the gate, the breaker, the filters, the limits with the order valued at its new terms and every
        other working order counted, the margin, the rates). One that only reduces passes a halt (getting
        smaller must stay possible) but still the filters and the rates (the venue counts it as an order)."""
        ins = self.instruments[order.symbol]
        adds = amend_adds_exposure(order, request.qty_steps, request.price_ticks)
        as_new = OrderRequest(request.request_id, order.symbol, order.side, OrderType.LIMIT, request.qty_steps,
                              request.price_ticks, order.time_in_force, order.reduce_only, None, order.strategy_id)
        if adds:
            rejection = gate(as_new, False, mode, halted, halt_reason, draining)
            if rejection is not None:
                return rejection
            if self.breaker.is_open:
                return Rejection(RejectCode.CIRCUIT_OPEN, "circuit breaker open: the venue is failing")
        violation = check_order(ins, side=order.side, order_type=OrderType.LIMIT, qty_steps=request.qty_steps,
                                price_ticks=request.price_ticks, mark_price_ticks=self.marks.get(order.symbol),
                                reduce_only=order.reduce_only)
        if violation is not None:
            return Rejection(RejectCode.FILTER, violation.message, violation.code)
        if adds:
            # The order at its new terms, as if new: it leaves the ledger for the check and comes back.
            book = self.exposure_view().symbols[order.symbol]
            saved = book.drop(order.client_order_id)
            try:
                remaining = dataclasses.replace(as_new, qty_steps=request.qty_steps - order.filled_steps)
                rejection = self._limits(remaining, ins, request.price_ticks, available_balance)
            finally:
                if saved is not None:
                    book.put(order.client_order_id, saved)
            if rejection is not None:
                return rejection
        return self.rates.acquire()

    def exposure_view(self) -> ExposureLedger:
        """The ledger, kept in step with the order table (the engine syncs it at every change of an order)
        and the positions (read now)."""
        for symbol, book in self.exposure.symbols.items():
            book.position_steps = self.positions[symbol].qty_steps
        return self.exposure

    def day_pnl(self) -> int:
        return self.daily.since_day_start(self.clock.now_ns(), self.positions, self.marks)
