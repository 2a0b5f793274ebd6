"""Every order the strategy engine sends has an owner: the working orders of each strategy.

Owns, for the strategy engine, the record of each working order (its owners, side, size, price, whether
it is a quote, when it was sent), reserved in the worst-case exposure ledger before it is sent and
released when it ends, so the engine's own filter counts what is in flight; the quotes (one per owner,
symbol and side); what is due for cancelling — an order past its time-to-live, a quote its owner no
longer wants, the orders of an owner that went away — and each strategy's own position and PnL, a
shared fill split by contribution. Pure and synchronous: the engine does the sending.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable

from celeris.domain.exposure import ExposureLedger
from celeris.domain.instruments import Instrument
from celeris.domain.positions import Position
from celeris.domain.values import Side


RECENT_CAPACITY = 2_000
"""Closed orders remembered for a late fill (one racing the cancel's answer comes within seconds): at 50
orders a second that is 40 s of them; at the demo's few a second the memory is full within 10 minutes."""


@dataclass(slots=True)
class WorkingRecord:
    client_order_id: str
    owners: tuple[str, ...]
    shares: tuple[int, ...]
    """Each owner's contribution to the size (steps), in the order of `owners`."""
    symbol: str
    side: Side
    qty_steps: int
    price_ticks: int | None
    is_quote: bool
    sent_ns: int
    reduce_only: bool = False
    acknowledged: bool = False
    cancel_requested: bool = False
    managed: bool = False
    """An SDK strategy's own order: it lives until the strategy cancels it (no time-to-live, no reversal)."""


@dataclass(slots=True)
class StrategyBook:
    """One strategy's own position and PnL (its share of every fill it contributed to)."""

    positions: dict[str, Position] = field(default_factory=dict)


class OrderOwners:
    """client order id -> the SDK strategy that placed it: every working order, and the last `capacity`
    closed ones (a fill or an answer can come after the order closed here and is still its owner's); the
    oldest closed go first, so a long session keeps a bounded index."""

    def __init__(self, capacity: int = RECENT_CAPACITY) -> None:
        self.capacity = capacity
        self.working: dict[str, str] = {}
        self.closed: OrderedDict[str, str] = OrderedDict()

    def __setitem__(self, client_order_id: str, owner: str) -> None:
        self.working[client_order_id] = owner

    def get(self, client_order_id: str) -> str | None:
        owner = self.working.get(client_order_id)
        return owner if owner is not None else self.closed.get(client_order_id)

    def close(self, client_order_id: str) -> None:
        owner = self.working.pop(client_order_id, None)
        if owner is not None:
            self.closed[client_order_id] = owner
            if len(self.closed) > self.capacity:
                self.closed.popitem(last=False)

    def __len__(self) -> int:
        return len(self.working) + len(self.closed)


class OwnedOrders:
    def __init__(self, instruments: dict[str, Instrument]) -> None:
        self.instruments = instruments
        self.working: dict[str, WorkingRecord] = {}
        self.ledger = ExposureLedger(instruments)
        self.quotes: dict[tuple[str, str, Side], str] = {}
        """(owner, symbol, side) -> client order id of the owner's working quote."""
        self.books: dict[str, StrategyBook] = {}
        self.recently_closed: OrderedDict[str, WorkingRecord] = OrderedDict()
        """The last RECENT_CAPACITY closed records: a fill can arrive after its order closed here (it raced
        the cancel's answer) and is still its owners' (bounded: the oldest go first)."""

    # -- the lifecycle of one order ---------------------------------------------------------------
    def reserve(self, record: WorkingRecord) -> None:
        """Before the order is sent: from now on it counts as working."""
        self.working[record.client_order_id] = record
        self.ledger.track(record.client_order_id, record.symbol, record.side, record.qty_steps, record.price_ticks,
                          record.reduce_only)
        if record.is_quote:
            self.quotes[("+".join(record.owners), record.symbol, record.side)] = record.client_order_id

    def acknowledged(self, client_order_id: str) -> None:
        record = self.working.get(client_order_id)
        if record is not None:
            record.acknowledged = True

    def closed(self, client_order_id: str) -> WorkingRecord | None:
        """Refused, cancelled, expired or filled: it no longer counts."""
        record = self.working.pop(client_order_id, None)
        if record is None:
            return None
        self.ledger.release(client_order_id, record.symbol)
        self.recently_closed[client_order_id] = record
        if len(self.recently_closed) > RECENT_CAPACITY:
            self.recently_closed.popitem(last=False)
        key = ("+".join(record.owners), record.symbol, record.side)
        if self.quotes.get(key) == client_order_id:
            del self.quotes[key]
        return record

    def fill(self, client_order_id: str, symbol: str, side: Side, qty_steps: int, price_ticks: int,
             commission: int) -> list[tuple[str, int, int]]:
        """Apply a fill; returns (owner, its quantity, its realized PnL after fees) for each owner."""
        if symbol not in self.ledger.symbols:
            return []
        self.ledger.fill(client_order_id, symbol, side, qty_steps)
        record = self.working.get(client_order_id)
        if record is not None:
            record.qty_steps -= qty_steps
            if record.qty_steps <= 0:
                self.closed(client_order_id)
        else:
            record = self.recently_closed.get(client_order_id)
        if record is None:
            return []
        out = []
        total = sum(record.shares) or 1
        left_qty, left_fee = qty_steps, commission
        for i, (owner, share) in enumerate(zip(record.owners, record.shares)):
            last = i == len(record.owners) - 1
            q = left_qty if last else qty_steps * share // total
            c = left_fee if last else commission * share // total
            left_qty, left_fee = left_qty - q, left_fee - c
            if q <= 0:
                continue
            position = self.position_of(owner, symbol)
            result = position.apply_fill(side, q, price_ticks, c)
            out.append((owner, q, result.realized_pnl - c))
        return out

    # -- reads ------------------------------------------------------------------------------------
    def position_of(self, owner: str, symbol: str) -> Position:
        book = self.books.setdefault(owner, StrategyBook())
        position = book.positions.get(symbol)
        if position is None:
            position = book.positions[symbol] = Position(self.instruments[symbol])
        return position

    def owned_by(self, owner: str) -> list[WorkingRecord]:
        return [r for r in self.working.values() if owner in r.owners]

    def quote_of(self, owner: str, symbol: str, side: Side) -> WorkingRecord | None:
        cid = self.quotes.get((owner, symbol, side))
        return self.working.get(cid) if cid else None

    # -- what is due for cancelling ---------------------------------------------------------------
    def expired(self, now_ns: int, ttl_ns: int) -> list[WorkingRecord]:
        """Non-quote orders older than their time-to-live (a quote lives until it is replaced or withdrawn)."""
        return [r for r in self.working.values() if not r.is_quote and not r.managed and not r.cancel_requested
                and r.acknowledged
                and now_ns - r.sent_ns >= ttl_ns]

    def withdrawn_quotes(self, owner: str, symbol: str, quoted_sides: Iterable[Side]) -> list[WorkingRecord]:
        """The owner quoted this round, but not on these sides: those quotes are no longer wanted."""
        keep = set(quoted_sides)
        out = []
        for side in (Side.BUY, Side.SELL):
            if side in keep:
                continue
            record = self.quote_of(owner, symbol, side)
            if record is not None and not record.cancel_requested:
                out.append(record)
        return out

    def against(self, owner: str, symbol: str, side: Side) -> list[WorkingRecord]:
        """The owner's working directional orders on the other side: its intent has reversed."""
        return [r for r in self.working.values() if owner in r.owners and r.symbol == symbol and not r.is_quote
                and r.side is not side and not r.cancel_requested and not r.reduce_only and not r.managed]
