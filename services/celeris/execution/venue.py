"""The order venue port: what execution needs from a venue (live Binance or the paper venue).

`OrderVenue` is what the engine needs from any venue: place, cancel, query by client order id, list open
orders, list recent fills, and a stream of `VenueOrderEvent`s. celeris.venues.binance.orders implements
it for Binance (signed REST orders, the user data stream); execution/paper.py for simulation.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Awaitable, Callable, Protocol

from celeris.domain.messages import VenueOrderEvent, VenueOrderState
from celeris.domain.orders import Order

OnEvent = Callable[[VenueOrderEvent], None]
OnReconnect = Callable[[], Awaitable[None]]


class OrderVenue(Protocol):
    name: str

    async def start(self, on_event: OnEvent, on_reconnect: OnReconnect) -> None: ...
    async def stop(self) -> None: ...
    async def place(self, order: Order, on_write: Callable[[int], None] | None = None) -> VenueOrderState: ...
    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrderState: ...
    async def query(self, symbol: str, client_order_id: str) -> VenueOrderState | None: ...
    async def open_orders(self) -> list[VenueOrderEvent]: ...
    async def trades(self, symbol: str) -> list[VenueOrderEvent]: ...
    async def available_balance(self) -> int | None: ...
    async def positions(self) -> dict[str, tuple[int, Fraction]]:
        """symbol -> (signed qty in steps, entry price in ticks)."""
        ...
