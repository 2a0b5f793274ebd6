"""The account monitor: balances, positions and PnL that always agree with the venue.

Owns the account as the venue reports it (REST at start, then the user data stream: ACCOUNT_UPDATE for
balances and positions, ORDER_TRADE_UPDATE for realized PnL and fees, funding payments), PnL statistics
(realized, unrealized at the mark, total, daily since 00:00 UTC, fees, funding, win rate, maximum
drawdown, Sharpe ratio over a window), reconciliation with the venue's REST view every interval (the
venue wins; every discrepancy logged, counted, alerted; above 5 % trading is halted), and alerts with
severities, acknowledgement and per-type rate limits. Hedge-mode positions are kept per side.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Protocol

from celeris.domain.clock import NS_PER_S, Clock, utc_day_start_ns
from celeris.domain.instruments import Instrument
from celeris.domain.positions import Position, liquidation_price
from celeris.domain.values import MONEY_SCALE, money, parse_decimal, to_units
from celeris.venues.binance import codec
from celeris.transport.tasks import supervised

log = logging.getLogger(__name__)

MONEY = Fraction(1, 10**MONEY_SCALE)
PositionKey = tuple[str, str]  # (symbol, position side: BOTH | LONG | SHORT)


def _fraction(text: str) -> Fraction:
    mantissa, scale = parse_decimal(text)
    return Fraction(mantissa, 10**scale)


@dataclass
class VenueAccount:
    """The venue's view, as read from REST."""

    wallet: int
    positions: dict[PositionKey, tuple[int, Fraction]]
    """(signed qty in steps, entry price in real units)."""
    marks: dict[str, Fraction]
    leverage: dict[str, int]


class VenueReader(Protocol):
    async def account(self) -> VenueAccount: ...


class Halter(Protocol):
    async def halt(self, reason: str) -> None: ...


@dataclass
class Alert:
    id: str
    severity: str
    category: str
    kind: str
    message: str
    ts_ns: int
    acknowledged: bool = False
    acknowledged_by: str = ""


@dataclass
class AlertThresholds:
    daily_drawdown_pct: Fraction = Fraction(5)
    margin_ratio: Fraction = Fraction(1, 2)
    """Binance's ratio (maintenance margin / margin balance); 1 is liquidation."""
    max_position_usdt: Fraction = Fraction(50_000)
    max_total_exposure_usdt: Fraction = Fraction(200_000)
    liquidation_proximity_pct: Fraction = Fraction(5)
    per_type_per_minute: int = 10
    suppress_s: float = 60.0


@dataclass
class ReconStats:
    runs: int = 0
    mismatches: int = 0
    worst_pct: Fraction = Fraction(0)
    last_run_ns: int = 0
    halts: int = 0
    last_discrepancies: list[str] = field(default_factory=list)


@dataclass
class AccountConfig:
    reconcile_interval_s: float = 5.0
    halt_mismatch_pct: Fraction = Fraction(5)
    qty_tolerance_steps: int = 0
    balance_tolerance: int = 1000
    """Money units (0.00001 USDT) a balance may differ by without counting as a discrepancy."""
    confirm_delay_s: float = 0.3
    """A mismatch is read again after this long before it counts: a fill may be in flight."""
    sharpe_window: int = 288
    """Equity samples (one per reconciliation) in the Sharpe ratio's window."""
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)


