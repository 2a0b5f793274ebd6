"""The paper account, read the way the venue's account is read, for the risk manager and the account monitor.

Owns the adapters that let simulation mode be judged on what it trades: the paper venue's wallet,
positions and marks as the risk manager's `AccountSource` and the account monitor's `VenueReader`,
its fills as the user-data events the account monitor already understands (ORDER_TRADE_UPDATE and
ACCOUNT_UPDATE), and `ModeRouted`, which answers from the paper account while execution is in simulation
mode and from the venue otherwise. In the services topology the paper venue lives in the execution
process: `ExecutionPaperAccount` reads it over `Execution.GetPaperAccount` and `paper_fill_events` turns
execution's simulation-mode fills into the same events. Wiring, not logic: the numbers are the paper
venue's own.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any, Callable

from celeris.domain.funding import asset_scale
from celeris.domain.modes import Mode
from celeris.domain.positions import Position
from celeris.domain.values import format_units, money_str
from celeris.domain.messages import Execution, FundingPaid, VenueOrderEvent
from celeris.execution.paper import PaperVenue
from celeris.risk.metrics import AccountSnapshot
from celeris.venues.binance import codec


class PaperAccountSource:
    """The risk manager's view of the paper account (marks are the paper books' mids)."""

    def __init__(self, paper: PaperVenue) -> None:
        self.paper = paper

    def _marks(self) -> dict[str, int]:
        out = {}
        for symbol, book in self.paper.books.items():
            mid = book.mid()
            if mid is not None and self.paper.live[symbol]:
                out[symbol] = int(mid)
        return out

    async def snapshot(self) -> AccountSnapshot:
        positions = {s: Position(p.instrument, p.qty_steps, p.cost) for s, p in self.paper.account_positions.items()}
        return AccountSnapshot(self.paper.wallet, positions, self._marks(),
                               {s: self.paper.leverage for s in self.paper.instruments})

    async def account(self) -> Any:
        from celeris.account.engine import VenueAccount

        marks = {s: self.paper.instruments[s].price_fraction(t) for s, t in self._marks().items()}
        positions = {(s, "BOTH"): (p.qty_steps, p.entry_price) for s, p in self.paper.account_positions.items()
                     if p.qty_steps}
        return VenueAccount(self.paper.wallet, positions, marks, {s: self.paper.leverage for s in self.paper.instruments})


class ModeRouted:
    """Answers from `paper` while execution is in simulation mode, from `venue` otherwise."""

    def __init__(self, mode: Callable[[], Mode], paper: Any, venue: Any) -> None:
        self.mode = mode
        self.paper = paper
        self.venue = venue

    def _source(self) -> Any:
        return self.paper if self.mode() is Mode.SIMULATION else self.venue

    async def snapshot(self) -> AccountSnapshot:
        snapshot = await self._source().snapshot()
        brackets = getattr(self.venue, "leverage_brackets", None)
        if self._source() is self.paper and not snapshot.brackets and brackets is not None:
            # The paper account trades the venue's symbols: judged on the venue's brackets, not a flat rate.
            snapshot = dataclasses.replace(snapshot, brackets=await brackets())
        return snapshot

    async def account(self) -> Any:
        return await self._source().account()

    @property
    def funding_polled(self) -> bool:
        return bool(getattr(self._source(), "funding_polled", False))

    async def funding_income(self, start_ms: int) -> list[tuple[int, str, int]]:
        read = getattr(self._source(), "funding_income", None)
        return await read(start_ms) if read is not None else []


def paper_user_events(paper: PaperVenue, deliver: Callable[[Any], None]) -> Callable[[VenueOrderEvent], None]:
    """An observer of the paper venue's fills that delivers them as the venue's user-data events; the paper
    venue's funding payments are delivered too, as ACCOUNT_UPDATE with reason FUNDING_FEE naming the symbol."""

    def on_funding(paid: FundingPaid) -> None:
        ins = paper.instruments[paid.symbol]
        position = paper.account_positions[paid.symbol]
        ms = paid.ts_event_ns // 1_000_000
        deliver(codec.AccountUpdate(ms, ms, codec.AccountUpdateBody("FUNDING_FEE", [
            codec.BalanceChange("USDT", money_str(paper.wallet), money_str(paper.wallet), money_str(paid.amount))], [
            codec.PositionChange(paid.symbol, ins.format_qty(position.qty_steps), _decimal(position.entry_price), "0",
                                 "cross", "BOTH")])))

    paper.funding_observers.append(on_funding)

    def on_fill(event: VenueOrderEvent) -> None:
        if event.execution is not Execution.TRADE:
            return
        ins = paper.instruments[event.symbol]
        position = paper.account_positions[event.symbol]
        qty = ins.format_qty(event.last_qty_steps)
        price = ins.format_price(event.last_price_ticks)
        ms = event.ts_event_ns // 1_000_000
        deliver(codec.OrderTradeUpdate(ms, ms, codec.OrderUpdateBody(
            s=event.symbol, c=event.client_order_id, S=event.side.value, o=event.order_type or "LIMIT", f="GTC",
            q=ins.format_qty(event.orig_qty_steps or event.last_qty_steps), p="0", ap=price, x="TRADE",
            X=event.order_status or "PARTIALLY_FILLED", i=event.venue_order_id, l=qty, z=qty, L=price, T=ms,
            t=event.trade_id, m=event.is_maker, R=event.reduce_only, ps="BOTH", N=event.commission_asset,
            n=format_units(event.commission, asset_scale(event.commission_asset)), rp=money_str(event.realized_pnl))))
        entry = position.entry_price
        deliver(codec.AccountUpdate(ms, ms, codec.AccountUpdateBody("ORDER", [
            codec.BalanceChange("USDT", money_str(paper.wallet), money_str(paper.wallet))], [
            codec.PositionChange(event.symbol, ins.format_qty(position.qty_steps), _decimal(entry), "0", "cross",
                                 "BOTH")])))

    return on_fill


