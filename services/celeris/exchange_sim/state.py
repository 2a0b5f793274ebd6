"""What the simulated venue knows, as plain data: orders, accounts, per-symbol books, settings, refusals.

Owns the state the engine's parts (order entry, matching, margin, triggers, wire rendering) work on:
`SimOrder` (one order in ticks and steps), `Account` (wallet, leverage, positions, orders, trades and the
user-data events waiting to be pushed), `SymbolBook` (synthetic liquidity per level plus FIFO queues of
client orders, the changed levels the streams have not flushed, last/mark/index prices, trades),
`EngineConfig` (fees and venue-behaviour switches) and `VenueError` (a refusal in the venue's shape).
No behaviour beyond small accessors lives here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from celeris.domain.values import Side
from celeris.exchange_sim.contract import Contract, OrderType, TimeInForce
from celeris.exchange_sim.history import SymbolHistory
from celeris.exchange_sim.positions import SimPosition

NS_PER_MS = 1_000_000


class VenueError(Exception):
    """A refusal in the venue's shape: {"code": code, "msg": msg} with an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


@dataclass
class SimOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    qty_steps: int
    price_ticks: int  # 0 for market-style
    stop_price_ticks: int = 0
    reduce_only: bool = False
    close_position: bool = False
    working_type: str = "CONTRACT_PRICE"
    callback_rate: Fraction | None = None
    activation_ticks: int = 0
    trail_extreme_ticks: int = 0
    status: str = "NEW"
    filled_steps: int = 0
    filled_quote: int = 0  # sum of price_ticks * steps
    time_ms: int = 0
    update_ms: int = 0
    triggered: bool = False
    realized_pnl: int = 0
    stp_mode: str = "NONE"
    """selfTradePreventionMode: what happens when this order, as the taker, meets a resting order of its own
    account (NONE: they trade, as Binance's default; EXPIRE_TAKER / EXPIRE_MAKER / EXPIRE_BOTH)."""
    liquidation: bool = False
    """The venue's own autoclose order closing a liquidated position: its fills are execution CALCULATED."""
    price_match: str = "NONE"
    """priceMatch the order was placed with (its price was taken from the book at arrival)."""
    good_till_ms: int = 0
    """goodTillDate of a GTD order (whole seconds, as the venue keeps it); it expires then."""
    amendments: int = 0
    """How many times it was modified (the venue allows fewer than 10,000)."""

    @property
    def remaining(self) -> int:
        return self.qty_steps - self.filled_steps

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def expired_in_match(self) -> bool:
        return self.status == "EXPIRED_IN_MATCH"

    @property
    def orig_type(self) -> OrderType:
        return self.order_type


@dataclass
class Account:
    api_key: str
    api_secret: str
    wallet: int  # money units
    leverage: dict[str, int] = field(default_factory=dict)
    margin_type: dict[str, str] = field(default_factory=dict)
    isolated_wallet: dict[str, int] = field(default_factory=dict)
    """symbol -> the isolated wallet of an isolated-margin position (money units): part of `wallet`, which is
    the whole wallet balance; the cross wallet is what the isolated positions do not hold."""
    positions: dict[str, SimPosition] = field(default_factory=dict)
    orders: dict[int, SimOrder] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    income: list[dict[str, Any]] = field(default_factory=list)
    """Income history records (GET /fapi/v1/income), in the venue's shape: funding payments so far."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """User-data events waiting to be pushed, in the venue's shapes."""
    dual_side: bool = False
    """Hedge mode (positionSide/dual); the simulator matches one-way orders only, so it refuses orders then."""
    multi_assets: bool = False
    """Multi-Assets mode (/fapi/v1/multiAssetsMargin); the simulator's only margin asset stays USDT."""
    countdowns: dict[str, int] = field(default_factory=dict)
    """symbol -> venue time (ms) at which every open order of the symbol is cancelled (countdownCancelAll)."""
    algo_orders: dict[int, Any] = field(default_factory=dict)
    """algoId -> SimAlgoOrder (exchange_sim/algo_state.py): the account's orders at the algo service."""
    algo_by_order: dict[int, Any] = field(default_factory=dict)
    """orderId of an order a triggered algo order placed -> that SimAlgoOrder."""
    amendments: list[dict[str, Any]] = field(default_factory=list)
    """Order modification history (GET /fapi/v1/orderAmendment) in the venue's shape, oldest first, bounded."""


