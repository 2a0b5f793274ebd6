"""gRPC shell of the account monitor: queries and the snapshot-then-delta account stream."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import grpc

from celeris.account.engine import AccountMonitor, PositionKey
from celeris.api.v1 import account_pb2, account_pb2_grpc, common_pb2
from celeris.domain.alerts import Alert
from celeris.domain.funding import asset_scale
from celeris.domain.values import MONEY_SCALE


def dec(value: Decimal | int | None, scale: int = MONEY_SCALE) -> common_pb2.Decimal:
    """A real-unit figure (the monitor's Decimal edge) as a protobuf Decimal, half-even at `scale`."""
    return common_pb2.Decimal(mantissa=round(Decimal(value or 0).scaleb(scale)), scale=scale)


def money_pb(units: int) -> common_pb2.Decimal:
    """Money units as they are: a mantissa at MONEY_SCALE."""
    return common_pb2.Decimal(mantissa=units, scale=MONEY_SCALE)


class AccountServicer(account_pb2_grpc.AccountMonitorServicer):
    def __init__(self, monitor: AccountMonitor) -> None:
        self._m = monitor

    def _balance(self) -> account_pb2.Balance:
        m = self._m
        equity = m.equity()
        return account_pb2.Balance(asset="USDT", wallet_balance=money_pb(m.wallet),
                                   available_balance=dec(m.available_balance()), margin_balance=dec(equity),
                                   unrealized_pnl=dec(m.unrealized_total()), ts_ns=m.clock.now_ns())

    def _position(self, key: PositionKey) -> account_pb2.Position:
        m = self._m
        pos = m.positions[key]
        ins = pos.instrument
        liq = m.liquidation_price(key)
        return account_pb2.Position(
            symbol=key[0], position_side=key[1],
            quantity=common_pb2.Decimal(mantissa=ins.qty_grid.units(pos.qty_steps), scale=ins.qty_grid.scale),
            entry_price=money_pb(pos.entry_price_units()), mark_price=dec(m.marks.get(key[0])), unrealized_pnl=dec(m.unrealized(key)),
            realized_pnl=money_pb(m.realized_by_symbol.get(key[0], 0)),
            liquidation_price=dec(liq), notional=dec(m.notional(key)), leverage=m.leverage.get(key[0], 0),
            ts_ns=m.clock.now_ns())

    def _pnl(self, request_id: str = "") -> account_pb2.PnL:
        p = self._m.pnl()
        return account_pb2.PnL(request_id=request_id, realized=dec(p["realized"]), unrealized=dec(p["unrealized"]),
                               total=dec(p["total"]), daily=dec(p["daily"]), fees=dec(p["fees"]),
                               win_rate_pct=dec(p["win_rate_pct"]), max_drawdown=dec(p["max_drawdown"]),
                               max_drawdown_pct=dec(p["max_drawdown_pct"]), sharpe_ratio=dec(p["sharpe_ratio"]),
                               ts_ns=self._m.clock.now_ns(), funding=dec(p["funding"]),
                               trading_pnl=dec(p["trading_pnl"]), usdt_pnl=dec(p["usdt_pnl"]),
                               fees_by_asset=[account_pb2.AssetFee(asset=asset, amount=dec(amount, asset_scale(asset)),
                                                                   usdt_value=dec(value) if value is not None else None,
                                                                   valued=value is not None)
                                              for asset, amount, value in self._m.fees_per_asset()],
                               funding_by_symbol=[account_pb2.SymbolFunding(symbol=symbol, amount=dec(amount))
                                                  for symbol, amount in self._m.funding_per_symbol()])

    def _alert(self, a: Alert) -> account_pb2.Alert:
        return account_pb2.Alert(id=a.id, severity=a.severity, category=a.category, message=a.message,
                                 acknowledged=a.acknowledged, ts_ns=a.ts_ns)

    def state(self, sections: set[str] | None = None, request_id: str = "") -> account_pb2.AccountState:
        everything = sections is None
        sections = sections or set()
        m = self._m
        r = m.recon
        out = account_pb2.AccountState(request_id=request_id)
        if everything or "balances" in sections:
            out.balances.append(self._balance())
            out.balances.extend(account_pb2.Balance(asset=asset, wallet_balance=dec(amount, asset_scale(asset)),
                                                    ts_ns=m.clock.now_ns())
                                for asset, amount in m.balances_per_asset())
            out.equity.CopyFrom(dec(m.equity()))
            out.margin_ratio.CopyFrom(dec(m.margin_ratio()))
        if everything or "positions" in sections:
            out.positions.extend(self._position(k) for k in sorted(m.positions) if m.positions[k].qty_steps
                                 or not everything)
        if everything or "pnl" in sections:
            out.pnl.CopyFrom(self._pnl())
        if everything or "alerts" in sections:
            out.alerts.extend(self._alert(a) for a in m.alerts[-50:])
        out.reconciliation.CopyFrom(account_pb2.ReconciliationStatus(
            last_run_ns=r.last_run_ns, runs=r.runs, mismatches=r.mismatches, worst_mismatch_pct=dec(r.worst_pct)))
        return out

    async def GetAccountState(self, request, context):  # type: ignore[no-untyped-def]
        return self.state(None, request.request_id)

    async def GetBalance(self, request, context):  # type: ignore[no-untyped-def]
        return self._balance()

    async def GetPosition(self, request, context):  # type: ignore[no-untyped-def]
        key = (request.symbol, request.position_side or "BOTH")
        if key not in self._m.positions:
            if request.symbol not in self._m.instruments:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown symbol {request.symbol!r}")
            return account_pb2.Position(symbol=request.symbol, position_side=key[1])
        return self._position(key)

    async def GetPositions(self, request, context):  # type: ignore[no-untyped-def]
        return account_pb2.PositionList(request_id=request.request_id, positions=[
            self._position(k) for k in sorted(self._m.positions) if self._m.positions[k].qty_steps])

    async def GetPnL(self, request, context):  # type: ignore[no-untyped-def]
        return self._pnl(request.request_id)

    async def AcknowledgeAlert(self, request, context):  # type: ignore[no-untyped-def]
        alert = self._m.acknowledge(request.alert_id, request.acknowledged_by or "unknown")
        if alert is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no alert {request.alert_id!r}")
        return self._alert(alert)

    async def SubscribeAccountUpdates(self, request, context):  # type: ignore[no-untyped-def]
        pending: set[str] = set()
        ready = asyncio.Event()

        def on_change(sections: set[str]) -> None:
            pending.update(sections)  # coalesced: a slow client gets the latest of each section
            ready.set()

        self._m.on_change.append(on_change)
        sequence = 1
        try:
            yield account_pb2.AccountUpdate(header=common_pb2.StreamHeader(sequence=sequence, snapshot=True,
                                                                           ts_publish_ns=self._m.clock.now_ns()),
                                            state=self.state(None, request.request_id))
            while True:
                await ready.wait()
                ready.clear()
                sections = set(pending)
                pending.clear()
                sequence += 1
                yield account_pb2.AccountUpdate(header=common_pb2.StreamHeader(sequence=sequence,
                                                                               ts_publish_ns=self._m.clock.now_ns()),
                                                state=self.state(sections))
        finally:
            self._m.on_change.remove(on_change)


def registrar(monitor: AccountMonitor):  # type: ignore[no-untyped-def]
    def register(server: grpc.aio.Server) -> None:
        account_pb2_grpc.add_AccountMonitorServicer_to_server(AccountServicer(monitor), server)
    return register
