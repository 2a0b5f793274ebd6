"""The SDK strategies' intents turned into orders, and their view of those orders kept current.

Owns, for the strategy engine's SDK driver (strategy/sdk_driver.py): a placement through the pre-trade
filter (refused to the strategy with the reason; in observation mode or halted, logged and refused, nothing
sent), reserved as the strategy's own before it is sent, then to the gateway; a cancel (one of an order
still on its way waits for its acknowledgement); an amendment (the worse of the old and the new terms
reserved until its answer; one that raises the size is filtered for the increase); each placement and
amendment published as the strategy's signal; and the strategy's `OwnOrder`s moved along their table by
execution's answers, updates and fills, each change told to it (on_order, on_fill).

A mixin of StrategyEngine: the state it works on (runners, owned orders, gateway, clock) is the engine's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from celeris.domain import sdk
from celeris.domain.instruments import OrderType, TimeInForce
from celeris.domain.messages import AmendRequest, OrderRequest
from celeris.domain.modes import Mode
from celeris.domain.orders import OrderStatus
from celeris.domain.sdk_types import (
    AmendIntent,
    CancelAlgoIntent,
    CancelIntent,
    InvalidOrderMove,
    OrderState,
    OrderUpdate,
    OwnFill,
    PlaceIntent,
    StartAlgoIntent,
)
from celeris.domain.signals import Signal, Urgency
from celeris.domain.values import Side
from celeris.strategy.aggregation import Aggregated
from celeris.strategy.filters import risk_filter
from celeris.strategy.model import Runner
from celeris.strategy.owned import WorkingRecord

log = logging.getLogger("celeris.strategy.engine")

_CLOSED_STATE = {OrderStatus.FILLED: (OrderState.FILLED, "filled"), OrderStatus.CANCELED: (OrderState.CANCELED, "canceled"),
                 OrderStatus.REJECTED: (OrderState.REJECTED, "rejected"),
                 OrderStatus.EXPIRED: (OrderState.EXPIRED, "expired")}


class SdkIntents:
    # -- intents -> orders --------------------------------------------------------------------------
    def _execute(self, runner: Runner, intent: Any) -> None:
        if isinstance(intent, PlaceIntent):
            self._sdk_place(runner, intent.order, intent.request_id)
        elif isinstance(intent, CancelIntent):
            self._sdk_cancel_intent(runner, intent)
        elif isinstance(intent, AmendIntent):
            self._sdk_amend_intent(runner, intent)
        elif isinstance(intent, StartAlgoIntent):
            self._sdk_start_algo(runner, intent)
        elif isinstance(intent, CancelAlgoIntent):
            self._sdk_cancel_algo(runner, intent)

    def _sdk_refusal(self, runner: Runner, signal_side: Side, symbol: str, qty_steps: int) -> str | None:
        if self.mode is Mode.OBSERVATION:
            return "observation mode: logged, not sent"
        if self.halted:
            return "halted: not sent"
        view = self.account_view(signal_side)
        probe = Signal(symbol, signal_side, 1.0, runner.config.name, self.clock.now_ns())
        reason = risk_filter(probe, qty_steps, self.instruments[symbol], self.instruments, view, self.limits)
        if reason is not None:
            self.stats["filtered"] += 1
            kind = reason.split(":")[0]
            self.filter_reasons[kind] = self.filter_reasons.get(kind, 0) + 1
        return reason

    def _sdk_place(self, runner: Runner, order: sdk.OwnOrder, request_id: str) -> None:
        name = runner.config.name
        ins = self.instruments[order.symbol]
        self.sdk_owner[order.client_order_id] = name
        decision = self._sdk_decision(runner, order, order.price_ticks, order.qty_steps, "sdk order")
        if self.mode is Mode.OBSERVATION or self.halted or not order.reduce_only:
            reason = self._sdk_refusal(runner, order.side, order.symbol, order.qty_steps)
            if reason is not None:
                log.info("strategy %s: %s %s %s @ %s refused: %s", name, order.side.value, ins.format_qty(order.qty_steps),
                         order.symbol, "market" if order.price_ticks is None else ins.format_price(order.price_ticks),
                         reason)
                observed = self.mode is Mode.OBSERVATION or self.halted
                self._publish_signal(decision, observed, "" if observed else reason, "observed" if observed else "filtered")
                self._sdk_move(order.client_order_id, OrderState.REJECTED, "rejected", reason=reason)
                return
        self._publish_signal(decision, True, "", "quote" if order.post_only else "order")
        now = self.clock.now_ns()
        cid = order.client_order_id
        self.owned.reserve(WorkingRecord(cid, (name,), (order.qty_steps,), order.symbol, order.side, order.qty_steps,
                                         order.price_ticks, False, now, order.reduce_only, managed=True))
        request = OrderRequest(request_id, order.symbol, order.side,
                               OrderType.MARKET if order.price_ticks is None else OrderType.LIMIT, order.qty_steps,
                               order.price_ticks, order.time_in_force, reduce_only=order.reduce_only,
                               strategy_id=name, client_order_id=cid, ts_signal_ns=self.stimulus_ns or now)
        self._spawn_order(self._sdk_send(request))

    def _sdk_decision(self, runner: Runner, order: sdk.OwnOrder, price_ticks: int | None, qty_steps: int,
                      why: str) -> Aggregated:
        """A placement or amendment is the SDK's signal: counted and published on signals.{symbol} like one
        (dashboards, observation mode), with what became of it."""
        runner.signals += 1
        self.stats["signals"] += 1
        urgency = (Urgency.PASSIVE if order.post_only else Urgency.AGGRESSIVE if order.price_ticks is None
                   or order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK) else Urgency.NORMAL)
        return Aggregated(Signal(order.symbol, order.side, 1.0, runner.config.name, self.clock.now_ns(), urgency,
                                 price_ticks, why, qty_steps=qty_steps, reduce_only=order.reduce_only),
                          (runner.config.name,))

    async def _sdk_send(self, request: OrderRequest) -> None:
        cid = request.client_order_id
        self.order_times.append(self.clock.now_ns())
        self.stats["orders"] += 1
        try:
            outcome = await self.gateway.submit(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("sending the order of %s failed", request.strategy_id)
            self._sdk_closed(cid, OrderState.REJECTED, "rejected", f"sending failed: {exc!r}")
            return
        if outcome.accepted and outcome.order is not None:
            if outcome.order.is_open:
                self.owned.acknowledged(cid)
                self._sdk_move(cid, OrderState.WORKING, "accepted", only_from=OrderState.PENDING)
            else:
                state, event = _CLOSED_STATE.get(outcome.order.status, (OrderState.CANCELED, "canceled"))
                self._sdk_closed(cid, state, event, outcome.order.reject_reason)
        else:
            self.stats["rejected_by_execution"] += 1
            reason = outcome.rejection.message if outcome.rejection else "refused by execution"
            self._sdk_closed(cid, OrderState.REJECTED, "rejected", reason)
        if cid in self._deferred_cancels:
            self._deferred_cancels.discard(cid)
            record = self.owned.working.get(cid)
            if record is not None:
                self._sdk_send_cancel(record)

    def _sdk_cancel_intent(self, runner: Runner, intent: CancelIntent) -> None:
        record = self.owned.working.get(intent.client_order_id)
        if record is None:
            # Never sent (refused at once) or finished meanwhile: nothing works at the venue.
            self._sdk_move(intent.client_order_id, OrderState.CANCELED, "canceled", reason="not working")
            return
        if not record.acknowledged:
            self._deferred_cancels.add(record.client_order_id)  # sent when its acknowledgement comes
            return
        self._sdk_send_cancel(record)

    def _sdk_send_cancel(self, record: WorkingRecord) -> None:
        if record.cancel_requested:
            return
        record.cancel_requested = True
        self._spawn_order(self._cancel(record, f"sdk{self._next_sequence()}"))

    def _sdk_amend_intent(self, runner: Runner, intent: AmendIntent) -> None:
        cid = intent.client_order_id
        record = self.owned.working.get(cid)
        order = runner.context.orders.get(cid)
        amend = getattr(self.gateway, "amend", None)
        refusal = None
        if record is None or order is None:
            refusal = "the order is no longer working"
        elif not callable(amend):
            refusal = "this gateway cannot amend orders"
        elif intent.qty_steps > intent.old_qty_steps and not order.reduce_only:
            refusal = self._sdk_refusal(runner, order.side, order.symbol, intent.qty_steps - intent.old_qty_steps)
        elif self.mode is Mode.OBSERVATION or self.halted:
            refusal = "observation mode" if self.mode is Mode.OBSERVATION else "halted"
        if order is not None:
            decision = self._sdk_decision(runner, order, intent.price_ticks, intent.qty_steps, "sdk amendment")
            self._publish_signal(decision, refusal is None, refusal or "", "quote" if refusal is None else "filtered")
        if refusal is not None:
            self._sdk_move(cid, OrderState.WORKING, "amend_rejected", reason=refusal)
            return
        # Until the answer either the old or the new terms may be the venue's: the worse of both is reserved.
        remaining = max(record.qty_steps, intent.qty_steps - order.filled_steps)
        record.qty_steps = remaining
        self.owned.ledger.track(cid, record.symbol, record.side, remaining,
                                max(intent.price_ticks, intent.old_price_ticks), record.reduce_only)
        request = AmendRequest(f"amend{self._next_sequence()}-{cid}", record.symbol, cid, intent.qty_steps,
                               intent.price_ticks)
        self._spawn_order(self._sdk_amend(record, request))

    async def _sdk_amend(self, record: WorkingRecord, request: AmendRequest) -> None:
        cid = request.client_order_id
        try:
            outcome = await self.gateway.amend(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("amending %s failed", cid)
            outcome = None
            reason = repr(exc)
        else:
            reason = outcome.rejection.message if outcome.rejection else "refused"
        if outcome is not None and outcome.accepted and outcome.order is not None:
            placed = outcome.order
            if not placed.is_open:
                state, event = _CLOSED_STATE.get(placed.status, (OrderState.CANCELED, "canceled"))
                self._sdk_closed(cid, state, event)
                return
            if cid in self.owned.working:
                record.qty_steps, record.price_ticks = placed.remaining_steps, placed.price_ticks
                self.owned.ledger.track(cid, record.symbol, record.side, record.qty_steps, record.price_ticks,
                                        record.reduce_only)
            self._sdk_move(cid, OrderState.WORKING, "amended", qty_steps=placed.qty_steps,
                           price_ticks=placed.price_ticks)
            return
        own = self._sdk_order(cid)
        if own is not None and cid in self.owned.working:  # the old terms stand
            record.qty_steps, record.price_ticks = own.remaining_steps, own.price_ticks
            self.owned.ledger.track(cid, record.symbol, record.side, record.qty_steps, record.price_ticks,
                                    record.reduce_only)
        self._sdk_move(cid, OrderState.WORKING, "amend_rejected", reason=reason)

    # -- the strategy's view of its orders ---------------------------------------------------------------
    def _sdk_runner_of(self, cid: str) -> Runner | None:
        name = self.sdk_owner.get(cid)
        runner = self.runners.get(name) if name else None
        return runner if runner is not None and runner.context is not None else None

    def _sdk_order(self, cid: str) -> sdk.OwnOrder | None:
        runner = self._sdk_runner_of(cid)
        return runner.context.orders.get(cid) if runner else None

    def _sdk_move(self, cid: str, state: OrderState, event: str, *, only_from: OrderState | None = None,
                  **changes: Any) -> None:
        """Move the strategy's view of an order along its table and tell it (illegal moves are logged)."""
        runner = self._sdk_runner_of(cid)
        if runner is None:
            return
        order = runner.context.orders.get(cid)
        if order is None or (only_from is not None and order.state is not only_from):
            return
        try:
            moved = order.moved(state, **changes)
        except InvalidOrderMove:
            log.exception("strategy %s", runner.config.name)
            if state.is_open:
                return
            # Execution says it no longer works: that fact stands, the strategy must not keep a ghost.
            moved = dataclasses.replace(order, state=state, **changes)
        runner.context.update(moved)
        if not moved.is_open:
            self.sdk_owner.close(cid)
        self._notify(runner, "on_order", OrderUpdate(event, moved))

    def _sdk_closed(self, cid: str, state: OrderState, event: str, reason: str = "") -> None:
        self.owned.closed(cid)
        self._deferred_cancels.discard(cid)
        self._sdk_move(cid, state, event, **({"reason": reason} if reason else {}))

    def _order_closed(self, cid: str, status: OrderStatus | None = None, reason: str = "") -> None:
        """An order that no longer works (execution's update, a cancel's answer): released, its owner told."""
        order = self._sdk_order(cid)
        if order is None:
            self.owned.closed(cid)
            return
        if status is None:
            status = OrderStatus.FILLED if order.filled_steps >= order.qty_steps else OrderStatus.CANCELED
        state, event = _CLOSED_STATE.get(status, (OrderState.CANCELED, "canceled"))
        self._sdk_closed(cid, state, event, reason)

    def _sdk_fill(self, name: str, cid: str, symbol: str, side: Side, qty: int, price_ticks: int, fee: int,
                  is_maker: bool, ts_ns: int) -> None:
        runner = self.runners.get(name)
        if runner is None or runner.context is None:
            return
        order = runner.context.orders.get(cid)
        if order is not None:
            filled = order.filled_steps + qty
            if filled >= order.qty_steps:
                moved = order.moved(OrderState.FILLED, filled_steps=filled)
                self._deferred_cancels.discard(cid)
            elif order.state is OrderState.PENDING:  # the fill overtook the acknowledgement
                moved = order.moved(OrderState.WORKING, filled_steps=filled)
            else:
                moved = dataclasses.replace(order, filled_steps=filled)  # a part: the state stands
            runner.context.update(moved)
            if not moved.is_open:
                self.sdk_owner.close(cid)
        self._notify(runner, "on_fill", OwnFill(cid, symbol, side, price_ticks, qty, fee, is_maker, ts_ns))
        if order is not None and not moved.is_open:
            self._notify(runner, "on_order", OrderUpdate("filled", moved))

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence
