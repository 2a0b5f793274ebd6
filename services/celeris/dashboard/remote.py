"""The dashboard fed by the other components over gRPC (the services topology and the pods).

`GrpcSource` subscribes to market data's book stream, execution's
order and fill streams, the account stream, the strategy signal stream and the risk alert stream (each
reopened when it breaks, starting again from its snapshot), and polls every component's Control status
for health. Its actions go to the risk manager (emergency stop, re-enable) and the account monitor
(alert acknowledgement).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Awaitable, Callable


from celeris.dashboard.state import DashboardState
from celeris.domain.values import format_units

log = logging.getLogger(__name__)


def _dec(d: Any) -> str:
    return format_units(d.mantissa, d.scale) if d is not None else ""


def _money(d: Any, places: int = 2) -> str:
    return f"{float(format_units(d.mantissa, d.scale) or 0):.{places}f}"


class GrpcSource:
    def __init__(self, settings: Any, state: DashboardState, now_ns: Callable[[], int]) -> None:
        self.s = settings
        self.state = state
        self.now_ns = now_ns
        self.tasks: list[asyncio.Task[None]] = []
        self.orders: deque[dict[str, Any]] = deque(maxlen=30)
        self.fills: deque[dict[str, Any]] = deque(maxlen=30)
        self.signals: deque[dict[str, Any]] = deque(maxlen=20)
        self.open_orders: dict[str, dict[str, Any]] = {}
        self.books: dict[str, dict[str, Any]] = {}

    async def start(self) -> None:
        from celeris.api.v1 import (account_pb2, account_pb2_grpc, execution_pb2, execution_pb2_grpc, marketdata_pb2,
                                    marketdata_pb2_grpc, risk_pb2, risk_pb2_grpc, strategy_pb2, strategy_pb2_grpc)

        s = self.s
        self._stream(s.marketdata_target, lambda ch: marketdata_pb2_grpc.MarketDataStub(ch).StreamBook(
            marketdata_pb2.StreamBookRequest(depth=10)), self._on_book)
        self._stream(s.execution_target, lambda ch: execution_pb2_grpc.ExecutionStub(ch).StreamOrderUpdates(
            execution_pb2.StreamOrdersRequest()), self._on_order)
        self._stream(s.execution_target, lambda ch: execution_pb2_grpc.ExecutionStub(ch).StreamFills(
            execution_pb2.StreamFillsRequest()), self._on_fill)
        self._stream(s.account_target, lambda ch: account_pb2_grpc.AccountMonitorStub(ch).SubscribeAccountUpdates(
            account_pb2.AccountRequest()), self._on_account)
        self._stream(s.strategy_target, lambda ch: strategy_pb2_grpc.StrategyEngineStub(ch).StreamSignals(
            strategy_pb2.StreamSignalsRequest()), self._on_signal)
        self._stream(s.risk_target, lambda ch: risk_pb2_grpc.RiskManagerStub(ch).StreamAlerts(
            risk_pb2.StreamAlertsRequest()), self._on_risk_alert)
        self.tasks.append(asyncio.create_task(self._poll()))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()

    def _stream(self, target: str, open_call: Callable[[Any], Any], handler: Callable[[Any], None]) -> None:
        async def run() -> None:
            from celeris.runtime import grpc_server
            import grpc

            while True:
                try:
                    async with grpc_server.insecure_channel(target) as channel:
                        async for msg in open_call(channel):
                            handler(msg)
                except grpc.aio.AioRpcError as exc:
                    log.debug("stream from %s lost: %s", target, exc.code().name)
                await asyncio.sleep(1.0)
        self.tasks.append(asyncio.create_task(run()))

    def _on_book(self, msg: Any) -> None:
        from celeris.api.v1 import marketdata_pb2

        state = {marketdata_pb2.BOOK_STATE_LIVE: "live", marketdata_pb2.BOOK_STATE_STALE: "stale"}.get(msg.state,
                                                                                                    "awaiting_snapshot")
        book = self.books.setdefault(msg.symbol, {"bids": {}, "asks": {}})
        if msg.header.snapshot or state != "live":
            book["bids"], book["asks"] = {}, {}
        for side, levels in (("bids", msg.bids), ("asks", msg.asks)):
            for level in levels:
                price, qty = _dec(level.price), _dec(level.qty)
                if level.qty.mantissa:
                    book[side][price] = qty
                else:
                    book[side].pop(price, None)
        bids = sorted(book["bids"].items(), key=lambda kv: -float(kv[0]))[:10]
        asks = sorted(book["asks"].items(), key=lambda kv: float(kv[0]))[:10]
        mid = f"{(float(bids[0][0]) + float(asks[0][0])) / 2:.3f}" if bids and asks and state == "live" else ""
        self.state.set(f"markets.{msg.symbol}", {"state": state, "bids": [list(b) for b in bids] if state == "live" else [],
                                                 "asks": [list(a) for a in asks] if state == "live" else [],
                                                 "mid": mid, "update_id": msg.venue_update_id}, self.now_ns())

    def _on_order(self, msg: Any) -> None:
        from celeris.api.v1 import common_pb2, execution_pb2

        if not msg.order.client_order_id:
            return
        o = msg.order
        doc = {"id": o.client_order_id, "symbol": o.symbol, "side": "BUY" if o.side == common_pb2.SIDE_BUY else "SELL",
               "price": _dec(o.price) if o.HasField("price") else "", "qty": _dec(o.quantity),
               "filled": _dec(o.filled_quantity), "status": execution_pb2.OrderStatus.Name(o.status)[13:],
               "strategy": o.strategy_id, "ts": o.ts_updated_ns // 1_000_000}
        self.orders = deque([d for d in self.orders if d["id"] != doc["id"]], maxlen=30)
        self.orders.appendleft(doc)
        if doc["status"] in ("NEW", "PENDING_SUBMIT", "SUBMITTED", "PARTIALLY_FILLED", "PENDING_CANCEL",
                             "PENDING_AMEND"):
            self.open_orders[doc["id"]] = doc
        else:
            self.open_orders.pop(doc["id"], None)
        now = self.now_ns()
        self.state.set("orders.recent", list(self.orders), now)
        self.state.set("orders.open", list(self.open_orders.values()), now)

    def _on_fill(self, msg: Any) -> None:
        from celeris.api.v1 import common_pb2

        if not msg.symbol:
            return
        usdt_fee = msg.commission_asset in ("", "USDT")  # another asset's fee (BNB) is shown in full, its own units
        self.fills.appendleft({"symbol": msg.symbol, "side": "BUY" if msg.side == common_pb2.SIDE_BUY else "SELL",
                               "price": _dec(msg.price), "qty": _dec(msg.quantity),
                               "fee": _money(msg.commission, 4) if usdt_fee else _dec(msg.commission),
                               "fee_asset": msg.commission_asset or "USDT",
                               "maker": msg.is_maker, "strategy": msg.strategy_id, "ts": msg.header.ts_event_ns // 10**6})
        self.state.set("fills.recent", list(self.fills), self.now_ns())

    def _on_account(self, msg: Any) -> None:
        st = msg.state
        now = self.now_ns()
        if st.balances:
            self.state.set("account.summary", {"equity": _money(st.equity), "wallet": _money(st.balances[0].wallet_balance),
                                               "margin_ratio_pct": f"{float(_dec(st.margin_ratio) or 0) * 100:.2f}",
                                               "open_orders": len(self.open_orders)}, now)
        if st.positions or msg.header.snapshot:
            self.state.set("positions.all", {p.symbol if p.position_side == "BOTH" else f"{p.symbol}:{p.position_side}": {
                "qty": _dec(p.quantity), "entry": _money(p.entry_price), "mark": _money(p.mark_price),
                "unrealized": _money(p.unrealized_pnl, 4), "liquidation": _money(p.liquidation_price)}
                for p in st.positions if p.quantity.mantissa}, now)
        if st.HasField("pnl"):
            p = st.pnl
            summary = {"realized": _money(p.realized), "unrealized": _money(p.unrealized), "total": _money(p.total),
                       "daily": _money(p.daily), "fees": _money(p.fees), "win_rate_pct": _money(p.win_rate_pct),
                       "max_drawdown_pct": _money(p.max_drawdown_pct), "equity": _money(st.equity),
                       "funding": _money(p.funding), "trading_pnl": _money(p.trading_pnl), "usdt_pnl": _money(p.usdt_pnl)}
            for fee in p.fees_by_asset:  # the same keys as the in-process source's (account/pnl.py export)
                key = "fees_usdt" if fee.asset == "USDT" else f"fees_{fee.asset.lower()}"
                summary[key] = _money(fee.amount) if fee.asset == "USDT" else _dec(fee.amount)
                if fee.asset != "USDT":
                    summary[key + "_usdt"] = _money(fee.usdt_value) if fee.valued else ""
            self.state.set("pnl.summary", summary, now)
            self.state.append_history([now // 1_000_000, float(summary["total"]), float(summary["equity"] or 0)], now)
        if st.alerts:
            self.state.set("alerts.list", [{"id": a.id, "severity": a.severity, "category": a.category,
                                            "message": a.message, "acknowledged": a.acknowledged,
                                            "ts": a.ts_ns // 1_000_000, "source": "account"} for a in st.alerts][-40:],
                           now)

    def _on_signal(self, msg: Any) -> None:
        from celeris.api.v1 import common_pb2

        if not msg.HasField("signal"):
            return
        sig = msg.signal
        self.signals.appendleft({"symbol": sig.symbol, "side": "BUY" if sig.side == common_pb2.SIDE_BUY else "SELL",
                                 "strength": round(sig.strength, 3), "strategy": sig.strategy,
                                 "action": "approved" if msg.approved else "filtered",
                                 "reason": msg.rejection_reason or sig.reason, "ts": sig.ts_event_ns // 1_000_000})
        self.state.set("signals.recent", list(self.signals), self.now_ns())

    def _on_risk_alert(self, msg: Any) -> None:
        current = list(self.state.entries["alerts.list"].value) if "alerts.list" in self.state.entries else []
        current.insert(0, {"id": msg.id, "severity": msg.severity, "category": msg.category, "message": msg.message,
                           "acknowledged": msg.acknowledged, "ts": msg.header.ts_event_ns // 1_000_000, "source": "risk"})
        self.state.set("alerts.list", current[:40], self.now_ns())

    async def _poll(self) -> None:
        from celeris.api.v1 import common_pb2, control_pb2, control_pb2_grpc, risk_pb2, risk_pb2_grpc
        from celeris.runtime import control_auth, grpc_server

        metadata = control_auth.control_metadata(self.s.control_token.get_secret_value())
        targets = {"marketdata": self.s.marketdata_target, "execution": self.s.execution_target,
                   "strategy": self.s.strategy_target, "risk": self.s.risk_target, "account": self.s.account_target}
        modes = {common_pb2.MODE_OBSERVATION: "observation", common_pb2.MODE_SIMULATION: "simulation",
                 common_pb2.MODE_LIVE: "live"}
        channels = {name: grpc_server.insecure_channel(t) for name, t in targets.items()}
        started = self.now_ns()
        while True:
            now = self.now_ns()
            status_of_execution = None
            for name, channel in channels.items():
                try:
                    status = await control_pb2_grpc.ControlStub(channel).GetStatus(control_pb2.GetStatusRequest(),
                                                                                  timeout=1, metadata=metadata)
                    detail = ", ".join(f"{k} {v}" for k, v in sorted(status.details.items()) if len(v) < 60)
                    self.state.set(f"health.{name}", {"ready": status.ready and not status.draining,
                                                      "detail": detail or "ok"}, now)
                    if name == "execution":
                        status_of_execution = status
                except Exception as exc:
                    self.state.set(f"health.{name}", {"ready": False, "detail": f"unreachable ({type(exc).__name__})"},
                                   now)
            stop = None
            try:
                stop = await risk_pb2_grpc.RiskManagerStub(channels["risk"]).GetEmergencyStopStatus(
                    risk_pb2.GetEmergencyStopStatusRequest(), timeout=1)
                self.state.set("risk.stop", {"active": stop.active, "reason": stop.reason, "by": stop.triggered_by,
                                             "canceled": stop.orders_canceled, "closed": stop.positions_closed,
                                             "enabled_by": stop.enabled_by}, now)
            except Exception:
                pass
            if status_of_execution is not None:
                self.state.set("system.status", {
                    "mode": modes.get(status_of_execution.mode, "unknown"),
                    "halted": status_of_execution.halted or bool(stop and stop.active),
                    "halt_reason": status_of_execution.halt_reason or (stop.reason if stop else ""),
                    "uptime_s": (now - started) // 1_000_000_000, "venue": self.s.venue_rest_url,
                    "symbols": list(self.s.symbols)}, now)
            await asyncio.sleep(0.5)


class GrpcActions:
    def __init__(self, settings: Any) -> None:
        self.s = settings

    async def _call(self, target: str, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        from celeris.runtime import grpc_server

        async with grpc_server.insecure_channel(target) as channel:
            return await fn(channel)

    async def halt(self, reason: str, by: str) -> dict[str, Any]:
        from celeris.api.v1 import risk_pb2, risk_pb2_grpc

        stop = await self._call(self.s.risk_target, lambda ch: risk_pb2_grpc.RiskManagerStub(ch).TriggerEmergencyStop(
            risk_pb2.EmergencyStopRequest(reason=reason, triggered_by=by, flatten_positions=True), timeout=60))
        return {"halted": stop.active, "reason": stop.reason, "orders_canceled": stop.orders_canceled}

    async def resume(self, by: str) -> dict[str, Any]:
        from celeris.api.v1 import risk_pb2, risk_pb2_grpc
        from celeris.runtime import control_auth

        stop = await self._call(self.s.risk_target, lambda ch: risk_pb2_grpc.RiskManagerStub(ch).EnableTrading(
            risk_pb2.EnableTradingRequest(enabled_by=by, reason="resumed from the dashboard"), timeout=10,
            metadata=control_auth.control_metadata(self.s.control_token.get_secret_value())))
        return {"halted": stop.active, "enabled_by": stop.enabled_by}

    async def acknowledge(self, alert_id: str, by: str) -> bool:
        import grpc

        from celeris.api.v1 import account_pb2, account_pb2_grpc

        try:
            await self._call(self.s.account_target, lambda ch: account_pb2_grpc.AccountMonitorStub(ch).AcknowledgeAlert(
                account_pb2.AcknowledgeAlertRequest(alert_id=alert_id, acknowledged_by=by), timeout=5))
            return True
        except grpc.aio.AioRpcError:
            return False
