"""The values of the strategy SDK (celeris.domain.sdk): what an SDK strategy is told and what it asks for.

Owns the market data views a strategy receives (`BookView` at the depth it declared, `TradeTick`,
`MarkTick` with the funding rate and time), its own orders as it sees them (`OwnOrder`, their
`OrderState` table and the `OrderUpdate` of each change), its own fills (`OwnFill`) and PnL (`Pnl`), the
intents the engine drains after each callback (`PlaceIntent`, `CancelIntent`, `AmendIntent`, and
`StartAlgoIntent`, `CancelAlgoIntent` for execution algorithms), and the
typed parameters (`param()` bounds and `parse_params`, which refuses a bad value with one line naming the
field). Prices are ticks, quantities steps, money integer units; Decimal only for the mark and funding
figures a strategy reads (exact, never float).
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from celeris.domain.algo_orders import ParentOrder
from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.values import Side

Level = tuple[int, int]


class OrderRefused(ValueError):
    """An action the SDK refuses at once (off the tick/step grid, an unknown order, a float price): raised
    to the strategy in its callback, so the mistake is seen where it is made."""


class OrderState(enum.Enum):
    PENDING = "PENDING"  # placed by the strategy, not yet acknowledged
    WORKING = "WORKING"
    PENDING_CANCEL = "PENDING_CANCEL"
    PENDING_AMEND = "PENDING_AMEND"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_open(self) -> bool:
        return self not in _CLOSED


_CLOSED = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED})

_S = OrderState
TRANSITIONS: frozenset[tuple[OrderState, OrderState]] = frozenset({
    (_S.PENDING, _S.WORKING), (_S.PENDING, _S.PENDING_CANCEL), (_S.PENDING, _S.FILLED),
    (_S.PENDING, _S.CANCELED), (_S.PENDING, _S.REJECTED), (_S.PENDING, _S.EXPIRED),
    (_S.WORKING, _S.PENDING_CANCEL), (_S.WORKING, _S.PENDING_AMEND), (_S.WORKING, _S.FILLED),
    (_S.WORKING, _S.CANCELED), (_S.WORKING, _S.EXPIRED), (_S.WORKING, _S.WORKING),
    (_S.PENDING_AMEND, _S.WORKING), (_S.PENDING_AMEND, _S.PENDING_CANCEL), (_S.PENDING_AMEND, _S.FILLED),
    (_S.PENDING_AMEND, _S.CANCELED), (_S.PENDING_AMEND, _S.EXPIRED),
    (_S.PENDING_CANCEL, _S.WORKING),  # a refused cancel: the order still works
    (_S.PENDING_CANCEL, _S.FILLED), (_S.PENDING_CANCEL, _S.CANCELED), (_S.PENDING_CANCEL, _S.EXPIRED),
    (_S.PENDING_CANCEL, _S.REJECTED),  # cancelled before its acknowledgement, and the placement was refused
    # Execution may answer "accepted" while the venue's answer is pending, and the venue refuse it after.
    (_S.WORKING, _S.REJECTED), (_S.PENDING_AMEND, _S.REJECTED),
})
"""The legal moves of an order as the strategy sees it (the engine's view of execution's lifecycle)."""


class InvalidOrderMove(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class BookView:
    """The book at the depth the strategy declared (best first), when it changed."""

    symbol: str
    ts_event_ns: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]

    @property
    def best_bid_ticks(self) -> int:
        return self.bids[0][0]

    @property
    def best_ask_ticks(self) -> int:
        return self.asks[0][0]

    @property
    def spread_ticks(self) -> int:
        return self.asks[0][0] - self.bids[0][0]


@dataclass(frozen=True, slots=True)
class TradeTick:
    symbol: str
    trade_id: int
    price_ticks: int
    qty_steps: int
    aggressor: Side
    """The taker's side (BUY: a buyer lifted the ask)."""
    ts_event_ns: int


@dataclass(frozen=True, slots=True)
class MarkTick:
    symbol: str
    mark_price: Decimal
    index_price: Decimal
    funding_rate: Decimal
    """Per funding interval, as the venue quotes it (0.0001 = 0.01 %)."""
    next_funding_ns: int
    ts_event_ns: int