class AccountMonitor:
    def __init__(self, instruments: dict[str, Instrument], clock: Clock, reader: VenueReader,
                 halter: Halter | None = None, config: AccountConfig | None = None) -> None:
        self.instruments = instruments
        self.clock = clock
        self.reader = reader
        self.halter = halter
        self.config = config or AccountConfig()
        self.wallet = 0
        self.positions: dict[PositionKey, Position] = {}
        self.marks: dict[str, Fraction] = {}
        self.leverage: dict[str, int] = {}
        self.realized = 0
        self.fees = 0
        self.funding = 0
        self.wins = 0
        self.losses = 0
        self.realized_by_symbol: dict[str, int] = {}
        self.day_start_ns = 0
        self.day_start_equity: Fraction | None = None
        self.peak_equity: Fraction | None = None
        self.max_drawdown = Fraction(0)
        self.max_drawdown_pct = Fraction(0)
        self.equity_samples: deque[Fraction] = deque(maxlen=self.config.sharpe_window + 1)
        self.recon = ReconStats()
        self.alerts: list[Alert] = []
        self._alert_times: dict[str, deque[int]] = {}
        self._alert_last: dict[str, int] = {}
        self.on_change: list[Callable[[set[str]], None]] = []
        self.on_alert: list[Callable[[Alert], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._last_failure_log_ns = -10**18
        self.halted = False
        self.events = 0

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.reconcile(initial=True)
        self._task = supervised("account-reconcile", self._loop)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.reconcile_interval_s)
            try:
                await self.reconcile()
            except Exception as exc:
                reason = getattr(exc, "msg", "") or repr(exc)
                now = self.clock.now_ns()
                if now - self._last_failure_log_ns > 60 * NS_PER_S:  # once a minute, not every round
                    self._last_failure_log_ns = now
                    if hasattr(exc, "retry_after_s"):
                        log.warning("reconciliation paused by the venue's rate limit: %s", reason)
                    else:
                        log.exception("reconciliation failed this round")
                self.alert("system", "error", "reconciliation", f"could not read the account: {reason[:160]}")

    # -- the user data stream ---------------------------------------------------------------------
    def on_user_event(self, event: codec.UserEvent) -> None:
        self.events += 1
        if isinstance(event, codec.AccountUpdate):
            self._on_account_update(event)
        elif isinstance(event, codec.OrderTradeUpdate):
            self._on_order_update(event)

    def _on_account_update(self, event: codec.AccountUpdate) -> None:
        changed = set()
        for balance in event.a.B:
            if balance.a == "USDT":
                new = money(balance.wb)
                if event.a.m == "FUNDING_FEE":
                    self.funding += new - self.wallet
                self.wallet = new
                changed.add("balances")
        for p in event.a.P:
            ins = self.instruments.get(p.s)
            if ins is None:
                continue
            qty = ins.qty(p.pa)
            entry = _fraction(p.ep)
            self._set_position((p.s, p.ps), ins, qty, entry)
            changed.add("positions")
        if changed:
            self._changed(changed | {"pnl"})

    def _on_order_update(self, event: codec.OrderTradeUpdate) -> None:
        o = event.o
        if o.x not in ("TRADE", "CALCULATED") or o.s not in self.instruments:
            return
        realized = to_units(o.rp, MONEY_SCALE)
        commission = money(o.n) if o.n else 0
        self.realized += realized
        self.fees += commission
        self.realized_by_symbol[o.s] = self.realized_by_symbol.get(o.s, 0) + realized
        if realized > 0:
            self.wins += 1
        elif realized < 0:
            self.losses += 1
        self._changed({"pnl"})

    def on_mark(self, symbol: str, mark_price: str) -> None:
        self.marks[symbol] = _fraction(mark_price)

    def _set_position(self, key: PositionKey, ins: Instrument, qty: int, entry: Fraction) -> None:
        entry_ticks = entry * 10**ins.price_grid.scale / ins.price_grid.step_units
        self.positions[key] = Position(ins, qty, abs(qty) * entry_ticks)

    def _changed(self, sections: set[str]) -> None:
        for observer in self.on_change:
            try:
                observer(sections)
            except Exception:
                log.exception("account observer failed")

    # -- figures ----------------------------------------------------------------------------------
    def mark_ticks(self, symbol: str) -> Fraction | None:
        mark = self.marks.get(symbol)
        if mark is None:
            return None
        ins = self.instruments[symbol]
        return mark * 10**ins.price_grid.scale / ins.price_grid.step_units

    def unrealized(self, key: PositionKey) -> Fraction:
        pos = self.positions[key]
        mark = self.mark_ticks(key[0])
        if mark is None or not pos.qty_steps:
            return Fraction(0)
        ins = pos.instrument
        direction = 1 if pos.qty_steps > 0 else -1
        tickstep = Fraction(ins.price_grid.step_units * ins.qty_grid.step_units,
                            10 ** (ins.price_grid.scale + ins.qty_grid.scale))
        return direction * (mark * abs(pos.qty_steps) - pos.cost) * tickstep

    def notional(self, key: PositionKey) -> Fraction:
        pos = self.positions[key]
        mark = self.marks.get(key[0])
        return abs(pos.instrument.qty_fraction(pos.qty_steps)) * (mark or Fraction(0))

    def unrealized_total(self) -> Fraction:
        return sum((self.unrealized(k) for k in self.positions), Fraction(0))

    def equity(self) -> Fraction:
        return self.wallet * MONEY + self.unrealized_total()

    def maint_margin(self) -> Fraction:
        return sum((self.notional(k) * self.positions[k].instrument.maint_margin_rate for k in self.positions),
                   Fraction(0))

    def margin_ratio(self) -> Fraction:
        equity = self.equity()
        maint = self.maint_margin()
        return maint / equity if equity > 0 else (Fraction(10**9) if maint else Fraction(0))

    def liquidation_price(self, key: PositionKey) -> Fraction | None:
        pos = self.positions[key]
        if not pos.qty_steps:
            return None
        others = [k for k in self.positions if k != key]
        return liquidation_price(
            wallet_balance=self.wallet * MONEY, qty=pos.instrument.qty_fraction(pos.qty_steps),
            entry_price=pos.entry_price, maint_margin_rate=pos.instrument.maint_margin_rate,
            other_maint_margin=sum((self.notional(k) * self.positions[k].instrument.maint_margin_rate
                                    for k in others), Fraction(0)),
            other_unrealized_pnl=sum((self.unrealized(k) for k in others), Fraction(0)))

    def pnl(self) -> dict[str, Fraction | None]:
        equity = self.equity()
        closed = self.wins + self.losses
        return {
            "realized": self.realized * MONEY, "unrealized": self.unrealized_total(),
            "total": self.realized * MONEY + self.unrealized_total() - self.fees * MONEY,
            "daily": equity - self.day_start_equity if self.day_start_equity is not None else Fraction(0),
            "fees": self.fees * MONEY, "funding": self.funding * MONEY,
            "win_rate_pct": Fraction(self.wins * 100, closed) if closed else Fraction(0),
            "max_drawdown": self.max_drawdown, "max_drawdown_pct": self.max_drawdown_pct,
            "sharpe_ratio": self.sharpe(), "equity": equity,
        }

    def sharpe(self) -> Fraction | None:
        """Mean over standard deviation of per-sample equity returns in the window (not annualised)."""
        samples = list(self.equity_samples)
        returns = [(b - a) / a for a, b in zip(samples, samples[1:]) if a > 0]
        if len(returns) < 2:
            return None
        mean = sum(returns, Fraction(0)) / len(returns)
        variance = sum(((r - mean) ** 2 for r in returns), Fraction(0)) / (len(returns) - 1)
        if variance == 0:
            return None
        return Fraction(float(mean) / math.sqrt(float(variance))).limit_denominator(10**9)

    def _sample_equity(self) -> None:
        now = self.clock.now_ns()
        equity = self.equity()
        day = utc_day_start_ns(now)
        if day != self.day_start_ns or self.day_start_equity is None:
            self.day_start_ns, self.day_start_equity = day, equity
        self.peak_equity = max(self.peak_equity or equity, equity)
        drawdown = self.peak_equity - equity
        if drawdown > self.max_drawdown:
            self.max_drawdown = drawdown
            self.max_drawdown_pct = drawdown * 100 / self.peak_equity if self.peak_equity > 0 else Fraction(0)
        self.equity_samples.append(equity)

    # -- reconciliation -----------------------------------------------------------------------------
    async def reconcile(self, initial: bool = False) -> list[str]:
        """Compare with the venue; the venue wins. Returns the discrepancies found (empty when equal)."""
        venue = await self.reader.account()
        self.marks.update(venue.marks)
        self.leverage.update(venue.leverage)
        if initial:
            self._adopt(venue)
            self._sample_equity()
            self._changed({"balances", "positions", "pnl"})
            return []
        found, worst = self._compare(venue)
        if found:
            await asyncio.sleep(self.config.confirm_delay_s)  # an event may have been on its way
            venue = await self.reader.account()
            self.marks.update(venue.marks)
            found, worst = self._compare(venue)
        self.recon.runs += 1
        self.recon.last_run_ns = self.clock.now_ns()
        self.recon.last_discrepancies = found
        if found:
            self.recon.mismatches += len(found)
            self.recon.worst_pct = max(self.recon.worst_pct, worst)
            for text in found:
                log.warning("reconciliation: %s (the venue wins)", text)
            severity = "critical" if worst > self.config.halt_mismatch_pct else "error"
            self.alert("system", severity, "reconciliation", f"{len(found)} discrepancies with the venue, worst "
                                                             f"{float(worst):.2f} %: {found[0]}")
            self._adopt(venue)
            self._changed({"balances", "positions", "pnl"})
            if worst > self.config.halt_mismatch_pct and not self.halted:
                await self._halt(f"reconciliation mismatch {float(worst):.2f} % > "
                                 f"{float(self.config.halt_mismatch_pct)} %")
        self._sample_equity()
        self.check_alerts()
        return found

    def _compare(self, venue: VenueAccount) -> tuple[list[str], Fraction]:
        found = []
        worst = Fraction(0)
        keys = set(self.positions) | set(venue.positions)
        for key in sorted(keys):
            local = self.positions[key].qty_steps if key in self.positions else 0
            remote = venue.positions.get(key, (0, Fraction(0)))[0]
            diff = abs(local - remote)
            if diff > self.config.qty_tolerance_steps:
                pct = Fraction(diff * 100, max(abs(remote), abs(local), 1))
                worst = max(worst, pct)
                ins = self.instruments[key[0]]
                found.append(f"{key[0]} {key[1]} position: ours {ins.format_qty(local)}, "
                             f"venue {ins.format_qty(remote)} ({float(pct):.2f} %)")
        if abs(self.wallet - venue.wallet) > self.config.balance_tolerance:
            pct = Fraction(abs(self.wallet - venue.wallet) * 100, max(abs(venue.wallet), 1))
            worst = max(worst, pct)
            found.append(f"USDT wallet: ours {self.wallet * MONEY}, venue {venue.wallet * MONEY} ({float(pct):.4f} %)")
        return found, worst

    def _adopt(self, venue: VenueAccount) -> None:
        self.wallet = venue.wallet
        for key in list(self.positions):
            if key not in venue.positions:
                self.positions[key] = Position(self.positions[key].instrument)
        for key, (qty, entry) in venue.positions.items():
            self._set_position(key, self.instruments[key[0]], qty, entry)

    async def _halt(self, reason: str) -> None:
        self.halted = True
        self.recon.halts += 1
        self.alert("risk", "critical", "reconciliation_halt", f"trading halted: {reason}")
        if self.halter is not None:
            try:
                await self.halter.halt(reason)
            except Exception:
                log.exception("could not halt trading")

    # -- alerts ------------------------------------------------------------------------------------
    def check_alerts(self) -> None:
        t = self.config.thresholds
        pnl = self.pnl()
        if self.day_start_equity and self.day_start_equity > 0:
            dd = (self.day_start_equity - pnl["equity"]) * 100 / self.day_start_equity  # type: ignore[operator]
            if dd > t.daily_drawdown_pct:
                self.alert("pnl", "critical", "daily_drawdown", f"daily drawdown {float(dd):.2f} % exceeds "
                                                                f"{float(t.daily_drawdown_pct)} %")
        ratio = self.margin_ratio()
        if ratio >= t.margin_ratio:
            self.alert("risk", "critical" if ratio >= (1 + t.margin_ratio) / 2 else "warning", "margin_ratio",
                       f"margin ratio {float(ratio) * 100:.1f} % (liquidation at 100 %)")
        exposure = Fraction(0)
        for key, pos in self.positions.items():
            if not pos.qty_steps:
                continue
            notional = self.notional(key)
            exposure += notional
            if notional > t.max_position_usdt:
                self.alert("position", "warning", f"position_size:{key[0]}",
                           f"{key[0]} position notional {float(notional):,.0f} USDT over {float(t.max_position_usdt):,.0f}")
            liq = self.liquidation_price(key)
            mark = self.marks.get(key[0])
            if liq and mark and abs(mark - liq) * 100 / mark < t.liquidation_proximity_pct:
                self.alert("risk", "critical", f"liquidation:{key[0]}",
                           f"{key[0]} mark {float(mark):.2f} within {float(t.liquidation_proximity_pct)} % of the "
                           f"liquidation price {float(liq):.2f}")
        if exposure > t.max_total_exposure_usdt:
            self.alert("position", "warning", "total_exposure", f"total exposure {float(exposure):,.0f} USDT")

    def alert(self, category: str, severity: str, kind: str, message: str) -> Alert | None:
        """Raise an alert unless the same kind fired within the suppression window or its per-minute cap."""
        now = self.clock.now_ns()
        last = self._alert_last.get(kind)
        if last is not None and now - last < self.config.thresholds.suppress_s * NS_PER_S:
            return None
        times = self._alert_times.setdefault(kind.split(":")[0], deque())
        while times and times[0] < now - 60 * NS_PER_S:
            times.popleft()
        if len(times) >= self.config.thresholds.per_type_per_minute:
            return None
        times.append(now)
        self._alert_last[kind] = now
        alert = Alert(f"acct-{len(self.alerts) + 1}", severity, category, kind, message, now)
        self.alerts.append(alert)
        log.warning("account alert [%s] %s", severity, message)
        for observer in self.on_alert:
            observer(alert)
        self._changed({"alerts"})
        return alert

    def acknowledge(self, alert_id: str, by: str) -> Alert | None:
        for alert in self.alerts:
            if alert.id == alert_id:
                alert.acknowledged, alert.acknowledged_by = True, by
                self._changed({"alerts"})
                return alert
        return None


class GrpcHalter:
    """Halts trading through the risk manager's emergency stop, or execution's Control when there is none."""

    def __init__(self, risk_target: str = "", execution_target: str = "") -> None:
        self.risk_target = risk_target
        self.execution_target = execution_target

    async def halt(self, reason: str) -> None:
        from celeris.api.v1 import control_pb2, control_pb2_grpc, risk_pb2, risk_pb2_grpc
        from celeris.runtime import grpc_server

        if self.risk_target:
            async with grpc_server.insecure_channel(self.risk_target) as channel:
                await risk_pb2_grpc.RiskManagerStub(channel).TriggerEmergencyStop(
                    risk_pb2.EmergencyStopRequest(reason=reason, triggered_by="account-monitor"), timeout=35)
        elif self.execution_target:
            async with grpc_server.insecure_channel(self.execution_target) as channel:
                await control_pb2_grpc.ControlStub(channel).Halt(
                    control_pb2.HaltRequest(reason=reason, requested_by="account-monitor"), timeout=10)


class RestVenueReader:
    def __init__(self, rest: Any, instruments: dict[str, Instrument]) -> None:
        self.rest = rest
        self.instruments = instruments

    async def account(self) -> VenueAccount:
        account, marks = await asyncio.gather(
            self.rest.request("GET", "/fapi/v2/account", signed=True, weight=5),
            self.rest.request("GET", "/fapi/v1/premiumIndex", weight=1))
        positions: dict[PositionKey, tuple[int, Fraction]] = {}
        leverage: dict[str, int] = {}
        for p in account["positions"]:
            ins = self.instruments.get(p["symbol"])
            if ins is None:
                continue
            qty = ins.qty(p["positionAmt"])
            leverage[p["symbol"]] = int(p.get("leverage", 20))
            if qty:
                positions[(p["symbol"], p.get("positionSide", "BOTH"))] = (qty, _fraction(p["entryPrice"]))
        mark_map = {m["symbol"]: _fraction(m["markPrice"]) for m in (marks if isinstance(marks, list) else [marks])
                    if m["symbol"] in self.instruments}
        wallet = next((money(a["walletBalance"]) for a in account["assets"] if a["asset"] == "USDT"),
                      money(account["totalWalletBalance"]))
        return VenueAccount(wallet, positions, mark_map, leverage)

