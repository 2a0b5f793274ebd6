"""Execution's own values: its configuration and limits, and the order record's codec for its stores.

The messages it exchanges with other components (requests, outcomes, fills, venue events) are the
domain's (celeris.domain.messages).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from celeris.domain.exposure import ExposureLimits
from celeris.domain.instruments import OrderType, PriceMatch, SelfTradePrevention, TimeInForce, WorkingType
from celeris.domain.orders import Order, OrderEvent, OrderStatus
from celeris.domain.messages import Execution
from celeris.domain.values import Side


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
        "callback_rate_bps": order.callback_rate_bps, "activation_price_ticks": order.activation_price_ticks,
        "working_type": order.working_type.value, "price_protect": order.price_protect,
        "close_position": order.close_position, "stp_mode": order.stp_mode.value,
        "price_match": order.price_match.value, "good_till_ms": order.good_till_ms, "is_algo": order.is_algo,
        "algo_id": order.algo_id, "triggered": order.triggered, "amend_qty_steps": order.amend_qty_steps,
        "amend_price_ticks": order.amend_price_ticks,
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
        # Records written before the full order surface lack these: the defaults are what they were.
        callback_rate_bps=doc.get("callback_rate_bps"), activation_price_ticks=doc.get("activation_price_ticks"),
        working_type=WorkingType(doc.get("working_type", "CONTRACT_PRICE")),
        price_protect=doc.get("price_protect", False), close_position=doc.get("close_position", False),
        stp_mode=SelfTradePrevention(doc.get("stp_mode", "NONE")), price_match=PriceMatch(doc.get("price_match", "NONE")),
        good_till_ms=doc.get("good_till_ms", 0), is_algo=doc.get("is_algo", False), algo_id=doc.get("algo_id"),
        triggered=doc.get("triggered", False), amend_qty_steps=doc.get("amend_qty_steps"),
        amend_price_ticks=doc.get("amend_price_ticks"),
    )


EVENT_FOR_EXECUTION = {Execution.CANCELED: OrderEvent.CANCEL, Execution.EXPIRED: OrderEvent.EXPIRE,
                       Execution.REJECTED: OrderEvent.REJECT}
"""Stream events that close an order (AMENDMENT and TRIGGERED keep it working; reconciliation applies them)."""


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
    unknown_outcome_window_s: float = 6.0
    """After a send whose outcome is unknown (a timeout, a dropped connection, a 503), the order is neither
    sent again nor given up until this long after that send: the venue refuses a request it receives past
    its timestamp + recvWindow (5 s), so a query that still finds nothing then means it never landed. A
    query before that can miss an order still on its way, and a resend would place it twice."""
    retry_backoff_s: float = 0.2
    max_rate_limit_wait_s: float = 5.0
    unknown_orders_policy: str = "adopt"  # or "cancel": venue orders we did not place, found at start
    idempotency_ttl_s: int = 24 * 3600
    closed_order_retention_s: float = 600.0
    """A closed order stays in memory (and hot state) this long, then only its id is kept (retention.py)."""
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
