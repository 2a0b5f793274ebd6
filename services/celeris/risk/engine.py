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
from celeris.domain.margin import div_half_even
from celeris.domain.positions import INFINITE_RATIO_PPM
from celeris.domain.ratios import PPM, ppm_decimal, ratio_ppm
from celeris.risk import precheck
from celeris.risk.metrics import DEFAULT_TAKER_FEE_PPM, AccountSnapshot, RiskMetrics, compute
from celeris.risk.precheck import DEFAULT_LEVERAGE, LEVERAGE, MARGIN_RATIO
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


class CheckResult:
    """The outcome, the post-trade metrics (built on first read: the in-process caller needs only the
    outcome) and the check's own processing time."""

    __slots__ = ("outcome", "_post_trade", "processing_time_us", "_lazy")

    def __init__(self, outcome: Approved | Denied, post_trade: RiskMetrics | None, processing_time_us: int) -> None:
        self.outcome, self._post_trade, self.processing_time_us = outcome, post_trade, processing_time_us
        self._lazy: tuple[Any, ...] | None = None

    @property
    def post_trade(self) -> RiskMetrics:
        if self._post_trade is None:
            book, symbol, qty, notional, state, velocity, day_start = self._lazy  # type: ignore[misc]
            notionals = dict(book.notionals)
            if qty:
                notionals[symbol] = notional
            else:
                notionals.pop(symbol, None)
            equity = state[precheck.EQUITY]
            concentration = {s: (ratio_ppm(v, equity) if equity > 0 else INFINITE_RATIO_PPM)
                             for s, v in notionals.items()}
            self._post_trade = RiskMetrics(equity, state[MARGIN_RATIO], state[LEVERAGE], state[precheck.DAILY_DD],
                                           state[precheck.PEAK_DD], state[precheck.AVAILABLE], notionals,
                                           concentration, dict(velocity), state[-1])
        return self._post_trade


class MemoryPolicyStore:
    def __init__(self, policies: list[Policy] | None = None) -> None:
        self.policies = {p.name: p for p in (DEFAULT_POLICIES if policies is None else policies)}

    async def load(self) -> list[Policy]:
        return list(self.policies.values())

    async def upsert(self, policy: Policy) -> None:
        self.policies[policy.name] = policy

    async def delete(self, name: str) -> bool:
        return self.policies.pop(name, None) is not None


AUDIT_CHECKS_KEPT = 2_000
"""The in-memory audit keeps the last this many checks (PostgreSQL keeps them all)."""


