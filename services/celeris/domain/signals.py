"""Trading signals and the `Strategy` protocol every strategy plugin implements.

Owns what a strategy may say (a `Signal`: symbol, side, strength 0..1, urgency, optional price hint,
reason) and what it is told (`BookTop` market data, `FillReport` fills, position updates), and how a
signal becomes an order (`plan_order`). Strength is a
confidence, not money, so it is a plain number; prices stay in ticks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, runtime_checkable

from celeris.domain.instruments import Instrument, OrderType, TimeInForce
from celeris.domain.values import Side


class Urgency(enum.Enum):
    PASSIVE = "passive"  # join the queue: post-only at the touch
    NORMAL = "normal"
    AGGRESSIVE = "aggressive"  # may take liquidity


@dataclass(frozen=True, slots=True)
class Signal:
    symbol: str
    side: Side
    strength: float
    strategy: str
    ts_event_ns: int
    urgency: Urgency = Urgency.NORMAL
    price_hint_ticks: int | None = None
    reason: str = ""
    qty_steps: int | None = None
    """An exact size (steps), instead of the configured order size times strength."""
    reduce_only: bool = False
    """Only reduces the strategy's position (an exit): it never adds exposure."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"signal strength {self.strength} outside 0..1")
        if not self.symbol:
            raise ValueError("signal needs a symbol")


@dataclass(frozen=True, slots=True)
class BookTop:
    """The market data a strategy sees on each book update: top of book and recent trade flow."""

    symbol: str
    ts_event_ns: int
    bid_ticks: int
    bid_steps: int
    ask_ticks: int
    ask_steps: int
    last_trade_ticks: int | None = None
    net_taker_steps: int = 0
    """Taker buy minus taker sell volume over the engine's trade-flow window."""


@dataclass(frozen=True, slots=True)
class FillReport:
    symbol: str
    client_order_id: str
    side: Side
    qty_steps: int
    price_ticks: int
    fee: int
    is_maker: bool
    ts_event_ns: int
    strategy: str = ""


@dataclass(frozen=True, slots=True)
class PositionReport:
    symbol: str
    qty_steps: int
    entry_price: str
    unrealized_pnl: int
    ts_event_ns: int


@runtime_checkable
class Strategy(Protocol):
    """A strategy plugin. Calls come from one engine task; a strategy never blocks or does I/O."""

    name: str

    def initialize(self, config: Mapping[str, Any]) -> None: ...

    def on_market_data(self, data: BookTop) -> list[Signal]: ...

    def on_order_fill(self, fill: FillReport) -> None: ...

    def on_position_update(self, position: PositionReport) -> None: ...

    def get_state(self) -> Mapping[str, Any]: ...


def exit_signal(data: BookTop, position_steps: int, strategy: str, why: str) -> Signal:
    """Close a strategy's whole position: reduce-only and taking liquidity, so it can never flip it."""
    side = Side.SELL if position_steps > 0 else Side.BUY
    return Signal(data.symbol, side, 1.0, strategy, data.ts_event_ns, Urgency.AGGRESSIVE,
                  data.bid_ticks if side is Side.SELL else data.ask_ticks, f"exit: {why}",
                  qty_steps=abs(position_steps), reduce_only=True)


@dataclass(frozen=True)
class OrderPlan:
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    qty_steps: int
    price_ticks: int | None


def plan_order(signal: Signal, top: BookTop, ins: Instrument, order_size_steps: int) -> OrderPlan | None:
    """The order a signal asks for, or None when it rounds to nothing tradable."""
    if signal.qty_steps is not None:
        qty = signal.qty_steps
        if qty <= 0 or qty > ins.max_qty_steps:
            return None
    else:
        qty = int(order_size_steps * signal.strength)
        qty = max(qty, ins.min_qty_steps)
    if signal.urgency is Urgency.AGGRESSIVE:
        price = top.ask_ticks if signal.side is Side.BUY else top.bid_ticks
        tif = TimeInForce.IOC
    else:
        touch = top.bid_ticks if signal.side is Side.BUY else top.ask_ticks
        price = signal.price_hint_ticks if signal.price_hint_ticks is not None else touch
        # Post-only must not cross: never above the ask to buy, never below the bid to sell.
        price = min(price, top.ask_ticks - 1) if signal.side is Side.BUY else max(price, top.bid_ticks + 1)
        tif = TimeInForce.GTX
    if price <= 0:
        return None
    if ins.min_notional and ins.notional(price, qty) < ins.min_notional and not signal.reduce_only:
        unit = ins.notional(price, 1)
        qty = -(-ins.min_notional // unit) if unit else qty
        while ins.notional(price, qty) < ins.min_notional:  # rounding of the unit notional
            qty += 1
    if qty > ins.max_qty_steps:
        return None
    return OrderPlan(signal.side, OrderType.LIMIT, tif, qty, price)
