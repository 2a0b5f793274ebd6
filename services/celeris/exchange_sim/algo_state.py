"""Algo (conditional) orders of the simulated venue as plain data, and their lifecycle as a transition table.

Owns `SimAlgoOrder` (one order of Binance's Algo Order API, algoType CONDITIONAL, in ticks and steps) and
`AlgoStatus` with the only moves the venue makes: NEW -> TRIGGERING (its trigger was reached) -> TRIGGERED
(the actual order is in the matching engine) -> FINISHED (that order filled, expired or was cancelled);
NEW -> CANCELED (by the client), NEW -> EXPIRED (by the venue: a GTD order past its goodTillDate) and
TRIGGERING -> REJECTED (the matching engine refused the actual order: reduce-only, margin). Any other move
raises `InvalidAlgoTransition`. Nothing here decides when an order triggers (exchange_sim/algo.py does).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction

from celeris.domain.values import Side
from celeris.exchange_sim.contract import OrderType, TimeInForce


class AlgoStatus(enum.Enum):
    """algoStatus / ALGO_UPDATE "X", the wire's own spelling."""

    NEW = "NEW"
    TRIGGERING = "TRIGGERING"
    TRIGGERED = "TRIGGERED"
    FINISHED = "FINISHED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_open(self) -> bool:
        """Still working at the algo service: listed by openAlgoOrders, cancellable."""
        return self in (AlgoStatus.NEW, AlgoStatus.TRIGGERING)


class InvalidAlgoTransition(Exception):
    """A move the venue never makes, e.g. CANCELED -> TRIGGERING: a bug in the simulator, never a refusal."""


TRANSITIONS: dict[AlgoStatus, frozenset[AlgoStatus]] = {
    AlgoStatus.NEW: frozenset({AlgoStatus.TRIGGERING, AlgoStatus.CANCELED, AlgoStatus.EXPIRED}),
    AlgoStatus.TRIGGERING: frozenset({AlgoStatus.TRIGGERED, AlgoStatus.REJECTED}),
    AlgoStatus.TRIGGERED: frozenset({AlgoStatus.FINISHED}),
    AlgoStatus.FINISHED: frozenset(),
    AlgoStatus.CANCELED: frozenset(),
    AlgoStatus.REJECTED: frozenset(),
    AlgoStatus.EXPIRED: frozenset(),
}

ACTUAL_TYPES = {
    OrderType.STOP: OrderType.LIMIT, OrderType.TAKE_PROFIT: OrderType.LIMIT,
    OrderType.STOP_MARKET: OrderType.MARKET, OrderType.TAKE_PROFIT_MARKET: OrderType.MARKET,
    OrderType.TRAILING_STOP_MARKET: OrderType.MARKET,
}
"""The type of the order a triggered algo order places in the matching engine (ALGO_UPDATE "act")."""


@dataclass
class SimAlgoOrder:
    """One conditional order at the algo service. Field names the trigger logic reads (side, working_type,
    activation_ticks, callback_rate, trail_extreme_ticks) match SimOrder's, so triggers.py serves both."""

    algo_id: int
    client_algo_id: str
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    qty_steps: int
    """0 for closePosition orders: their quantity is the position's when they trigger."""
    price_ticks: int
    """Limit price of STOP / TAKE_PROFIT (0 for the market types, or when priceMatch sets it)."""
    trigger_ticks: int
    working_type: str = "CONTRACT_PRICE"
    price_match: str = "NONE"
    close_position: bool = False
    price_protect: bool = False
    reduce_only: bool = False
    activation_ticks: int = 0
    callback_rate: Fraction | None = None
    trail_extreme_ticks: int = 0
    stp_mode: str = "NONE"
    good_till_ms: int = 0
    status: AlgoStatus = AlgoStatus.NEW
    actual_order_id: int | None = None
    create_ms: int = 0
    update_ms: int = 0
    trigger_ms: int = 0
    reject_reason: str = ""
    """ALGO_UPDATE "rm": why the matching engine refused the actual order (REJECTED)."""

    def move(self, to: AlgoStatus, now_ms: int) -> None:
        """The one way a status changes; raises InvalidAlgoTransition for a move the venue never makes."""
        if to not in TRANSITIONS[self.status]:
            raise InvalidAlgoTransition(f"algo order {self.algo_id}: {self.status.value} -> {to.value}")
        self.status = to
        self.update_ms = now_ms

    @property
    def actual_type(self) -> OrderType:
        return ACTUAL_TYPES[self.order_type]
