"""Where the dashboard's state comes from, and what its buttons do.

`InProcessSource` reads an in-process system (`celeris up`): book, order, fill and signal topics from the
bus as they happen, and account, risk and health figures polled four times a second. Values are shaped
for display once, here (decimals as strings, never floats for money), so every client gets the same.
`SystemActions` turns the dashboard's halt/resume/acknowledge into the risk manager's emergency stop and
re-enable and the account monitor's acknowledgement.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from fractions import Fraction
from typing import Any

from celeris.dashboard.state import DashboardState
from celeris.domain.book import BookState
from celeris.domain.orders import Order
from celeris.domain.funding import MARGIN_ASSET, asset_scale
from celeris.domain.values import format_units, money_str
from celeris.domain.stats import percentile

DEPTH = 10


def dec(value: Fraction | int | None, places: int = 2) -> str:
    """An exact value as a decimal string with `places` decimals, rounded half to even; never via float."""
    if value is None:
        return ""
    return format_units(round(Fraction(value) * 10**places), places)


def percentile_us(samples: Any, q: float) -> float:
    return round((percentile(samples, q) or 0) / 1000, 1)


def _fee(fill: Any) -> str:
    """A fill's fee as the dashboard shows it: USDT to 4 places, another asset (BNB) in full, its own units."""
    if fill.commission_asset == MARGIN_ASSET:
        return money_str(fill.commission, 4)
    return format_units(fill.commission, asset_scale(fill.commission_asset))


