"""Worst-case exposure: the position as if every working order on the same side filled, and the limits on it.

Owns the one rule every pre-trade check applies (the strategy filter, execution, the risk manager): an
order is judged by the position the account would hold if it and every open or in-flight order on the
same side filled ("in flight" = sent, not yet acknowledged). A ledger keeps, per symbol, the signed
position and the working orders; it is updated on every order event and fill, never by polling. The
check answers `None` or an `ExposureBreach` with a reason code. Reduce-only orders can never add
exposure, so they are not counted and pass every exposure limit (the halt and the filters still apply).

Everything is integers: quantities in steps, prices in ticks, notionals in money units (MONEY_SCALE).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Iterable

from celeris.domain.instruments import Instrument
from celeris.domain.values import Side, money_str

BPS = 10_000


class BreachCode(enum.Enum):
    NO_PRICE = "NO_PRICE"
    POSITION_LIMIT = "POSITION_LIMIT"
    TOTAL_EXPOSURE = "TOTAL_EXPOSURE"
    OPEN_ORDERS = "OPEN_ORDERS"
    ORDER_NOTIONAL = "ORDER_NOTIONAL"
    PRICE_BAND = "PRICE_BAND"
    DAILY_LOSS = "DAILY_LOSS"


@dataclass(frozen=True, slots=True)
class ExposureBreach:
    code: BreachCode
    message: str


@dataclass(frozen=True, slots=True)
class ExposureLimits:
    """Hard limits on worst-case exposure; 0 means "no limit" for each."""

    max_position_notional: int = 0
    """Per symbol, money units: |position + same-side working orders + the new order| x price."""
    max_total_notional: int = 0
    """Across symbols, money units: the sum of each symbol's worst-case notional."""
    max_open_orders_per_symbol: int = 0
    max_order_notional: int = 0
    """One order's notional, money units."""
    price_band_bps: int = 0
    """A limit price further than this from the reference (mark or mid) is refused (fat finger)."""
    max_daily_loss: int = 0
    """Money units: at this loss for the UTC day (realized - fees + unrealized) only reducing orders pass."""

    @property
    def any(self) -> bool:
        return any((self.max_position_notional, self.max_total_notional, self.max_open_orders_per_symbol,
                    self.max_order_notional, self.price_band_bps, self.max_daily_loss))


@dataclass(slots=True)
class WorkingOrder:
    symbol: str
    side: Side
    remaining_steps: int
    price_ticks: int | None
    reduce_only: bool = False


@dataclass(slots=True)
class SymbolExposure:
    """One symbol: the position and the working orders, with their sums kept as orders change (a check
    costs the same with 3 working orders or 3,000)."""

    position_steps: int = 0
    working: dict[str, WorkingOrder] = field(default_factory=dict)
    pending_buy: int = 0
    pending_sell: int = 0
    max_price: int | None = None
    """The highest price of a working order that adds exposure (kept until no such order is left: a
    price that high valued the worst case once, so it may again; conservative, never an underestimate)."""
    _adding: int = 0

    def put(self, client_order_id: str, order: WorkingOrder) -> None:
        self.drop(client_order_id)
        if order.remaining_steps <= 0:
            return
        self.working[client_order_id] = order
        if order.reduce_only:
            return
        self._adding += 1
        if order.side is Side.BUY:
            self.pending_buy += order.remaining_steps
        else:
            self.pending_sell += order.remaining_steps
        if order.price_ticks is not None and (self.max_price is None or order.price_ticks > self.max_price):
            self.max_price = order.price_ticks

    def drop(self, client_order_id: str) -> WorkingOrder | None:
        order = self.working.pop(client_order_id, None)
        if order is None or order.reduce_only:
            return order
        self._adding -= 1
        if order.side is Side.BUY:
            self.pending_buy -= order.remaining_steps
        else:
            self.pending_sell -= order.remaining_steps
        if self._adding == 0:
            self.max_price = None
        return order

    def pending(self, side: Side) -> int:
        return self.pending_buy if side is Side.BUY else self.pending_sell

    def worst_long(self) -> int:
        """The position if every working buy filled (steps; > 0 is long)."""
        return self.position_steps + self.pending_buy

    def worst_short(self) -> int:
        """The position if every working sell filled (steps; < 0 is short)."""
        return self.position_steps - self.pending_sell

    def worst_abs(self) -> int:
        return max(abs(self.worst_long()), abs(self.worst_short()))

    def highest_price(self, reference: int | None) -> int | None:
        if self.max_price is None:
            return reference
        return self.max_price if reference is None else max(self.max_price, reference)


