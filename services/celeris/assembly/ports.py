"""The small ports through which one component reaches another, in both shapes: in the same process (the
object itself, the bus) and across processes (a gRPC client). A builder takes a port and never knows
which shape it got; `celeris up --topology inproc` hands it the local one, a service process the remote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from celeris.domain.messages import BookUpdate, MarkUpdate, TradeUpdate
from celeris.domain.risk import Approved, Denied
from celeris.domain.topics import book_topic, mark_topic, trade_topic


@dataclass
class Built:
    """What a builder returns: the Component, its gRPC servicers, its /health document and what to close."""

    component: Any
    registrars: list[Callable[[Any], None]]
    health: Callable[[], dict[str, Any]]
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    parts: dict[str, Any] = field(default_factory=dict)
    """The engine and its helpers, for the assembly that wires them to others (e.g. the paper venue)."""


# -- market data: books, trades and marks ------------------------------------------------------------
class BusFeed:
    """Market data in the same process: the bus topics it publishes on."""

    def __init__(self, bus: Any, symbols: list[str] | tuple[str, ...]) -> None:
        self.bus, self.symbols = bus, list(symbols)

    def on_book(self, handler: Callable[[BookUpdate], None]) -> None:
        for symbol in self.symbols:
            self.bus.subscribe(book_topic(symbol), handler, hot=True)

    def on_trade(self, handler: Callable[[TradeUpdate], None]) -> None:
        for symbol in self.symbols:
            self.bus.subscribe(trade_topic(symbol), handler, hot=True)

    def on_mark(self, handler: Callable[[MarkUpdate], None]) -> None:
        for symbol in self.symbols:
            self.bus.subscribe(mark_topic(symbol), handler)

    def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RemoteFeed:
    """Market data in another process: its StreamBook, StreamTrades and StreamMarks."""

    def __init__(self, target: str, instruments: dict[str, Any]) -> None:
        self.target, self.instruments = target, instruments
        self.books: list[Callable[[BookUpdate], None]] = []
        self.trades: list[Callable[[TradeUpdate], None]] = []
        self.marks: list[Callable[[MarkUpdate], None]] = []
        self.client: Any = None

    def on_book(self, handler: Callable[[BookUpdate], None]) -> None:
        self.books.append(handler)

    def on_trade(self, handler: Callable[[TradeUpdate], None]) -> None:
        self.trades.append(handler)

    def on_mark(self, handler: Callable[[MarkUpdate], None]) -> None:
        self.marks.append(handler)

    def start(self) -> None:
        from celeris.clients.marketdata import MarketDataClient

        def fan_out(handlers: list[Callable[[Any], None]]) -> Callable[[Any], None] | None:
            if not handlers:
                return None
            return lambda message: [handler(message) for handler in handlers] and None

        self.client = MarketDataClient(self.target, self.instruments, fan_out(self.books) or (lambda _: None),
                                       fan_out(self.trades), on_mark=fan_out(self.marks))
        self.client.start()

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.stop()


# -- execution's pre-trade check by the risk manager ------------------------------------------------
class InProcessRisk:
    """Execution's RiskCheck port, answered by the risk engine in the same process."""

    def __init__(self, risk: Any) -> None:
        self.risk = risk

    async def check(self, request: Any, mark_ticks: int | None) -> Approved | Denied:
        result = self.risk.check_order(request.request_id, request.symbol, request.side, request.qty_steps,
                                       request.price_ticks, request.reduce_only, request.strategy_id)
        return result.outcome


# -- the emergency stop's actions on execution -----------------------------------------------------
class InProcessActions:
    """The emergency stop's actions: our execution engine halts, cancels and flattens through its own
    order path; the venue is only asked to cancel if execution fails."""

    def __init__(self, execution: Any, venue_actions: Any) -> None:
        self.execution = execution
        self.venue = venue_actions

    async def open_order_count(self) -> int:
        return len(self.execution.open_orders())

    async def halt_execution(self, reason: str, flatten: bool) -> Any:
        from celeris.risk.engine import HaltResult

        canceled = await self.execution.halt(reason, "risk-manager", flatten)
        return HaltResult(canceled, self.execution.last_halt_flat)

    async def resume_execution(self, by: str) -> None:
        await self.execution.resume(by)

    async def cancel_all_orders(self) -> int:
        return await self.venue.cancel_all_orders()


class InProcessHalter:
    """The account monitor's halt (on a reconciliation mismatch): the risk manager's emergency stop."""

    def __init__(self, risk: Any) -> None:
        self.risk = risk

    async def halt(self, reason: str) -> None:
        await self.risk.emergency_stop(reason, "account-monitor")
