"""The order lifecycle: a transition table, and the `Order` record that obeys it.

Owns order states and events and the only legal moves between them. Every component that tracks an
order (execution, the paper venue, the account monitor) goes through `Order.apply`, so an illegal move,
such as a fill on a cancelled order or a second terminal state, raises `InvalidTransition` instead of
silently corrupting state.

An amendment (the venue's modify: new price and quantity, same order) is a lifecycle step too:
AMEND_REQUEST moves a working order to PENDING_AMEND, where the old and the new terms both count as
possible (a fill may race the amendment); AMENDED adopts the new terms, AMEND_REJECT keeps the old ones.
A conditional or trailing order lives at the venue's Algo Order API (`is_algo`, `algo_id`) until it
triggers (TRIGGER: the actual order's id becomes `venue_order_id`, and that order's fills fill this one).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from celeris.domain.instruments import (
    OrderType,
    PriceMatch,
    SelfTradePrevention,
    TimeInForce,
    WorkingType,
)
from celeris.domain.values import Side


class OrderStatus(enum.Enum):
    NEW = "NEW"  # created locally, not yet persisted for sending
    PENDING_SUBMIT = "PENDING_SUBMIT"  # persisted; the request is (or may be) on its way
    SUBMITTED = "SUBMITTED"  # acknowledged by the venue, resting
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"  # cancel requested, not yet confirmed
    PENDING_AMEND = "PENDING_AMEND"  # amendment requested, not yet confirmed (old and new terms both live)
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
    AMEND_REQUEST = "amend_request"
    AMENDED = "amended"
    AMEND_REJECT = "amend_reject"
    TRIGGER = "trigger"  # a conditional (algo) order's trigger fired: the actual order now works


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
    # Amendments: one at a time; `Order.apply` picks SUBMITTED / PARTIALLY_FILLED / FILLED by the fills.
    (S.SUBMITTED, E.AMEND_REQUEST): S.PENDING_AMEND,
    (S.PARTIALLY_FILLED, E.AMEND_REQUEST): S.PENDING_AMEND,
    (S.SUBMITTED, E.AMENDED): S.SUBMITTED,  # amended elsewhere (the venue's UI): the stream says so
    (S.PARTIALLY_FILLED, E.AMENDED): S.PARTIALLY_FILLED,
    (S.PENDING_AMEND, E.AMENDED): S.SUBMITTED,
    (S.PENDING_AMEND, E.AMEND_REJECT): S.SUBMITTED,
    (S.PENDING_AMEND, E.ACCEPT): S.PENDING_AMEND,
    (S.PENDING_AMEND, E.PARTIAL_FILL): S.PENDING_AMEND,  # a fill racing the amendment
    (S.PENDING_AMEND, E.FILL): S.FILLED,
    (S.PENDING_AMEND, E.CANCEL_REQUEST): S.PENDING_CANCEL,
    (S.PENDING_AMEND, E.CANCEL): S.CANCELED,
    (S.PENDING_AMEND, E.EXPIRE): S.EXPIRED,
    # The amendment's answer may come after a cancel was requested: the cancel still decides.
    (S.PENDING_CANCEL, E.AMENDED): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, E.AMEND_REJECT): S.PENDING_CANCEL,
    # A conditional order's trigger: the order keeps working (as the actual order the venue placed).
    (S.PENDING_SUBMIT, E.TRIGGER): S.SUBMITTED,
    (S.SUBMITTED, E.TRIGGER): S.SUBMITTED,
    (S.PENDING_CANCEL, E.TRIGGER): S.PENDING_CANCEL,
}

_BY_FILLS = frozenset({E.CANCEL_REJECT, E.AMENDED, E.AMEND_REJECT})
"""Events whose target depends on the fills so far (nothing, some, or all of the quantity)."""


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
    """The trigger price of a conditional order (triggerPrice at the Algo API, stopPrice on the wire before)."""
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
    # -- the rest of the venue's order surface ---------------------------------------------------
    callback_rate_bps: int | None = None
    """A trailing stop's callbackRate in basis points (CALLBACK_RATE_SCALE: 1 % = 100)."""
    activation_price_ticks: int | None = None
    working_type: WorkingType = WorkingType.CONTRACT_PRICE
    price_protect: bool = False
    close_position: bool = False
    """Close the whole position when triggered: no quantity is sent (qty_steps is our bound for it)."""
    stp_mode: SelfTradePrevention = SelfTradePrevention.NONE
    price_match: PriceMatch = PriceMatch.NONE
    good_till_ms: int = 0
    """GTD: the venue's goodTillDate (ms since the epoch); 0 = none."""
    is_algo: bool = False
    """Placed through the Algo Order API (conditional and trailing orders)."""
    algo_id: int | None = None
    triggered: bool = False
    amend_qty_steps: int | None = None
    """The amendment in flight (PENDING_AMEND, or PENDING_CANCEL reached from it): its quantity and price."""
    amend_price_ticks: int | None = None

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
        if event in _BY_FILLS and target is OrderStatus.SUBMITTED:
            target = (OrderStatus.SUBMITTED if not self.filled_steps else
                      OrderStatus.FILLED if self.filled_steps >= self.qty_steps else OrderStatus.PARTIALLY_FILLED)
        elif event is OrderEvent.AMENDED and target is OrderStatus.PARTIALLY_FILLED \
                and self.filled_steps >= self.qty_steps:
            target = OrderStatus.FILLED
        self.status = target
        self.ts_updated_ns = ts_ns
        self.history.append((ts_ns, event, target))
        return target

    # -- amendments ------------------------------------------------------------------------------
    def request_amend(self, qty_steps: int, price_ticks: int | None, ts_ns: int = 0) -> OrderStatus:
        """An amendment leaves: until its answer both the old and the new terms may be the venue's."""
        if qty_steps <= self.filled_steps:
            raise ValueError(f"order {self.client_order_id}: amended quantity {qty_steps} is not above the "
                             f"{self.filled_steps} already filled")
        status = self.apply(OrderEvent.AMEND_REQUEST, ts_ns)
        self.amend_qty_steps, self.amend_price_ticks = qty_steps, price_ticks
        return status

    def amended(self, qty_steps: int, price_ticks: int | None, ts_ns: int = 0) -> OrderStatus:
        """The venue amended the order to these terms (our amendment's answer, or its stream event)."""
        self.qty_steps, self.price_ticks = max(qty_steps, self.filled_steps), price_ticks
        self.amend_qty_steps = self.amend_price_ticks = None
        return self.apply(OrderEvent.AMENDED, ts_ns)

    def amend_rejected(self, ts_ns: int = 0) -> OrderStatus:
        self.amend_qty_steps = self.amend_price_ticks = None
        return self.apply(OrderEvent.AMEND_REJECT, ts_ns)

    @property
    def worst_qty_steps(self) -> int:
        """The most this order may fill in all: an amendment in flight may have raised it already."""
        return max(self.qty_steps, self.amend_qty_steps or 0)

    @property
    def worst_price_ticks(self) -> int | None:
        """The highest price it may work at (the exposure ledger values the worst case at the highest)."""
        prices = [p for p in (self.price_ticks, self.amend_price_ticks) if p is not None]
        return max(prices) if prices else None

    def fill(self, qty_steps: int, price_ticks: int, ts_ns: int = 0) -> OrderStatus:
        """Record a fill; the event (partial or full) follows from the quantities. While an amendment that
        raises the quantity is in flight, a fill past the old quantity is possible (the venue amended
        first) and a fill reaching it is not yet a completion (the amendment may have landed)."""
        if qty_steps <= 0:
            raise ValueError("fill quantity must be positive")
        if self.filled_steps + qty_steps > self.worst_qty_steps:
            raise Overfill(f"order {self.client_order_id}: fill of {qty_steps} steps exceeds the "
                           f"{self.worst_qty_steps - self.filled_steps} remaining")
        complete = self.filled_steps + qty_steps == self.worst_qty_steps
        status = self.apply(OrderEvent.FILL if complete else OrderEvent.PARTIAL_FILL, ts_ns)
        self.filled_steps += qty_steps
        self.filled_quote += qty_steps * price_ticks
        if self.amend_qty_steps is not None and self.filled_steps > self.qty_steps:
            # Only the amended terms allow this much: the amendment has landed, whatever its answer says.
            self.qty_steps, self.price_ticks = self.amend_qty_steps, self.amend_price_ticks
            self.amend_qty_steps = self.amend_price_ticks = None
            if self.status is OrderStatus.PENDING_AMEND:
                status = self.apply(OrderEvent.AMENDED, ts_ns)
        elif self.amend_qty_steps is not None and not self.is_open:
            self.amend_qty_steps = self.amend_price_ticks = None  # filled at the old terms: nothing to amend
        return status

    @property
    def remaining_steps(self) -> int:
        return self.qty_steps - self.filled_steps

    @property
    def worst_remaining_steps(self) -> int:
        return self.worst_qty_steps - self.filled_steps

    @property
    def is_open(self) -> bool:
        return self.status.is_open
