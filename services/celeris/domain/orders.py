"""The order lifecycle: a transition table, and the `Order` record that obeys it.

Owns order states and events and the only legal moves between them. Every component that tracks an
order (execution, the paper venue, the account monitor) goes through `Order.apply`, so an illegal move,
such as a fill on a cancelled order or a second terminal state, raises `InvalidTransition` instead of
silently corrupting state.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.values import Side


class OrderStatus(enum.Enum):
    NEW = "NEW"  # created locally, not yet persisted for sending
    PENDING_SUBMIT = "PENDING_SUBMIT"  # persisted; the request is (or may be) on its way
    SUBMITTED = "SUBMITTED"  # acknowledged by the venue, resting
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"  # cancel requested, not yet confirmed
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        return not self.is_terminal


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


class OrderEvent(enum.Enum):
    SUBMIT = "submit"
    ACCEPT = "accept"
    REJECT = "reject"
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    CANCEL_REQUEST = "cancel_request"
    CANCEL_REJECT = "cancel_reject"
    CANCEL = "cancel"
    EXPIRE = "expire"


S, E = OrderStatus, OrderEvent

TRANSITIONS: dict[tuple[OrderStatus, OrderEvent], OrderStatus] = {
    (S.NEW, E.SUBMIT): S.PENDING_SUBMIT,
    (S.NEW, E.REJECT): S.REJECTED,  # refused by local validation
    (S.PENDING_SUBMIT, E.ACCEPT): S.SUBMITTED,
    (S.PENDING_SUBMIT, E.REJECT): S.REJECTED,
    # A fill or cancel can overtake the REST acknowledgement on the user data stream.
    (S.PENDING_SUBMIT, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PENDING_SUBMIT, E.FILL): S.FILLED,
    (S.PENDING_SUBMIT, E.CANCEL): S.CANCELED,
    (S.PENDING_SUBMIT, E.EXPIRE): S.EXPIRED,
    (S.SUBMITTED, E.ACCEPT): S.SUBMITTED,  # duplicate acknowledgement (REST + stream) is harmless
    (S.SUBMITTED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.SUBMITTED, E.FILL): S.FILLED,
    (S.SUBMITTED, E.CANCEL_REQUEST): S.PENDING_CANCEL,
    (S.SUBMITTED, E.CANCEL): S.CANCELED,
    (S.SUBMITTED, E.EXPIRE): S.EXPIRED,
    (S.PARTIALLY_FILLED, E.ACCEPT): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILL): S.FILLED,
    (S.PARTIALLY_FILLED, E.CANCEL_REQUEST): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, E.CANCEL): S.CANCELED,
    (S.PARTIALLY_FILLED, E.EXPIRE): S.EXPIRED,
    (S.PENDING_CANCEL, E.PARTIAL_FILL): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, E.FILL): S.FILLED,
    (S.PENDING_CANCEL, E.CANCEL): S.CANCELED,
    (S.PENDING_CANCEL, E.EXPIRE): S.EXPIRED,
    (S.PENDING_CANCEL, E.CANCEL_REQUEST): S.PENDING_CANCEL,
    # A refused cancel returns the order to where it was; `Order.apply` picks which by its fills.
    (S.PENDING_CANCEL, E.CANCEL_REJECT): S.SUBMITTED,
}


class InvalidTransition(RuntimeError):
    """An event that the order's current state does not allow."""

    def __init__(self, status: OrderStatus, event: OrderEvent, client_order_id: str = "") -> None:
        super().__init__(f"order {client_order_id or '?'}: {event.value} is illegal in {status.value}")
        self.status = status
        self.event = event


class Overfill(RuntimeError):
    """A fill that would take an order beyond its quantity."""


def transition(status: OrderStatus, event: OrderEvent) -> OrderStatus:
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise InvalidTransition(status, event) from None


CLIENT_ORDER_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


def valid_client_order_id(value: str) -> bool:
    """The venue's newClientOrderId rule."""
    return CLIENT_ORDER_ID_RE.fullmatch(value) is not None


@dataclass(slots=True)
class Order:
    """One order as we track it. Prices in ticks, quantities in steps, quote amounts exact."""

    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty_steps: int
    price_ticks: int | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    stop_price_ticks: int | None = None
    strategy_id: str = ""
    status: OrderStatus = OrderStatus.NEW
    venue_order_id: int | None = None
    filled_steps: int = 0
    filled_quote: int = 0
    """Sum of fill price_ticks * qty_steps (exact; the average price is filled_quote / filled_steps)."""
    reject_reason: str = ""
    ts_created_ns: int = 0
    ts_updated_ns: int = 0
    history: list[tuple[int, OrderEvent, OrderStatus]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not valid_client_order_id(self.client_order_id):
            raise ValueError(f"invalid client order id {self.client_order_id!r}")
        if self.qty_steps <= 0:
            raise ValueError("order quantity must be positive")

    def apply(self, event: OrderEvent, ts_ns: int = 0) -> OrderStatus:
        """Move along the table; raises InvalidTransition for an illegal move."""
        try:
            target = TRANSITIONS[(self.status, event)]
        except KeyError:
            raise InvalidTransition(self.status, event, self.client_order_id) from None
        if event is OrderEvent.CANCEL_REJECT and self.filled_steps:
            target = OrderStatus.PARTIALLY_FILLED
        self.status = target
        self.ts_updated_ns = ts_ns
        self.history.append((ts_ns, event, target))
        return target

    def fill(self, qty_steps: int, price_ticks: int, ts_ns: int = 0) -> OrderStatus:
        """Record a fill; the event (partial or full) follows from the quantities."""
        if qty_steps <= 0:
            raise ValueError("fill quantity must be positive")
        if self.filled_steps + qty_steps > self.qty_steps:
            raise Overfill(f"order {self.client_order_id}: fill of {qty_steps} steps exceeds the "
                           f"{self.remaining_steps} remaining")
        complete = self.filled_steps + qty_steps == self.qty_steps
        status = self.apply(OrderEvent.FILL if complete else OrderEvent.PARTIAL_FILL, ts_ns)
        self.filled_steps += qty_steps
        self.filled_quote += qty_steps * price_ticks
        return status

    @property
    def remaining_steps(self) -> int:
        return self.qty_steps - self.filled_steps

    @property
    def is_open(self) -> bool:
        return self.status.is_open
