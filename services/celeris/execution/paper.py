"""The paper venue of simulation mode: orders filled against live books, as close to live as possible.

Owns a local copy of each book (from market data's book updates) and the client's resting orders, and
fills them the way the venue would: marketable orders walk the visible levels as taker (so size moves the
price), resting limit orders join the queue behind the quantity already at their price and fill only as
trades eat through it, or all at once when the market trades through their price; a latency model delays
placements and cancels; maker/taker fees; partial fills; GTX/FOK/IOC and reduce-only as on the venue;
funding at each funding time of the mark price stream, on the event clock (execution/paper_funding.py). It
reports the same VenueOrderEvents as the live user stream, so the engine cannot tell them apart.
Amendments, batches and conditional (algo) orders with their triggers are in paper_surface.py.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Awaitable, Callable

from celeris.domain.book import BookState, OrderBook
from celeris.domain.clock import Clock
from celeris.domain.instruments import Instrument, OrderType, PriceMatch, TimeInForce
from celeris.domain.orders import Order
from celeris.domain.positions import Position, fee
from celeris.domain.values import MONEY_SCALE, Side
from celeris.domain.messages import Execution, VenueOrderEvent, VenueOrderState
from celeris.domain.messages import BookUpdate, TradeUpdate
from celeris.execution.paper_surface import PaperOrderSurface
from celeris.execution.paper_funding import PaperFunding
from celeris.venues.binance import errors

OnEvent = Callable[[VenueOrderEvent], None]


@dataclass
class _Resting:
    order: Order
    venue_order_id: int
    queue_ahead: int
    filled: int = 0
    status: str = "NEW"
    qty: int = 0
    """The venue's own terms (an amendment changes them before the engine hears of it)."""
    price: int | None = None
    reducing: bool | None = None
    """Reduce-only at the venue (a triggered closePosition order is, without saying so on its record)."""

    def __post_init__(self) -> None:
        self.qty = self.qty or self.order.qty_steps
        self.price = self.price if self.price is not None else self.order.price_ticks
        if self.reducing is None:
            self.reducing = self.order.reduce_only

    @property
    def remaining(self) -> int:
        return self.qty - self.filled