class InProcessSource:
    def __init__(self, system: Any, state: DashboardState, poll_s: float = 0.25) -> None:
        self.system = system
        self.state = state
        self.poll_s = poll_s
        self.started = time.monotonic()
        self.orders: deque[dict[str, Any]] = deque(maxlen=30)
        self.open_orders: dict[str, dict[str, Any]] = {}
        """Open orders as displayed, kept from order events: asking execution for them on every event scanned
        every order it ever had (a cost that grew with the session, on the trading loop)."""
        self.fills: deque[dict[str, Any]] = deque(maxlen=30)
        self.signals: deque[dict[str, Any]] = deque(maxlen=20)
        self._unsubscribe: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._last_point = 0.0
        self._dirty_books: dict[str, int] = {}
        """Symbols whose book changed since it was last formatted, with the time of the first change."""

    async def start(self) -> None:
        from celeris.domain.topics import fill_topic, order_topic
        from celeris.domain.topics import book_topic
        from celeris.domain.topics import signal_topic

        bus = self.system.bus
        for symbol in self.system.instruments:
            self._unsubscribe += [bus.subscribe(book_topic(symbol), self._on_book),
                                  bus.subscribe(order_topic(symbol), self._on_order),
                                  bus.subscribe(fill_topic(symbol), self._on_fill),
                                  bus.subscribe(signal_topic(symbol), self._on_signal)]
        self.load_open_orders()
        self.poll()
        self._task = asyncio.create_task(self._loop(), name="dashboard-source")

    async def stop(self) -> None:
        for off in self._unsubscribe:
            off()
        if self._task is not None:
            self._task.cancel()

    def _now(self) -> int:
        return self.system.clock.now_ns()

    # -- events ---------------------------------------------------------------------------------
    def _on_book(self, update: Any) -> None:
        # Formatting a book for display is not the hot path's business: mark it dirty, and the dashboard
        # formats it once, just before its next push. Only the first event of a batch does more than a lookup.
        dirty = self._dirty_books
        if update.symbol not in dirty:
            if not dirty:
                self.state.mark_dirty(self._flush_books)
            dirty[update.symbol] = self._now()

    def _flush_books(self) -> None:
        dirty, self._dirty_books = self._dirty_books, {}
        for symbol, ts_ns in dirty.items():
            self._format_book(symbol, ts_ns)

    def _format_book(self, symbol: str, ts_ns: int) -> None:
        core = self.system.marketdata.core
        state = core.symbols[symbol]
        book, ins = state.synced.book, state.instrument
        live = state.synced.state is BookState.LIVE
        mid = book.mid()
        self.state.set(f"markets.{symbol}", {
            "state": state.synced.state.value,
            "bids": [[ins.format_price(p), ins.format_qty(q)] for p, q in book.bids(DEPTH)] if live else [],
            "asks": [[ins.format_price(p), ins.format_qty(q)] for p, q in book.asks(DEPTH)] if live else [],
            "mid": dec(ins.price_fraction(1) * mid, ins.price_grid.scale + 1) if live and mid is not None else "",
            "spread_ticks": book.spread() if live else None, "update_id": book.last_update_id,
            "gaps": state.synced.stats.gaps, "resyncs": state.synced.stats.resyncs,
        }, ts_ns)  # the time of the first change it shows: staleness counts from there

    def _order_doc(self, order: Order) -> dict[str, Any]:
        ins = self.system.instruments[order.symbol]
        return {"id": order.client_order_id, "symbol": order.symbol, "side": order.side.value,
                "type": order.order_type.value, "price": ins.format_price(order.price_ticks) if order.price_ticks else "",
                "qty": ins.format_qty(order.qty_steps), "filled": ins.format_qty(order.filled_steps),
                "status": order.status.value, "strategy": order.strategy_id, "ts": order.ts_updated_ns // 1_000_000}

    def load_open_orders(self) -> None:
        """Once, at start: the orders execution restored; from then on order events keep the view."""
        self.open_orders = {o.client_order_id: self._order_doc(o) for o in self.system.execution.open_orders()}

    def _on_order(self, order: Order) -> None:
        doc = self._order_doc(order)
        for i, existing in enumerate(self.orders):
            if existing["id"] == doc["id"]:
                del self.orders[i]
                break
        self.orders.appendleft(doc)
        now = self._now()
        self.state.set("orders.recent", list(self.orders), now)
        if order.status.is_open:
            self.open_orders[doc["id"]] = doc
        else:
            self.open_orders.pop(doc["id"], None)
        self.state.set("orders.open", list(self.open_orders.values()), now)

    def _on_fill(self, fill: Any) -> None:
        ins = self.system.instruments[fill.symbol]
        self.fills.appendleft({"symbol": fill.symbol, "side": fill.side.value, "price": ins.format_price(fill.price_ticks),
                               "qty": ins.format_qty(fill.qty_steps), "fee": _fee(fill), "fee_asset": fill.commission_asset,
                               "maker": fill.is_maker, "strategy": fill.strategy_id, "ts": fill.ts_event_ns // 1_000_000})
        self.state.set("fills.recent", list(self.fills), self._now())

    def _on_signal(self, event: Any) -> None:
        s = event.signal
        self.signals.appendleft({"symbol": s.symbol, "side": s.side.value, "strength": round(s.strength, 3),
                                 "strategy": s.strategy, "action": event.action, "reason": event.rejection_reason
                                 or s.reason, "ts": s.ts_event_ns // 1_000_000})
        self.state.set("signals.recent", list(self.signals), self._now())

    # -- polled figures -------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                self.poll()
            except Exception:  # the dashboard must not die because one figure could not be read
                import logging
                logging.getLogger(__name__).exception("dashboard poll failed")

    def poll(self) -> None:
        s = self.system
        now = self._now()
        account, risk, execution = s.account, s.risk, s.execution
        pnl = account.pnl()
        self.state.set("system.status", {
            "mode": execution.mode.value, "halted": execution.halted or risk.stop.active,
            "halt_reason": risk.stop.reason or execution.halt_reason, "uptime_s": int(time.monotonic() - self.started),
            "venue": getattr(s, "venue_url", ""), "symbols": list(s.instruments)}, now)
        self.state.set("account.summary", {
            "equity": dec(pnl["equity"]), "wallet": money_str(account.wallet, 2),
            "margin_ratio_pct": dec(account.margin_ratio() * 100), "open_orders": len(self.open_orders)}, now)
        self.state.set("pnl.summary", {k: dec(v) if v is not None else "" for k, v in pnl.items()}, now)
        positions = {}
        for (symbol, side), pos in account.positions.items():
            if not pos.qty_steps:
                continue
            liq = account.liquidation_price((symbol, side))
            positions[f"{symbol}" if side == "BOTH" else f"{symbol}:{side}"] = {
                "qty": pos.instrument.format_qty(pos.qty_steps), "entry": dec(pos.entry_price),
                "mark": dec(account.marks.get(symbol)), "unrealized": dec(account.unrealized((symbol, side)), 4),
                "liquidation": dec(liq) if liq else ""}
        self.state.set("positions.all", positions, now)
        if risk.metrics is not None:
            m = risk.metrics
            self.state.set("risk.metrics", {"leverage": dec(m.leverage, 3), "margin_ratio_pct": dec(m.margin_ratio * 100),
                                            "daily_drawdown_pct": dec(m.daily_drawdown_pct),
                                            "peak_drawdown_pct": dec(m.peak_drawdown_pct)}, now)
        stop = risk.stop
        self.state.set("risk.stop", {"active": stop.active, "reason": stop.reason, "by": stop.triggered_by,
                                     "canceled": stop.orders_canceled, "closed": stop.positions_closed,
                                     "enabled_by": stop.enabled_by}, now)
        self.state.set("system.latency", {
            "decision_p99_us": percentile_us(s.strategy.decision_latency_ns, 0.99),
            "risk_check_p99_us": percentile_us(risk.check_latency_ns, 0.99)}, now)
        alerts = [{"id": a.id, "severity": a.severity, "category": a.category, "message": a.message,
                   "acknowledged": a.acknowledged, "ts": a.ts_ns // 1_000_000, "source": "account"}
                  for a in account.alerts[-30:]]
        alerts += [{"id": a.id, "severity": a.severity, "category": a.category, "message": a.message,
                    "acknowledged": a.acknowledged, "ts": a.ts_ns // 1_000_000, "source": "risk"}
                   for a in risk.alerts[-30:]]
        self.state.set("alerts.list", sorted(alerts, key=lambda a: -a["ts"])[:40], now)
        md = s.marketdata
        self.state.set("health.marketdata", {"ready": md.ready, "detail": "books " + ", ".join(
            f"{sym} {st.synced.state.value}" for sym, st in md.core.symbols.items()) if md.core else ""}, now)
        self.state.set("health.execution", {"ready": not execution.breaker.is_open,
                                            "detail": f"breaker {execution.breaker.state.value}, "
                                                      f"{execution.stats.accepted} accepted"}, now)
        enabled = sum(1 for r in s.strategy.runners.values() if r.enabled)
        self.state.set("health.strategy", {"ready": enabled > 0,
                                           "detail": f"{enabled}/{len(s.strategy.runners)} strategies running"}, now)
        self.state.set("health.risk", {"ready": risk.metrics is not None, "detail": f"{risk.checks} checks"}, now)
        self.state.set("health.account", {"ready": s.user_stream.connected,
                                          "detail": f"{account.recon.runs} reconciliations, "
                                                    f"{account.recon.mismatches} mismatches"}, now)
        if time.monotonic() - self._last_point >= 1.0:
            self._last_point = time.monotonic()
            self.state.append_history([now // 1_000_000, float(pnl["total"] or 0), float(pnl["equity"] or 0)], now)


class SystemActions:
    def __init__(self, system: Any) -> None:
        self.system = system

    async def halt(self, reason: str, by: str) -> dict[str, Any]:
        stop = await self.system.risk.emergency_stop(reason, by)
        return {"halted": stop.active, "reason": stop.reason, "orders_canceled": stop.orders_canceled,
                "positions_closed": stop.positions_closed}

    async def resume(self, by: str) -> dict[str, Any]:
        stop = await self.system.risk.enable_trading(by, "resumed from the dashboard")
        return {"halted": stop.active, "enabled_by": stop.enabled_by}

    async def acknowledge(self, alert_id: str, by: str) -> bool:
        if self.system.account.acknowledge(alert_id, by) is not None:
            return True
        for alert in self.system.risk.alerts:
            if alert.id == alert_id:
                alert.acknowledged = True
                return True
        return False