@dataclass(frozen=True, slots=True)
class OwnOrder:
    """One of the strategy's own orders as it stands now (a new value on every change)."""

    client_order_id: str
    symbol: str
    side: Side
    qty_steps: int
    price_ticks: int | None
    """None: a market order."""
    time_in_force: TimeInForce
    post_only: bool
    reduce_only: bool
    state: OrderState = OrderState.PENDING
    filled_steps: int = 0
    ts_created_ns: int = 0
    reason: str = ""
    """Why it was refused, cancelled or an action on it failed ('' when nothing to say)."""

    @property
    def order_type(self) -> OrderType:
        return OrderType.MARKET if self.price_ticks is None else OrderType.LIMIT

    @property
    def remaining_steps(self) -> int:
        return max(0, self.qty_steps - self.filled_steps)

    @property
    def is_open(self) -> bool:
        return self.state.is_open

    def moved(self, state: OrderState, **changes: Any) -> OwnOrder:
        if (self.state, state) not in TRANSITIONS:
            raise InvalidOrderMove(f"order {self.client_order_id}: {self.state.value} -> {state.value} is illegal")
        return dataclasses.replace(self, state=state, **changes)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A change of one of the strategy's orders: `event` is what happened (accepted, rejected, canceled,
    amended, amend_rejected, cancel_rejected, filled, expired), `order` how it stands after it."""

    event: str
    order: OwnOrder


@dataclass(frozen=True, slots=True)
class OwnFill:
    client_order_id: str
    symbol: str
    side: Side
    price_ticks: int
    qty_steps: int
    fee: int
    """Money units (USDT) the fill cost; 0 for a fee paid in BNB."""
    is_maker: bool
    ts_event_ns: int


@dataclass(frozen=True, slots=True)
class Pnl:
    """The strategy's own PnL on one symbol from its own fills, money units (10**-8 USDT)."""

    realized: int
    fees: int
    unrealized: int

    @property
    def net(self) -> int:
        return self.realized - self.fees + self.unrealized


# -- intents: what the engine drains after each callback ---------------------------------------------
@dataclass(frozen=True, slots=True)
class PlaceIntent:
    order: OwnOrder
    request_id: str
    """Execution derives the client order id from it and the owner (celeris.domain.messages.client_order_id_for)."""


@dataclass(frozen=True, slots=True)
class CancelIntent:
    client_order_id: str
    symbol: str


@dataclass(frozen=True, slots=True)
class AmendIntent:
    client_order_id: str
    symbol: str
    qty_steps: int
    price_ticks: int
    old_qty_steps: int
    old_price_ticks: int


@dataclass(frozen=True, slots=True)
class StartAlgoIntent:
    algo_id: str
    """Chosen by the strategy's context before the start (deterministic: name, clock, sequence)."""
    parent: ParentOrder


@dataclass(frozen=True, slots=True)
class CancelAlgoIntent:
    algo_id: str


Intent = PlaceIntent | CancelIntent | AmendIntent | StartAlgoIntent | CancelAlgoIntent


@dataclass(slots=True)
class Timer:
    interval_ns: int
    next_ns: int


# -- typed parameters -----------------------------------------------------------------------------
def param(default: Any = dataclasses.MISSING, *, ge: Any = None, gt: Any = None, le: Any = None,
          lt: Any = None, doc: str = "") -> Any:
    """A Params field with bounds: `levels: int = param(3, ge=1, le=20, doc="levels a side")`."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "doc": doc}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class NoParams:
    """A strategy without parameters."""


def parse_params(cls: type, raw: Mapping[str, Any], who: str = "strategy") -> Any:
    """Build the strategy's Params from the configuration's values, or raise ValueError with one line
    naming the field: an unknown key, a missing required one, a value of the wrong type or out of bounds.
    Types: int (not bool), bool, str, Decimal (a string or an int; a float only through its shortest
    repr), float (an int or a float), and tuples of those written as lists."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{who}: Params must be a dataclass")
    if not isinstance(raw, Mapping):
        raise ValueError(f"{who}: params must be a mapping, not {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ValueError(f"{who}: params.{unknown[0]}: unknown parameter (known: {', '.join(fields) or 'none'})")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{who}: params.{name}: required")
            continue
        try:
            value = _coerce(hints[name], raw[name])
            _bounds(value, f.metadata)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{who}: params.{name}: {exc}") from None
        values[name] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # the strategy's own __post_init__ checks
        raise ValueError(f"{who}: params: {exc}") from None


def _coerce(kind: Any, value: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{value!r} is not a list")
        inner = typing.get_args(kind)[0]
        return tuple(_coerce(inner, v) for v in value)
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{value!r} is not true or false")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{value!r} is not an integer")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{value!r} is not a number")
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a finite number")
        return float(value)
    if kind is Decimal:
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
            raise TypeError(f"{value!r} is not a decimal")
        try:
            out = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal") from None
        if not out.is_finite():
            raise ValueError(f"{value!r} is not a finite decimal")
        return out
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(f"{value!r} is not a string")
        return value
    raise TypeError(f"unsupported parameter type {kind!r}")


def _bounds(value: Any, meta: Mapping[str, Any]) -> None:
    if isinstance(value, (bool, str, tuple)):
        return
    for key, ok, word in (("ge", lambda v, b: v >= b, "below the minimum"), ("gt", lambda v, b: v > b, "not above"),
                          ("le", lambda v, b: v <= b, "above the maximum"), ("lt", lambda v, b: v < b, "not below")):
        bound = meta.get(key)
        if bound is not None and not ok(value, type(value)(bound) if isinstance(value, Decimal) else bound):
            raise ValueError(f"{value} is {word} {bound}")
