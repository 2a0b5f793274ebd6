"""The strategy SDK's execution algorithms: the actions that hand a parent order to TWAP, VWAP, POV or an
iceberg (celeris.domain.algos) and the reads of its progress.

Owns `AlgoActions`, a mixin of `sdk.Strategy`: `twap`, `vwap`, `pov`, `iceberg` check what they are given
as `place` does (Decimal or str quantities and prices on the instrument's grid, else `OrderRefused` at
once; the parent's own rules: a horizon for TWAP/VWAP, a rate, a display size) and queue a
`StartAlgoIntent` carrying the algo id chosen here (the strategy's name, the clock and its sequence: the
same ids on the same data), which the engine starts after the callback returns; `cancel_algo` queues its
stop; `algo(algo_id)` reads its progress (None until started) and `algos()` the ids it started.

The engine tells the strategy through `on_algo(progress)` whenever a parent's state or filled quantity
changes, and refuses a parent as it refuses an order (observation mode, halted, the pre-trade filter on
the whole parent): the parent is then finished at once with stop reason `refused`, nothing sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from celeris.domain.algo_orders import (
    AlgoParams,
    ChildStyle,
    IcebergParams,
    ParentOrder,
    PovParams,
    TwapParams,
    VwapParams,
)
from celeris.domain.algos import AlgoProgress
from celeris.domain.sdk_types import CancelAlgoIntent, OrderRefused, StartAlgoIntent
from celeris.domain.values import Side

Number = Decimal | str


class AlgoActions:
    """Execution algorithms for `sdk.Strategy` (uses its ctx, steps, ticks, instrument and now_ns)."""

    def on_algo(self, progress: AlgoProgress) -> None:
        """A parent it started changed state or filled (override to follow it)."""

    def twap(self, symbol: str, side: Side, qty: Number, *, slices: int, duration_ns: int | None = None,
             end_ns: int | None = None, style: ChildStyle = ChildStyle.CROSS, limit_price: Number | None = None,
             reduce_only: bool = False) -> str:
        """`qty` in `slices` equal slices from now to the horizon's end (`duration_ns` from now or at `end_ns`)."""
        if isinstance(slices, bool) or not isinstance(slices, int):
            raise OrderRefused(f"{symbol}: TWAP slices must be a whole number, not {slices!r}")
        return self._start_algo(symbol, side, qty, TwapParams(slices, self._style(style)),
                                self._end(symbol, duration_ns, end_ns, required=True), limit_price, reduce_only)

    def vwap(self, symbol: str, side: Side, qty: Number, *, profile: Sequence[int], duration_ns: int | None = None,
             end_ns: int | None = None, style: ChildStyle = ChildStyle.CROSS, limit_price: Number | None = None,
             reduce_only: bool = False) -> str:
        """`qty` over the horizon weighted by `profile`: volume per equal time bucket (e.g. the recorded
        profile of celeris.strategy.algo_profile.capture_profile; any integer unit)."""
        if isinstance(profile, (str, bytes)) or any(isinstance(v, bool) or not isinstance(v, int) for v in profile):
            raise OrderRefused(f"{symbol}: a VWAP profile is a sequence of whole volumes, not {profile!r}")
        return self._start_algo(symbol, side, qty, VwapParams(tuple(profile), self._style(style)),
                                self._end(symbol, duration_ns, end_ns, required=True), limit_price, reduce_only)

    def pov(self, symbol: str, side: Side, qty: Number, *, rate_bps: int, max_child_qty: Number | None = None,
            min_child_qty: Number | None = None, duration_ns: int | None = None, end_ns: int | None = None,
            style: ChildStyle = ChildStyle.CROSS, limit_price: Number | None = None,
            reduce_only: bool = False) -> str:
        """Up to `qty`, at most `rate_bps` / 10_000 of the market volume traded from now (until the
        horizon's end if given, else until filled or cancelled)."""
        if isinstance(rate_bps, bool) or not isinstance(rate_bps, int):
            raise OrderRefused(f"{symbol}: the POV rate is whole basis points, not {rate_bps!r}")
        largest = 0 if max_child_qty is None else self.steps(symbol, max_child_qty)
        smallest = 0 if min_child_qty is None else self.steps(symbol, min_child_qty)
        return self._start_algo(symbol, side, qty, PovParams(rate_bps, largest, smallest, self._style(style)),
                                self._end(symbol, duration_ns, end_ns, required=False), limit_price, reduce_only)

    def iceberg(self, symbol: str, side: Side, qty: Number, price: Number, display_qty: Number, *,
                reduce_only: bool = False) -> str:
        """`qty` resting at `price`, never more than `display_qty` of it shown at once."""
        return self._start_algo(symbol, side, qty, IcebergParams(self.steps(symbol, display_qty)), 0, price,
                                reduce_only)

    def cancel_algo(self, algo_id: str) -> None:
        """Stop one of its parents: no new child, the working one cancelled (a finished one: a no-op)."""
        if algo_id not in self.ctx.algo_ids:
            raise OrderRefused(f"algo {algo_id!r} is not an execution algorithm of {self.name}")
        self.ctx.intents.append(CancelAlgoIntent(algo_id))

    def algo(self, algo_id: str) -> AlgoProgress | None:
        """A parent's progress (filled, remaining, fills' quote, slippage against the arrival mid); None
        while its start is still queued (until the callback that started it returns)."""
        if algo_id not in self.ctx.algo_ids:
            raise OrderRefused(f"algo {algo_id!r} is not an execution algorithm of {self.name}")
        return self.ctx.algo_progress(algo_id)

    def algos(self) -> tuple[str, ...]:
        """The ids of every parent it started, oldest first."""
        return tuple(self.ctx.algo_ids)

    # -- helpers --------------------------------------------------------------------------------------
    def _start_algo(self, symbol: str, side: Side, qty: Number, params: AlgoParams, end_ns: int,
                    limit_price: Number | None, reduce_only: bool) -> str:
        self.instrument(symbol)
        if not isinstance(side, Side):
            raise OrderRefused(f"side must be Side.BUY or Side.SELL, not {side!r}")
        qty_steps = self.steps(symbol, qty)
        limit = None if limit_price is None else self.ticks(symbol, limit_price)
        now = self.now_ns
        try:
            parent = ParentOrder(symbol, side, qty_steps, now, end_ns, params, limit, bool(reduce_only))
        except ValueError as exc:
            raise OrderRefused(f"{symbol}: {exc}") from None
        ctx = self.ctx
        ctx.sequence += 1
        kind = type(params).__name__.removesuffix("Params").lower()
        algo_id = f"{ctx.name}-{kind}-{now}-{ctx.sequence}"
        ctx.algo_ids.append(algo_id)
        ctx.intents.append(StartAlgoIntent(algo_id, parent))
        return algo_id

    def _end(self, symbol: str, duration_ns: int | None, end_ns: int | None, *, required: bool) -> int:
        for what, value in (("duration_ns", duration_ns), ("end_ns", end_ns)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise OrderRefused(f"{symbol}: {what} must be whole nanoseconds, not {value!r}")
        if duration_ns is not None and end_ns is not None:
            raise OrderRefused(f"{symbol}: give duration_ns or end_ns, not both")
        if duration_ns is not None:
            if duration_ns <= 0:
                raise OrderRefused(f"{symbol}: duration_ns must be positive")
            return self.now_ns + duration_ns
        if end_ns is None and required:
            raise OrderRefused(f"{symbol}: this algorithm needs a horizon (duration_ns or end_ns)")
        return end_ns or 0

    @staticmethod
    def _style(style: ChildStyle) -> ChildStyle:
        if not isinstance(style, ChildStyle):
            raise OrderRefused(f"style must be a ChildStyle (cross, passive, market), not {style!r}")
        return style