class ExposureLedger:
    """Per symbol, the signed position and the working orders, kept by whoever owns the order flow."""

    def __init__(self, instruments: dict[str, Instrument]) -> None:
        self.instruments = instruments
        self.symbols: dict[str, SymbolExposure] = {s: SymbolExposure() for s in instruments}

    # -- updates: every order event and fill -----------------------------------------------------
    def track(self, client_order_id: str, symbol: str, side: Side, remaining_steps: int, price_ticks: int | None,
              reduce_only: bool = False) -> None:
        """An order is working (reserved before it is sent) with this much left to fill."""
        self.symbols[symbol].put(client_order_id, WorkingOrder(symbol, side, remaining_steps, price_ticks,
                                                               reduce_only))

    def release(self, client_order_id: str, symbol: str) -> None:
        """The order is no longer working (rejected, cancelled, expired, filled)."""
        self.symbols[symbol].drop(client_order_id)

    def fill(self, client_order_id: str, symbol: str, side: Side, qty_steps: int) -> None:
        """A fill moves quantity from the working order into the position: the worst case is unchanged."""
        book = self.symbols[symbol]
        book.position_steps += side.sign * qty_steps
        working = book.drop(client_order_id)
        if working is not None:
            working.remaining_steps -= qty_steps
            book.put(client_order_id, working)

    def set_position(self, symbol: str, qty_steps: int) -> None:
        """The venue's position (reconciliation wins)."""
        self.symbols[symbol].position_steps = qty_steps

    def open_count(self, symbol: str) -> int:
        return len(self.symbols[symbol].working)

    # -- the check ------------------------------------------------------------------------------
    def worst_notional(self, symbol: str, marks: dict[str, int]) -> int:
        book = self.symbols[symbol]
        price = book.highest_price(marks.get(symbol))
        if price is None:
            return 0
        return self.instruments[symbol].notional(price, book.worst_abs())

    def check(self, symbol: str, side: Side, qty_steps: int, price_ticks: int | None, reduce_only: bool,
              marks: dict[str, int], limits: ExposureLimits, day_pnl: int = 0) -> ExposureBreach | None:
        """Would this order, with everything already working, break a limit? None = no."""
        if reduce_only or not limits.any:
            return None
        ins = self.instruments[symbol]
        book = self.symbols[symbol]
        reference = marks.get(symbol)
        if limits.price_band_bps and reference is None:
            return ExposureBreach(BreachCode.NO_PRICE, f"no mark for {symbol} yet: the price band cannot be checked")
        if price_ticks is not None and limits.price_band_bps and reference is not None:
            if abs(price_ticks - reference) * BPS > reference * limits.price_band_bps:
                return ExposureBreach(BreachCode.PRICE_BAND, f"price {ins.format_price(price_ticks)} is more than "
                                      f"{limits.price_band_bps} bps from {ins.format_price(reference)}")
        candidates = [p for p in (price_ticks, reference, book.highest_price(None)) if p is not None]
        if not candidates:
            return ExposureBreach(BreachCode.NO_PRICE, f"no price for {symbol} to value the order at")
        price = max(candidates)
        if limits.max_order_notional and ins.notional(price, qty_steps) > limits.max_order_notional:
            return ExposureBreach(BreachCode.ORDER_NOTIONAL, f"order notional {_usdt(ins.notional(price, qty_steps))} "
                                  f"USDT is over the {_usdt(limits.max_order_notional)} USDT limit")
        if limits.max_open_orders_per_symbol and len(book.working) >= limits.max_open_orders_per_symbol:
            return ExposureBreach(BreachCode.OPEN_ORDERS, f"{len(book.working)} orders already working on {symbol} "
                                  f"(limit {limits.max_open_orders_per_symbol})")
        before = book.worst_abs()
        if side is Side.BUY:
            after_signed = book.worst_long() + qty_steps
            after = max(before, abs(after_signed)) if after_signed > 0 else before
        else:
            after_signed = book.worst_short() - qty_steps
            after = max(before, abs(after_signed)) if after_signed < 0 else before
        if after <= before:
            return None  # the order does not add to the worst case (it only works against the position)
        if limits.max_daily_loss and day_pnl <= -limits.max_daily_loss:
            return ExposureBreach(BreachCode.DAILY_LOSS, f"daily loss {_usdt(-day_pnl)} USDT reached the "
                                  f"{_usdt(limits.max_daily_loss)} USDT limit: only reducing orders pass")
        notional = ins.notional(price, after)
        if limits.max_position_notional and notional > limits.max_position_notional:
            return ExposureBreach(BreachCode.POSITION_LIMIT, f"worst-case {symbol} position "
                                  f"{ins.format_qty(after)} ({_usdt(notional)} USDT, open and in-flight orders "
                                  f"included) is over the {_usdt(limits.max_position_notional)} USDT limit")
        if limits.max_total_notional:
            total = notional + sum(self.worst_notional(s, marks) for s in self.symbols if s != symbol)
            if total > limits.max_total_notional:
                return ExposureBreach(BreachCode.TOTAL_EXPOSURE, f"worst-case total exposure {_usdt(total)} USDT is "
                                      f"over the {_usdt(limits.max_total_notional)} USDT limit")
        return None


def _usdt(units: int) -> str:
    return money_str(units)


def worst_case_position(position_steps: int, working: Iterable[tuple[Side, int]], side: Side) -> int:
    """The position if every working order on `side` filled (a helper for reports and tests)."""
    pending = sum(q for s, q in working if s is side)
    return position_steps + side.sign * pending
