"""The strategy SDK: the base class a quant subclasses to write a strategy that owns its orders.

Owns `Strategy` (callbacks for the book at the depth it declares, trades, mark price and funding, its own
order updates and fills, timers; actions to place, cancel and amend orders with exact price, size, TIF,
post-only and reduce-only, a target-position helper, timers and execution algorithms (TWAP, VWAP, POV,
iceberg: celeris.domain.sdk_algos); reads of its own position, PnL and
working orders and of the clock) and `StrategyContext`, the state the engine keeps for it and hands from
one instance to the next on a hot reload (its orders, positions and client order id sequence).

Pure and synchronous: an action checks what it is given (a price off the tick grid, a size off the step
grid, a float, an unknown order: `OrderRefused` at once) and queues an intent; the strategy engine drains
the intents after each callback, sends them through its pre-trade filter to execution, and tells the
strategy what became of them through `on_order` and `on_fill`. Nothing here awaits or does I/O, so a
strategy is deterministic on deterministic data and runs the same in a backtest, on paper and live.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, ClassVar, Mapping

from celeris.domain.algos import AlgoProgress
from celeris.domain.clock import Clock
from celeris.domain.instruments import Instrument, TimeInForce
from celeris.domain.messages import client_order_id_for
from celeris.domain.positions import Position
from celeris.domain.sdk_algos import AlgoActions
from celeris.domain.sdk_types import (
    AmendIntent,
    BookView,
    CancelIntent,
    Intent,
    MarkTick,
    NoParams,
    OrderRefused,
    OrderState,
    OrderUpdate,
    OwnFill,
    OwnOrder,
    PlaceIntent,
    Pnl,
    Timer,
    TradeTick,
    parse_params,
)
from celeris.domain.values import DecimalFormatError, OffGridError, Side, parse_decimal

Number = Decimal | str


class StrategyContext:
    """What the engine keeps for one configured strategy; survives a hot reload of its code."""

    def __init__(self, name: str, instruments: Mapping[str, Instrument], clock: Clock,
                 positions: dict[str, Position], mark_of: Callable[[str], int | None]) -> None:
        self.name = name
        self.instruments = instruments
        self.clock = clock
        self.positions = positions
        """symbol -> the strategy's own Position; the engine applies its share of every fill here."""
        self.mark_of = mark_of
        self.orders: dict[str, OwnOrder] = {}
        self.intents: list[Intent] = []
        self.timers: dict[str, Timer] = {}
        self.sequence = 0
        self.algo_ids: list[str] = []
        """The execution algorithms it started (celeris.domain.sdk_algos), oldest first."""
        self.algo_progress: Callable[[str], AlgoProgress | None] = lambda algo_id: None
        """Set by the engine: a started parent's progress."""

    def position(self, symbol: str) -> Position:
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(self.instruments[symbol])
        return position

    def next_ids(self) -> tuple[str, str]:
        """A fresh request id and the client order id execution derives from it (and the owner)."""
        self.sequence += 1
        request_id = f"{self.name}-sdk-{self.clock.now_ns()}-{self.sequence}"
        return request_id, client_order_id_for(request_id, self.name)

    def update(self, order: OwnOrder) -> None:
        if order.is_open:
            self.orders[order.client_order_id] = order
        else:
            self.orders.pop(order.client_order_id, None)