@dataclass
class SymbolBook:
    """Synthetic liquidity per price level plus FIFO queues of client orders."""

    instrument: Contract
    synthetic_bids: dict[int, int] = field(default_factory=dict)
    synthetic_asks: dict[int, int] = field(default_factory=dict)
    queues: dict[tuple[bool, int], deque[SimOrder]] = field(default_factory=dict)
    update_id: int = 1_000_000
    changed: dict[tuple[bool, int], None] = field(default_factory=dict)
    """Levels changed since the streams last flushed (order kept)."""
    first_changed_id: int = 0
    """Update id of the first change in `changed` (a level may change several times)."""
    last_price_ticks: int = 0
    mark_ticks: int = 0
    index_ticks: int = 0
    trade_id: int = 0
    funding_rate: Fraction = Fraction(1, 10_000)
    trades_out: list[dict[str, Any]] = field(default_factory=list)
    """Trades not yet pushed to the streams."""
    liquidation_out: dict[str, Any] | None = None
    """The latest liquidation fill since the last publish, as <symbol>@forceOrder prints it (wire.py)."""
    recent_trades: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=1000))
    """The last trades, for GET /fapi/v1/trades and /aggTrades."""
    history: SymbolHistory = field(default_factory=SymbolHistory.new)
    """Candles and fundings, for the klines, ticker/24hr and fundingRate endpoints."""

    def level_qty(self, is_bid: bool, price: int) -> int:
        synthetic = (self.synthetic_bids if is_bid else self.synthetic_asks).get(price, 0)
        queue = self.queues.get((is_bid, price))
        return synthetic + (sum(o.remaining for o in queue) if queue else 0)

    def prices(self, is_bid: bool) -> list[int]:
        keys = set(self.synthetic_bids if is_bid else self.synthetic_asks)
        keys.update(p for (b, p), q in self.queues.items() if b == is_bid and q)
        return sorted(keys, reverse=is_bid)

    def best(self, is_bid: bool) -> int | None:
        prices = self.prices(is_bid)
        return prices[0] if prices else None

    def match_price(self, side: Side, price_match: str) -> int | None:
        """The price priceMatch gives an order of `side` now: OPPONENT[_N] is the Nth best price on the other
        side, QUEUE[_N] the Nth best on the order's own side (N = 1 without a suffix; the last level there is
        when the book is shallower). None when that side of the book is empty."""
        kind, _, depth = price_match.partition("_")
        prices = self.prices((side is Side.SELL) == (kind == "OPPONENT"))
        if not prices:
            return None
        return prices[min(int(depth or 1), len(prices)) - 1]

    def touch(self, is_bid: bool, price: int) -> None:
        self.update_id += 1
        if not self.changed:
            self.first_changed_id = self.update_id
        self.changed[(is_bid, price)] = None

    def depth(self, limit: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids = [(p, self.level_qty(True, p)) for p in self.prices(True)[:limit]]
        asks = [(p, self.level_qty(False, p)) for p in self.prices(False)[:limit]]
        return bids, asks

    def set_synthetic(self, is_bid: bool, price: int, qty: int) -> None:
        side = self.synthetic_bids if is_bid else self.synthetic_asks
        if side.get(price, 0) == qty:
            return
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)
        self.touch(is_bid, price)


@dataclass(frozen=True)
class EngineConfig:
    maker_fee: Fraction = Fraction(2, 10_000)
    taker_fee: Fraction = Fraction(4, 10_000)
    default_leverage: int = 20
    max_leverage: int = 125
    initial_wallet_usdt: int = 100_000
    conditional_on_order_endpoint: bool = True
    """False: answer -4120 for conditional types on /fapi/v1/order and /fapi/v1/batchOrders, as the venue does
    since 2025-12-09 (they belong on /fapi/v1/algoOrder). True (default) keeps accepting them there, for
    older clients."""
    fok_gtx_sync_reject: bool = True
    """True: FOK/GTX that cannot rest/fill are refused at REST (-5021/-5022); False: NEW then EXPIRED."""
