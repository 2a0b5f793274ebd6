"""Risk-rule value types: policies that state the allowed condition, and check outcomes as values.

Owns `Policy` (scope, kind, metric, operator, threshold; violated when its allowed condition is false,
ARCHITECTURE.md §8), `evaluate`, and the outcomes `Approved` / `Denied(reasons)`: a risk denial is a
value, not an exception.
"""

from __future__ import annotations

import enum
import operator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Mapping

from celeris.domain.values import parse_decimal


class PolicyKind(enum.Enum):
    HARD = "hard"  # block the order
    SOFT = "soft"  # warn and log
    EMERGENCY = "emergency"  # trigger the emergency stop


class Scope(enum.Enum):
    ACCOUNT = "account"
    SYMBOL = "symbol"
    STRATEGY = "strategy"


_OPERATORS: dict[str, Callable[[Fraction, Fraction], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}

METRICS = frozenset({
    "leverage", "margin_ratio", "daily_drawdown_pct", "peak_drawdown_pct", "concentration_pct",
    "position_notional_usdt", "total_exposure_usdt", "orders_per_minute", "daily_loss_usdt",
    "available_margin_usdt", "equity_usdt",
})


@dataclass(frozen=True, slots=True)
class Policy:
    """"`metric operator threshold` must hold", e.g. Policy("max-lev", "leverage", "<=", "10")."""

    name: str
    metric: str
    operator: str
    threshold: str
    kind: PolicyKind = PolicyKind.HARD
    scope: Scope = Scope.ACCOUNT
    scope_id: str = ""
    enabled: bool = True
    priority: int = 100
    _threshold: Fraction = field(init=False, repr=False, compare=False, default=Fraction(0))

    def __post_init__(self) -> None:
        if self.operator not in _OPERATORS:
            raise ValueError(f"policy {self.name}: unknown operator {self.operator!r}")
        if self.metric not in METRICS:
            raise ValueError(f"policy {self.name}: unknown metric {self.metric!r}")
        mantissa, scale = parse_decimal(self.threshold)
        object.__setattr__(self, "_threshold", Fraction(mantissa, 10**scale))  # parsed once, checked often
        if self.scope is not Scope.ACCOUNT and not self.scope_id:
            raise ValueError(f"policy {self.name}: scope {self.scope.value} needs a scope_id")

    @property
    def threshold_value(self) -> Fraction:
        return self._threshold

    def holds(self, value: Fraction) -> bool:
        """True when the allowed condition is met."""
        return _OPERATORS[self.operator](value, self._threshold)


@dataclass(frozen=True, slots=True)
class Violation:
    policy: str
    kind: PolicyKind
    metric: str
    value: Fraction
    threshold: str
    scope: Scope = Scope.ACCOUNT
    scope_id: str = ""

    @property
    def reason(self) -> str:
        return f"{self.policy}: {self.metric}={float(self.value):.6g} breaks allowed {self.threshold}"


@dataclass(frozen=True, slots=True)
class Approved:
    warnings: tuple[Violation, ...] = ()


@dataclass(frozen=True, slots=True)
class Denied:
    violations: tuple[Violation, ...]

    @property
    def reason(self) -> str:
        return "; ".join(v.reason for v in self.violations)


CheckOutcome = Approved | Denied


def evaluate(policies: list[Policy], metrics: Mapping[tuple[Scope, str, str], Fraction]) -> list[Violation]:
    """Evaluate enabled policies against metrics keyed (scope, scope_id, metric); missing = not checked."""
    violations = []
    for policy in sorted(policies, key=_priority):
        if not policy.enabled:
            continue
        value = metrics.get((policy.scope, policy.scope_id, policy.metric))
        if value is not None and not policy.holds(value):
            violations.append(Violation(policy.name, policy.kind, policy.metric, value, policy.threshold,
                                        policy.scope, policy.scope_id))
    return violations


def _priority(policy: Policy) -> int:
    return policy.priority


def decide(violations: list[Violation]) -> CheckOutcome:
    """Hard and emergency violations deny; soft ones approve with warnings."""
    blocking = tuple(v for v in violations if v.kind is not PolicyKind.SOFT)
    if blocking:
        return Denied(blocking)
    return Approved(tuple(violations))


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Pre-trade limits used by the strategy engine's filter and execution's validation."""

    max_position_usdt: int
    """Money units (MONEY_SCALE)."""
    max_total_exposure_usdt: int
    max_orders_per_second: int = 10
    max_daily_loss_usdt: int = 0
    """0 disables the check."""
    max_drawdown_pct: Fraction = Fraction(20)
