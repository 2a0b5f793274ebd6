"""The simulated venue's state machine: books, matching, accounts, positions, fees, funding, liquidation.

Owns everything the venue decides, synchronously and without I/O: a per-symbol book that aggregates
synthetic liquidity with resting client orders (price-time priority), order entry with the venue's
checks and error codes (filters via celeris.domain.instruments, TIF semantics, reduce-only, duplicate
client ids, margin), conditional orders triggered by last or mark price, positions and PnL through
celeris.domain.positions, maker/taker fees, funding and liquidation. Everything that happens is
appended to `events` as plain dicts in the venue's own user-data shapes; the server pushes them.
It never imports the connector: the simulator checks the protocol on its own.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

from celeris.domain.clock import Clock
from celeris.domain.instruments import Instrument, OrderType, TimeInForce, check_order
from celeris.domain.orders import valid_client_order_id
from celeris.domain.positions import Position, fee, liquidation_price
from celeris.domain.values import MONEY_SCALE, Side, format_units, fraction_to_units, money_str

NS_PER_MS = 1_000_000


class VenueError(Exception):
    """A refusal in the venue's shape: {"code": code, "msg": msg} with an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


@dataclass
class SimOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    qty_steps: int
    price_ticks: int  # 0 for market-style
    stop_price_ticks: int = 0
    reduce_only: bool = False
    close_position: bool = False
    working_type: str = "CONTRACT_PRICE"
    callback_rate: Fraction | None = None
    activation_ticks: int = 0
    trail_extreme_ticks: int = 0
    status: str = "NEW"
    filled_steps: int = 0
    filled_quote: int = 0  # sum of price_ticks * steps
    time_ms: int = 0
    update_ms: int = 0
    triggered: bool = False
    realized_pnl: int = 0

    @property
    def remaining(self) -> int:
        return self.qty_steps - self.filled_steps

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def orig_type(self) -> OrderType:
        return self.order_type


@dataclass
class Account:
    api_key: str
    api_secret: str
    wallet: int  # money units
    leverage: dict[str, int] = field(default_factory=dict)
    margin_type: dict[str, str] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[int, SimOrder] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    """User-data events waiting to be pushed, in the venue's shapes."""


@dataclass
class SymbolBook:
    """Synthetic liquidity per price level plus FIFO queues of client orders."""

    instrument: Instrument
    synthetic_bids: dict[int, int] = field(default_factory=dict)
    synthetic_asks: dict[int, int] = field(default_factory=dict)
    queues: dict[tuple[bool, int], deque[SimOrder]] = field(default_factory=dict)
    update_id: int = 1_000_000
    changed: dict[tuple[bool, int], None] = field(default_factory=dict)
    """Levels changed since the streams last flushed (order kept)."""
    first_changed_id: int = 0
    """Update id of the first change in `changed` (a level may change several times)."""
    last_price_ticks: int = 0
    mark_ticks: int = 0
    index_ticks: int = 0
    trade_id: int = 0
    funding_rate: Fraction = Fraction(1, 10_000)
    trades_out: list[dict[str, Any]] = field(default_factory=list)
    """Trades not yet pushed to the streams."""
    recent_trades: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=1000))
    """The last trades, for GET /fapi/v1/trades and /aggTrades."""

    def level_qty(self, is_bid: bool, price: int) -> int:
        synthetic = (self.synthetic_bids if is_bid else self.synthetic_asks).get(price, 0)
        queue = self.queues.get((is_bid, price))
        return synthetic + (sum(o.remaining for o in queue) if queue else 0)

    def prices(self, is_bid: bool) -> list[int]:
        keys = set(self.synthetic_bids if is_bid else self.synthetic_asks)
        keys.update(p for (b, p), q in self.queues.items() if b == is_bid and q)
        return sorted(keys, reverse=is_bid)

    def best(self, is_bid: bool) -> int | None:
        prices = self.prices(is_bid)
        return prices[0] if prices else None

    def touch(self, is_bid: bool, price: int) -> None:
        self.update_id += 1
        if not self.changed:
            self.first_changed_id = self.update_id
        self.changed[(is_bid, price)] = None

    def depth(self, limit: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids = [(p, self.level_qty(True, p)) for p in self.prices(True)[:limit]]
        asks = [(p, self.level_qty(False, p)) for p in self.prices(False)[:limit]]
        return bids, asks

    def set_synthetic(self, is_bid: bool, price: int, qty: int) -> None:
        side = self.synthetic_bids if is_bid else self.synthetic_asks
        if side.get(price, 0) == qty:
            return
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)
        self.touch(is_bid, price)


