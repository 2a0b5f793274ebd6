"""Execution algorithms as pure state machines: a parent order worked through child orders.

Owns what every algorithm shares: the parent order and its parameters, the child actions an algorithm
asks for (place, cancel), the parent's lifecycle (a transition table), the accounting that keeps the
children inside the parent, the sizing rules of one child (the instrument's minimum quantity and
notional, the remainder that could never be sent alone), the child's price from the book top and the
parent's limit, and the arrival price with the slippage of the fills against it. The algorithms
themselves (TWAP, VWAP, POV, iceberg: celeris.domain.algo_kinds) only say how much they want committed
by now, how large one child may be and when a working child is stale.

Synchronous and pure: integer steps, ticks and nanoseconds; time arrives with the events (no clock is
read); the caller (celeris.strategy.algos) sends what the actions say and reports back what happened.

Rules every algorithm obeys:
- The parent quantity is a hard cap: a child counts from the moment its placement is asked for (before
  any acknowledgement) with everything it could still fill, and a closed child counts what its close said
  it filled until those fills have arrived. So filled + outstanding never exceeds the parent.
- At most one child works at a time; a stale one is cancelled and its unfilled part re-placed once its
  close is known (never on a guess that the cancel will succeed).
- No child is larger than the instrument's maximum quantity (of its order type). A child smaller than
  the instrument's minimum (min quantity, or min notional at the child's price, unless reduce-only) is
  not sent: the quantity is carried into the next child. A child that would leave a remainder below
  the minimum behind takes it along when the child size cap allows, and otherwise leaves exactly one
  minimum behind. What is still unfilled when the parent ends (its horizon passed,
  cancelled, halted) is reported as `leftover_steps`; nothing is ever rounded up past the parent.
- Nothing starts a loop of orders: a halt refusal stops the parent at once; other refusals, refused
  cancels and a child that ended short on its own (an IOC that found nothing) back off
  `retry_backoff_ns`, and `max_refusals` refusals in a row stop the parent.
- Slippage against arrival: arrival is the book's mid when the parent starts (the first top at or after
  `start_ns`); slippage is in ppm of the arrival price (100 ppm = 1 bp), positive = cost: a buy filled
  above arrival, a sell filled below it. Fees are not in it (they are the fills' own).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from celeris.domain.algo_orders import (
    Action,
    CancelChild,
    ChildStyle,
    ParentOrder,
    PlaceChild,
)
from celeris.domain.instruments import Instrument, OrderType, TimeInForce
from celeris.domain.values import Side

PPM = 1_000_000
"""Slippage is in parts per million of the arrival price (100 ppm = 1 bp)."""


# -- the parent's lifecycle -------------------------------------------------------------------------
class InvalidAlgoTransition(RuntimeError):
    """An event the parent's current state does not allow."""


class AlgoState(enum.Enum):
    PENDING = "PENDING"  # before start_ns, or no book top yet (no arrival price)
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"  # no new children; waiting for the working one to close
    FINISHED = "FINISHED"


class AlgoEvent(enum.Enum):
    START = "start"
    STOP = "stop"
    COMPLETE = "complete"  # filled the parent
    SETTLED = "settled"  # stopping, and no child can fill any more


class StopReason(enum.Enum):
    FILLED = "filled"
    END_OF_HORIZON = "end_of_horizon"
    CANCELED = "canceled"
    HALTED = "halted"
    REFUSED = "refused"


_S, _E = AlgoState, AlgoEvent
TRANSITIONS: dict[tuple[AlgoState, AlgoEvent], AlgoState] = {
    (_S.PENDING, _E.START): _S.RUNNING,
    (_S.PENDING, _E.STOP): _S.STOPPING,
    (_S.RUNNING, _E.STOP): _S.STOPPING,
    (_S.RUNNING, _E.COMPLETE): _S.FINISHED,
    (_S.STOPPING, _E.STOP): _S.STOPPING,  # a halt after a cancel: the first reason stands
    (_S.STOPPING, _E.SETTLED): _S.FINISHED,
    (_S.STOPPING, _E.COMPLETE): _S.FINISHED,  # the working child filled the rest while it was cancelled
    (_S.FINISHED, _E.STOP): _S.FINISHED,  # a halt or cancel after the end changes nothing
}


@dataclass(slots=True)
class Child:
    child_id: str
    qty_steps: int
    price_ticks: int | None
    placed_ns: int
    slice_index: int = 0
    filled_steps: int = 0
    acknowledged: bool = False
    cancel_requested: bool = False
    closed: bool = False
    final_filled_steps: int = 0
    """What its close said it filled: fills still to arrive count until they do."""
    cancel_after_ns: int = 0
    """A refused cancel is asked again from this time on (not on every book update)."""

    @property
    def outstanding(self) -> int:
        """What it may still fill: its unfilled quantity while working, its announced fills once closed."""
        return max(0, (self.final_filled_steps if self.closed else self.qty_steps) - self.filled_steps)


