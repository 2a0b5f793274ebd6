"""Execution's values: requests, outcomes, normalized venue events, and the order record's codec.

`VenueOrderEvent` is what both venues (the live Binance user stream and the paper venue) report, so the
engine has one path for acknowledgements, fills, cancels and expiries.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from celeris.domain.exposure import ExposureLimits
from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.orders import Order, OrderEvent, OrderStatus
from celeris.domain.values import Side


@dataclass(frozen=True, slots=True)
class OrderRequest:
    request_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty_steps: int
    price_ticks: int | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    stop_price_ticks: int | None = None
    strategy_id: str = ""
    client_order_id: str = ""
    ts_signal_ns: int = 0


def client_order_id_for(request_id: str, owner: str = "") -> str:
    """Deterministic: the same request id always maps to the same venue client order id. The owner (the
    strategy) is readable in it, so the venue's own order list says whose each order is:
    `cel-{owner, up to 11 characters}-{20 hex digits}` (36 characters at most, the venue's limit)."""
    tag = venue_tag(owner)
    if not tag:
        return "cel" + hashlib.blake2b(request_id.encode(), digest_size=12).hexdigest()
    return f"cel-{tag}-{hashlib.blake2b(request_id.encode(), digest_size=10).hexdigest()}"


@functools.lru_cache(maxsize=4096)
def venue_tag(owner: str) -> str:
    """The owner as the venue's order list shows it (folded, at most 11 characters)."""
    return re.sub(r"[^a-z0-9]+", "-", owner.lower()).strip("-")[:11].strip("-")


def owner_tag_of(client_order_id: str) -> str:
    """The owner tag a client order id carries ('' for none): the inverse of client_order_id_for's tag."""
    if client_order_id.startswith("cel-") and client_order_id.count("-") >= 2:
        return client_order_id[4:client_order_id.rindex("-")]
    return ""


class RejectCode(enum.Enum):
    OBSERVATION_MODE = "OBSERVATION_MODE"
    HALTED = "HALTED"
    CIRCUIT_OPEN = "CIRCUIT_OPEN"
    RATE_LIMIT = "RATE_LIMIT"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    INVALID_REQUEST = "INVALID_REQUEST"
    FILTER = "FILTER"
    POSITION_LIMIT = "POSITION_LIMIT"
    EXPOSURE_LIMIT = "EXPOSURE_LIMIT"
    """A worst-case exposure limit other than the per-symbol position (total, open orders, notional, band, loss)."""
    INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"
    RISK_DENIED = "RISK_DENIED"
    VENUE_REJECTED = "VENUE_REJECTED"
    SUBMIT_FAILED = "SUBMIT_FAILED"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    NOT_CANCELABLE = "NOT_CANCELABLE"
    UNSUPPORTED = "UNSUPPORTED"
    DRAINING = "DRAINING"


@dataclass(frozen=True, slots=True)
class Rejection:
    code: RejectCode
    message: str
    venue_code: int = 0


@dataclass(slots=True)
class Outcome:
    """The answer to a submit or cancel: accepted with the order, or a rejection with its reason."""

    request_id: str
    accepted: bool
    order: Order | None = None
    rejection: Rejection | None = None


class Execution(enum.Enum):
    NEW = "NEW"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


@dataclass(frozen=True, slots=True)
class VenueOrderEvent:
    symbol: str
    client_order_id: str
    venue_order_id: int
    execution: Execution
    side: Side
    last_qty_steps: int = 0
    last_price_ticks: int = 0
    trade_id: int = 0
    commission: int = 0
    is_maker: bool = False
    realized_pnl: int = 0
    ts_event_ns: int = 0
    order_type: str = ""
    orig_qty_steps: int = 0
    price_ticks: int = 0
    reduce_only: bool = False
    order_status: str = ""
    """The venue's status of the order after this event ("" = not said): a fill that leaves the order
    FILLED or EXPIRED at the venue closes it here too, even short of its quantity (a reduce-only clamp)."""


@dataclass(frozen=True, slots=True)
class Fill:
    symbol: str
    client_order_id: str
    venue_order_id: int
    trade_id: int
    side: Side
    price_ticks: int
    qty_steps: int
    commission: int
    is_maker: bool
    realized_pnl: int
    strategy_id: str
    mode: str
    ts_event_ns: int


@dataclass(frozen=True, slots=True)
class VenueOrderState:
    """The venue's view of one order (from a placement answer or a query)."""

    client_order_id: str
    venue_order_id: int
    status: str  # NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED
    executed_steps: int = 0


# -- the order record in stores ----------------------------------------------------------------
def order_to_json(order: Order, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = {
        "client_order_id": order.client_order_id, "symbol": order.symbol, "side": order.side.value,
        "type": order.order_type.value, "qty_steps": order.qty_steps, "price_ticks": order.price_ticks,
        "tif": order.time_in_force.value, "reduce_only": order.reduce_only,
        "stop_price_ticks": order.stop_price_ticks, "strategy_id": order.strategy_id,
        "status": order.status.value, "venue_order_id": order.venue_order_id,
        "filled_steps": order.filled_steps, "filled_quote": order.filled_quote,
        "reject_reason": order.reject_reason, "ts_created_ns": order.ts_created_ns,
        "ts_updated_ns": order.ts_updated_ns,
    }
    doc.update(extra or {})
    return doc


def order_from_json(doc: dict[str, Any]) -> Order:
    return Order(
        client_order_id=doc["client_order_id"], symbol=doc["symbol"], side=Side(doc["side"]),
        order_type=OrderType(doc["type"]), qty_steps=doc["qty_steps"], price_ticks=doc["price_ticks"],
        time_in_force=TimeInForce(doc["tif"]), reduce_only=doc["reduce_only"],
        stop_price_ticks=doc["stop_price_ticks"], strategy_id=doc["strategy_id"],
        status=OrderStatus(doc["status"]), venue_order_id=doc["venue_order_id"],
        filled_steps=doc["filled_steps"], filled_quote=doc["filled_quote"], reject_reason=doc["reject_reason"],
        ts_created_ns=doc["ts_created_ns"], ts_updated_ns=doc["ts_updated_ns"],
    )


EVENT_FOR_EXECUTION = {Execution.CANCELED: OrderEvent.CANCEL, Execution.EXPIRED: OrderEvent.EXPIRE,
                       Execution.REJECTED: OrderEvent.REJECT}


@dataclass
class PositionLimits:
    max_position_usdt: int = 0
    """Money units; 0 = no limit."""
    max_orders_per_second: int = 10
    leverage: int = 20


@dataclass
class ExecutionConfig:
    symbols: tuple[str, ...]
    limits: PositionLimits = field(default_factory=PositionLimits)
    exposure: ExposureLimits = field(default_factory=ExposureLimits)
    """Worst-case exposure limits (open and in-flight orders counted); see celeris.domain.exposure."""
    max_submit_attempts: int = 3
    retry_backoff_s: float = 0.2
    max_rate_limit_wait_s: float = 5.0
    unknown_orders_policy: str = "adopt"  # or "cancel": venue orders we did not place, found at start
    idempotency_ttl_s: int = 24 * 3600
    venue_orders_per_10s: int = 270
    venue_orders_per_minute: int = 1080
    flatten_timeout_s: float = 30.0
    """The emergency flatten repeats until flat or this long has passed (then a critical alert)."""
    flatten_poll_s: float = 0.25
    owner_lease_s: float = 5.0
    """An open order whose owner has not renewed its lease for this long is an orphan and is cancelled."""

    def exposure_limits(self) -> ExposureLimits:
        """The exposure limits, with the older per-symbol `limits.max_position_usdt` folded in."""
        if self.limits.max_position_usdt and not self.exposure.max_position_notional:
            return dataclasses.replace(self.exposure, max_position_notional=self.limits.max_position_usdt)
        return self.exposure
