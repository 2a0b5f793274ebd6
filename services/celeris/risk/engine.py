"""The risk manager: metrics, policies, the synchronous pre-trade check, monitoring and the emergency stop.

Owns:
- the account picture (from an AccountSource port; the venue wins) refreshed every second, with the
  equity at 00:00 UTC and the peak equity for drawdowns;
- policies (the allowed condition, ARCHITECTURE.md §8) loaded from a PolicyStore at start and on change;
- `check_order`: the post-trade state simulated with futures margin, every applicable policy
  evaluated, approved or denied with the violations and post-trade metrics, audited;
- the monitoring loop: soft -> warning, hard -> critical alert, emergency -> stop; alerts (the shared
  celeris.domain.alerts type and log) de-duplicated over 5 minutes;
- the emergency stop: one at a time (lock), idempotent, a persistent trading-disabled flag, execution
  halted, every open order cancelled and positions flattened reduce-only largest first at the venue,
  audited, alerted, and nothing resumes until a person re-enables it (recorded).

Money and ratios are integers (risk/metrics.py); Decimals appear only where a figure leaves: the audit
record, metrics_json, and the policy inputs compared with thresholds written in real units.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping, Protocol

from celeris.domain.alerts import Alert, AlertLog
from celeris.domain.clock import NS_PER_S, Clock, utc_day_start_ns
from celeris.domain.instruments import Instrument
from celeris.domain.risk import Approved, Denied, Policy, PolicyKind, Scope, Violation, decide, evaluate
from celeris.domain.values import Side
from celeris.risk.metrics import DEFAULT_TAKER_FEE_PPM, AccountSnapshot, RiskMetrics, compute, post_trade
from celeris.transport.tasks import supervised

log = logging.getLogger(__name__)

ALERT_DEDUP_S = 5 * 60
ALERT_DEDUP_NS = ALERT_DEDUP_S * NS_PER_S
NO_VALUE = Decimal(0)
"""The value of a violation that is not about a metric (stopped, no account state, no price)."""

DEFAULT_POLICIES = [
    Policy("max-leverage", "leverage", "<=", "10", PolicyKind.HARD, priority=10),
    Policy("margin-ratio", "margin_ratio", "<", "0.8", PolicyKind.HARD, priority=10),
    Policy("available-margin", "available_margin_usdt", ">=", "0", PolicyKind.HARD, priority=5),
    Policy("daily-drawdown", "daily_drawdown_pct", "<", "10", PolicyKind.HARD, priority=20),
    Policy("daily-drawdown-emergency", "daily_drawdown_pct", "<", "25", PolicyKind.EMERGENCY, priority=1),
    Policy("peak-drawdown-emergency", "peak_drawdown_pct", "<", "25", PolicyKind.EMERGENCY, priority=1),
    Policy("concentration", "concentration_pct", "<=", "400", PolicyKind.SOFT, priority=50),
    Policy("order-velocity", "orders_per_minute", "<=", "120", PolicyKind.HARD, priority=30),
]


def policies_from_limits(limits: Mapping[str, Any]) -> list[Policy]:
    """A TradingSystem's `spec.risk` limits as hard policies. They share names with the defaults, so each
    limit replaces the default it corresponds to. A bad value raises ValueError."""
    out: list[Policy] = []
    if "maxLeverage" in limits:
        out.append(Policy("max-leverage", "leverage", "<=", str(int(limits["maxLeverage"])), PolicyKind.HARD, priority=10))
    if "maxDailyDrawdownPct" in limits:
        out.append(Policy("daily-drawdown", "daily_drawdown_pct", "<", str(limits["maxDailyDrawdownPct"]),
                          PolicyKind.HARD, priority=20))
    if "maxOrdersPerSecond" in limits:
        out.append(Policy("order-velocity", "orders_per_minute", "<=", str(60 * int(limits["maxOrdersPerSecond"])),
                          PolicyKind.HARD, priority=30))
    if "maxPositionUsdt" in limits:
        # Account scope: the largest single position's notional.
        out.append(Policy("max-position", "position_notional_usdt", "<=", str(limits["maxPositionUsdt"]),
                          PolicyKind.HARD, priority=15))
    return out


class AccountSource(Protocol):
    async def snapshot(self) -> AccountSnapshot: ...


class PolicyStore(Protocol):
    async def load(self) -> list[Policy]: ...
    async def upsert(self, policy: Policy) -> None: ...
    async def delete(self, name: str) -> bool: ...


class Audit(Protocol):
    async def check(self, record: dict[str, Any]) -> None: ...
    async def stop_started(self, record: dict[str, Any]) -> int: ...
    async def stop_finished(self, stop_id: int, canceled: int, closed: int) -> None: ...
    async def re_enabled(self, stop_id: int, by: str) -> None: ...


class TradingFlag(Protocol):
    async def set(self, disabled: bool, reason: str) -> None: ...
    async def get(self) -> tuple[bool, str]: ...


class EmergencyActions(Protocol):
    """What the stop does outside the risk manager: halt execution, clean up at the venue."""

    async def open_order_count(self) -> int: ...
    async def halt_execution(self, reason: str, flatten: bool) -> HaltResult:
        """Execution halts: cancels every order and, if asked, flattens until flat (its own order path)."""
    async def resume_execution(self, by: str) -> None: ...
    async def cancel_all_orders(self) -> int:
        """The venue-side backstop, used only when execution does not confirm the halt."""


@dataclass(frozen=True)
class HaltResult:
    """What execution says its halt did."""

    canceled: int = 0
    flat: bool = True


@dataclass
class StopState:
    active: bool = False
    reason: str = ""
    triggered_by: str = ""
    triggered_at_ns: int = 0
    completed_at_ns: int = 0
    orders_canceled: int = 0
    positions_closed: int = 0
    enabled_by: str = ""
    enabled_at_ns: int = 0
    stop_id: int = 0


@dataclass
class CheckResult:
    outcome: Approved | Denied
    post_trade: RiskMetrics
    processing_time_us: int


class MemoryPolicyStore:
    def __init__(self, policies: list[Policy] | None = None) -> None:
        self.policies = {p.name: p for p in (DEFAULT_POLICIES if policies is None else policies)}

    async def load(self) -> list[Policy]:
        return list(self.policies.values())

    async def upsert(self, policy: Policy) -> None:
        self.policies[policy.name] = policy

    async def delete(self, name: str) -> bool:
        return self.policies.pop(name, None) is not None


class MemoryAudit:
    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.stops: list[dict[str, Any]] = []

    async def check(self, record: dict[str, Any]) -> None:
        self.checks.append(record)

    async def stop_started(self, record: dict[str, Any]) -> int:
        self.stops.append(dict(record))
        return len(self.stops)

    async def stop_finished(self, stop_id: int, canceled: int, closed: int) -> None:
        self.stops[stop_id - 1].update(orders_canceled=canceled, positions_closed=closed, completed=True)

    async def re_enabled(self, stop_id: int, by: str) -> None:
        if stop_id:
            self.stops[stop_id - 1].update(re_enabled_by=by)


class MemoryFlag:
    def __init__(self) -> None:
        self.value = (False, "")

    async def set(self, disabled: bool, reason: str) -> None:
        self.value = (disabled, reason)

    async def get(self) -> tuple[bool, str]:
        return self.value


@dataclass
class RiskConfig:
    monitor_interval_s: float = 1.0
    flatten_on_emergency: bool = True
    taker_fee_ppm: int = DEFAULT_TAKER_FEE_PPM
    policy_reload_s: float = 5.0
    halt_timeout_s: float = 75.0
    """How long execution may take to halt and flatten (its flatten gives up after 30 s)."""


class RiskEngine:
    def __init__(self, instruments: dict[str, Instrument], clock: Clock, source: AccountSource,
                 policies: PolicyStore, audit: Audit, flag: TradingFlag, actions: EmergencyActions | None,
                 config: RiskConfig | None = None) -> None:
        self.instruments = instruments
        self.clock = clock
        self.source = source
        self.policy_store = policies
        self.audit = audit
        self.flag = flag
        self.actions = actions
        self.config = config or RiskConfig()
        self.policies: list[Policy] = []
        self.snapshot: AccountSnapshot | None = None
        self.metrics: RiskMetrics | None = None
        self.day_start_ns = 0
        self.day_start_equity: int | None = None
        """Money units, as peak_equity."""
        self.peak_equity: int | None = None
        self.order_times: dict[str, deque[int]] = defaultdict(deque)
        self.strategy_order_times: dict[str, deque[int]] = defaultdict(deque)
        self.stop = StopState()
        self._stop_lock = asyncio.Lock()
        self.alert_log = AlertLog("risk", clock, ALERT_DEDUP_S)
        self.alerts: list[Alert] = self.alert_log.alerts
        self.on_alert: list[Callable[[Alert], None]] = self.alert_log.on_alert
        self._logged: dict[str, float] = {}
        self.check_latency_ns: deque[int] = deque(maxlen=10_000)
        self.checks = 0
        self._before_inputs: dict[tuple[Scope, str, str], Decimal] = {}
        self._tasks: list[asyncio.Task[Any]] = []

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self.policies = await self.policy_store.load()
        disabled, reason = await self.flag.get()
        if disabled:  # a stop survives restarts until a person re-enables trading
            self.stop = StopState(active=True, reason=reason, triggered_by="(before restart)")
        await self.refresh()
        self._tasks.append(supervised("risk-monitor", self._monitor_loop))
        self._tasks.append(supervised("risk-policies", self._policy_loop))

    async def stop_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def reload_policies(self) -> None:
        self.policies = await self.policy_store.load()

    async def apply_limits(self, limits: Mapping[str, Any]) -> list[str]:
        """Store the configured limits as policies and use them from the next check; returns their names.
        Every limit is validated before any is stored, so a bad one changes nothing."""
        policies = policies_from_limits(limits)
        for policy in policies:
            await self.policy_store.upsert(policy)
        await self.reload_policies()
        log.info("risk limits applied: %s", ", ".join(f"{p.name} {p.operator} {p.threshold}" for p in policies))
        return [p.name for p in policies]

    async def _policy_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.policy_reload_s)
            try:
                await self.reload_policies()
            except Exception:
                log.exception("policy reload failed; keeping the previous set")

    # -- the account picture ----------------------------------------------------------------------
    async def refresh(self) -> RiskMetrics:
        self.snapshot = await self.source.snapshot()
        now = self.clock.now_ns()
        metrics = compute(self.snapshot, self.day_start_equity, self.peak_equity, self._velocity(now))
        day = utc_day_start_ns(now)
        if day != self.day_start_ns or self.day_start_equity is None:
            self.day_start_ns, self.day_start_equity = day, metrics.equity_units
            metrics = compute(self.snapshot, self.day_start_equity, self.peak_equity, self._velocity(now))
        equity = metrics.equity_units
        self.peak_equity = max(self.peak_equity if self.peak_equity is not None else equity, equity)
        self.metrics = metrics
        self._before_inputs = metrics.as_policy_inputs()
        return metrics

    def _velocity(self, now: int) -> dict[str, int]:
        horizon = now - 60 * NS_PER_S
        out = {}
        for symbol, times in self.order_times.items():
            while times and times[0] < horizon:
                times.popleft()
            out[symbol] = len(times)
        return out

    # -- the pre-trade check ----------------------------------------------------------------------
    def check_order(self, request_id: str, symbol: str, side: Side, qty_steps: int, price_ticks: int | None,
                    reduce_only: bool = False, strategy_id: str = "") -> CheckResult:
        """Synchronous: uses the cached account (refreshed every second), simulates the fill, evaluates."""
        started = time.perf_counter_ns()
        ins = self.instruments.get(symbol)
        if self.stop.active:
            return self._result(started, Denied((Violation("emergency-stop", PolicyKind.EMERGENCY, "trading_enabled",
                                                           NO_VALUE, f"stopped: {self.stop.reason}"),)))
        if ins is None or self.snapshot is None:
            reason = f"unknown symbol {symbol}" if ins is None else "no account state yet"
            return self._result(started, Denied((Violation("check-unavailable", PolicyKind.HARD, "availability",
                                                           NO_VALUE, reason),)))
        price = price_ticks or self.snapshot.marks.get(symbol)
        if not price:
            return self._result(started, Denied((Violation("no-price", PolicyKind.HARD, "availability", NO_VALUE,
                                                           f"no price for {symbol}"),)))
        now = self.clock.now_ns()
        velocity = self._velocity(now)
        velocity[symbol] = velocity.get(symbol, 0) + 1
        strategy_velocity = {}
        if strategy_id:
            times = self.strategy_order_times[strategy_id]
            while times and times[0] < now - 60 * NS_PER_S:
                times.popleft()
            strategy_velocity[strategy_id] = len(times) + 1
        after = post_trade(self.snapshot, ins, side, qty_steps, price, self.config.taker_fee_ppm)
        metrics = compute(after, self.day_start_equity, self.peak_equity, velocity)
        inputs = metrics.as_policy_inputs(strategy_velocity)
        violations = evaluate(self.policies, inputs)
        if reduce_only:
            # Reducing risk is always allowed: only the emergency stop blocks it (handled above).
            violations = [v for v in violations if v.kind is PolicyKind.SOFT]
        else:
            violations = self._only_worsening(violations, inputs)
        outcome = decide(violations)
        if isinstance(outcome, Approved):
            self.order_times[symbol].append(now)
            if strategy_id:
                self.strategy_order_times[strategy_id].append(now)
        result = CheckResult(outcome, metrics, (time.perf_counter_ns() - started) // 1000)
        self.check_latency_ns.append(time.perf_counter_ns() - started)
        self.checks += 1
        asyncio.ensure_future(self.audit.check({
            "ts_ns": now, "request_id": request_id, "symbol": symbol, "side": side.value,
            "quantity": ins.format_qty(qty_steps), "price": ins.format_price(price),
            "approved": isinstance(outcome, Approved),
            "violations": [v.reason for v in (outcome.violations if isinstance(outcome, Denied) else outcome.warnings)],
            "processing_time_us": result.processing_time_us, "leverage": str(metrics.leverage),
            "margin_ratio": str(metrics.margin_ratio)}))
        return result

    def _only_worsening(self, violations: list[Violation], after: dict[tuple[Scope, str, str], Decimal]) -> list[Violation]:
        """A policy already broken before the order blocks it only if the order makes it worse."""
        if self.metrics is None:
            return violations
        before = self._before_inputs
        kept = []
        for v in violations:
            old = before.get((v.scope, v.scope_id, v.metric))
            if old is not None and v.metric in ("leverage", "margin_ratio", "concentration_pct",
                                                "position_notional_usdt", "total_exposure_usdt"):
                if after[(v.scope, v.scope_id, v.metric)] < old:
                    continue  # the order reduces the breach
            kept.append(v)
        return kept

    def _result(self, started: int, outcome: Approved | Denied) -> CheckResult:
        metrics = self.metrics or compute(AccountSnapshot(0, {}, {}, {}), None, None)
        return CheckResult(outcome, metrics, (time.perf_counter_ns() - started) // 1000)

    # -- monitoring -------------------------------------------------------------------------------
    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.monitor_interval_s)
            try:
                await self.monitor_once()
            except Exception as exc:
                reason = getattr(exc, "msg", "") or repr(exc)
                if hasattr(exc, "retry_after_s"):  # the venue's rate limit or ban: expected, said once a minute
                    if self._quiet("monitor-rate-limited"):
                        log.warning("risk monitoring paused by the venue's rate limit: %s", reason)
                elif self._quiet(f"monitor:{type(exc).__name__}"):
                    log.exception("risk monitoring failed this round")
                self.raise_alert("system", "error", f"risk monitoring could not read the account: {reason[:160]}",
                                 key="monitor-failed")

    async def monitor_once(self) -> list[Violation]:
        metrics = await self.refresh()
        violations = evaluate(self.policies, metrics.as_policy_inputs())
        for v in violations:
            severity = {PolicyKind.SOFT: "warning", PolicyKind.HARD: "critical", PolicyKind.EMERGENCY: "critical"}[v.kind]
            self.raise_alert("risk", severity, v.reason, key=f"{v.policy}:{v.scope_id}")
        emergencies = [v for v in violations if v.kind is PolicyKind.EMERGENCY]
        if emergencies and not self.stop.active:
            await self.emergency_stop(f"emergency policy breached: {emergencies[0].reason}", "risk-monitor")
        return violations

    def _quiet(self, key: str, every_s: float = 60.0) -> bool:
        """True at most once per `every_s` for `key` (a failure repeated every second is logged once)."""
        now = time.monotonic()
        if now - self._logged.get(key, -1e9) < every_s:
            return False
        self._logged[key] = now
        return True

    def raise_alert(self, category: str, severity: str, message: str, key: str | None = None) -> Alert | None:
        """Raise an alert unless its key (category:message by default) fired in the last 5 minutes."""
        alert = self.alert_log.raise_alert(category, severity, message, key or f"{category}:{message}")
        if alert is not None:
            log.warning("risk alert [%s] %s", severity, message)
        return alert

    # -- the emergency stop -----------------------------------------------------------------------
    async def emergency_stop(self, reason: str, triggered_by: str, flatten: bool | None = None) -> StopState:
        """Idempotent and safe to call twice: a second call while one runs waits for it and returns."""
        async with self._stop_lock:
            if self.stop.active:
                if flatten and self.actions is not None:
                    # Already stopped, now asked to flatten too (the first stop kept positions): execution's
                    # halt is idempotent, so this only flattens what is left.
                    try:
                        answer = await asyncio.wait_for(self.actions.halt_execution(self.stop.reason, True),
                                                        self.config.halt_timeout_s)
                        if isinstance(answer, HaltResult) and answer.flat and self.snapshot is not None:
                            open_now = sum(1 for p in self.snapshot.positions.values() if p.qty_steps)
                            self.stop.positions_closed = max(self.stop.positions_closed, open_now)
                    except Exception as exc:
                        self.raise_alert("risk", "critical", f"flatten after the stop failed: {exc!r}")
                return self.stop
            now = self.clock.now_ns()
            self.stop = StopState(True, reason, triggered_by, now)  # checks are denied from this line
            do_flatten = flatten if flatten is not None else self.config.flatten_on_emergency
            # Execution's gate closes before anything else is awaited here (flag, audit, counts).
            halting = asyncio.ensure_future(self.actions.halt_execution(reason, do_flatten)) \
                if self.actions is not None else None
            await self.flag.set(True, reason)  # persistent: a restart comes back stopped
            self.raise_alert("risk", "critical", f"EMERGENCY STOP by {triggered_by}: {reason}", key=f"stop:{now}")
            snapshot = self.snapshot
            positions = []
            if snapshot is not None:
                for symbol, pos in snapshot.positions.items():
                    if pos.qty_steps:
                        positions.append((symbol, pos.qty_steps))
            self.stop.stop_id = await self.audit.stop_started({
                "triggered_at_ns": now, "reason": reason, "triggered_by": triggered_by,
                "account_state": {"wallet": snapshot.wallet if snapshot else None,
                                  "positions": {s: q for s, q in positions}}})
            canceled = closed = 0
            if self.actions is not None and halting is not None:
                try:
                    # Execution closes its gate, cancels its orders and flattens through its own order
                    # path (deterministic ids, the state table, user-stream fills): no side channel.
                    # Shielded: if this wait gives up, execution's halt (and its flatten) still goes on.
                    answer = await asyncio.wait_for(asyncio.shield(halting), self.config.halt_timeout_s)
                    result = answer if isinstance(answer, HaltResult) else HaltResult()
                    canceled = result.canceled
                    closed = len(positions) if do_flatten and result.flat else 0
                    if do_flatten and not result.flat:
                        self.raise_alert("risk", "critical", "emergency stop: positions are not flat yet (execution "
                                         "keeps trying; check the venue)", key=f"stop-not-flat:{now}")
                except Exception as exc:
                    # Execution does not answer: cancel at the venue (a cancel never adds exposure), but
                    # flattening without the order manager is left to a person.
                    log.error("could not halt execution: %r", exc)
                    self.raise_alert("risk", "critical", f"execution did not confirm the halt ({exc!r}): open "
                                     "orders cancelled at the venue; positions need manual handling",
                                     key=f"stop-unconfirmed:{now}")
                    try:
                        canceled = max(canceled, await self.actions.cancel_all_orders())
                    except Exception as cancel_exc:
                        log.error("venue-side cancel failed too: %r", cancel_exc)
            self.stop.orders_canceled, self.stop.positions_closed = canceled, closed
            self.stop.completed_at_ns = self.clock.now_ns()
            await self.audit.stop_finished(self.stop.stop_id, canceled, closed)
            return self.stop

    async def enable_trading(self, enabled_by: str, reason: str = "") -> StopState:
        if not enabled_by:
            raise ValueError("re-enabling trading needs the name of the person doing it")
        async with self._stop_lock:
            if self.actions is not None:
                # Execution may be halted on its own account (its persisted halt, a halt through its
                # Control service): a person's resume reaches it either way.
                await self.actions.resume_execution(enabled_by)
            if not self.stop.active:
                return self.stop
            await self.flag.set(False, "")
            self.stop.active = False
            self.stop.enabled_by, self.stop.enabled_at_ns = enabled_by, self.clock.now_ns()
            await self.audit.re_enabled(self.stop.stop_id, enabled_by)
            self.raise_alert("risk", "info", f"trading re-enabled by {enabled_by}: {reason}",
                             key=f"enable:{self.stop.enabled_at_ns}")
            return self.stop


def metrics_json(metrics: RiskMetrics) -> dict[str, Any]:
    """The metrics as decimal strings (exact) for Control's details."""
    return {"equity": str(metrics.equity), "margin_ratio": str(metrics.margin_ratio),
            "leverage": str(metrics.leverage), "daily_drawdown_pct": str(metrics.daily_drawdown_pct),
            "peak_drawdown_pct": str(metrics.peak_drawdown_pct),
            "concentration_pct": {s: str(v) for s, v in metrics.concentration_pct.items()}}