def _decimal(value: Fraction, scale: int = 10) -> str:
    """An exact rational as a decimal string (rounded half-even at `scale` places, never through a float)."""
    return format_units(round(value * 10**scale), scale)


class ExecutionPaperAccount:
    """The paper account of an execution service, over gRPC (the services topology)."""

    def __init__(self, target: str, instruments: dict[str, Any]) -> None:
        self.target = target
        self.instruments = instruments

    async def _fetch(self, wait_s: float = 30.0) -> Any:
        """The paper account; waits (up to `wait_s`) for an execution that is still starting."""
        import asyncio

        import grpc

        from celeris.api.v1 import execution_pb2, execution_pb2_grpc
        from celeris.runtime import grpc_server

        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            try:
                async with grpc_server.insecure_channel(self.target) as channel:
                    answer = await execution_pb2_grpc.ExecutionStub(channel).GetPaperAccount(
                        execution_pb2.GetPaperAccountRequest(), timeout=5)
                break
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.UNAVAILABLE or loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)
        if not answer.available:
            raise RuntimeError(f"execution at {self.target} has no paper venue")
        return answer

    def _parts(self, answer: Any) -> tuple[int, dict[str, tuple[int, Fraction]], dict[str, int]]:
        positions = {}
        for p in answer.positions:
            ins = self.instruments.get(p.symbol)
            if ins is not None:
                qty = ins.qty(format_units(p.quantity.mantissa, p.quantity.scale))
                positions[p.symbol] = (qty, Fraction(p.entry_price.mantissa, 10**p.entry_price.scale))
        marks = {m.symbol: self.instruments[m.symbol].price(format_units(m.price.mantissa, m.price.scale))
                 for m in answer.marks if m.symbol in self.instruments}
        return answer.wallet.mantissa, positions, marks

    async def snapshot(self) -> AccountSnapshot:
        answer = await self._fetch()
        wallet, positions, marks = self._parts(answer)
        out = {}
        for symbol, (qty, entry) in positions.items():
            ins = self.instruments[symbol]
            entry_ticks = entry * 10**ins.price_grid.scale / ins.price_grid.step_units
            out[symbol] = Position(ins, qty, abs(qty) * entry_ticks)
        return AccountSnapshot(wallet, out, marks, {s: answer.leverage for s in self.instruments})

    funding_polled = True
    """No user data stream tells the account of this paper venue's funding: the monitor reads it each round."""

    async def funding_income(self, start_ms: int) -> list[tuple[int, str, int]]:
        """The paper venue's funding payments from `start_ms` on, as income records (id, symbol, money units)."""
        answer = await self._fetch()
        return [(f.id, f.symbol, f.amount.mantissa) for f in answer.fundings if f.funding_time_ms >= start_ms]

    async def account(self) -> Any:
        from celeris.account.engine import VenueAccount

        answer = await self._fetch()
        wallet, positions, marks = self._parts(answer)
        return VenueAccount(wallet, {(s, "BOTH"): (q, e) for s, (q, e) in positions.items() if q},
                            {s: self.instruments[s].price_fraction(t) for s, t in marks.items()},
                            {s: answer.leverage for s in self.instruments})


