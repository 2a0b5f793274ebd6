"""The execution algorithms joined to the strategy engine: the AlgoRunner hooks that make each child its
strategy's own order in the engine.

Owns the three callbacks `engine_hooks(engine)` returns for `AlgoRunner(..., **engine_hooks(engine))`:
a child is reserved in the engine's owned orders before it is sent, as its strategy's managed order (so
the engine's pre-trade filter counts it while it works, no time-to-live or reversal cancels it, a halt's
cancel of the strategies' orders reaches it, and its fills are credited to the strategy's own position
and reach an SDK strategy's `on_fill`); it is released once it can no longer fill; and a parent's progress
calls the owning SDK strategy's `on_algo(progress)` if it defines one. The runner does not import the
engine, nor this module the engine: the engine builds its own runner with these hooks
(celeris.strategy.engine_algos).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celeris.domain.algos import AlgoProgress
from celeris.domain.messages import OrderRequest
from celeris.strategy.owned import WorkingRecord


def engine_hooks(engine: Any) -> dict[str, Callable[..., None]]:
    """`on_child_sent`, `on_child_done` and `on_progress` for an AlgoRunner beside `engine` (a StrategyEngine)."""

    def sent(owner: str, request: OrderRequest) -> None:
        cid = request.client_order_id
        engine.owned.reserve(WorkingRecord(cid, (owner,), (request.qty_steps,), request.symbol, request.side,
                                           request.qty_steps, request.price_ticks, False, engine.clock.now_ns(),
                                           request.reduce_only, managed=True))
        runner = engine.runners.get(owner)
        if runner is not None and runner.context is not None:
            engine.sdk_owner[cid] = owner  # a fill racing the close is still the strategy's own

    def done(owner: str, client_order_id: str) -> None:
        engine.owned.closed(client_order_id)
        engine.sdk_owner.close(client_order_id)

    def progress(owner: str, update: AlgoProgress) -> None:
        runner = engine.runners.get(owner)
        if runner is not None and runner.context is not None and callable(getattr(runner.strategy, "on_algo", None)):
            engine._notify(runner, "on_algo", update)

    return {"on_child_sent": sent, "on_child_done": done, "on_progress": progress}