@dataclass(frozen=True)
class EngineConfig:
    maker_fee: Fraction = Fraction(2, 10_000)
    taker_fee: Fraction = Fraction(4, 10_000)
    default_leverage: int = 20
    max_leverage: int = 125
    initial_wallet_usdt: int = 100_000
    conditional_on_order_endpoint: bool = True
    """False: answer -4120 for conditional types on /fapi/v1/order, as the venue does since 2025-12."""
    fok_gtx_sync_reject: bool = True
    """True: FOK/GTX that cannot rest/fill are refused at REST (-5021/-5022); False: NEW then EXPIRED."""


class MatchingEngine:
    """One venue: symbols, their books, and the accounts trading them."""

    def __init__(self, instruments: list[Instrument], clock: Clock, config: EngineConfig | None = None) -> None:
        self.clock = clock
        self.config = config or EngineConfig()
        self.books = {ins.symbol: SymbolBook(ins) for ins in instruments}
        self.accounts: dict[str, Account] = {}
        self._order_ids = itertools.count(8_000_000_001)
        self._trade_ids = itertools.count(500_000_001)
        self._auto_ids = itertools.count(1)
        self.on_account_event: Callable[[Account], None] | None = None

    # -- accounts ------------------------------------------------------------------------------
    def add_account(self, api_key: str, api_secret: str, wallet_usdt: int | None = None) -> Account:
        wallet = (self.config.initial_wallet_usdt if wallet_usdt is None else wallet_usdt) * 10**MONEY_SCALE
        account = Account(api_key, api_secret, wallet)
        for symbol, book in self.books.items():
            account.leverage[symbol] = self.config.default_leverage
            account.margin_type[symbol] = "cross"
            account.positions[symbol] = Position(book.instrument)
        self.accounts[api_key] = account
        return account

    def now_ms(self) -> int:
        return self.clock.now_ns() // NS_PER_MS

    def instrument(self, symbol: str) -> Instrument:
        book = self.books.get(symbol)
        if book is None:
            raise VenueError(-1121, "Invalid symbol.")
        return book.instrument

    # -- margin --------------------------------------------------------------------------------
    def mark(self, symbol: str) -> int:
        book = self.books[symbol]
        return book.mark_ticks or book.last_price_ticks

    def unrealized(self, account: Account) -> int:
        return sum(p.unrealized_pnl(self.mark(s)) for s, p in account.positions.items() if p.qty_steps)

    def position_initial_margin(self, account: Account, symbol: str) -> int:
        pos = account.positions[symbol]
        return -(-pos.notional(self.mark(symbol)) // account.leverage[symbol]) if pos.qty_steps else 0

    def open_order_margin(self, account: Account, symbol: str | None = None) -> int:
        total = 0
        for order in account.orders.values():
            if order.is_open and not order.reduce_only and (symbol is None or order.symbol == symbol):
                ins = self.books[order.symbol].instrument
                price = order.price_ticks or self.mark(order.symbol)
                total += ins.notional(price, order.remaining) // account.leverage[order.symbol]
        return total

    def maint_margin(self, account: Account) -> int:
        return sum(p.maint_margin(self.mark(s)) for s, p in account.positions.items() if p.qty_steps)

    def available_balance(self, account: Account) -> int:
        used = sum(self.position_initial_margin(account, s) for s in account.positions)
        return account.wallet + self.unrealized(account) - used - self.open_order_margin(account)

    def liquidation_price(self, account: Account, symbol: str) -> Fraction | None:
        pos = account.positions[symbol]
        if not pos.qty_steps:
            return None
        others = [(s, p) for s, p in account.positions.items() if s != symbol and p.qty_steps]
        other_maint = sum(p.maint_margin(self.mark(s)) for s, p in others)
        other_upnl = sum(p.unrealized_pnl(self.mark(s)) for s, p in others)
        scale = Fraction(1, 10**MONEY_SCALE)
        return liquidation_price(
            wallet_balance=account.wallet * scale, qty=pos.instrument.qty_fraction(pos.qty_steps),
            entry_price=pos.entry_price, maint_margin_rate=pos.instrument.maint_margin_rate,
            other_maint_margin=other_maint * scale, other_unrealized_pnl=other_upnl * scale)

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
        position_side = params.get("positionSide", "BOTH")
        if position_side != "BOTH":
            raise VenueError(-4061, "Order's position side does not match user's setting.")
        close_position = params.get("closePosition", "false").lower() == "true"
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        tif_text = params.get("timeInForce")
        if order_type in (OrderType.LIMIT, OrderType.STOP, OrderType.TAKE_PROFIT):
            if tif_text is None:
                raise VenueError(-1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, "
                                        "or malformed.")
        tif = _enum(TimeInForce, tif_text or "GTC", -1115, "Invalid timeInForce.")
        price_ticks = 0
        if order_type in (OrderType.LIMIT, OrderType.STOP, OrderType.TAKE_PROFIT):
            price_ticks = _grid_value(ins, "price", _required(params, "price"))
        elif params.get("price") not in (None, "", "0"):
            raise VenueError(-1106, "Parameter 'price' sent when not required.")
        stop_ticks = 0
        if order_type in (OrderType.STOP, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT,
                          OrderType.TAKE_PROFIT_MARKET):
            stop_ticks = _grid_value(ins, "stopPrice", _required(params, "stopPrice"))
        callback = None
        activation = 0
        if order_type is OrderType.TRAILING_STOP_MARKET:
            callback = _fraction(_required(params, "callbackRate"), "callbackRate")
            if not Fraction(1, 10) <= callback <= 10:
                raise VenueError(-2007, "Invalid callBack rate.")
            if params.get("activationPrice"):
                activation = _grid_value(ins, "activationPrice", params["activationPrice"])
        pos = account.positions[symbol]
        if close_position:
            qty_steps = abs(pos.qty_steps) or 0
            reduce_only = True
        else:
            qty_steps = _grid_value(ins, "quantity", _required(params, "quantity"), qty=True)
        client_id = params.get("newClientOrderId") or f"sim{next(self._auto_ids):016d}"
        if not valid_client_order_id(client_id):
            raise VenueError(-4015, "Client order id is not valid.")
        if any(o.client_order_id == client_id and o.is_open for o in account.orders.values()):
            raise VenueError(-4116, "ClientOrderId is duplicated.")
        mark = self.mark(symbol) or None
        if not close_position:
            violation = check_order(ins, side=side, order_type=order_type, qty_steps=qty_steps,
                                    price_ticks=price_ticks or None, mark_price_ticks=mark,
                                    reduce_only=reduce_only)
            if violation is not None:
                raise VenueError(violation.code, violation.message)
        if reduce_only and not order_type.is_conditional:
            if pos.qty_steps == 0 or (pos.qty_steps > 0) == (side is Side.BUY):
                raise VenueError(-2022, "ReduceOnly Order is rejected.")
        if not reduce_only:
            price = price_ticks or mark or 0
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
                self._triggered(book, order_type, side, stop_ticks,
                                                         params.get("workingType", "CONTRACT_PRICE")):
            raise VenueError(-2021, "Order would immediately trigger.")
        now = self.now_ms()
        order = SimOrder(next(self._order_ids), client_id, symbol, side, order_type, tif, qty_steps, price_ticks,
                         stop_ticks, reduce_only, close_position, params.get("workingType", "CONTRACT_PRICE"),
                         callback, activation, 0, "NEW", 0, 0, now, now)
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

    def set_leverage(self, account: Account, symbol: str, leverage: int) -> None:
        self.instrument(symbol)
        if not 1 <= leverage <= self.config.max_leverage:
            raise VenueError(-4028, f"Leverage {leverage} is not valid")
        account.leverage[symbol] = leverage
        account.events.append({"e": "ACCOUNT_CONFIG_UPDATE", "E": self.now_ms(), "T": self.now_ms(),
                               "ac": {"s": symbol, "l": leverage}})
        self._notify(account)

    # -- matching ------------------------------------------------------------------------------
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
            if order.remaining == 0:
                break
            if limit is not None and (price > limit if taker_is_bid else price < limit):
                break
            self._take_level(account, order, book, price)
        if order.remaining == 0:
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

    def _fill(self, account: Account, order: SimOrder, price: int, qty: int, maker: bool) -> None:
        ins = self.books[order.symbol].instrument
        rate = self.config.maker_fee if maker else self.config.taker_fee
        commission = fee(ins, price, qty, rate)
        pos = account.positions[order.symbol]
        result = pos.apply_fill(order.side, qty, price, commission)
        account.wallet += result.realized_pnl - commission
        order.filled_steps += qty
        order.filled_quote += price * qty
        order.realized_pnl += result.realized_pnl
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        order.update_ms = self.now_ms()
        trade_id = next(self._trade_ids)
        now = self.now_ms()
        trade = {"symbol": order.symbol, "id": trade_id, "orderId": order.order_id, "side": order.side.value,
                 "price": ins.format_price(price), "qty": ins.format_qty(qty),
                 "realizedPnl": money_str(result.realized_pnl), "marginAsset": "USDT",
                 "quoteQty": format_units(ins.price_grid.units(price) * ins.qty_grid.units(qty),
                                          ins.notional_scale),
                 "commission": money_str(commission), "commissionAsset": "USDT", "time": now,
                 "positionSide": "BOTH", "buyer": order.side is Side.BUY, "maker": maker}
        account.trades.append(trade)
        account.events.append({"e": "TRADE_LITE", "E": now, "T": now, "s": order.symbol,
                               "q": ins.format_qty(order.qty_steps), "p": ins.format_price(order.price_ticks),
                               "m": maker, "c": order.client_order_id, "S": order.side.value,
                               "L": ins.format_price(price), "l": ins.format_qty(qty), "t": trade_id,
                               "i": order.order_id})
        self._order_event(account, order, "TRADE", last_qty=qty, last_price=price, commission=commission,
                          trade_id=trade_id, maker=maker, realized=result.realized_pnl, notify=False)
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
        self._order_event(account, order, status)

    def _remove_resting(self, order: SimOrder) -> None:
        book = self.books[order.symbol]
        key = (order.side is Side.BUY, order.price_ticks)
        queue = book.queues.get(key)
        if queue and order in queue:
            queue.remove(order)
            book.touch(*key)

    # -- events --------------------------------------------------------------------------------
    def order_json(self, order: SimOrder) -> dict[str, Any]:
        ins = self.books[order.symbol].instrument
        scale = ins.price_grid.scale
        avg = format_units(0, scale)
        if order.filled_steps:
            # The venue prints average prices with more decimals than the tick (e.g. "7100.50000").
            avg_units = Fraction(order.filled_quote * ins.price_grid.step_units, order.filled_steps)
            avg = format_units(fraction_to_units(avg_units / 10**scale, scale + 3), scale + 3)
        cum_quote = format_units(order.filled_quote * ins.price_grid.step_units * ins.qty_grid.step_units,
                                 ins.notional_scale)
        out = {
            "orderId": order.order_id, "symbol": order.symbol, "status": order.status,
            "clientOrderId": order.client_order_id, "price": ins.format_price(order.price_ticks),
            "avgPrice": avg, "origQty": ins.format_qty(order.qty_steps),
            "executedQty": ins.format_qty(order.filled_steps), "cumQuote": cum_quote,
            "timeInForce": order.time_in_force.value, "type": order.order_type.value,
            "reduceOnly": order.reduce_only, "closePosition": order.close_position, "side": order.side.value,
            "positionSide": "BOTH", "stopPrice": ins.format_price(order.stop_price_ticks),
            "workingType": order.working_type, "priceProtect": False, "origType": order.order_type.value,
            "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0,
            "updateTime": order.update_ms,
        }
        if order.order_type is OrderType.TRAILING_STOP_MARKET:
            out["activatePrice"] = ins.format_price(order.activation_ticks)
            out["priceRate"] = str(float(order.callback_rate or 0))
        return out

    def _order_event(self, account: Account, order: SimOrder, execution: str, *, last_qty: int = 0,
                     last_price: int = 0, commission: int = 0, trade_id: int = 0, maker: bool = False,
                     realized: int = 0, notify: bool = True) -> None:
        ins = self.books[order.symbol].instrument
        body = self.order_json(order)
        now = self.now_ms()
        o = {"s": order.symbol, "c": order.client_order_id, "S": order.side.value, "o": order.order_type.value,
             "f": order.time_in_force.value, "q": body["origQty"], "p": body["price"], "ap": body["avgPrice"],
             "sp": body["stopPrice"], "x": execution, "X": order.status, "i": order.order_id,
             "l": ins.format_qty(last_qty), "z": body["executedQty"], "L": ins.format_price(last_price),
             "N": "USDT", "n": money_str(commission), "T": now, "t": trade_id, "b": "0", "a": "0",
             "m": maker, "R": order.reduce_only, "wt": order.working_type, "ot": order.order_type.value,
             "ps": "BOTH", "cp": order.close_position, "rp": money_str(realized), "pP": False, "si": 0,
             "ss": 0, "V": "EXPIRE_TAKER", "pm": "NONE", "gtd": 0, "er": "0"}
        account.events.append({"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": o})
        if notify:
            self._notify(account)

    def _account_update(self, account: Account, symbol: str, reason: str) -> None:
        """ACCOUNT_UPDATE with the balance and, for a symbol, its position (FUNDING_FEE: balance only)."""
        now = self.now_ms()
        positions = []
        if symbol:
            pos = account.positions[symbol]
            mark = self.mark(symbol)
            positions.append({
                "s": symbol, "pa": pos.instrument.format_qty(pos.qty_steps),
                "ep": _price_str(pos.entry_price), "bep": _price_str(pos.entry_price),
                "cr": money_str(pos.realized_pnl), "up": money_str(pos.unrealized_pnl(mark) if mark else 0),
                "mt": account.margin_type[symbol], "iw": "0", "ps": "BOTH", "ma": "USDT"})
        account.events.append({"e": "ACCOUNT_UPDATE", "E": now, "T": now, "a": {
            "m": reason,
            "B": [{"a": "USDT", "wb": money_str(account.wallet), "cw": money_str(account.wallet), "bc": "0"}],
            "P": positions,
        }})
        self._notify(account)

    def _notify(self, account: Account) -> None:
        if self.on_account_event is not None:
            self.on_account_event(account)

    # -- time-driven venue behaviour ---------------------------------------------------------
    def check_triggers(self, symbol: str) -> None:
        """Trigger conditional orders whose stop is reached by last or mark price; trail trailing stops."""
        book = self.books[symbol]
        for account in list(self.accounts.values()):
            for order in list(account.orders.values()):
                if order.symbol != symbol or not order.is_open or not order.order_type.is_conditional \
                        or order.triggered:
                    continue
                if order.order_type is OrderType.TRAILING_STOP_MARKET:
                    if not self._trail(book, order):
                        continue
                elif not self._triggered(book, order.order_type, order.side, order.stop_price_ticks,
                                         order.working_type):
                    continue
                order.triggered = True
                self._execute(account, order)

    def _reference(self, book: SymbolBook, working_type: str) -> int:
        return book.mark_ticks if working_type == "MARK_PRICE" else book.last_price_ticks

    def _triggered(self, book: SymbolBook, order_type: OrderType, side: Side, stop: int, working_type: str) -> bool:
        ref = self._reference(book, working_type)
        if not ref:
            return False
        if order_type in (OrderType.STOP, OrderType.STOP_MARKET):
            return ref >= stop if side is Side.BUY else ref <= stop
        return ref <= stop if side is Side.BUY else ref >= stop

    def _trail(self, book: SymbolBook, order: SimOrder) -> bool:
        ref = self._reference(book, order.working_type)
        if not ref:
            return False
        if order.activation_ticks and not order.trail_extreme_ticks:
            reached = ref <= order.activation_ticks if order.side is Side.BUY else ref >= order.activation_ticks
            if not reached:
                return False
        if not order.trail_extreme_ticks:
            order.trail_extreme_ticks = ref
        rate = (order.callback_rate or Fraction(1)) / 100
        if order.side is Side.SELL:  # protects a long: trails the high
            order.trail_extreme_ticks = max(order.trail_extreme_ticks, ref)
            return ref <= order.trail_extreme_ticks * (1 - rate)
        order.trail_extreme_ticks = min(order.trail_extreme_ticks, ref)
        return ref >= order.trail_extreme_ticks * (1 + rate)

    def apply_funding(self, symbol: str) -> None:
        """Funding: longs pay shorts notional x rate when the rate is positive (and vice versa)."""
        book = self.books[symbol]
        mark = self.mark(symbol)
        for account in self.accounts.values():
            pos = account.positions[symbol]
            if not pos.qty_steps or not mark:
                continue
            notional = pos.instrument.price_fraction(mark) * pos.instrument.qty_fraction(pos.qty_steps)
            payment = fraction_to_units(-notional * book.funding_rate, MONEY_SCALE)
            account.wallet += payment
            self._account_update(account, "", "FUNDING_FEE")

    def check_liquidations(self, symbol: str) -> None:
        """Close every position of an account whose margin ratio reached 100 % at the mark price."""
        for account in self.accounts.values():
            pos = account.positions[symbol]
            if not pos.qty_steps:
                continue
            balance = account.wallet + self.unrealized(account)
            if self.maint_margin(account) < balance:
                continue
            for order in list(account.orders.values()):
                if order.is_open:
                    self._finish(account, order, "CANCELED")
            for sym, position in account.positions.items():
                if position.qty_steps:
                    self._liquidate(account, sym, position)

    def _liquidate(self, account: Account, symbol: str, position: Position) -> None:
        side = Side.SELL if position.qty_steps > 0 else Side.BUY
        now = self.now_ms()
        order = SimOrder(next(self._order_ids), f"autoclose-{now}", symbol, side, OrderType.MARKET,
                         TimeInForce.IOC, abs(position.qty_steps), 0, reduce_only=True, time_ms=now, update_ms=now)
        account.orders[order.order_id] = order
        book = self.books[symbol]
        self._order_event(account, order, "NEW")
        self._execute(account, order)
        if position.qty_steps:  # the book was too thin: the insurance fund takes the rest at the mark
            self._fill(account, order, book.mark_ticks or book.last_price_ticks, abs(position.qty_steps),
                       maker=False)
        if account.wallet < 0:
            account.wallet = 0


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise VenueError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def _enum(enum_cls: Any, value: str, code: int, msg: str) -> Any:
    try:
        return enum_cls(value)
    except ValueError:
        raise VenueError(code, msg) from None


def _grid_value(ins: Instrument, name: str, text: str, qty: bool = False) -> int:
    from celeris.domain.values import DecimalFormatError, OffGridError

    grid = ins.qty_grid if qty else ins.price_grid
    try:
        return grid.parse(text)
    except OffGridError:
        if qty:
            raise VenueError(-4023, "Quantity not increased by step size.") from None
        raise VenueError(-4014, "Price not increased by tick size.") from None
    except DecimalFormatError:
        try:
            float(text)
        except ValueError:
            raise VenueError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                    f"or malformed.") from None
        raise VenueError(-1111, "Precision is over the maximum defined for this asset.") from None


def _fraction(text: str, name: str) -> Fraction:
    from celeris.domain.values import DecimalFormatError, parse_decimal

    try:
        mantissa, scale = parse_decimal(text)
    except DecimalFormatError:
        raise VenueError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                f"or malformed.") from None
    return Fraction(mantissa, 10**scale)


def _price_str(value: Fraction) -> str:
    """An average price as the venue prints it: up to 8 decimals, trailing zeros trimmed."""
    units = fraction_to_units(value, 8)
    text = format_units(units, 8).rstrip("0").rstrip(".")
    return text or "0"
