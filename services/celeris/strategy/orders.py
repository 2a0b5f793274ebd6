"""The strategy engine's orders: turning an approved decision into order requests (one working quote per
strategy, symbol and side, replaced when the strategy moves its price; directional orders with a time to
live), sending them to the gateway with the order reserved first, and cancelling what a strategy no
longer wants (withdrawn quotes, reversals, owners gone, every quote on a halt).

A mixin of StrategyEngine: the state it works on (owned orders, gateway, stats) is the engine's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from celeris.domain.modes import Mode
from celeris.domain.sdk_types import OrderState
from celeris.domain.signals import BookTop, Urgency
from celeris.domain.values import Side
from celeris.domain.messages import OrderRequest, client_order_id_for
from celeris.strategy.aggregation import Aggregated
from celeris.strategy.filters import plan_order, risk_filter
from celeris.strategy.owned import WorkingRecord

log = logging.getLogger("celeris.strategy.engine")


class OrderIntents:
    def _act(self, decision: Aggregated, top: BookTop) -> None:
        signal = decision.signal
        ins = self.instruments[signal.symbol]
        shares = tuple(ins.qty(self.runners[name].config.order_size) if name in self.runners else 0
                       for name in decision.contributors)
        size = sum(shares) // max(1, len(decision.contributors))
        plan = plan_order(signal, top, ins, size)
        if self.mode is Mode.OBSERVATION or self.halted:
            log.info("signal %s %s %.2f (%s): observed", signal.symbol, signal.side.value, signal.strength,
                     signal.strategy)
            self._publish_signal(decision, True, "", "observed")
            return
        if plan is None:
            self._publish_signal(decision, False, "size rounds to nothing tradable", "filtered")
            return
        owner = "+".join(decision.contributors)
        if signal.urgency is not Urgency.PASSIVE and not signal.reduce_only:
            for name in decision.contributors:  # its intent reversed: the other side's orders go
                self._cancel_records(self.owned.against(name, signal.symbol, signal.side), "canceled_reversed",
                                     "reversed")
        if not signal.reduce_only:
            reason = risk_filter(signal, plan.qty_steps, ins, self.instruments, self.account_view(signal.side),
                                 self.limits)
            if reason is not None:
                self.stats["filtered"] += 1
                kind = reason.split(":")[0]
                self.filter_reasons[kind] = self.filter_reasons.get(kind, 0) + 1
                self._publish_signal(decision, False, reason, "filtered")
                return
        key = (owner, signal.symbol, signal.side)
        if key in self._inflight:
            return  # the previous order for this intent is still on its way
        quote = self.owned.quote_of(owner, signal.symbol, signal.side)
        if signal.urgency is Urgency.PASSIVE and quote is not None and quote.price_ticks == plan.price_ticks:
            self._publish_signal(decision, True, "", "unchanged")
            return
        now = self.clock.now_ns()
        self._sequence += 1
        # Unique per decision: execution answers a repeated request id with its first answer.
        request_id = f"{owner}-{signal.symbol}-{signal.side.value}-{now}-{self._sequence}"
        client_id = client_order_id_for(request_id, owner)
        request = OrderRequest(request_id, signal.symbol, signal.side, plan.order_type, plan.qty_steps,
                               plan.price_ticks, plan.time_in_force, reduce_only=signal.reduce_only,
                               strategy_id=owner, client_order_id=client_id, ts_signal_ns=signal.ts_event_ns)
        # Reserved before it is sent: the next decision's filter already counts it.
        self.owned.reserve(WorkingRecord(client_id, decision.contributors, shares, signal.symbol, signal.side,
                                         plan.qty_steps, plan.price_ticks, signal.urgency is Urgency.PASSIVE, now,
                                         signal.reduce_only))
        self._inflight.add(key)
        self._publish_signal(decision, True, "", "quote" if signal.urgency is Urgency.PASSIVE else "order")
        if quote is not None:
            # A requote cancels the old quote while the new one goes out: the new order does not wait
            # for the cancel's round trip to the venue.
            self._cancel_records([quote], "", "requote")
        self._spawn_order(self._send(key, request))

    def _spawn(self, coro: Any) -> None:
        self._track(asyncio.ensure_future(coro))

    def _spawn_order(self, coro: Any) -> None:
        """An order action (send, cancel, amend): started eagerly after the book dispatch that caused it,
        else a task (an answer or a fill from execution must not re-enter execution from its own callback)."""
        if self._outbox is not None:
            self._outbox.append(coro)
        else:
            self._spawn(coro)

    def _track(self, task: asyncio.Future[Any]) -> None:
        if not task.done():
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, key: tuple[str, str, Side], request: OrderRequest) -> None:
        owner = key[0]
        try:
            self.order_times.append(self.clock.now_ns())
            self.stats["orders"] += 1
            outcome = await self.gateway.submit(request)
            if outcome.accepted and outcome.order is not None:
                if outcome.order.is_open:
                    self.owned.acknowledged(request.client_order_id)
                else:
                    self.owned.closed(request.client_order_id)
            else:
                self.owned.closed(request.client_order_id)
                self.stats["rejected_by_execution"] += 1
                reason = outcome.rejection.message if outcome.rejection else "refused"
                log.info("order for %s refused by execution: %s", owner, reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.owned.closed(request.client_order_id)
            log.exception("sending the order for %s failed", owner)
        finally:
            self._inflight.discard(key)

    def _cancel_records(self, records: list[WorkingRecord], stat: str, why: str) -> None:
        for record in records:
            if record.cancel_requested:
                continue
            record.cancel_requested = True
            if stat:
                self.stats[stat] += 1
            self._spawn_order(self._cancel(record, why))

    async def _cancel(self, record: WorkingRecord, why: str) -> None:
        try:
            outcome = await self.gateway.cancel(f"{why}-{record.client_order_id}", record.symbol,
                                                record.client_order_id)
            if outcome.order is not None and not outcome.order.is_open:
                self._order_closed(record.client_order_id, outcome.order.status)
            elif not outcome.accepted:
                record.cancel_requested = False  # try again at the next occasion
                self._cancel_refused(record, outcome.rejection.message if outcome.rejection else "refused")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            record.cancel_requested = False
            log.exception("cancelling %s failed", record.client_order_id)
            self._cancel_refused(record, repr(exc))

    def _cancel_refused(self, record: WorkingRecord, reason: str) -> None:
        if record.managed and record.client_order_id in self.owned.working:  # an SDK strategy's: it is told
            self._sdk_move(record.client_order_id, OrderState.WORKING, "cancel_rejected",
                           only_from=OrderState.PENDING_CANCEL, reason=reason)

    def _owner_gone(self, name: str, stat: str) -> None:
        release = getattr(self.gateway, "release_owner", None)
        if callable(release):
            try:
                result = release(name)
                if asyncio.iscoroutine(result):
                    self._spawn(result)
            except Exception:
                log.exception("releasing owner %s failed", name)
        self._stop_algos_of(name)  # no new children for a strategy that left
        self._cancel_records(self.owned.owned_by(name), stat, "owner-gone")

    # -- upkeep: leases and time-to-live ------------------------------------------------------------

    async def cancel_quotes(self) -> None:
        """Cancel every working order of every strategy (halt, stop)."""
        records = list(self.owned.working.values())
        results = await asyncio.gather(*(self.gateway.cancel(f"cancel-{r.client_order_id}", r.symbol,
                                                             r.client_order_id) for r in records),
                                       return_exceptions=True)
        for record, result in zip(records, results):
            if not isinstance(result, BaseException) and result.order is not None and not result.order.is_open:
                self._order_closed(record.client_order_id, result.order.status)