class Strategy(AlgoActions):
    """Subclass this. Set `name` (the type the configuration names), optionally `depth` (book levels a side
    on_book gets; None for the whole book) and a nested `Params` dataclass (validated at load), and
    override the callbacks you need. Every callback may act; actions take effect once it returns."""

    name: ClassVar[str] = ""
    depth: ClassVar[int | None] = 1
    Params: ClassVar[type] = NoParams

    params: Any
    symbol: str
    """The symbol the configuration gave this instance (its market data comes for this symbol)."""
    order_size: Decimal
    """The configuration's order size (base asset)."""

    # -- lifecycle (called by the engine) -----------------------------------------------------------
    def initialize(self, config: Mapping[str, Any]) -> None:
        """Validate the configuration's params against `Params` (raises ValueError naming the field)."""
        self.symbol = config.get("symbol", "")
        self.order_size = Decimal(str(config.get("order_size") or "0"))
        self.params = parse_params(self.Params, config.get("params", {}), self.name or type(self).__name__)
        self._ctx: StrategyContext | None = None

    def bind(self, context: StrategyContext) -> None:
        self._ctx = context

    def get_state(self) -> Mapping[str, Any]:
        """Handed to the next instance's `restore(state)` on a hot reload, if it defines one."""
        return {}

    # -- callbacks (override) ---------------------------------------------------------------------
    def on_start(self) -> None: ...
    def on_book(self, book: BookView) -> None: ...
    def on_trade(self, trade: TradeTick) -> None: ...
    def on_mark(self, mark: MarkTick) -> None: ...
    def on_order(self, update: OrderUpdate) -> None: ...
    def on_fill(self, fill: OwnFill) -> None: ...
    def on_timer(self, name: str) -> None: ...

    # -- reads ----------------------------------------------------------------------------------------
    @property
    def ctx(self) -> StrategyContext:
        if self._ctx is None:
            raise RuntimeError(f"strategy {self.name}: not running in an engine yet")
        return self._ctx

    @property
    def now_ns(self) -> int:
        return self.ctx.clock.now_ns()

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self.ctx.instruments[symbol]
        except KeyError:
            raise OrderRefused(f"unknown symbol {symbol!r}") from None

    def position(self, symbol: str | None = None) -> int:
        """The strategy's own position in steps (signed), from its own fills only."""
        return self.ctx.position(symbol or self.symbol).qty_steps

    def pnl(self, symbol: str | None = None) -> Pnl:
        symbol = symbol or self.symbol
        position = self.ctx.position(symbol)
        mark = self.ctx.mark_of(symbol)
        unrealized = position.unrealized_pnl(mark) if mark is not None and position.qty_steps else 0
        return Pnl(position.realized_pnl, position.fees_paid, unrealized)

    def orders(self, symbol: str | None = None) -> tuple[OwnOrder, ...]:
        """Its working orders (placed and not yet finished), oldest first."""
        return tuple(o for o in self.ctx.orders.values() if symbol is None or o.symbol == symbol)

    def order(self, client_order_id: str) -> OwnOrder | None:
        return self.ctx.orders.get(client_order_id)

    def ticks(self, symbol: str, price: Number) -> int:
        """A price (Decimal or str) -> ticks; OrderRefused off the tick grid."""
        return self._grid_value(symbol, price, "price")

    def steps(self, symbol: str, qty: Number) -> int:
        return self._grid_value(symbol, qty, "quantity")

    def price_of(self, symbol: str, ticks: int) -> Decimal:
        return Decimal(self.instrument(symbol).format_price(ticks))

    def qty_of(self, symbol: str, steps: int) -> Decimal:
        return Decimal(self.instrument(symbol).format_qty(steps))

    # -- actions ----------------------------------------------------------------------------------
    def place(self, symbol: str, side: Side, price: Number | None, qty: Number, *, tif: TimeInForce = TimeInForce.GTC,
              post_only: bool = False, reduce_only: bool = False) -> str:
        """A limit order (a market order when `price` is None); returns its client order id at once."""
        return self.place_ticks(symbol, side, None if price is None else self.ticks(symbol, price),
                                self.steps(symbol, qty), tif=tif, post_only=post_only, reduce_only=reduce_only)

    def place_ticks(self, symbol: str, side: Side, price_ticks: int | None, qty_steps: int, *,
                    tif: TimeInForce = TimeInForce.GTC, post_only: bool = False, reduce_only: bool = False) -> str:
        """`place` in ticks and steps (for strategies that compute on the grid)."""
        ins = self.instrument(symbol)
        if not isinstance(side, Side):
            raise OrderRefused(f"side must be Side.BUY or Side.SELL, not {side!r}")
        for what, value in (("quantity", qty_steps), ("price", price_ticks)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise OrderRefused(f"{symbol}: {what} must be whole {'ticks' if what == 'price' else 'steps'}, "
                                   f"not {value!r}")
        if qty_steps <= 0 or qty_steps > ins.max_qty_steps:
            raise OrderRefused(f"{symbol}: quantity {ins.format_qty(qty_steps)} is outside 0 .. "
                               f"{ins.format_qty(ins.max_qty_steps)}")
        if price_ticks is not None and not ins.min_price_ticks <= price_ticks <= ins.max_price_ticks:
            raise OrderRefused(f"{symbol}: price {ins.format_price(price_ticks)} is outside "
                               f"{ins.format_price(ins.min_price_ticks)} .. {ins.format_price(ins.max_price_ticks)}")
        if not isinstance(tif, TimeInForce) or tif is TimeInForce.GTD:
            raise OrderRefused(f"{symbol}: time in force {tif!r} is not GTC, IOC, FOK or GTX")
        if post_only and (price_ticks is None or tif not in (TimeInForce.GTC, TimeInForce.GTX)):
            raise OrderRefused(f"{symbol}: a post-only order is a GTC limit order (got {tif.value}"
                               f"{', market' if price_ticks is None else ''})")
        if price_ticks is None and tif is TimeInForce.GTX:
            raise OrderRefused(f"{symbol}: a market order cannot be post-only (GTX)")
        if tif is TimeInForce.GTX:
            post_only = True
        request_id, client_id = self.ctx.next_ids()
        order = OwnOrder(client_id, symbol, side, qty_steps, price_ticks,
                         TimeInForce.GTX if post_only else (TimeInForce.IOC if price_ticks is None else tif),
                         post_only, bool(reduce_only), OrderState.PENDING, 0, self.now_ns)
        self.ctx.update(order)
        self.ctx.intents.append(PlaceIntent(order, request_id))
        return client_id

    def cancel(self, client_order_id: str) -> None:
        """Cancel one of its working orders (a second cancel of the same order is a no-op)."""
        order = self._own(client_order_id)
        if order.state is OrderState.PENDING_CANCEL:
            return
        self.ctx.update(order.moved(OrderState.PENDING_CANCEL))
        self.ctx.intents.append(CancelIntent(client_order_id, order.symbol))

    def cancel_all(self, symbol: str | None = None) -> None:
        for order in self.orders(symbol):
            if order.state is not OrderState.PENDING_CANCEL:
                self.cancel(order.client_order_id)

    def amend(self, client_order_id: str, price: Number | None = None, qty: Number | None = None) -> None:
        """Change a working limit order's price and/or quantity (the venue's modify: same order)."""
        order = self._own(client_order_id)
        self.amend_ticks(client_order_id, None if price is None else self.ticks(order.symbol, price),
                         None if qty is None else self.steps(order.symbol, qty))

    def amend_ticks(self, client_order_id: str, price_ticks: int | None = None, qty_steps: int | None = None) -> None:
        order = self._own(client_order_id)
        if order.state is not OrderState.WORKING:
            raise OrderRefused(f"order {client_order_id} is {order.state.value}: only a working (acknowledged) "
                               f"order can be amended, one amendment at a time")
        if order.price_ticks is None:
            raise OrderRefused(f"order {client_order_id} is a market order: only limit orders can be amended")
        ins = self.instrument(order.symbol)
        price = order.price_ticks if price_ticks is None else price_ticks
        qty = order.qty_steps if qty_steps is None else qty_steps
        if not ins.min_price_ticks <= price <= ins.max_price_ticks:
            raise OrderRefused(f"{order.symbol}: price {ins.format_price(price)} is outside the venue's range")
        if qty <= order.filled_steps or qty > ins.max_qty_steps:
            raise OrderRefused(f"order {client_order_id}: quantity {ins.format_qty(qty)} must be above the "
                               f"{ins.format_qty(order.filled_steps)} already filled")
        if (price, qty) == (order.price_ticks, order.qty_steps):
            return  # nothing to change (the venue would refuse it: -5027)
        self.ctx.update(order.moved(OrderState.PENDING_AMEND))
        self.ctx.intents.append(AmendIntent(client_order_id, order.symbol, qty, price, order.qty_steps,
                                            order.price_ticks))

    def target_position(self, symbol: str, qty: Number, price: Number | None = None, *,
                        tif: TimeInForce = TimeInForce.GTC, post_only: bool = False) -> list[str]:
        """Place and cancel so that the position reaches `qty` (signed, base asset), counting working orders.
        See `target_position_steps`."""
        return self.target_position_steps(symbol, self._signed_steps(symbol, qty),
                                          None if price is None else self.ticks(symbol, price),
                                          tif=tif, post_only=post_only)

    def target_position_steps(self, symbol: str, target_steps: int, price_ticks: int | None = None, *,
                              tif: TimeInForce = TimeInForce.GTC, post_only: bool = False) -> list[str]:
        """Never overshoots: the position plus every working order on the side toward the target
        (acknowledged or not, being cancelled or not: any of them may still fill) stays within the target;
        orders on the other side, or beyond the target, are cancelled. Orders that only bring the
        position toward zero go reduce-only. Returns the ids it placed (none while enough is in flight)."""
        position = self.position(symbol)
        working = self.orders(symbol)
        placed: list[str] = []
        if target_steps == position:
            self.cancel_all(symbol)
            return placed
        side = Side.BUY if target_steps > position else Side.SELL
        sign = side.sign
        for order in working:  # the other side works against the target
            if order.side is not side and order.state is not OrderState.PENDING_CANCEL:
                self.cancel(order.client_order_id)
        toward = [o for o in working if o.side is side]
        worst = position + sign * sum(o.remaining_steps for o in toward)
        # Beyond the target already: cancel the newest until the orders kept fit (the cancelled may still fill).
        kept = sum(o.remaining_steps for o in toward if o.state is not OrderState.PENDING_CANCEL)
        for order in reversed(toward):
            if sign * (position + sign * kept - target_steps) <= 0:
                break
            if order.state is not OrderState.PENDING_CANCEL:
                self.cancel(order.client_order_id)
                kept -= order.remaining_steps
        missing = sign * (target_steps - worst)
        if missing > 0:
            reduce = position != 0 and position * target_steps >= 0 and abs(target_steps) < abs(position)
            placed.append(self.place_ticks(symbol, side, price_ticks, missing, tif=tif, post_only=post_only,
                                           reduce_only=reduce))
        return placed

    def set_timer(self, name: str, interval_ns: int, *, start_ns: int | None = None) -> None:
        """Call on_timer(name) every `interval_ns` on the engine's clock (first at `start_ns`, default one
        interval from now). A timer that fell behind (a gap in a backtest's data) fires once and skips the
        beats it missed. Setting a name again replaces it."""
        if isinstance(interval_ns, bool) or not isinstance(interval_ns, int) or interval_ns <= 0:
            raise OrderRefused(f"timer {name!r}: interval must be a positive number of nanoseconds")
        now = self.now_ns
        self.ctx.timers[name] = Timer(interval_ns, now + interval_ns if start_ns is None else max(start_ns, now))

    def cancel_timer(self, name: str) -> None:
        self.ctx.timers.pop(name, None)

    # -- helpers --------------------------------------------------------------------------------------
    def _own(self, client_order_id: str) -> OwnOrder:
        order = self.ctx.orders.get(client_order_id)
        if order is None:
            raise OrderRefused(f"order {client_order_id!r} is not a working order of {self.name}")
        return order

    def _grid_value(self, symbol: str, value: Number, what: str) -> int:
        ins = self.instrument(symbol)
        if isinstance(value, (bool, int, float)) or not isinstance(value, (str, Decimal)):
            raise OrderRefused(f"{symbol}: give the {what} as a Decimal or a str, not {type(value).__name__} "
                               f"{value!r} (ticks and steps: place_ticks)")
        text = format(value, "f") if isinstance(value, Decimal) else value.strip()
        grid = ins.price_grid if what == "price" else ins.qty_grid
        try:
            return grid.parse(text)
        except OffGridError:
            raise OrderRefused(f"{symbol}: {what} {text} is off the {'tick' if what == 'price' else 'step'} grid "
                               f"({grid.increment})") from None
        except DecimalFormatError:
            try:
                parse_decimal(text)
            except DecimalFormatError:
                raise OrderRefused(f"{symbol}: {what} {text!r} is not a decimal") from None
            raise OrderRefused(f"{symbol}: {what} {text} is off the {'tick' if what == 'price' else 'step'} grid "
                               f"({grid.increment}): finer than it") from None

    def _signed_steps(self, symbol: str, qty: Number) -> int:
        text = format(qty, "f") if isinstance(qty, Decimal) else qty
        if isinstance(text, str) and text.strip().startswith("-"):
            return -self.steps(symbol, text.strip()[1:])
        return self.steps(symbol, qty)
