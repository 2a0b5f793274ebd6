"""The messages engines exchange, shared so that no engine imports another: what market data publishes
(book updates, trades, marks), what a strategy asks execution for (an order request) and what it gets back
(the outcome, fills), and what a venue reports about an order (`VenueOrderEvent`, which the live Binance
user stream and the paper venue both produce, so execution has one path for acknowledgements, fills,
cancels and expiries).

Values in ticks, steps and money units, timestamps in ns; the instrument formats them at the edges. The
client order id (`cel-{owner}-{hash}`) is here too: every component that reads a venue's order list must
be able to say whose an order is.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
from dataclasses import dataclass

from celeris.domain.book import BookState, Level
from celeris.domain.instruments import (
    OrderType,
    PriceMatch,
    SelfTradePrevention,
    TimeInForce,
    WorkingType,
)
from celeris.domain.orders import Order
from celeris.domain.values import Side


# -- market data ----------------------------------------------------------------------------
@dataclass(slots=True)
class BookUpdate:
    symbol: str
    sequence: int
    """Per-symbol publication sequence (a consumer that sees a jump lost an update)."""
    state: BookState
    snapshot: bool
    bids: list[Level]
    """Snapshot: the top N, best first. Delta: the changed levels, quantity 0 = removed."""
    asks: list[Level]
    update_id: int
    ts_event_ns: int
    ts_recv_ns: int


@dataclass(slots=True)
class TradeUpdate:
    symbol: str
    sequence: int
    trade_id: int
    price_ticks: int
    qty_steps: int
    buyer_is_maker: bool
    ts_event_ns: int
    ts_recv_ns: int


@dataclass(slots=True)
class MarkUpdate:
    symbol: str
    mark_price: str
    index_price: str
    funding_rate: str
    next_funding_ms: int
    ts_event_ns: int


# -- orders -------------------------------------------------------------------------------------
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
    callback_rate_bps: int | None = None
    """TRAILING_STOP_MARKET: the callback rate in basis points (10..1000 = 0.1 %..10 %)."""
    activation_price_ticks: int | None = None
    working_type: WorkingType = WorkingType.CONTRACT_PRICE
    price_protect: bool = False
    close_position: bool = False
    stp_mode: SelfTradePrevention = SelfTradePrevention.NONE
    price_match: PriceMatch = PriceMatch.NONE
    good_till_ms: int = 0


@dataclass(frozen=True, slots=True)
class AmendRequest:
    """Modify a working LIMIT order: its new quantity and price (the venue's PUT /fapi/v1/order). An
    amendment that can add exposure is checked like a new order (it is one, for the risk it takes)."""

    request_id: str
    symbol: str
    client_order_id: str
    qty_steps: int
    price_ticks: int


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
    AMENDMENT = "AMENDMENT"
    """The order's price or quantity was changed (price_ticks and orig_qty_steps are the new terms)."""
    TRIGGERED = "TRIGGERED"
    """A conditional (algo) order fired: venue_order_id is the actual order the venue placed."""


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
    algo_id: int = 0
    """Set on an algo order's events (ALGO_UPDATE): its algoId."""
    commission_asset: str = "USDT"
    """The asset the commission is paid in; `commission` is in that asset's units (celeris.domain.funding
    asset_scale), money units for USDT. A BNB commission is not money: it never reduces the USDT PnL."""

    @property
    def margin_commission(self) -> int:
        """What the commission took from the USDT wallet (money units): 0 for a fee paid in BNB."""
        return self.commission if self.commission_asset == "USDT" else 0


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
    commission_asset: str = "USDT"
    """As VenueOrderEvent.commission_asset: `commission` is in this asset's units."""

    @property
    def margin_commission(self) -> int:
        """What the commission took from the USDT wallet (money units): 0 for a fee paid in BNB."""
        return self.commission if self.commission_asset == "USDT" else 0


@dataclass(frozen=True, slots=True)
class FundingPaid:
    """A funding payment settled on a position at a funding time (the paper venue's, or the venue's)."""

    symbol: str
    qty_steps: int
    """The position it was paid on (signed: negative is short)."""
    mark_price: str
    rate: str
    amount: int
    """Money units the account received (negative: it paid)."""
    funding_time_ms: int
    ts_event_ns: int


@dataclass(frozen=True, slots=True)
class VenueOrderState:
    """The venue's view of one order (from a placement answer or a query)."""

    client_order_id: str
    venue_order_id: int
    status: str  # NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED
    executed_steps: int = 0
    qty_steps: int | None = None
    """The order's quantity and price as the venue holds them now (an amendment's answer carries them)."""
    price_ticks: int | None = None
    algo_id: int | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One element of a batch answer: the venue's state of that order, or its own error (the venue answers
    each element separately: some may succeed while others fail)."""

    state: VenueOrderState | None = None
    error: Exception | None = None
