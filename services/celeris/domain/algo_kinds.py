"""The execution algorithms: TWAP, VWAP, POV and iceberg on the shared machine (celeris.domain.algos).

Owns what differs between them — how much each wants committed by a given time, how large one child may
be, when a working child is stale — and the volume profile VWAP follows, computed from trades:
- TWAP: `slices` equal slices; slice i is due at start + (end - start) * i / slices and brings the
  committed total to qty * (i + 1) / slices (integer division: the slices add up to the parent exactly).
- VWAP: the same schedule with one bucket per profile entry, weighted by the bucket's volume:
  committed by bucket i = qty * (volume of buckets 0..i) / (total volume). A bucket without volume
  adds nothing.
- POV: committed <= rate_bps / 10_000 of the market volume traded since the start (the trade stream as
  it comes: live, that includes our own fills, so against the others' volume the rate is
  rate / (1 - rate)); a child is at most `max_child_steps` and at least `min_child_steps`. It stays
  within the rate less one child (the child being placed) and over it by less than the minimum child (a
  tail the instrument could not take alone).
- Iceberg: one LIMIT GTC child of at most `display_steps` at the limit price, replenished when it
  ends; the rest of the parent is never shown.
A passive child is stale when a new slice is due (TWAP, VWAP) or the touch moved from its price (POV): it
is cancelled, and what it did not fill goes out again at the current touch once its close is known.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from celeris.domain.algo_orders import (
    BPS_PER_ONE,
    ChildStyle,
    IcebergParams,
    ParentOrder,
    PovParams,
    TwapParams,
    VwapParams,
)
from celeris.domain.algos import Child, ExecutionAlgo
from celeris.domain.clock import NS_PER_DAY
from celeris.domain.instruments import Instrument, OrderType, TimeInForce


class ScheduledAlgo(ExecutionAlgo):
    """Cumulative targets due at fixed times: TWAP (equal weights) and VWAP (a volume profile)."""

    def __init__(self, algo_id: str, parent: ParentOrder, instrument: Instrument, weights: tuple[int, ...]) -> None:
        super().__init__(algo_id, parent, instrument)
        n, span, total = len(weights), parent.end_ns - parent.start_ns, sum(weights)
        self.due_ns = tuple(parent.start_ns + span * i // n for i in range(n))
        running, cumulative = 0, []
        for w in weights:
            running += w
            cumulative.append(parent.qty_steps * running // total)
        self.cumulative_steps = tuple(cumulative)

    def slice_index(self, now_ns: int) -> int:
        return bisect_right(self.due_ns, now_ns) - 1

    def desired(self, now_ns: int) -> int:
        i = self.slice_index(now_ns)
        return self.cumulative_steps[i] if i >= 0 else 0

    def stale(self, child: Child) -> bool:
        return self.slice_index(self.now_ns) > child.slice_index

    def next_due_ns(self) -> int | None:
        i = bisect_right(self.due_ns, self.now_ns)
        return self.due_ns[i] if i < len(self.due_ns) else self.parent.end_ns


class Twap(ScheduledAlgo):
    kind = "twap"

    def __init__(self, algo_id: str, parent: ParentOrder, instrument: Instrument) -> None:
        assert isinstance(parent.params, TwapParams)
        super().__init__(algo_id, parent, instrument, (1,) * parent.params.slices)


class Vwap(ScheduledAlgo):
    kind = "vwap"

    def __init__(self, algo_id: str, parent: ParentOrder, instrument: Instrument) -> None:
        assert isinstance(parent.params, VwapParams)
        super().__init__(algo_id, parent, instrument, parent.params.profile)


class Pov(ExecutionAlgo):
    kind = "pov"

    def __init__(self, algo_id: str, parent: ParentOrder, instrument: Instrument) -> None:
        assert isinstance(parent.params, PovParams)
        super().__init__(algo_id, parent, instrument)
        self.params: PovParams = parent.params
        self.market_volume_steps = 0

    def observe_trade(self, ts_ns: int, qty_steps: int) -> None:
        self.market_volume_steps += qty_steps

    def desired(self, now_ns: int) -> int:
        return min(self.parent.qty_steps, self.market_volume_steps * self.params.rate_bps // BPS_PER_ONE)

    def cap(self) -> int:
        return self.params.max_child_steps or self.parent.qty_steps

    def extra_minimum(self) -> int:
        return self.params.min_child_steps

    def stale(self, child: Child) -> bool:
        if self.params.style is not ChildStyle.PASSIVE:
            return False
        terms = self.child_terms()
        return terms is not None and terms[2] != child.price_ticks


class Iceberg(ExecutionAlgo):
    kind = "iceberg"

    def __init__(self, algo_id: str, parent: ParentOrder, instrument: Instrument) -> None:
        assert isinstance(parent.params, IcebergParams)
        super().__init__(algo_id, parent, instrument)
        self.display_steps = parent.params.display_steps

    def desired(self, now_ns: int) -> int:
        return self.parent.qty_steps

    def cap(self) -> int:
        return self.display_steps

    def child_terms(self) -> tuple[OrderType, TimeInForce, int | None] | None:
        return OrderType.LIMIT, TimeInForce.GTC, self.parent.limit_price_ticks


KINDS: dict[type, type[ExecutionAlgo]] = {TwapParams: Twap, VwapParams: Vwap, PovParams: Pov,
                                           IcebergParams: Iceberg}


def make_algo(algo_id: str, parent: ParentOrder, instrument: Instrument) -> ExecutionAlgo:
    """The algorithm the parent's parameters name."""
    return KINDS[type(parent.params)](algo_id, parent, instrument)


def volume_profile(trades: Iterable[tuple[int, int]], start_ns: int, end_ns: int, buckets: int, *,
                   time_of_day: bool = False) -> tuple[int, ...]:
    """Traded quantity (steps) per equal bucket of [start_ns, end_ns), from (ts_ns, qty_steps) trades.

    With `time_of_day`, every timestamp is taken as time since its UTC midnight (start and end too), so a
    recording of yesterday gives the profile of today's same hours (a profile from the very trades a
    backtest then trades against would know the future)."""
    if buckets < 1:
        raise ValueError("a profile has at least one bucket")
    if time_of_day:
        start_ns, end_ns = start_ns % NS_PER_DAY, end_ns % NS_PER_DAY or NS_PER_DAY
    if end_ns <= start_ns:
        raise ValueError("the profile's window ends before it starts")
    span = end_ns - start_ns
    out = [0] * buckets
    for ts, qty in trades:
        if time_of_day:
            ts %= NS_PER_DAY
        if start_ns <= ts < end_ns and qty > 0:
            out[(ts - start_ns) * buckets // span] += qty
    return tuple(out)

