"""The paper venue's order surface beyond place and cancel: amendments, batches and algo (conditional)
orders with their triggers, answered as the live venue answers them.

A mixin of PaperVenue (paper.py). Amendments change the venue's own terms of a resting LIMIT order (it
loses its queue place; a price that crosses trades at once, a post-only one that would is refused with
-5022 and cancels the order, as a new quantity at or below a partial fill does), as PUT /fapi/v1/order does,
with an AMENDMENT event. Batches answer element by element. Algo
orders wait apart from the book: STOP / TAKE_PROFIT (and their _MARKET forms) trigger on the last trade
price (CONTRACT_PRICE) or, for MARK_PRICE, on the book's mid (the paper venue sees no mark stream: the
nearest it has); trailing stops activate at their activation price (or at once) and trigger when the
price comes back by the callback rate from its best since. A trigger places the actual order in the
book under the same client id and says so with a TRIGGERED event carrying the new order id.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celeris.domain.instruments import OrderType, PriceMatch, TimeInForce, WorkingType
from celeris.domain.messages import (
    BatchResult,
    Execution,
    VenueOrderEvent,
    VenueOrderState,
)
from celeris.domain.orders import Order
from celeris.domain.values import Side
from celeris.execution.paper_timing import never_arrived
from celeris.venues.binance import errors

if TYPE_CHECKING:
    from celeris.execution.paper import PaperVenue

BPS = 10_000
_OPEN = ("NEW", "PARTIALLY_FILLED")
_MATCH_LEVEL = {PriceMatch.OPPONENT: (True, 1), PriceMatch.OPPONENT_5: (True, 5), PriceMatch.OPPONENT_10: (True, 10),
                PriceMatch.OPPONENT_20: (True, 20), PriceMatch.QUEUE: (False, 1), PriceMatch.QUEUE_5: (False, 5),
                PriceMatch.QUEUE_10: (False, 10), PriceMatch.QUEUE_20: (False, 20)}
"""priceMatch -> (the opposite side of the book?, which level): OPPONENT_5 is the 5th best opposite price."""


@dataclass
class PaperAlgo:
    order: Order
    algo_id: int
    status: str = "NEW"
    activated: bool = False
    extreme: int | None = None
    """A trailing stop's best price since activation (highest for a sell, lowest for a buy)."""


