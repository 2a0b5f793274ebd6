"""A venue the test drives by hand: every placement (and amendment) waits until the test acknowledges it,
fills and cancels happen when the test says so. It records what reached it, in order, with the engine's
halt state at that instant, so a test can check what a real venue would have received. It holds its own
copy of each order's terms (the engine's record changes only when the engine is told)."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from fractions import Fraction

from celeris.domain.messages import (
    BatchResult,
    Execution,
    VenueOrderEvent,
    VenueOrderState,
)
from celeris.domain.orders import Order
from celeris.domain.values import Side
from celeris.venues.binance import errors


@dataclass
class Placed:
    seq: int
    order: Order
    halted_at_write: bool
    ack: asyncio.Event = field(default_factory=asyncio.Event)
    venue_id: int = 0
    filled: int = 0
    status: str = "NEW"
    reject: bool = False
    qty: int = 0
    price: int | None = None

    def __post_init__(self) -> None:
        self.qty, self.price = self.order.qty_steps, self.order.price_ticks

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def remaining(self) -> int:
        return self.qty - self.filled


@dataclass
class Amendment:
    seq: int
    placed: Placed
    qty: int
    price: int
    halted_at_write: bool
    ack: asyncio.Event = field(default_factory=asyncio.Event)
    reject: bool = False
    done: bool = False


class ScriptedVenue:
    name = "scripted"

    def __init__(self, auto_ack: bool = False) -> None:
        self.auto_ack = auto_ack
        self.placed: list[Placed] = []
        self.positions_steps: dict[str, int] = {}
        self.engine = None  # set by the test: lets the venue record the halt flag at each write
        self._on_event = None
        self._ids = itertools.count(1)
        self._trades = itertools.count(1)
        self.cancels: list[str] = []
        self.amends: list[Amendment] = []
        self.batches: list[str] = []
        """Which batch calls reached it ("place", "amend", "cancel"), in order."""

    # -- the OrderVenue port ----------------------------------------------------------------------
    async def start(self, on_event, on_reconnect) -> None:
        self._on_event = on_event

    async def stop(self) -> None:
        self._on_event = None

    async def place(self, order: Order, on_write=None) -> VenueOrderState:
        placed = Placed(len(self.placed), order, bool(self.engine and self.engine.halted), venue_id=next(self._ids))
        self.placed.append(placed)
        if order.reduce_only:
            pos = self.positions_steps.get(order.symbol, 0)
            if pos == 0 or (pos > 0) == (order.side is Side.BUY):
                placed.status = "EXPIRED"
                raise errors.OrderRejected(-2022, "ReduceOnly Order is rejected.")
        if not self.auto_ack:
            await placed.ack.wait()
        if placed.reject:
            placed.status = "REJECTED"
            raise errors.OrderRejected(-2010, "scripted rejection")
        if order.reduce_only or order.order_type.value == "MARKET":
            pos = self.positions_steps.get(order.symbol, 0)
            qty = min(order.qty_steps, abs(pos)) if order.reduce_only else order.qty_steps
            if qty:
                self.fill(placed, qty, order.price_ticks or 600000)
            if placed.open:
                placed.status = "EXPIRED"
                self._emit(placed, Execution.EXPIRED)
        return VenueOrderState(order.client_order_id, placed.venue_id, placed.status, placed.filled)

    async def amend(self, order: Order, qty_steps: int, price_ticks: int) -> VenueOrderState:
        placed = self._find(order.client_order_id)
        if placed is None or not placed.open:
            raise errors.UnknownOrder(-2013, "Order does not exist.")
        amendment = Amendment(len(self.amends), placed, qty_steps, price_ticks,
                              bool(self.engine and self.engine.halted))
        self.amends.append(amendment)
        if not self.auto_ack:
            await amendment.ack.wait()
        amendment.done = True
        if amendment.reject or not placed.open:
            raise errors.OrderRejected(-5027, "scripted amendment rejection")
        if qty_steps <= placed.filled:
            raise errors.OrderRejected(-4158, "quantity is not above the executed quantity")
        placed.qty, placed.price = qty_steps, price_ticks
        self._emit(placed, Execution.AMENDMENT)
        return VenueOrderState(order.client_order_id, placed.venue_id, placed.status, placed.filled, placed.qty,
                               placed.price)

    async def place_batch(self, orders: list[Order]) -> list[BatchResult]:
        self.batches.append("place")
        results = await asyncio.gather(*(self.place(o) for o in orders), return_exceptions=True)
        return [BatchResult(error=r) if isinstance(r, Exception) else BatchResult(state=r) for r in results]

    async def amend_batch(self, amendments: list[tuple[Order, int, int]]) -> list[BatchResult]:
        self.batches.append("amend")
        results = await asyncio.gather(*(self.amend(o, q, p) for o, q, p in amendments), return_exceptions=True)
        return [BatchResult(error=r) if isinstance(r, Exception) else BatchResult(state=r) for r in results]

    async def cancel_batch(self, symbol: str, client_order_ids: list[str]) -> list[BatchResult]:
        self.batches.append("cancel")
        results = await asyncio.gather(*(self.cancel(symbol, c) for c in client_order_ids), return_exceptions=True)
        return [BatchResult(error=r) if isinstance(r, Exception) else BatchResult(state=r) for r in results]

    async def cancel_algo(self, symbol: str, client_order_id: str) -> VenueOrderState:
        return await self.cancel(symbol, client_order_id)

    async def query_algo(self, symbol: str, client_order_id: str) -> VenueOrderState | None:
        return await self.query(symbol, client_order_id)

    def exposure_if_all_land(self, symbol: str, side: Side) -> int:
        """The position if every order on `side` filled at the largest quantity the venue may give it: its
        terms now, or an amendment it received and has not answered yet."""
        pos = self.positions_steps.get(symbol, 0)
        pending = 0
        for p in self.placed:
            if not p.open or p.order.side is not side or p.order.symbol != symbol or p.order.reduce_only:
                continue
            qty = max([p.qty] + [a.qty for a in self.amends if a.placed is p and not a.done])
            pending += qty - p.filled
        return pos + side.sign * pending

    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrderState:
        self.cancels.append(client_order_id)
        placed = self._find(client_order_id)
        if placed is None or not placed.open:
            raise errors.UnknownOrder(-2011, "Unknown order sent.")
        placed.status = "CANCELED"
        self._emit(placed, Execution.CANCELED)
        return VenueOrderState(client_order_id, placed.venue_id, "CANCELED", placed.filled)

    async def query(self, symbol: str, client_order_id: str) -> VenueOrderState | None:
        placed = self._find(client_order_id)
        if placed is None:
            return None
        return VenueOrderState(client_order_id, placed.venue_id, placed.status, placed.filled, placed.qty,
                               placed.price)

    async def open_orders(self) -> list[VenueOrderEvent]:
        return []

    async def trades(self, symbol: str) -> list[VenueOrderEvent]:
        return []

    async def available_balance(self) -> int | None:
        return None

    async def positions(self) -> dict[str, tuple[int, Fraction]]:
        return {s: (q, Fraction(600000)) for s, q in self.positions_steps.items()}

    # -- what the test does ------------------------------------------------------------------------
    def _find(self, client_order_id: str) -> Placed | None:
        for placed in reversed(self.placed):
            if placed.order.client_order_id == client_order_id:
                return placed
        return None

    def fill(self, placed: Placed, qty: int, price: int) -> None:
        qty = min(qty, placed.remaining)
        if qty <= 0 or not placed.open:
            return
        placed.filled += qty
        placed.status = "FILLED" if placed.remaining == 0 else "PARTIALLY_FILLED"
        symbol = placed.order.symbol
        self.positions_steps[symbol] = self.positions_steps.get(symbol, 0) + placed.order.side.sign * qty
        self._emit(placed, Execution.TRADE, qty, price)

    def _emit(self, placed: Placed, execution: Execution, qty: int = 0, price: int = 0) -> None:
        order = placed.order
        if self._on_event is None:
            return
        self._on_event(VenueOrderEvent(order.symbol, order.client_order_id, placed.venue_id, execution, order.side,
                                       qty, price, next(self._trades) if qty else 0, 0, False, 0, 0,
                                       order.order_type.value, placed.qty, placed.price or 0,
                                       order.reduce_only, placed.status if qty else ""))

    def worst_case_steps(self, symbol: str, side: Side) -> int:
        """What the venue holds if every order it has received on `side` filled (acknowledged or not)."""
        pos = self.positions_steps.get(symbol, 0)
        pending = sum(p.remaining for p in self.placed if p.open and p.order.side is side and p.order.symbol == symbol
                      and not p.order.reduce_only)
        return pos + side.sign * pending