@dataclass(frozen=True, slots=True)
class AlgoProgress:
    algo_id: str
    state: AlgoState
    stop_reason: StopReason | None
    qty_steps: int
    filled_steps: int
    remaining_steps: int
    outstanding_steps: int
    filled_quote: int
    """Sum of price ticks x steps of the fills (the average price is filled_quote / filled_steps ticks)."""
    arrival_x2_ticks: int | None
    """Twice the arrival mid (bid + ask), in ticks: a half tick stays an integer."""
    slippage_ppm: int | None
    """Of the arrival price, positive = cost; None before a fill."""
    children_placed: int
    children_refused: int
    leftover_steps: int
    """Unfilled when the parent finished (0 while it runs)."""


def slippage_ppm(side: Side, arrival_x2_ticks: int, filled_steps: int, filled_quote: int) -> int:
    """(average fill - arrival) / arrival in ppm, signed so that a cost is positive; half-even."""
    if filled_steps <= 0 or arrival_x2_ticks <= 0:
        raise ValueError("slippage needs fills and an arrival price")
    numerator = side.sign * (2 * filled_quote - arrival_x2_ticks * filled_steps) * PPM
    return _div_half_even(numerator, arrival_x2_ticks * filled_steps)


def _div_half_even(numerator: int, denominator: int) -> int:
    q, r = divmod(numerator, denominator)
    twice = 2 * r
    if twice > denominator or (twice == denominator and q % 2):
        q += 1
    return q


