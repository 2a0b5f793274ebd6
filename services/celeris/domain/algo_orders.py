"""The parent order an execution algorithm works, and the child actions it asks for.

Owns the values a strategy hands over (`ParentOrder` with its algorithm's parameters: TWAP, VWAP, POV,
iceberg; how children are priced) with their validation, and the actions the machines of
celeris.domain.algos return (`PlaceChild`, `CancelChild`). Integer steps, ticks and nanoseconds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.values import Side

BPS_PER_ONE = 10_000


class ChildStyle(enum.Enum):
    """How a child is priced."""

    CROSS = "cross"
    """LIMIT IOC at the far touch (capped at the parent's limit): takes what is there now, never rests."""
    PASSIVE = "passive"
    """LIMIT GTX (post-only) at the near touch (or the limit, if that is further): waits in the queue."""
    MARKET = "market"
    """MARKET: walks the book (only for a parent without a limit price)."""


@dataclass(frozen=True, slots=True)
class TwapParams:
    slices: int
    """Equal slices, one due every (end - start) / slices."""
    style: ChildStyle = ChildStyle.CROSS


@dataclass(frozen=True, slots=True)
class VwapParams:
    profile: tuple[int, ...]
    """Volume per equal time bucket of the horizon (any integer unit: the weights are their ratios)."""
    style: ChildStyle = ChildStyle.CROSS


@dataclass(frozen=True, slots=True)
class PovParams:
    rate_bps: int
    """Participation: committed <= rate_bps / 10_000 of the market volume traded since the start."""
    max_child_steps: int = 0
    """The largest child (0 = the parent's remainder)."""
    min_child_steps: int = 0
    """No child below this (on top of the instrument's minimum): small trades accumulate first."""
    style: ChildStyle = ChildStyle.CROSS


@dataclass(frozen=True, slots=True)
class IcebergParams:
    display_steps: int
    """The most ever shown: one LIMIT GTC child at the parent's limit price, replenished when it ends."""


AlgoParams = TwapParams | VwapParams | PovParams | IcebergParams


@dataclass(frozen=True, slots=True)
class ParentOrder:
    symbol: str
    side: Side
    qty_steps: int
    start_ns: int
    end_ns: int
    """The horizon's end (0 = none: POV and iceberg run until filled or cancelled; TWAP/VWAP need one)."""
    params: AlgoParams
    limit_price_ticks: int | None = None
    """No child buys above (sells below) it; an iceberg rests at it."""
    reduce_only: bool = False
    max_refusals: int = 3
    retry_backoff_ns: int = 1_000_000_000
    """After a refusal, a refused cancel or a child that ended short without being cancelled by us (an IOC
    that found nothing), nothing is sent again for this long: no loop of orders on every book update."""

    def __post_init__(self) -> None:
        if self.qty_steps <= 0:
            raise ValueError("a parent order needs a positive quantity")
        if self.end_ns and self.end_ns <= self.start_ns:
            raise ValueError("the horizon ends before it starts")
        if self.limit_price_ticks is not None and self.limit_price_ticks <= 0:
            raise ValueError("a limit price is positive")
        if self.max_refusals < 1 or self.retry_backoff_ns < 0:
            raise ValueError("max_refusals >= 1 and retry_backoff_ns >= 0")
        p = self.params
        if isinstance(p, (TwapParams, VwapParams)) and not self.end_ns:
            raise ValueError("TWAP and VWAP need a horizon (end_ns)")
        if isinstance(p, TwapParams) and p.slices < 1:
            raise ValueError("TWAP needs at least one slice")
        if isinstance(p, VwapParams) and (not p.profile or min(p.profile) < 0 or sum(p.profile) <= 0):
            raise ValueError("a VWAP profile needs non-negative volumes with some volume in it")
        if isinstance(p, PovParams) and not (0 < p.rate_bps <= BPS_PER_ONE and p.min_child_steps >= 0 and (
                p.max_child_steps == 0 or p.max_child_steps >= p.min_child_steps)):
            raise ValueError("POV rate is 1..10000 bps, 0 <= min child <= max child (0 = no max)")
        if isinstance(p, IcebergParams) and (p.display_steps <= 0 or self.limit_price_ticks is None):
            raise ValueError("an iceberg needs a positive display quantity and a limit price")
        style = getattr(p, "style", None)
        if style is ChildStyle.MARKET and self.limit_price_ticks is not None:
            raise ValueError("market children cannot respect a limit price")


# -- what an algorithm asks for ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PlaceChild:
    child_id: str
    side: Side
    qty_steps: int
    price_ticks: int | None
    order_type: OrderType
    time_in_force: TimeInForce
    reduce_only: bool


@dataclass(frozen=True, slots=True)
class CancelChild:
    child_id: str


Action = PlaceChild | CancelChild