class PaperVenue(PaperOrderSurface, PaperFunding):
    name = "paper"

    def __init__(self, instruments: dict[str, Instrument], clock: Clock, *, latency_ms: float = 5.0,
                 maker_fee: Fraction = Fraction(2, 10_000), taker_fee: Fraction = Fraction(4, 10_000),
                 wallet_usdt: int = 100_000, leverage: int = 20,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.instruments = instruments
        self.clock = clock
        self.latency_s = latency_ms / 1000
        self.maker_fee, self.taker_fee = maker_fee, taker_fee
        self.books = {s: OrderBook(s) for s in instruments}
        self.live = {s: False for s in instruments}
        self.orders: dict[str, _Resting] = {}
        self.account_positions = {s: Position(ins) for s, ins in instruments.items()}
        self.wallet = wallet_usdt * 10**MONEY_SCALE
        self.leverage = leverage
        self.fills: list[VenueOrderEvent] = []
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._on_event: OnEvent | None = None
        self.observers: list[OnEvent] = []
        """Also told of every fill (the paper account's user-data events)."""
        self._sleep = sleep
        self.init_surface()
        self._init_funding()

    # -- market data in -------------------------------------------------------------------------
    def on_book(self, update: BookUpdate) -> None:
        book = self.books.get(update.symbol)
        if book is None:
            return
        self.settle_funding_due(update.symbol, update.ts_event_ns)
        if update.state is not BookState.LIVE:
            self.live[update.symbol] = False
            return
        if update.snapshot:
            book.apply_snapshot(update.bids, update.asks, update.update_id)
        else:
            book.apply_diff(update.bids, update.asks, update.update_id)
        self.live[update.symbol] = True
        self._fill_crossed(update.symbol)
        self.check_triggers(update.symbol, None)

    def on_trade(self, trade: TradeUpdate) -> None:
        self.settle_funding_due(trade.symbol, trade.ts_event_ns)
        # buyer is maker -> a seller took liquidity: it hits resting bids (ours among them).
        hits_bids = trade.buyer_is_maker
        for resting in list(self.orders.values()):
            order = resting.order
            if order.symbol != trade.symbol or resting.status not in ("NEW", "PARTIALLY_FILLED"):
                continue
            if (order.side is Side.BUY) != hits_bids or resting.price is None:
                continue
            price = resting.price
            through = trade.price_ticks < price if hits_bids else trade.price_ticks > price
            if through:
                self._fill(resting, price, resting.remaining, maker=True)
            elif trade.price_ticks == price:
                resting.queue_ahead -= trade.qty_steps
                if resting.queue_ahead < 0:
                    self._fill(resting, price, min(resting.remaining, -resting.queue_ahead), maker=True)
                    resting.queue_ahead = 0
        self.check_triggers(trade.symbol, trade.price_ticks)

    def _fill_crossed(self, symbol: str) -> None:
        book = self.books[symbol]
        bid, ask = book.best_bid(), book.best_ask()
        for resting in list(self.orders.values()):
            order = resting.order
            if order.symbol != symbol or resting.status not in ("NEW", "PARTIALLY_FILLED"):
                continue
            if resting.price is None:
                continue
            if order.side is Side.BUY and ask is not None and ask[0] <= resting.price:
                self._fill(resting, resting.price, resting.remaining, maker=True)
            elif order.side is Side.SELL and bid is not None and bid[0] >= resting.price:
                self._fill(resting, resting.price, resting.remaining, maker=True)

    # -- the OrderVenue port --------------------------------------------------------------------
    async def start(self, on_event: OnEvent, on_reconnect: Callable[[], Awaitable[None]]) -> None:
        self._on_event = on_event

    async def stop(self) -> None:
        self._on_event = None

    async def place(self, order: Order, on_write: Callable[[int], None] | None = None) -> VenueOrderState:
        if on_write is not None:
            # the paper venue's "socket": the order is out of our hands here, on the injected clock (a backtest
            # on the event clock must not read the wall clock)
            on_write(self.clock.now_ns())
        if self.latency_s:
            await self._sleep(self.latency_s)
        if order.is_algo:
            return self.place_algo(order)
        return self.place_now(order)

    def place_now(self, order: Order, qty: int | None = None, price: int | None = None,
                  reduce_only: bool | None = None, venue_id: int | None = None) -> VenueOrderState:
        """A plain order arrives at the matching engine (a triggered algo order passes its own terms)."""
        price = order.price_ticks if price is None else price
        if price is None and order.price_match is not PriceMatch.NONE:
            price = self.matched_price(order)  # the venue prices it from the book at arrival
        reduce_only = order.reduce_only if reduce_only is None else reduce_only
        if any(r.order.client_order_id == order.client_order_id and r.status in ("NEW", "PARTIALLY_FILLED")
               for r in self.orders.values()):
            raise errors.OrderRejected(-4116, "ClientOrderId is duplicated.")
        if not self.live[order.symbol]:
            raise errors.OrderRejected(-4131, f"paper venue: no live book for {order.symbol}")
        book = self.books[order.symbol]
        qty = order.qty_steps if qty is None else qty
        order_qty = qty
        if reduce_only:
            pos = self.account_positions[order.symbol].qty_steps
            if pos == 0 or (pos > 0) == (order.side is Side.BUY):
                raise errors.OrderRejected(-2022, "ReduceOnly Order is rejected.")
            qty = min(qty, abs(pos))  # what it may take now; the rest rests, clamped as it fills
        levels = book.asks() if order.side is Side.BUY else book.bids()
        limit = price
        marketable = [(p, q) for p, q in levels
                      if limit is None or (p <= limit if order.side is Side.BUY else p >= limit)]
        available = sum(q for _, q in marketable)
        kind = OrderType.MARKET if price is None else OrderType.LIMIT  # what reaches the book
        if order.time_in_force is TimeInForce.GTX and kind is OrderType.LIMIT and marketable:
            raise errors.OrderRejected(-5022, "Due to the order could not be executed as maker, the Post Only "
                                              "order will be rejected.")
        if order.time_in_force is TimeInForce.FOK and kind is OrderType.LIMIT and available < qty:
            raise errors.OrderRejected(-5021, "Due to the order could not be filled immediately, the FOK order "
                                              "has been rejected.")
        if kind is OrderType.MARKET and not marketable:
            raise errors.OrderRejected(-4131, "The counterparty's best price does not meet the PERCENT_PRICE "
                                              "filter limit.")
        venue_id = venue_id or next(self._ids)
        queue = book.qty_at(order.side is Side.BUY, limit) if limit is not None else 0
        resting = _Resting(order, venue_id, queue, qty=order_qty, price=limit, reducing=reduce_only)
        self.orders[order.client_order_id] = resting
        self._emit(resting, Execution.NEW)
        take = min(qty, available)
        for price, level_qty in marketable:
            if take <= 0:
                break
            now_qty = min(level_qty, take)
            self._fill(resting, price, now_qty, maker=False)
            take -= now_qty
        if resting.remaining and resting.status in ("NEW", "PARTIALLY_FILLED") and (
                kind is OrderType.MARKET or order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK)):
            resting.status = "EXPIRED"
            self._emit(resting, Execution.EXPIRED)
        # A reduce-only GTC larger than the position rests, clamped to it at fill time (as the venue does).
        return VenueOrderState(order.client_order_id, venue_id, resting.status, resting.filled)

    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrderState:
        if self.latency_s:
            await self._sleep(self.latency_s)
        return self.cancel_now(client_order_id)

    async def query(self, symbol: str, client_order_id: str) -> VenueOrderState | None:
        resting = self.orders.get(client_order_id)
        if resting is None:
            return None
        return VenueOrderState(client_order_id, resting.venue_order_id, resting.status, resting.filled)

    async def open_orders(self) -> list[VenueOrderEvent]:
        return [self._event(r, Execution.NEW) for r in self.orders.values()
                if r.status in ("NEW", "PARTIALLY_FILLED")] + self.open_algo_events()

    async def trades(self, symbol: str) -> list[VenueOrderEvent]:
        return [f for f in self.fills if f.symbol == symbol]

    async def available_balance(self) -> int | None:
        used = 0
        upnl = 0
        for symbol, pos in self.account_positions.items():
            mid = self.books[symbol].mid()
            if pos.qty_steps and mid is not None:
                mark = int(mid)
                upnl += pos.unrealized_pnl(mark)
                used += pos.notional(mark) // self.leverage
        return self.wallet + upnl - used

    async def positions(self) -> dict[str, tuple[int, Fraction]]:
        return {s: (p.qty_steps, p.cost / abs(p.qty_steps) if p.qty_steps else Fraction(0))
                for s, p in self.account_positions.items()}

    # -- internals ------------------------------------------------------------------------------
    def _status_after_fill(self, resting: _Resting) -> str:
        """As the venue reports it: a reduce-only order that has filled the whole position is FILLED."""
        if resting.reducing and resting.remaining and self._reduce_only_room(resting) == 0:
            resting.status = "FILLED"
        return resting.status

    def _reduce_only_room(self, resting: _Resting) -> int:
        """How much a reduce-only order may still fill: what is left of the position it reduces."""
        pos = self.account_positions[resting.order.symbol].qty_steps
        return abs(pos) if pos and (pos > 0) != (resting.order.side is Side.BUY) else 0

    def _clamp_reduce_only(self, symbol: str) -> None:
        """A working reduce-only order expires once the position it reduces is gone."""
        for resting in list(self.orders.values()):
            if resting.order.symbol == symbol and resting.reducing and \
                    resting.status in ("NEW", "PARTIALLY_FILLED") and self._reduce_only_room(resting) == 0:
                resting.status = "EXPIRED"
                self._emit(resting, Execution.EXPIRED)

    def _fill(self, resting: _Resting, price: int, qty: int, maker: bool) -> None:
        if resting.reducing:
            qty = min(qty, self._reduce_only_room(resting))  # clamped at fill time: it never flips
        if qty <= 0:
            if resting.reducing and resting.status in ("NEW", "PARTIALLY_FILLED"):
                resting.status = "EXPIRED"
                self._emit(resting, Execution.EXPIRED)
            return
        order = resting.order
        ins = self.instruments[order.symbol]
        commission = fee(ins, price, qty, self.maker_fee if maker else self.taker_fee)
        result = self.account_positions[order.symbol].apply_fill(order.side, qty, price, commission)
        self.wallet += result.realized_pnl - commission
        resting.filled += qty
        resting.status = "FILLED" if resting.remaining == 0 else "PARTIALLY_FILLED"
        event = VenueOrderEvent(order.symbol, order.client_order_id, resting.venue_order_id, Execution.TRADE,
                                order.side, qty, price, next(self._trade_ids), commission, maker,
                                result.realized_pnl, self.clock.now_ns(), order.order_type.value, resting.qty,
                                resting.price or 0, bool(resting.reducing), self._status_after_fill(resting))
        self.fills.append(event)
        if self._on_event:
            self._on_event(event)
        for observer in self.observers:
            observer(event)
        self._clamp_reduce_only(order.symbol)

    def _event(self, resting: _Resting, execution: Execution) -> VenueOrderEvent:
        order = resting.order
        return VenueOrderEvent(order.symbol, order.client_order_id, resting.venue_order_id, execution, order.side,
                               ts_event_ns=self.clock.now_ns(), order_type=order.order_type.value,
                               orig_qty_steps=resting.qty, price_ticks=resting.price or 0,
                               reduce_only=bool(resting.reducing))

    def _emit(self, resting: _Resting, execution: Execution) -> None:
        if self._on_event:
            self._on_event(self._event(resting, execution))