class MemoryAudit:
    def __init__(self) -> None:
        self.checks: deque[dict[str, Any]] = deque(maxlen=AUDIT_CHECKS_KEPT)
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
        self._policies: list[Policy] = []
        self._compiled: tuple[precheck.CompiledPolicy, ...] = ()
        self.snapshot: AccountSnapshot | None = None
        self._book: precheck.Book | None = None
        self._consts = {s: precheck.SymbolConsts(i) for s, i in instruments.items()}
        self._before_ints: dict[tuple[Scope, str, str], int] = {}
        self._audit_queue: deque[tuple[Any, ...]] = deque()
        self._audit_wake: asyncio.Future[None] | None = None
        self._audit_task: asyncio.Task[Any] | None = None
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

    @property
    def policies(self) -> list[Policy]:
        return self._policies

    @policies.setter
    def policies(self, policies: list[Policy]) -> None:
        self._compiled = precheck.compile_policies(policies)  # compiled before any check sees the new set
        self._policies = policies

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self.policies = await self.policy_store.load()
        disabled, reason = await self.flag.get()
        if disabled:  # a stop survives restarts until a person re-enables trading
            self.stop = StopState(active=True, reason=reason, triggered_by="(before restart)")
        await self.refresh()
        self._tasks.append(supervised("risk-monitor", self._monitor_loop))
        self._tasks.append(supervised("risk-policies", self._policy_loop))
        self._audit_task = asyncio.ensure_future(self._audit_loop())
        self._tasks.append(self._audit_task)

    async def stop_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._audit_task = None
        await self._drain_audit()  # what the checks queued is written before the engine says it stopped

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
        self._before_ints = _before_ints(metrics)
        self._book = precheck.Book(self.snapshot, self._consts)
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
        """Synchronous: uses the cached account (refreshed every second), simulates the fill, evaluates.
        Integers only (risk/precheck.py): the order's symbol is recomputed, the totals move by its change."""
        started = time.perf_counter_ns()
        ins = self.instruments.get(symbol)
        if self.stop.active:
            return self._result(started, Denied((Violation("emergency-stop", PolicyKind.EMERGENCY, "trading_enabled",
                                                           NO_VALUE, f"stopped: {self.stop.reason}"),)))
        book = self._book
        if ins is None or book is None:
            reason = f"unknown symbol {symbol}" if ins is None else "no account state yet"
            return self._result(started, Denied((Violation("check-unavailable", PolicyKind.HARD, "availability",
                                                           NO_VALUE, reason),)))
        price = price_ticks or book.marks.get(symbol)
        if not price:
            return self._result(started, Denied((Violation("no-price", PolicyKind.HARD, "availability", NO_VALUE,
                                                           f"no price for {symbol}"),)))
        now = self.clock.now_ns()
        horizon = now - 60 * NS_PER_S
        velocity = {}
        for sym, times in self.order_times.items():
            while times and times[0] < horizon:
                times.popleft()
            velocity[sym] = len(times)
        velocity[symbol] = velocity.get(symbol, 0) + 1
        strategy_count = 0
        if strategy_id:
            times = self.strategy_order_times[strategy_id]
            while times and times[0] < horizon:
                times.popleft()
            strategy_count = len(times) + 1
        # The order filled at `price` as taker, on the order's symbol only.
        c = self._consts.get(symbol) or precheck.SymbolConsts(ins)
        old = book.legs.get(symbol)
        if old is None:
            old = precheck.Leg(c, 0, 0, 1, 0, book_table(book, ins),
                              book.leverage.get(symbol, DEFAULT_LEVERAGE))
        qty, cost_num, cost_den, realized = precheck.fill(old.qty, old.cost_num, old.cost_den, side.sign, qty_steps,
                                                          price, c.value_num, c.value_den)
        commission = div_half_even(price * qty_steps * c.value_num * self.config.taker_fee_ppm, c.value_den * PPM)
        mark = book.marks.get(symbol, price) or 0
        upnl, maint, notional, initial = precheck.figures(c, qty, cost_num, cost_den, mark, old.table, old.leverage)
        if not old.qty:
            old_upnl = old_maint = old_notional = old_initial = 0
        else:
            old_upnl, old_maint, old_notional, old_initial = old.upnl, old.maint, old.notional, old.initial
        equity = book.wallet + realized - commission + book.upnl - old_upnl + upnl
        maint_total = book.maint - old_maint + maint
        gross = book.gross - old_notional + notional
        initial_total = book.initial - old_initial + initial
        notional_max = notional if qty else None
        for sym, value in book.notionals.items():
            if sym != symbol and (notional_max is None or value > notional_max):
                notional_max = value
        state = _post_state(equity, maint_total, gross, initial_total, book.open_order_margin, self.day_start_equity,
                            self.peak_equity, notional_max, max(velocity.values()))
        violations = []
        for cp in self._compiled:
            if cp.code is not None:
                value = state[cp.code]
            elif cp.scope is Scope.SYMBOL:
                value = self._symbol_value(cp, book, symbol, qty, notional, equity, velocity)
            else:
                value = strategy_count if strategy_id and cp.scope_id == strategy_id \
                    and cp.metric == "orders_per_minute" else None
            if value is not None and not cp.holds(value):
                if not reduce_only and cp.metric in _WORSENING:
                    before = self._before_ints.get((cp.scope, cp.scope_id, cp.metric))
                    if before is not None and value < before:
                        continue  # the order reduces the breach
                p = cp.policy
                if reduce_only and p.kind is not PolicyKind.SOFT:
                    continue  # reducing risk is always allowed: only the emergency stop blocks it (above)
                violations.append(Violation(p.name, p.kind, p.metric, _real(value, cp.unit), p.threshold, p.scope,
                                            p.scope_id))
        outcome = decide(violations)
        if isinstance(outcome, Approved):
            self.order_times[symbol].append(now)
            if strategy_id:
                self.strategy_order_times[strategy_id].append(now)
        elapsed = time.perf_counter_ns() - started
        result = CheckResult(outcome, None, elapsed // 1000)
        result._lazy = (book, symbol, qty, notional, state, velocity, self.day_start_equity)
        self.check_latency_ns.append(elapsed)
        self.checks += 1
        self._audit_later((now, request_id, symbol, side, ins, qty_steps, price, outcome, result.processing_time_us,
                           state[LEVERAGE], state[MARGIN_RATIO]))
        return result

    def _symbol_value(self, cp, book, symbol, qty, notional, equity, velocity):  # type: ignore[no-untyped-def]
        sym = cp.scope_id
        if cp.metric == "orders_per_minute":
            return velocity.get(sym)
        if sym == symbol:
            value = notional if qty else None
        else:
            value = book.notionals.get(sym)
        if value is None or cp.metric == "position_notional_usdt":
            return value if cp.metric in ("position_notional_usdt", "concentration_pct") else None
        if cp.metric == "concentration_pct":
            return ratio_ppm(value, equity) if equity > 0 else INFINITE_RATIO_PPM
        return None

    # -- the audit, off the check path: one writer task, records in order --------------------------
    def _audit_later(self, item: tuple[Any, ...]) -> None:
        self._audit_queue.append(item)
        wake = self._audit_wake
        if wake is not None:
            if not wake.done():
                wake.set_result(None)
        elif self._audit_task is None:
            asyncio.ensure_future(self._drain_audit())  # not started: one writer per check, as before

    async def _drain_audit(self) -> None:
        while self._audit_queue:
            record = _audit_record(self._audit_queue.popleft())
            try:
                await self.audit.check(record)
            except Exception:
                log.exception("risk audit write failed for %s", record.get("request_id"))

    async def _audit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._drain_audit()
            self._audit_wake = loop.create_future()
            try:
                await self._audit_wake
            finally:
                self._audit_wake = None

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


_WORSENING = frozenset({"leverage", "margin_ratio", "concentration_pct", "position_notional_usdt",
                        "total_exposure_usdt"})
"""Metrics where a policy already broken before the order blocks it only if the order makes it worse."""


def book_table(book: precheck.Book, ins: Instrument):  # type: ignore[no-untyped-def]
    from celeris.domain.positions import flat_brackets
    return flat_brackets(ins) if book is None else (book.brackets.get(ins.symbol) or flat_brackets(ins))


def _post_state(equity: int, maint: int, gross: int, initial: int, open_order_margin: int,
                day_start: int | None, peak_equity: int | None, notional_max: int | None,
                opm_max: int) -> tuple[Any, ...]:
    """The account-scope metrics in integers, indexed by precheck's codes (then the day's PnL)."""
    daily_dd = daily_pnl = 0
    if day_start is not None and day_start > 0:
        daily_pnl = equity - day_start
        daily_dd = max(0, ratio_ppm(day_start - equity, day_start))
    peak = equity if peak_equity is None or peak_equity < equity else peak_equity
    peak_dd = ratio_ppm(peak - equity, peak) if peak > 0 else 0
    if equity > 0:
        mr, lev = -(-maint * PPM // equity), -(-gross * PPM // equity)
        conc = None if notional_max is None else -(-notional_max * PPM // equity)
    else:
        mr = INFINITE_RATIO_PPM if maint else 0
        lev = INFINITE_RATIO_PPM if gross else 0
        conc = None if notional_max is None else INFINITE_RATIO_PPM
    return (equity, mr, lev, daily_dd, peak_dd, equity - initial - open_order_margin, gross,
            max(0, -daily_pnl), conc, notional_max, opm_max, daily_pnl)


def _before_ints(m: RiskMetrics) -> dict[tuple[Scope, str, str], int]:
    """The refresh's metrics that `_WORSENING` compares with, in the same integer units as the check."""
    out = {(Scope.ACCOUNT, "", "leverage"): m.leverage_ppm, (Scope.ACCOUNT, "", "margin_ratio"): m.margin_ratio_ppm,
           (Scope.ACCOUNT, "", "total_exposure_usdt"): sum(m.notional_units.values())}
    for symbol, ppm in m.concentration_ppm.items():
        out[(Scope.SYMBOL, symbol, "concentration_pct")] = ppm
    for symbol, units in m.notional_units.items():
        out[(Scope.SYMBOL, symbol, "position_notional_usdt")] = units
    if m.concentration_ppm:
        out[(Scope.ACCOUNT, "", "concentration_pct")] = max(m.concentration_ppm.values())
    if m.notional_units:
        out[(Scope.ACCOUNT, "", "position_notional_usdt")] = max(m.notional_units.values())
    return out


def _real(value: int, unit: int) -> Decimal:
    """A metric's integer as the exact real-unit Decimal a Violation reports (the exporting edge)."""
    return Decimal(value) / Decimal(unit) if unit != 1 else Decimal(value)


def _audit_record(item: tuple[Any, ...]) -> dict[str, Any]:
    now, request_id, symbol, side, ins, qty_steps, price, outcome, us, leverage_ppm, mr_ppm = item
    return {"ts_ns": now, "request_id": request_id, "symbol": symbol, "side": side.value,
            "quantity": ins.format_qty(qty_steps), "price": ins.format_price(price),
            "approved": isinstance(outcome, Approved),
            "violations": [v.reason for v in (outcome.violations if isinstance(outcome, Denied) else outcome.warnings)],
            "processing_time_us": us, "leverage": str(ppm_decimal(leverage_ppm)),
            "margin_ratio": str(ppm_decimal(mr_ppm))}


def metrics_json(metrics: RiskMetrics) -> dict[str, Any]:
    """The metrics as decimal strings (exact) for Control's details."""
    return {"equity": str(metrics.equity), "margin_ratio": str(metrics.margin_ratio),
            "leverage": str(metrics.leverage), "daily_drawdown_pct": str(metrics.daily_drawdown_pct),
            "peak_drawdown_pct": str(metrics.peak_drawdown_pct),
            "concentration_pct": {s: str(v) for s, v in metrics.concentration_pct.items()}}

