"""A venue and execution as a pure algorithm sees them, with every answer delayed and reordered at will.

The tests (hypothesis) pick what happens next: the venue acknowledges, fills part of, closes or refuses
a child, a cancel reaches it, one of the queued answers reaches the algorithm (in any order: a close
before the fills it announces, an acknowledgement after the close), time passes, a trade or a new top
arrives. `exposure()` is what the venue could still end up filling for this parent.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from celeris.domain.algo_orders import CancelChild, PlaceChild
from celeris.domain.algos import ExecutionAlgo
from celeris.domain.instruments import Instrument

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "binance" / "samples"


def btcusdt(**changes: int) -> Instrument:
    info = json.loads((SAMPLES / "nautilus/py_http_futures_market_exchange_info.json").read_text())
    entry = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    return dataclasses.replace(Instrument.from_exchange_info(entry), **changes)


@dataclass
class VenueOrder:
    action: PlaceChild
    filled: int = 0
    open: bool = True
    answered: bool = False
    """The placement's answer (ack or refusal) is queued: it can no longer be refused."""
    fill_prices: list[int] = field(default_factory=list)


class VenueModel:
    def __init__(self, algo: ExecutionAlgo) -> None:
        self.algo = algo
        self.orders: dict[str, VenueOrder] = {}
        self.inbox: list[tuple] = []
        self.cancels: list[str] = []
        self.placed: list[PlaceChild] = []
        self.canceled: list[str] = []
        self.now = 0
        self.halted = False

    # -- what the algorithm asked for ----------------------------------------------------------------
    def take(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, PlaceChild):
                assert action.child_id not in self.orders, "a child id is never reused"
                self.orders[action.child_id] = VenueOrder(action)
                self.placed.append(action)
            elif isinstance(action, CancelChild):
                self.cancels.append(action.child_id)
                self.canceled.append(action.child_id)

    # -- the venue's moves -----------------------------------------------------------------------------
    def open_orders(self) -> list[str]:
        return [cid for cid, o in self.orders.items() if o.open]

    def ack(self, cid: str) -> None:
        o = self.orders[cid]
        if o.open and not o.answered:
            o.answered = True
            self.inbox.append(("ack", cid))

    def fill(self, cid: str, qty: int, price: int) -> None:
        o = self.orders[cid]
        qty = min(qty, o.action.qty_steps - o.filled)
        if not o.open or qty <= 0:
            return
        o.filled += qty
        o.fill_prices.append(price)
        self.inbox.append(("fill", cid, qty, price))
        if o.filled == o.action.qty_steps:
            self.close(cid)

    def close(self, cid: str) -> None:
        o = self.orders[cid]
        if o.open:
            o.open = False
            o.answered = True
            self.inbox.append(("close", cid, o.filled))

    def refuse(self, cid: str) -> bool:
        o = self.orders[cid]
        if not o.open or o.answered or o.filled:
            return False
        del self.orders[cid]
        self.inbox.append(("refuse", cid, self.halted))
        return True

    def deliver_cancel(self, index: int, fail: bool) -> None:
        cid = self.cancels.pop(index % len(self.cancels))
        o = self.orders.get(cid)
        if fail or o is None or not o.open:
            self.inbox.append(("cancel_failed", cid))
        else:
            self.close(cid)

    # -- answers reaching the algorithm ----------------------------------------------------------------
    def deliver(self, index: int) -> None:
        message = self.inbox.pop(index % len(self.inbox))
        kind, cid = message[0], message[1]
        if kind == "ack":
            self.algo.on_acknowledged(cid)
        elif kind == "fill":
            self.take(self.algo.on_fill(cid, message[2], message[3], self.now))
        elif kind == "close":
            self.take(self.algo.on_closed(cid, message[2], self.now))
        elif kind == "refuse":
            self.take(self.algo.on_refused(cid, self.now, message[2]))
        elif kind == "cancel_failed":
            self.algo.on_cancel_failed(cid, self.now)

    # -- the market ----------------------------------------------------------------------------------
    def advance(self, ns: int) -> None:
        self.now += ns
        self.take(self.algo.on_time(self.now))

    def top(self, bid: int, ask: int, size: int = 1000) -> None:
        self.take(self.algo.on_top(self.now, bid, size, ask, size))

    def trade(self, price: int, qty: int) -> None:
        self.take(self.algo.on_trade(self.now, price, qty))

    # -- reads ---------------------------------------------------------------------------------------
    def exposure(self) -> int:
        """What the venue has filled for this parent plus what its open children could still fill."""
        return sum(o.filled + (o.action.qty_steps - o.filled if o.open else 0) for o in self.orders.values())

    def venue_filled(self) -> int:
        return sum(o.filled for o in self.orders.values())

    def working_shown(self) -> int:
        return sum(o.action.qty_steps - o.filled for o in self.orders.values() if o.open)

    def drain(self) -> None:
        """Every answer delivered, in order, until nothing is queued (cancels reach the venue and close)."""
        for _ in range(10_000):
            if self.inbox:
                self.deliver(0)
            elif self.cancels:
                self.deliver_cancel(0, fail=False)
            else:
                return
        raise AssertionError("the algorithm and the venue never came to rest")

    def fill_everything_now(self, price: int) -> None:
        """A venue that acknowledges and fills every open child at once, answers in order."""
        for _ in range(10_000):
            progressed = False
            for cid in self.open_orders():
                self.ack(cid)
                self.fill(cid, self.orders[cid].action.qty_steps, price)
                progressed = True
            if self.inbox or self.cancels:
                self.drain()
                progressed = True
            if not progressed:
                return
        raise AssertionError("never came to rest")