def min_steps_at(instrument: Instrument, order_type: OrderType, price_ticks: int | None,
                 reduce_only: bool) -> int:
    """The smallest child the venue accepts at this price: min quantity and, unless reduce-only, min notional."""
    lowest = max(1, instrument.market_min_qty_steps if order_type is OrderType.MARKET else instrument.min_qty_steps)
    if reduce_only or not instrument.min_notional or not price_ticks:
        return lowest
    per_step = instrument.notional(price_ticks, 1)
    steps = max(1, -(-instrument.min_notional // max(1, per_step)))
    while instrument.notional(price_ticks, steps) < instrument.min_notional:  # rounding of a finer scale
        steps += 1
    while steps > 1 and instrument.notional(price_ticks, steps - 1) >= instrument.min_notional:
        steps -= 1
    return max(lowest, steps)


def fit_child(want: int, room: int, minimum: int, cap: int) -> int:
    """One child's size: at most `want`, `room` (what the parent has left) and `cap`; 0 below `minimum`;
    never leaving a remainder below the minimum behind when that can be helped (see the module rules)."""
    size = min(want, room, cap)
    if size < minimum:
        return 0
    rest = room - size
    if 0 < rest < minimum:
        if room <= cap:
            size = room  # take the tail along: it could never go alone
        elif size - (minimum - rest) >= minimum:
            size -= minimum - rest  # leave exactly one minimum behind
    return size


@dataclass(slots=True)
class _Top:
    bid_ticks: int
    bid_steps: int
    ask_ticks: int
    ask_steps: int


class ExecutionAlgo:
    """The shared machine. Subclasses implement `desired`, and may narrow `cap`, `extra_minimum`, `stale`,
    `slice_index`, `child_terms` and `observe_trade`."""

    kind = "algo"

    def __init__(self, algo_id: str, parent: ParentOrder, instrument: Instrument) -> None:
        if instrument.symbol != parent.symbol:
            raise ValueError(f"instrument {instrument.symbol} is not the parent's {parent.symbol}")
        self.algo_id = algo_id
        self.parent = parent
        self.instrument = instrument
        self.state = AlgoState.PENDING
        self.stop_reason: StopReason | None = None
        self.now_ns = 0
        self.top: _Top | None = None
        self.arrival_x2_ticks: int | None = None
        self.children: dict[str, Child] = {}
        """Children that may still fill (working, or closed with fills still to arrive)."""
        self.known: set[str] = set()
        self.filled_steps = 0
        self.filled_quote = 0
        self.children_placed = 0
        self.children_refused = 0
        self.refusals_in_a_row = 0
        self.retry_at_ns = 0
        self.leftover_steps = 0

    # -- what a subclass says ---------------------------------------------------------------------
    def desired(self, now_ns: int) -> int:
        """How much the algorithm wants committed (filled + outstanding) by now."""
        raise NotImplementedError

    def cap(self) -> int:
        return self.parent.qty_steps

    def extra_minimum(self) -> int:
        return 0

    def stale(self, child: Child) -> bool:
        return False

    def slice_index(self, now_ns: int) -> int:
        return 0

    def observe_trade(self, ts_ns: int, qty_steps: int) -> None:
        pass

    def child_terms(self) -> tuple[OrderType, TimeInForce, int | None] | None:
        """The next child's type, TIF and price from the top and the limit; None = not now."""
        style = getattr(self.parent.params, "style", ChildStyle.CROSS)
        top, limit, buy = self.top, self.parent.limit_price_ticks, self.parent.side is Side.BUY
        if top is None:
            return None
        if style is ChildStyle.MARKET:
            return OrderType.MARKET, TimeInForce.GTC, None
        if style is ChildStyle.CROSS:
            far = top.ask_ticks if buy else top.bid_ticks
            if limit is not None and (far > limit if buy else far < limit):
                return None  # the market is beyond the limit: wait rather than send what cannot fill
            return OrderType.LIMIT, TimeInForce.IOC, far
        near = top.bid_ticks if buy else top.ask_ticks
        if limit is not None:
            near = min(near, limit) if buy else max(near, limit)
        return OrderType.LIMIT, TimeInForce.GTX, near

    # -- reads --------------------------------------------------------------------------------------
    @property
    def outstanding_steps(self) -> int:
        return sum(c.outstanding for c in self.children.values())

    @property
    def committed_steps(self) -> int:
        return self.filled_steps + self.outstanding_steps

    def working(self) -> Child | None:
        for child in self.children.values():
            if not child.closed:
                return child
        return None

    def progress(self) -> AlgoProgress:
        slip = (slippage_ppm(self.parent.side, self.arrival_x2_ticks, self.filled_steps, self.filled_quote)
                if self.filled_steps and self.arrival_x2_ticks else None)
        return AlgoProgress(self.algo_id, self.state, self.stop_reason, self.parent.qty_steps, self.filled_steps,
                            max(0, self.parent.qty_steps - self.filled_steps), self.outstanding_steps,
                            self.filled_quote, self.arrival_x2_ticks, slip, self.children_placed,
                            self.children_refused, self.leftover_steps)

    def next_due_ns(self) -> int | None:
        """When the machine next wants to be woken without any market event (None = no such time)."""
        if self.state is AlgoState.PENDING and self.now_ns < self.parent.start_ns:
            return self.parent.start_ns
        return self.parent.end_ns or None

    # -- events -------------------------------------------------------------------------------------
    def on_time(self, now_ns: int) -> list[Action]:
        self._advance(now_ns)
        return self._step()

    def on_top(self, ts_ns: int, bid_ticks: int, bid_steps: int, ask_ticks: int, ask_steps: int) -> list[Action]:
        if 0 < bid_ticks < ask_ticks:  # a crossed or one-sided top is no price to trade or measure at
            self.top = _Top(bid_ticks, bid_steps, ask_ticks, ask_steps)
        self._advance(ts_ns)
        return self._step()

    def on_trade(self, ts_ns: int, price_ticks: int, qty_steps: int) -> list[Action]:
        self._advance(ts_ns)
        if self.state is AlgoState.RUNNING and ts_ns >= self.parent.start_ns and qty_steps > 0:
            self.observe_trade(ts_ns, qty_steps)
        return self._step()

    def on_acknowledged(self, child_id: str) -> None:
        child = self.children.get(child_id)
        if child is not None:
            child.acknowledged = True
            self.refusals_in_a_row = 0

    def on_fill(self, child_id: str, qty_steps: int, price_ticks: int, ts_ns: int) -> list[Action]:
        if child_id not in self.known or qty_steps <= 0:
            return []  # not ours
        self._advance(ts_ns)
        # Money moved whatever our records say: a fill always counts (even one its close did not announce).
        self.filled_steps += qty_steps
        self.filled_quote += qty_steps * price_ticks
        self.refusals_in_a_row = 0
        child = self.children.get(child_id)
        if child is not None:
            child.filled_steps += qty_steps
            if child.closed and child.outstanding == 0:
                del self.children[child_id]
        return self._step()

    def on_closed(self, child_id: str, filled_steps: int, ts_ns: int) -> list[Action]:
        """The child is no longer working (filled, cancelled, expired); `filled_steps` is its final fill."""
        child = self.children.get(child_id)
        if child is None or child.closed:
            return []
        self._advance(ts_ns)
        child.closed = True
        child.final_filled_steps = max(filled_steps, child.filled_steps)
        if child.final_filled_steps < child.qty_steps and not child.cancel_requested:
            self.retry_at_ns = self.now_ns + self.parent.retry_backoff_ns
        if child.outstanding == 0:
            del self.children[child_id]
        return self._step()

    def on_refused(self, child_id: str, ts_ns: int, halted: bool) -> list[Action]:
        """The placement was refused (nothing of it ever worked)."""
        child = self.children.pop(child_id, None)
        if child is None:
            return []
        self._advance(ts_ns)
        self.children_refused += 1
        self.refusals_in_a_row += 1
        self.retry_at_ns = self.now_ns + self.parent.retry_backoff_ns
        if halted:
            return self.stop(StopReason.HALTED, ts_ns)
        if self.refusals_in_a_row >= self.parent.max_refusals:
            return self.stop(StopReason.REFUSED, ts_ns)
        return self._step()

    def on_cancel_failed(self, child_id: str, ts_ns: int) -> None:
        """The cancel was not accepted: it is asked again after `retry_backoff_ns` (the close may be on
        its way meanwhile)."""
        child = self.children.get(child_id)
        if child is not None and not child.closed:
            self._advance(ts_ns)
            child.cancel_requested = False
            child.cancel_after_ns = self.now_ns + self.parent.retry_backoff_ns

    def stop(self, reason: StopReason, ts_ns: int) -> list[Action]:
        """No new children from now on; the working one is cancelled."""
        self._advance(ts_ns)
        if self.state is not AlgoState.FINISHED and self.stop_reason is None:
            self.stop_reason = reason
        self._move(AlgoEvent.STOP)
        return self._step()

    # -- the machine --------------------------------------------------------------------------------
    def _advance(self, ts_ns: int) -> None:
        self.now_ns = max(self.now_ns, ts_ns)  # events may arrive out of order; time never goes back

    def _move(self, event: AlgoEvent) -> None:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise InvalidAlgoTransition(f"algo {self.algo_id}: {event.value} in {self.state.value}")
        self.state = new
        if new is AlgoState.FINISHED:
            self.leftover_steps = max(0, self.parent.qty_steps - self.filled_steps)

    def _step(self) -> list[Action]:
        now = self.now_ns
        if self.state is AlgoState.FINISHED:
            return []
        if self.filled_steps >= self.parent.qty_steps:
            self.stop_reason = self.stop_reason or StopReason.FILLED
            self.children.clear()  # nothing left to fill: a late close changes nothing
            self._move(AlgoEvent.COMPLETE)
            return []
        if self.state is AlgoState.PENDING:
            if self.parent.end_ns and now >= self.parent.end_ns:
                self.stop_reason = StopReason.END_OF_HORIZON  # it never had a price to start at
                self._move(AlgoEvent.STOP)
                return self._wind_down()
            if now < self.parent.start_ns or self.top is None:
                return []
            self.arrival_x2_ticks = self.top.bid_ticks + self.top.ask_ticks
            self._move(AlgoEvent.START)
        if self.state is AlgoState.RUNNING and self.parent.end_ns and now >= self.parent.end_ns:
            self.stop_reason = StopReason.END_OF_HORIZON
            self._move(AlgoEvent.STOP)
        if self.state is AlgoState.STOPPING:
            return self._wind_down()
        return self._decide(now)

    def _wind_down(self) -> list[Action]:
        out: list[Action] = []
        for child in self.children.values():
            if not child.closed and not child.cancel_requested and self.now_ns >= child.cancel_after_ns:
                child.cancel_requested = True
                out.append(CancelChild(child.child_id))
        if not self.children:
            self._move(AlgoEvent.SETTLED)
        return out

    def _decide(self, now: int) -> list[Action]:
        working = self.working()
        if working is not None:
            if not working.cancel_requested and now >= working.cancel_after_ns and self.stale(working):
                working.cancel_requested = True
                return [CancelChild(working.child_id)]
            return []
        if now < self.retry_at_ns:
            return []
        terms = self.child_terms()
        if terms is None:
            return []
        order_type, tif, price = terms
        room = self.parent.qty_steps - self.committed_steps
        want = self.desired(now) - self.committed_steps
        reference = price if price is not None else self._far_touch()
        minimum = max(min_steps_at(self.instrument, order_type, reference, self.parent.reduce_only),
                      self.extra_minimum())
        ins = self.instrument
        largest = ins.market_max_qty_steps if order_type is OrderType.MARKET else ins.max_qty_steps
        size = fit_child(want, room, minimum, min(self.cap(), largest or self.cap()))
        if size <= 0:
            return []
        self.children_placed += 1
        child_id = f"{self.algo_id}-{self.children_placed}"
        self.children[child_id] = Child(child_id, size, price, now, self.slice_index(now))
        self.known.add(child_id)
        return [PlaceChild(child_id, self.parent.side, size, price, order_type, tif, self.parent.reduce_only)]

    def _far_touch(self) -> int | None:
        if self.top is None:
            return None
        return self.top.ask_ticks if self.parent.side is Side.BUY else self.top.bid_ticks

