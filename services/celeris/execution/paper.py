"""The paper venue of simulation mode and of backtests: orders filled against books as hftbacktest fills them.

Owns a local copy of each book (from market data's book updates) and the client's resting orders, and
fills them the way the venue would, in integer steps, deterministically on the event clock:
- marketable orders walk the visible levels as taker (so size moves the price) and use that liquidity up
  in the local copy: a second order right after gets the next levels, until a book update for a level
  replaces its quantity (hftbacktest does not deplete; we do, since the issue asked for it);
- resting limit orders join the queue behind the quantity at their price; the queue model (queue_models.py:
  risk_averse by default, power, log) moves them forward on trades and level decreases;
- a trade at our price fills what of it is left after the queue ahead (hftbacktest's PartialFillExchange);
  a trade strictly through our price fills at most the trade's quantity. Here we depart from
  hftbacktest, which fills the whole order on a trade through: our order is not in the real book, and the
  taker who printed 0.001 would have taken 0.001 from us, not our 3 BTC. One trade fills our orders
  together at most its quantity, best price first, then oldest;
- an order fills (at its price, as maker) when the book itself moves through it (the best ask at or below
  our bid), at most the quantity on the crossing levels (asks at or below our bid, bids at or above our
  ask), which it uses up as a taker's order would: the next order (ours, best price then oldest) gets
  what is left, and what is not filled keeps resting at the front of its queue. What it took stays taken
  while the feed shows it (our order is not in the real book, so the feed never takes it off): an update
  of such a level brings only what it shows beyond that. hftbacktest fills the whole order here; a 20 BTC
  quote crossed by a book that shows 7.5 BTC through it would take 20 at once;
- latency (latency_models.py: constant or interpolated from recorded latencies) on the event clock
  (paper_timing.py): a request reaches the venue after the entry latency and is matched against the book
  as it is then; answers and events reach the client after the response latency;
maker/taker fees; GTX/FOK/IOC and reduce-only as on the venue; the open-orders limit per symbol
(exchangeInfo's MAX_NUM_ORDERS, 200 on BTCUSDT: the next order is refused with -2025); funding at each
funding time of the mark price stream (paper_funding.py). It reports the same VenueOrderEvents as the live user stream, so the engine
cannot tell them apart. Amendments, batches and conditional (algo) orders are in paper_surface.py.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
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
from celeris.execution.paper_timing import PaperTiming
from celeris.execution import latency_models, queue_models
from celeris.venues.binance import errors

OnEvent = Callable[[VenueOrderEvent], None]


@dataclass
class _Resting:
    order: Order
    venue_order_id: int
    queue_ahead: int
    filled: int = 0
    traded: int = 0
    """Traded at our price since the level last changed (the probabilistic queue models subtract it)."""
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


class PaperVenue(PaperOrderSurface, PaperFunding, PaperTiming):
    name = "paper"

    def __init__(self, instruments: dict[str, Instrument], clock: Clock, *, latency_ms: float = 5.0,
                 maker_fee: Fraction = Fraction(2, 10_000), taker_fee: Fraction = Fraction(4, 10_000),
                 wallet_usdt: int = 100_000, leverage: int = 20,
                 sleep: Callable[[float], Awaitable[None]] | None = None,
                 queue_model: str = "risk_averse", seed: int = 0, latency_file: Path | None = None,
                 response_latency_ms: float | None = None) -> None:
        """`latency_ms`: order entry latency, and the response latency too unless `response_latency_ms`
        says otherwise (hftbacktest's ConstantLatency(L, L)); `latency_file`: recorded latencies
        (latency_models.load_latency_file), which replace both. `sleep`: None on the event clock (backtests);
        simulation mode passes asyncio.sleep so latency also passes on the wall. `queue_model`: a name of
        queue_models.build; `seed`: the probabilistic queue models' random.Random."""
        self.instruments = instruments
        self.clock = clock
        self.queue_model_name = queue_model
        self.seed = seed
        rng = random.Random(seed)
        self.queue_models = {s: queue_models.build(queue_model, rng=rng,
                                                   lot=ins.qty_grid.step_units / 10**ins.qty_grid.scale)
                             for s, ins in instruments.items()}
        if latency_file is not None:
            latency: latency_models.LatencyModel = latency_models.load_latency_file(latency_file)
        else:
            response_ms = latency_ms if response_latency_ms is None else response_latency_ms
            if latency_ms < 0 or response_ms < 0:
                raise ValueError("paper venue: a latency is negative")
            latency = latency_models.ConstantLatency(round(latency_ms * 1_000_000), round(response_ms * 1_000_000))
        self.maker_fee, self.taker_fee = maker_fee, taker_fee
        self.books = {s: OrderBook(s) for s in instruments}
        self.live = {s: False for s in instruments}
        self.orders: dict[str, _Resting] = {}
        self._crossed_used: dict[str, tuple[dict[int, int], dict[int, int]]] = {s: ({}, {}) for s in instruments}
        """Per symbol, (bids, asks): price -> what our crossed resting orders took of the level while the feed
        still shows it (our orders are not in the real book, so the feed does not take it off)."""
        self._working: dict[str, list[_Resting]] = {s: [] for s in instruments}
        """Per symbol, the orders that may still be open (closed ones are dropped as they are met), so the
        per-event work follows the working orders, not every order of the run."""
        self.account_positions = {s: Position(ins) for s, ins in instruments.items()}
        self.wallet = wallet_usdt * 10**MONEY_SCALE
        self.leverage = leverage
        self.fills: list[VenueOrderEvent] = []
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._on_event: OnEvent | None = None
        self.observers: list[OnEvent] = []
        """Also told of every fill (the paper account's user-data events)."""
        self._init_timing(latency, sleep)
        self.init_surface()
        self._init_funding()

    # -- market data in -------------------------------------------------------------------------
    def on_book(self, update: BookUpdate) -> None:
        book = self.books.get(update.symbol)
        if book is None:
            return
        self.advance_before_event()
        self.settle_funding_due(update.symbol, update.ts_event_ns)
        if update.state is not BookState.LIVE:
            self.live[update.symbol] = False
            return
        watched = [(r, book.qty_at(r.order.side is Side.BUY, r.price)) for r in self._open(update.symbol)
                   if r.price is not None]
        if update.snapshot:
            book.apply_snapshot(update.bids, update.asks, update.update_id)
        else:
            book.apply_diff(update.bids, update.asks, update.update_id)
        used_bids, used_asks = self._crossed_used[update.symbol]
        if used_bids or used_asks:
            self._keep_crossed_used(book, update, used_bids, used_asks)
        model = self.queue_models[update.symbol]
        for resting, prev_qty in watched:
            assert resting.price is not None
            new_qty = book.qty_at(resting.order.side is Side.BUY, resting.price)
            if new_qty != prev_qty:
                resting.queue_ahead = model.depth(resting.queue_ahead, resting.traded, prev_qty, new_qty)
                resting.traded = 0
        self.live[update.symbol] = True
        self._fill_crossed(update.symbol)
        self.check_triggers(update.symbol, None)

    def on_trade(self, trade: TradeUpdate) -> None:
        if trade.symbol not in self.books:
            return
        self.advance_before_event()
        self.settle_funding_due(trade.symbol, trade.ts_event_ns)
        # buyer is maker -> a seller took liquidity: it hits resting bids (ours among them).
        hits_bids = trade.buyer_is_maker
        price = trade.price_ticks
        hit = [r for r in self._open(trade.symbol) if (r.order.side is Side.BUY) == hits_bids
               and r.price is not None and (r.price >= price if hits_bids else r.price <= price)]
        # The taker meets our best-priced, then oldest order first; together they get at most its quantity.
        hit.sort(key=lambda r: (-(r.price or 0) if hits_bids else (r.price or 0), r.venue_order_id))
        left = trade.qty_steps
        for resting in hit:
            reaches = left
            if resting.price == price:  # the queue ahead moves whether or not anything is left for us
                resting.queue_ahead, reaches = queue_models.trade(resting.queue_ahead, trade.qty_steps)
                resting.traded += trade.qty_steps
            qty = min(reaches, left, resting.remaining)
            if qty > 0 and resting.status in ("NEW", "PARTIALLY_FILLED"):  # an earlier fill may have closed it
                before = resting.filled
                self._fill(resting, resting.price or 0, qty, maker=True)
                left -= resting.filled - before
        self.check_triggers(trade.symbol, trade.price_ticks)

    @staticmethod
    def _keep_crossed_used(book: OrderBook, update: BookUpdate, used_bids: dict[int, int],
                           used_asks: dict[int, int]) -> None:
        """A level our crossed orders took from is updated: only what the feed shows beyond what we took is
        there (a level that shrank below it has lost those we traded with, and counts from what it shows)."""
        for used, levels, is_bid in ((used_bids, update.bids, True), (used_asks, update.asks, False)):
            if not used:
                continue
            prices = list(used) if update.snapshot else [p for p, _ in levels if p in used]
            left: list[tuple[int, int]] = []
            for price in prices:
                shown = book.qty_at(is_bid, price)  # the feed's quantity: the update has just replaced it
                took = min(used[price], shown)
                if took:
                    used[price] = took
                    left.append((price, shown - took))
                else:
                    del used[price]
            if left:
                book.apply_diff(left if is_bid else [], [] if is_bid else left)

    def _open(self, symbol: str) -> list[_Resting]:
        working = self._working[symbol]
        open_now = [r for r in working if r.status in ("NEW", "PARTIALLY_FILLED")]
        if len(open_now) != len(working):
            working[:] = open_now
        return list(open_now)

    def _fill_crossed(self, symbol: str) -> None:
        """Resting orders the book has moved through (the best ask at or below our bid, the best bid at or
        above our ask) fill as maker at their price, each at most what the crossing levels show, which it
        uses up: best-priced order first, then oldest; what is not filled keeps resting at the front."""
        book = self.books[symbol]
        bid, ask = book.best_bid(), book.best_ask()
        crossed = [r for r in self._open(symbol) if r.price is not None and (
            (ask is not None and ask[0] <= r.price) if r.order.side is Side.BUY
            else (bid is not None and bid[0] >= r.price))]
        if not crossed:
            return
        if len(crossed) > 1:
            crossed.sort(key=lambda r: (r.order.side is Side.BUY, -(r.price or 0) if r.order.side is Side.BUY
                                        else (r.price or 0), r.venue_order_id))
        for resting in crossed:
            if resting.status not in ("NEW", "PARTIALLY_FILLED"):
                continue  # filled or expired by an earlier order's fill in this pass
            assert resting.price is not None
            buy = resting.order.side is Side.BUY
            levels = book.asks_through(resting.price) if buy else book.bids_through(resting.price)
            shown = sum(q for _, q in levels)
            if shown <= 0:
                continue  # an earlier order of ours used the crossing levels up
            before = resting.filled
            self._fill(resting, resting.price, min(resting.remaining, shown), maker=True)
            took = resting.filled - before
            resting.queue_ahead, resting.traded = 0, 0  # what was ahead of us traded with the crossing side
            taken = self._crossed_used[symbol][1 if buy else 0]
            left: list[tuple[int, int]] = []
            for price, qty in levels:
                if took <= 0:
                    break
                part = min(qty, took)
                left.append((price, qty - part))
                taken[price] = taken.get(price, 0) + part
                took -= part
            book.apply_diff([] if buy else left, left if buy else [])

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
        never_rested = lambda: VenueOrderState(order.client_order_id, 0, "CANCELED", 0)  # noqa: E731
        if order.is_algo:
            return await self._request(lambda: self.place_algo(order), never_rested)
        return await self._request(lambda: self.place_now(order), never_rested)

    def place_now(self, order: Order, qty: int | None = None, price: int | None = None,
                  reduce_only: bool | None = None, venue_id: int | None = None) -> VenueOrderState:
        """A plain order arrives at the matching engine (a triggered algo order passes its own terms)."""
        price = order.price_ticks if price is None else price
        if price is None and order.price_match is not PriceMatch.NONE:
            price = self.matched_price(order)  # the venue prices it from the book at arrival
        reduce_only = order.reduce_only if reduce_only is None else reduce_only
        same = self.orders.get(order.client_order_id)
        if same is not None and same.status in ("NEW", "PARTIALLY_FILLED"):
            raise errors.OrderRejected(-4116, "ClientOrderId is duplicated.")
        if not self.live[order.symbol]:
            raise errors.OrderRejected(-4131, f"paper venue: no live book for {order.symbol}")
        if len(self._open(order.symbol)) >= self.instruments[order.symbol].max_num_orders:
            raise errors.OrderRejected(-2025, "Reach max open order limit.")  # exchangeInfo's MAX_NUM_ORDERS
        book = self.books[order.symbol]
        qty = order.qty_steps if qty is None else qty
        order_qty = qty
        if reduce_only:
            pos = self.account_positions[order.symbol].qty_steps
            if pos == 0 or (pos > 0) == (order.side is Side.BUY):
                raise errors.OrderRejected(-2022, "ReduceOnly Order is rejected.")
            qty = min(qty, abs(pos))  # what it may take now; the rest rests, clamped as it fills
        limit = price
        # Only the levels the order can reach (a resting quote reads none): not a copy of the whole book.
        marketable = book.asks_through(limit) if order.side is Side.BUY else book.bids_through(limit)
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
        self._working[order.symbol].append(resting)
        self._emit(resting, Execution.NEW)
        self.take_liquidity(resting, marketable, min(qty, available))
        if resting.remaining and resting.status in ("NEW", "PARTIALLY_FILLED") and (
                kind is OrderType.MARKET or order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK)):
            resting.status = "EXPIRED"
            self._emit(resting, Execution.EXPIRED)
        # A reduce-only GTC larger than the position rests, clamped to it at fill time (as the venue does).
        return VenueOrderState(order.client_order_id, venue_id, resting.status, resting.filled)

    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrderState:
        return await self._request(lambda: self.cancel_now(client_order_id), None)  # at the end: done then

    async def query(self, symbol: str, client_order_id: str) -> VenueOrderState | None:
        self.advance(self.clock.now_ns())
        resting = self.orders.get(client_order_id)
        if resting is None:
            return None
        return VenueOrderState(client_order_id, resting.venue_order_id, resting.status, resting.filled)

    async def open_orders(self) -> list[VenueOrderEvent]:
        self.advance(self.clock.now_ns())
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
    def take_liquidity(self, resting: _Resting, levels: list[tuple[int, int]], qty: int) -> None:
        """Fill `resting` as taker across `levels` (best first), up to `qty`, using the liquidity up in the
        local book: what we took is not there for the next order until an update replaces the level."""
        book = self.books[resting.order.symbol]
        buy = resting.order.side is Side.BUY
        for price, level_qty in levels:
            if qty <= 0 or resting.status not in ("NEW", "PARTIALLY_FILLED"):
                break
            before = resting.filled
            self._fill(resting, price, min(level_qty, qty), maker=False)
            took = resting.filled - before
            if took <= 0:
                break
            qty -= took
            left = [(price, level_qty - took)]
            book.apply_diff([] if buy else left, left if buy else [])

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
        for resting in self._open(symbol):
            if resting.reducing and \
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
                                result.realized_pnl, self.now_ns(), order.order_type.value, resting.qty,
                                resting.price or 0, bool(resting.reducing), self._status_after_fill(resting))
        self.fills.append(event)
        self._deliver(event)
        self._clamp_reduce_only(order.symbol)

    def _event(self, resting: _Resting, execution: Execution) -> VenueOrderEvent:
        order = resting.order
        return VenueOrderEvent(order.symbol, order.client_order_id, resting.venue_order_id, execution, order.side,
                               ts_event_ns=self.now_ns(), order_type=order.order_type.value,
                               orig_qty_steps=resting.qty, price_ticks=resting.price or 0,
                               reduce_only=bool(resting.reducing))

    def _emit(self, resting: _Resting, execution: Execution) -> None:
        self._deliver(self._event(resting, execution))

    def _send(self, event: VenueOrderEvent) -> None:
        """The event reaches the client: the engine, and for fills the paper account's observers."""
        if self._on_event:
            self._on_event(event)
        if event.execution is Execution.TRADE:
            for observer in self.observers:
                observer(event)
