"""Fakes for driving SDK strategies through the strategy engine: a gateway the test controls (it holds
each submit until released, answers cancels and amendments, records every request exactly), books and
fills, and a harness that builds an engine with registered strategy classes on a TestClock."""

from __future__ import annotations

import asyncio
from typing import Any

from celeris.domain.book import BookState
from celeris.domain.clock import TestClock
from celeris.domain.messages import BookUpdate, Fill, Outcome, RejectCode, Rejection, client_order_id_for
from celeris.domain.modes import Mode
from celeris.domain.orders import Order, OrderEvent
from celeris.strategy.engine import StrategyConfig, StrategyEngine
from celeris.strategy.plugins import PluginRegistry


class ControlledGateway:
    """Execution as the engine sees it. `hold=True`: every submit waits until `ack(i)` (or `ack_all`)."""

    def __init__(self, hold: bool = False) -> None:
        self.hold = hold
        self.submitted: list[Any] = []
        self.canceled: list[Any] = []
        self.amended: list[Any] = []
        self.orders: dict[str, Order] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.refuse_next = ""

    async def submit(self, request):
        # Execution refuses a client order id it cannot derive from the request id and the owner.
        assert request.client_order_id == client_order_id_for(request.request_id, request.strategy_id), request
        self.submitted.append(request)
        order = Order(request.client_order_id, request.symbol, request.side, request.order_type, request.qty_steps,
                      request.price_ticks, request.time_in_force, request.reduce_only, strategy_id=request.strategy_id)
        order.apply(OrderEvent.SUBMIT)
        self.orders[request.client_order_id] = order
        if self.refuse_next:
            reason, self.refuse_next = self.refuse_next, ""
            order.apply(OrderEvent.REJECT)
            return Outcome(request.request_id, False, order, Rejection(RejectCode.VENUE_REJECTED, reason))
        if self.hold:
            gate = self.gates[request.client_order_id] = asyncio.Event()
            await gate.wait()
        if order.is_open:
            order.apply(OrderEvent.ACCEPT)
        return Outcome(request.request_id, True, order)

    def ack(self, client_order_id: str) -> None:
        self.gates[client_order_id].set()

    def held(self) -> list[str]:
        return [cid for cid, gate in self.gates.items() if not gate.is_set()]

    async def cancel(self, request_id, symbol, client_order_id="", venue_order_id=0):
        self.canceled.append(client_order_id)
        order = self.orders[client_order_id]
        if not order.is_open:
            return Outcome(request_id, False, order, Rejection(RejectCode.NOT_CANCELABLE, "not open"))
        order.apply(OrderEvent.CANCEL)
        return Outcome(request_id, True, order)

    async def amend(self, request):
        self.amended.append(request)
        order = self.orders[request.client_order_id]
        order.request_amend(request.qty_steps, request.price_ticks)
        order.amended(request.qty_steps, request.price_ticks)
        return Outcome(request.request_id, True, order)

    def fill(self, engine: StrategyEngine, client_order_id: str, qty_steps: int, price_ticks: int | None = None,
             fee: int = 0, trade_id: int = 0) -> Fill:
        """The venue filled part of an order: execution's fill as the engine receives it."""
        order = self.orders[client_order_id]
        price = order.price_ticks if price_ticks is None else price_ticks
        order.fill(qty_steps, price)
        fill = Fill(order.symbol, client_order_id, 1, trade_id, order.side, price, qty_steps, fee, True, 0,
                    order.strategy_id, "live", engine.clock.now_ns())
        engine.on_fill(fill)
        if not order.is_open:
            engine.on_order_update(order)
        return fill


def book(seq: int, bid: int = 600000, ask: int = 600010, levels: int = 1, symbol: str = "BTCUSDT") -> BookUpdate:
    bids = [(bid - i, 1000 + i) for i in range(levels)]
    asks = [(ask + i, 2000 + i) for i in range(levels)]
    return BookUpdate(symbol, seq, BookState.LIVE, True, bids, asks, seq, 0, 0)


def engine_with(btcusdt, *strategies: tuple[str, type, dict], gateway=None, clock=None, mode=Mode.LIVE,
                order_size="0.010", **kw):
    """An engine running `(name, class, params)` strategies on BTCUSDT."""
    registry = PluginRegistry()
    for _, cls, _ in strategies:
        registry.register(cls.name, cls)
    configs = [StrategyConfig(n, cls.name, "BTCUSDT", order_size, params) for n, cls, params in strategies]
    return StrategyEngine(configs, {"BTCUSDT": btcusdt}, clock or TestClock(10**18), gateway or ControlledGateway(),
                          lambda t, m: None, mode=mode, registry=registry, **kw)


async def settle(turns: int = 20) -> None:
    """Let the engine's sends, cancels and amendments run (a few loop turns; held submits stay held)."""
    for _ in range(turns):
        await asyncio.sleep(0)