class PaperOrderSurface:
    algo: dict[str, PaperAlgo]

    def init_surface(self) -> None:
        self.algo = {}
        self.last_price: dict[str, int] = {}
        self._algo_ids = itertools.count(1_000_000_001)

    # -- amendments -----------------------------------------------------------------------------
    async def amend(self: PaperVenue, order: Order, qty_steps: int, price_ticks: int) -> VenueOrderState:
        return await self._request(lambda: self.amend_now(order, qty_steps, price_ticks))

    def amend_now(self: PaperVenue, order: Order, qty_steps: int, price_ticks: int) -> VenueOrderState:
        resting = self.orders.get(order.client_order_id)
        if resting is None or resting.status not in _OPEN:
            raise errors.UnknownOrder(-2013, "Order does not exist.")
        if resting.order.order_type is not OrderType.LIMIT:
            raise errors.OrderRejected(-5025, "Only limit order is supported.")
        if (qty_steps, price_ticks) == (resting.qty, resting.price):
            raise errors.OrderRejected(-5027, "No need to modify the order.")
        if resting.filled and qty_steps <= resting.filled:
            self._cancelled_by_amendment(resting)  # as the venue does
            raise errors.OrderRejected(-1102, "Parameter 'quantity' must be more than the order's filled quantity.")
        book = self.books[order.symbol]
        buy = order.side is Side.BUY
        crossed = book.asks_through(price_ticks) if buy else book.bids_through(price_ticks)
        crosses = bool(crossed)
        if crosses and order.time_in_force is TimeInForce.GTX:
            self._cancelled_by_amendment(resting)
            raise errors.OrderRejected(-5022, "Due to the order could not be executed as maker, the Post Only order "
                                              "will be rejected.")
        resting.qty, resting.price = qty_steps, price_ticks
        resting.queue_ahead = book.qty_at(buy, price_ticks)  # an amended order joins the back of the queue
        resting.traded = 0
        self._emit(resting, Execution.AMENDMENT)
        self.take_liquidity(resting, crossed, resting.remaining)
        return VenueOrderState(order.client_order_id, resting.venue_order_id, resting.status, resting.filled,
                               resting.qty, resting.price)

    def _cancelled_by_amendment(self: PaperVenue, resting: Any) -> None:
        """Binance: "the order will be cancelled by the amendment" when it is partially filled and the new
        quantity is not above its fill, or post-only and the new price would trade at once."""
        resting.status = "CANCELED"
        self._emit(resting, Execution.CANCELED)

    def matched_price(self: PaperVenue, order: Order) -> int:
        """A priceMatch order's limit price from the book now; an empty side refuses it, as the venue does."""
        opposite, level = _MATCH_LEVEL[order.price_match]
        book = self.books[order.symbol]
        side_is_bid = (order.side is Side.SELL) if opposite else (order.side is Side.BUY)
        levels = book.bids() if side_is_bid else book.asks()
        if not levels:
            raise errors.OrderRejected(-5041, "No depth matches this BBO order")  # Binance's BBO_ORDER_REJECT
        return levels[min(level, len(levels)) - 1][0]

    def expire_gtd(self: PaperVenue, symbol: str) -> None:
        """GTD orders (resting and algo) end at their goodTillDate, on the venue's clock; the venue keeps whole
        seconds of the date, so the milliseconds sent do not delay it."""
        now_ms = self.now_ns() // 1_000_000
        for resting in self._open(symbol):
            o = resting.order
            if o.good_till_ms and now_ms >= _kept(o.good_till_ms) and resting.status in _OPEN:
                resting.status = "EXPIRED"
                self._emit(resting, Execution.EXPIRED)
        for algo in list(self.algo.values()):
            o = algo.order
            if o.symbol == symbol and o.good_till_ms and now_ms >= _kept(o.good_till_ms) and algo.status == "NEW":
                algo.status = "EXPIRED"
                self._algo_emit(algo, Execution.EXPIRED)

    # -- batches --------------------------------------------------------------------------------
    async def place_batch(self: PaperVenue, orders: list[Order]) -> list[BatchResult]:
        # one request: one latency
        return await self._request(
            lambda: [_each(lambda o=o: self.place_algo(o) if o.is_algo else self.place_now(o)) for o in orders],
            lambda: [BatchResult(VenueOrderState(o.client_order_id, 0, "CANCELED", 0)) for o in orders])

    async def amend_batch(self: PaperVenue, amendments: list[tuple[Order, int, int]]) -> list[BatchResult]:
        return await self._request(
            lambda: [_each(lambda a=a: self.amend_now(*a)) for a in amendments],
            lambda: [_each(never_arrived) for _ in amendments])

    async def cancel_batch(self: PaperVenue, symbol: str, client_order_ids: list[str]) -> list[BatchResult]:
        return await self._request(
            lambda: [_each(lambda c=c: self.cancel_now(c)) for c in client_order_ids], None)

    def cancel_now(self: PaperVenue, client_order_id: str) -> VenueOrderState:
        resting = self.orders.get(client_order_id)
        if resting is None or resting.status not in _OPEN:
            raise errors.UnknownOrder(-2011, "Unknown order sent.")
        resting.status = "CANCELED"
        self._emit(resting, Execution.CANCELED)
        return VenueOrderState(client_order_id, resting.venue_order_id, "CANCELED", resting.filled)

    # -- algo orders ----------------------------------------------------------------------------
    def place_algo(self: PaperVenue, order: Order) -> VenueOrderState:
        if order.client_order_id in self.algo and self.algo[order.client_order_id].status == "NEW":
            raise errors.OrderRejected(-4116, "ClientOrderId is duplicated.")
        if not self.live[order.symbol]:
            raise errors.OrderRejected(-4131, f"paper venue: no live book for {order.symbol}")
        algo = PaperAlgo(order, next(self._algo_ids))
        if order.order_type is not OrderType.TRAILING_STOP_MARKET and self._reached(algo, self._reference(algo)):
            raise errors.OrderRejected(-2021, "Order would immediately trigger.")
        self.algo[order.client_order_id] = algo
        self._algo_emit(algo, Execution.NEW)
        self.check_triggers(order.symbol, None)  # a trailing stop without activation price starts now
        return VenueOrderState(order.client_order_id, 0, "NEW", 0, order.qty_steps, order.price_ticks,
                               algo_id=algo.algo_id)

    async def cancel_algo(self: PaperVenue, symbol: str, client_order_id: str) -> VenueOrderState:
        return await self._request(lambda: self.cancel_algo_now(client_order_id), None)

    def cancel_algo_now(self: PaperVenue, client_order_id: str) -> VenueOrderState:
        algo = self.algo.get(client_order_id)
        if algo is None or algo.status != "NEW":
            raise errors.UnknownOrder(-2011, "Unknown order sent.")
        algo.status = "CANCELED"
        self._algo_emit(algo, Execution.CANCELED)
        return VenueOrderState(client_order_id, 0, "CANCELED", 0, algo_id=algo.algo_id)

    async def query_algo(self: PaperVenue, symbol: str, client_order_id: str) -> VenueOrderState | None:
        algo = self.algo.get(client_order_id)
        if algo is None:
            return None
        status = {"TRIGGERED": "NEW"}.get(algo.status, algo.status)
        return VenueOrderState(client_order_id, 0, status, 0, algo.order.qty_steps, algo.order.price_ticks,
                               algo_id=algo.algo_id)

    def open_algo_events(self: PaperVenue) -> list[VenueOrderEvent]:
        return [self._algo_event(a, Execution.NEW) for a in self.algo.values() if a.status == "NEW"]

    def check_triggers(self: PaperVenue, symbol: str, last_price: int | None) -> None:
        """On every trade (the last price) and book change (the mid): fire what the market reached."""
        if last_price is not None:
            self.last_price[symbol] = last_price
        self.expire_gtd(symbol)
        for algo in list(self.algo.values()):
            if algo.status != "NEW" or algo.order.symbol != symbol:
                continue
            reference = self._reference(algo)
            if reference is None:
                continue
            if algo.order.order_type is OrderType.TRAILING_STOP_MARKET:
                fired = self._trail(algo, reference)
            else:
                fired = self._reached(algo, reference)
            if fired:
                self._trigger(algo)

    def _reference(self: PaperVenue, algo: PaperAlgo) -> int | None:
        symbol = algo.order.symbol
        if algo.order.working_type is WorkingType.MARK_PRICE:
            mid = self.books[symbol].mid()
            return None if mid is None else int(mid)
        return self.last_price.get(symbol)

    @staticmethod
    def _reached(algo: PaperAlgo, reference: int | None) -> bool:
        order, stop = algo.order, algo.order.stop_price_ticks
        if reference is None or stop is None:
            return False
        rising = order.order_type in (OrderType.STOP, OrderType.STOP_MARKET)  # a buy stop fires on the way up
        if order.side is Side.BUY:
            return reference >= stop if rising else reference <= stop
        return reference <= stop if rising else reference >= stop

    @staticmethod
    def _trail(algo: PaperAlgo, reference: int) -> bool:
        order = algo.order
        sell = order.side is Side.SELL
        if not algo.activated:
            activation = order.activation_price_ticks
            if activation is not None and (reference < activation if sell else reference > activation):
                return False
            algo.activated, algo.extreme = True, reference
        assert algo.extreme is not None and order.callback_rate_bps is not None
        algo.extreme = max(algo.extreme, reference) if sell else min(algo.extreme, reference)
        rate = order.callback_rate_bps
        if sell:
            return reference * BPS <= algo.extreme * (BPS - rate)
        return reference * BPS >= algo.extreme * (BPS + rate)

    def _trigger(self: PaperVenue, algo: PaperAlgo) -> None:
        order = algo.order
        algo.status = "TRIGGERED"
        venue_id = next(self._ids)
        self._algo_emit(algo, Execution.TRIGGERED, venue_id)
        qty: int | None = None
        reduce_only = order.reduce_only or order.close_position
        if order.close_position:
            qty = abs(self.account_positions[order.symbol].qty_steps) or order.qty_steps
        try:
            self.place_now(order, qty=qty, reduce_only=reduce_only, venue_id=venue_id)
        except errors.VenueError:
            algo.status = "REJECTED"  # the matching engine refused the actual order (reduce-only, no book)
            self._algo_emit(algo, Execution.REJECTED)
            return
        algo.status = "FINISHED" if self.orders[order.client_order_id].status not in _OPEN else "TRIGGERED"

    def _algo_event(self: PaperVenue, algo: PaperAlgo, execution: Execution, venue_id: int = 0) -> VenueOrderEvent:
        order = algo.order
        return VenueOrderEvent(order.symbol, order.client_order_id, venue_id, execution, order.side,
                               ts_event_ns=self.now_ns(), order_type=order.order_type.value,
                               orig_qty_steps=order.qty_steps, price_ticks=order.price_ticks or 0,
                               reduce_only=order.reduce_only, order_status=algo.status, algo_id=algo.algo_id)

    def _algo_emit(self: PaperVenue, algo: PaperAlgo, execution: Execution, venue_id: int = 0) -> None:
        self._deliver(self._algo_event(algo, execution, venue_id))


def _each(call: Any) -> BatchResult:
    try:
        return BatchResult(state=call())
    except errors.VenueError as exc:
        return BatchResult(error=exc)


def _kept(good_till_ms: int) -> int:
    """goodTillDate as the venue keeps it: whole seconds."""
    return good_till_ms // 1000 * 1000