def paper_fill_events(source: ExecutionPaperAccount, instruments: dict[str, Any],
                      deliver: Callable[[Any], None]) -> Callable[[Any], Any]:
    """For execution's fill stream: a simulation-mode fill as ORDER_TRADE_UPDATE, then the paper account's
    position and wallet after it as ACCOUNT_UPDATE (read back over gRPC)."""

    async def on_fill(fill: Any) -> None:
        ins = instruments.get(fill.symbol)
        if ins is None or fill.mode != "simulation":
            return
        qty, price = ins.format_qty(fill.qty_steps), ins.format_price(fill.price_ticks)
        ms = fill.ts_event_ns // 1_000_000
        deliver(codec.OrderTradeUpdate(ms, ms, codec.OrderUpdateBody(
            s=fill.symbol, c=fill.client_order_id, S=fill.side.value, o="LIMIT", f="GTC", q=qty, p=price, ap=price,
            x="TRADE", X="PARTIALLY_FILLED", i=fill.venue_order_id, l=qty, z=qty, L=price, T=ms, t=fill.trade_id,
            m=fill.is_maker, R=False, ps="BOTH", N=fill.commission_asset,
            n=format_units(fill.commission, asset_scale(fill.commission_asset)),
            rp=money_str(fill.realized_pnl))))
        answer = await source._fetch()
        wallet, positions, _ = source._parts(answer)
        pos_qty, entry = positions.get(fill.symbol, (0, Fraction(0)))
        deliver(codec.AccountUpdate(ms, ms, codec.AccountUpdateBody("ORDER", [
            codec.BalanceChange("USDT", money_str(wallet), money_str(wallet))], [
            codec.PositionChange(fill.symbol, ins.format_qty(pos_qty), _decimal(entry), "0", "cross", "BOTH")])))

    return on_fill


async def follow_execution_mode(target: str, current: list[Mode], on_change: Callable[[Mode], Any],
                                interval_s: float = 1.0, token: str = "") -> None:
    """Keep `current[0]` equal to the mode execution trades in (a mode switched on execution alone must not
    leave the risk manager or the account monitor judging the other account)."""
    import asyncio

    from celeris.api.v1 import control_pb2, control_pb2_grpc
    from celeris.runtime import control_auth, grpc_server
    from celeris.runtime.control import PB_TO_MODE

    metadata = control_auth.control_metadata(token)
    while True:
        try:
            async with grpc_server.insecure_channel(target) as channel:
                status = await control_pb2_grpc.ControlStub(channel).GetStatus(control_pb2.GetStatusRequest(),
                                                                              timeout=2, metadata=metadata)
            mode = PB_TO_MODE.get(status.mode)
            if mode is not None and mode is not current[0]:
                current[0] = mode
                result = on_change(mode)
                if asyncio.iscoroutine(result):
                    await result
        except Exception:  # noqa: BLE001 - execution restarting: ask again
            pass
        await asyncio.sleep(interval_s)
