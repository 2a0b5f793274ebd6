"""Matching in the simulated venue: price-time priority over synthetic liquidity and resting client orders.

Owns how an order meets the book: post-only and fill-or-kill pre-checks, the MARKET order protection
against an away book (-4131), taking levels (synthetic quantity is ahead of client orders at a level),
resting the remainder or expiring it (IOC/FOK/market), background flow filling resting orders, fills with
their fees and PnL, clamping working reduce-only orders to the position, and removing orders from queues.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from celeris.domain.values import Side
from celeris.exchange_sim.contract import TimeInForce
from celeris.exchange_sim.positions import fill_commission
from celeris.exchange_sim.state import (
    Account,
    EngineConfig,
    SimOrder,
    SymbolBook,
    VenueError,
)


class Matching:
    """Mixin of MatchingEngine: the book side of the venue."""

    # Provided by MatchingEngine (engine.py).
    books: dict[str, SymbolBook]
    accounts: dict[str, Account]
    config: EngineConfig

    if TYPE_CHECKING:  # the other mixins' members this one calls
        def now_ms(self) -> int: ...
        def _next_trade_id(self) -> int: ...
        def _order_event(self, account: Account, order: SimOrder, execution: str, **fill: object) -> None: ...
        def _trade_events(self, account: Account, order: SimOrder, price: int, qty: int, maker: bool,
                          fee_units: int, realized: int, trade_id: int) -> None: ...
        def _account_update(self, account: Account, symbol: str, reason: str) -> None: ...
        def move_isolated_margin(self, account: Account, symbol: str, held_before: int, price_ticks: int) -> None: ...

    def _would_take(self, book: SymbolBook, side: Side, price: int) -> bool:
        best = book.best(side is Side.SELL)
        return best is not None and (price >= best if side is Side.BUY else price <= best)

    def _fillable(self, book: SymbolBook, side: Side, limit: int | None, qty: int) -> int:
        total = 0
        for price in book.prices(side is Side.SELL):
            if limit is not None and (price > limit if side is Side.BUY else price < limit):
                break
            total += book.level_qty(side is Side.SELL, price)
            if total >= qty:
                break
        return total

    def _check_market_protection(self, book: SymbolBook, side: Side) -> None:
        best = book.best(side is Side.SELL)
        mark = book.mark_ticks
        if best is None:
            raise VenueError(-4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit.")
        ins = book.instrument
        if mark and ((side is Side.BUY and best > ins.multiplier_up * mark) or
                     (side is Side.SELL and best < ins.multiplier_down * mark)):
            raise VenueError(-4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit.")

    def _execute(self, account: Account, order: SimOrder) -> None:
        """Match an incoming (or just triggered) order against the book, then rest or expire it."""
        book = self.books[order.symbol]
        is_market = order.order_type.is_market
        limit = None if is_market else order.price_ticks
        if order.reduce_only:
            pos = account.positions[order.symbol].qty_steps
            allowed = abs(pos) if pos and (pos > 0) != (order.side is Side.BUY) else 0
            if allowed < order.remaining:
                if allowed == 0:
                    self._finish(account, order, "EXPIRED")
                    return
                order.qty_steps = order.filled_steps + allowed
        if order.time_in_force is TimeInForce.GTX and not is_market and self._would_take(book, order.side, limit):
            self._finish(account, order, "EXPIRED")
            return
        if order.time_in_force is TimeInForce.FOK and not is_market and \
                self._fillable(book, order.side, limit, order.remaining) < order.remaining:
            self._finish(account, order, "EXPIRED")
            return
        taker_is_bid = order.side is Side.BUY
        for price in book.prices(not taker_is_bid):
            if order.remaining == 0 or order.expired_in_match:
                break
            if limit is not None and (price > limit if taker_is_bid else price < limit):
                break
            self._take_level(account, order, book, price)
        if order.remaining == 0:
            return
        if order.expired_in_match:  # self-trade prevention expired the taker: it never rests
            self._finish(account, order, "EXPIRED_IN_MATCH")
            return
        if is_market or order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            self._finish(account, order, "EXPIRED")
            return
        key = (taker_is_bid, order.price_ticks)
        book.queues.setdefault(key, deque()).append(order)
        book.touch(*key)

    def _take_level(self, account: Account, taker: SimOrder, book: SymbolBook, price: int) -> None:
        maker_is_bid = taker.side is Side.SELL
        queue = book.queues.get((maker_is_bid, price))
        # Resting client orders at a level were placed after the synthetic liquidity there, so
        # the synthetic quantity is ahead of them in the queue.
        synthetic = (book.synthetic_bids if maker_is_bid else book.synthetic_asks).get(price, 0)
        if synthetic:
            qty = min(synthetic, taker.remaining)
            book.set_synthetic(maker_is_bid, price, synthetic - qty)
            self._fill(account, taker, price, qty, maker=False)
            self._record_trade(book, price, qty, buyer_is_maker=maker_is_bid)
        while queue and taker.remaining:
            maker = queue[0]
            qty = min(maker.remaining, taker.remaining)
            maker_account = self._owner(maker)
            if maker_account is account and taker.stp_mode != "NONE":
                # Self-trade prevention, by the taker's mode: the order(s) expire instead of trading.
                if taker.stp_mode in ("EXPIRE_MAKER", "EXPIRE_BOTH"):
                    self._finish(maker_account, maker, "EXPIRED_IN_MATCH")
                if taker.stp_mode in ("EXPIRE_TAKER", "EXPIRE_BOTH"):
                    taker.status = "EXPIRED_IN_MATCH"
                    return
                continue
            self._fill(maker_account, maker, price, qty, maker=True)
            self._fill(account, taker, price, qty, maker=False)
            self._record_trade(book, price, qty, buyer_is_maker=maker_is_bid)
            if maker.remaining == 0:
                queue.popleft()
            book.touch(maker_is_bid, price)

    def _owner(self, order: SimOrder) -> Account:
        for account in self.accounts.values():
            if account.orders.get(order.order_id) is order:
                return account
        raise KeyError(order.order_id)

    def fill_resting_from_flow(self, symbol: str, taker_side: Side, price: int, qty: int) -> int:
        """Background market flow trades `qty` at `price` or better against resting client orders.

        Synthetic liquidity at a level is ahead of client orders there (it was queued first), so
        client orders at the touch fill only once flow has taken what stands before them.
        """
        book = self.books[symbol]
        maker_is_bid = taker_side is Side.SELL
        remaining = qty
        for level in book.prices(maker_is_bid):
            if remaining == 0 or (level < price if maker_is_bid else level > price):
                break
            synthetic = (book.synthetic_bids if maker_is_bid else book.synthetic_asks).get(level, 0)
            eat = min(synthetic, remaining)
            if eat:
                book.set_synthetic(maker_is_bid, level, synthetic - eat)
                remaining -= eat
                self._record_trade(book, level, eat, buyer_is_maker=maker_is_bid)
            queue = book.queues.get((maker_is_bid, level))
            while queue and remaining:
                maker = queue[0]
                take = min(maker.remaining, remaining)
                self._fill(self._owner(maker), maker, level, take, maker=True)
                self._record_trade(book, level, take, buyer_is_maker=maker_is_bid)
                remaining -= take
                if maker.remaining == 0:
                    queue.popleft()
                book.touch(maker_is_bid, level)
        return qty - remaining

    def _record_trade(self, book: SymbolBook, price: int, qty: int, buyer_is_maker: bool) -> None:
        book.trade_id += 1
        book.last_price_ticks = price
        trade = {"t": book.trade_id, "p": price, "q": qty, "m": buyer_is_maker, "T": self.now_ms()}
        book.trades_out.append(trade)
        book.recent_trades.append(trade)
        book.history.trades.record(trade["T"], price, qty, book.trade_id, taker_buy=not buyer_is_maker)

    def _fill(self, account: Account, order: SimOrder, price: int, qty: int, maker: bool) -> None:
        ins = self.books[order.symbol].instrument
        fee_units = fill_commission(ins, price, qty, self.config.maker_fee if maker else self.config.taker_fee)
        held_before = account.positions[order.symbol].qty_steps
        realized = account.positions[order.symbol].apply_fill(order.side, qty, price)
        account.wallet += realized - fee_units
        self.move_isolated_margin(account, order.symbol, held_before, price)
        order.filled_steps += qty
        order.filled_quote += price * qty
        order.realized_pnl += realized
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        order.update_ms = self.now_ms()
        self._trade_events(account, order, price, qty, maker, fee_units, realized, self._next_trade_id())
        self._account_update(account, order.symbol, "ORDER")
        self._clamp_reduce_only(account, order.symbol)

    def _clamp_reduce_only(self, account: Account, symbol: str) -> None:
        """As the venue does: a working reduce-only order never exceeds the position it reduces; once the
        position is closed (or on the order's own side) it expires."""
        pos = account.positions[symbol].qty_steps
        for order in list(account.orders.values()):
            if not (order.is_open and order.reduce_only and order.symbol == symbol) or \
                    (order.orig_type.is_conditional and not order.triggered):
                continue
            allowed = abs(pos) if pos and (pos > 0) != (order.side is Side.BUY) else 0
            if allowed == 0:
                self._finish(account, order, "EXPIRED")
            elif allowed < order.remaining:
                order.qty_steps = order.filled_steps + allowed

    def _finish(self, account: Account, order: SimOrder, status: str) -> None:
        self._remove_resting(order)
        order.status = status
        order.update_ms = self.now_ms()
        # Self-trade prevention's expiry is status EXPIRED_IN_MATCH with execution type EXPIRED.
        self._order_event(account, order, "EXPIRED" if status == "EXPIRED_IN_MATCH" else status)

    def _remove_resting(self, order: SimOrder) -> None:
        book = self.books[order.symbol]
        key = (order.side is Side.BUY, order.price_ticks)
        queue = book.queues.get(key)
        if queue and order in queue:
            queue.remove(order)
            book.touch(*key)
