"""The strategy engine's execution algorithms: the one AlgoRunner (celeris.strategy.algos) the engine owns,
joined to it by celeris.strategy.algo_hooks, and the SDK intents that start and stop its parents.

Owns the start of a parent an SDK strategy queued (`StartAlgoIntent`: refused as an order is refused —
observation mode, halted, the pre-trade filter judging the whole parent unless reduce-only — and then
finished at once with stop reason `refused`, nothing sent; else started under its pre-chosen id with the
strategy as owner of every child), its cancel, the progress a strategy reads, the runner's timer
(`algo_due`: a parent's next slice on the engine's clock, a backtest's event clock included), the stop of
a strategy's parents when it leaves (disabled, removed), and the per-parent reports (`algo_reports`: JSON,
decimal strings, slippage against the arrival mid with a cost positive).

A mixin of StrategyEngine: the engine feeds `self.algos` from its book, trade, fill and order-update
handlers; the strategy component halts, resumes and stops it with the engine.
"""

from __future__ import annotations

import logging
from typing import Any

from celeris.domain.algos import AlgoProgress, AlgoState
from celeris.domain.modes import Mode
from celeris.domain.sdk_types import CancelAlgoIntent, StartAlgoIntent
from celeris.strategy.algo_hooks import engine_hooks
from celeris.strategy.algos import AlgoRunner
from celeris.strategy.model import Runner

log = logging.getLogger("celeris.strategy.engine")


class EngineAlgos:
    algos: AlgoRunner

    def _init_algos(self) -> None:
        self.algos = AlgoRunner(self.instruments, self.clock, self.gateway, **engine_hooks(self))
        self.algo_refusals: dict[str, str] = {}
        """algo id -> why the engine refused it (its parent finished at once, nothing sent)."""

    def _sdk_start_algo(self, runner: Runner, intent: StartAlgoIntent) -> None:
        name, parent = runner.config.name, intent.parent
        reason = None
        if self.mode is Mode.OBSERVATION or self.halted or not parent.reduce_only:
            reason = self._sdk_refusal(runner, parent.side, parent.symbol, parent.qty_steps)
        if reason is None:
            self.algos.start(parent, name, intent.algo_id)
            return
        log.info("strategy %s: %s %s %s refused: %s", name, type(parent.params).__name__, parent.side.value,
                 self.instruments[parent.symbol].format_qty(parent.qty_steps), reason)
        self.algo_refusals[intent.algo_id] = reason
        self.algos.refuse(parent, name, intent.algo_id)

    def _sdk_cancel_algo(self, runner: Runner, intent: CancelAlgoIntent) -> None:
        running = self.algos.algos.get(intent.algo_id)
        if running is None or running.owner != runner.config.name or running.algo.state is AlgoState.FINISHED:
            return  # never started (still queued: refused at start) or finished: nothing works
        self.algos.cancel(intent.algo_id)

    def _algo_progress(self, owner: str, algo_id: str) -> AlgoProgress | None:
        running = self.algos.algos.get(algo_id)
        return running.algo.progress() if running is not None and running.owner == owner else None

    def _stop_algos_of(self, owner: str) -> None:
        """A strategy that leaves: its parents stop (their working children are cancelled with its orders)."""
        for algo_id, running in list(self.algos.algos.items()):
            if running.owner == owner and running.algo.state is not AlgoState.FINISHED:
                self.algos.cancel(algo_id)

    def algo_due(self) -> None:
        """Let every parent act whose next slice is due on the engine's clock (called with the timers)."""
        due = self.algos.next_wakeup_ns()
        if due is not None and due <= self.clock.now_ns():
            self.algos.on_timer()

    def algo_reports(self, owner: str = "") -> list[dict[str, Any]]:
        """Every parent's report (of one strategy if given), oldest first: algo_id, owner, kind, symbol,
        side, state, stop_reason, qty, filled, remaining, leftover, average_price, arrival_price (the mid when
        it started), slippage_bps ((average - arrival) / arrival signed so that a cost is positive; None
        without a fill), children, children_refused, and refused_reason (why the engine refused it, else
        None). Quantities and prices are decimal strings: `json.dumps` takes it as it is."""
        return [{**report, "refused_reason": self.algo_refusals.get(report["algo_id"])}
                for report in self.algos.reports(owner)]
