"""Alerts raised by the engines (account monitor, risk manager), one type for every source.

Owns `Alert` (what a person is told: severity, source, category, message, key, time, acknowledgement)
and `AlertLog`, the rules every source applies before telling anyone: the same key is not repeated
within a suppression window, and one type (the key up to its first ':') is capped per minute so a
flapping condition cannot drown the rest. Pure: time comes from the caller's clock, observers are
plain callables.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

from celeris.domain.clock import NS_PER_S, Clock

SEVERITIES = ("info", "warning", "error", "critical")


@dataclass
class Alert:
    id: str
    severity: str
    """One of SEVERITIES."""
    source: str
    """The component that raised it: "account", "risk"."""
    category: str
    """What it is about: "system", "risk", "pnl", "position", "orders"."""
    message: str
    key: str
    """What it is de-duplicated by, e.g. "liquidation:BTCUSDT"."""
    ts_ns: int
    acknowledged: bool = False
    acknowledged_by: str = ""

    @property
    def kind(self) -> str:
        """The account monitor's name for the key (kept for its API and tests)."""
        return self.key


class AlertLog:
    """Alerts of one source, in the order raised, with suppression, a per-type cap and acknowledgement."""

    def __init__(self, source: str, clock: Clock, suppress_s: float, per_type_per_minute: int | None = None,
                 id_prefix: str | None = None) -> None:
        self.source = source
        self.clock = clock
        self.suppress_ns = int(suppress_s * NS_PER_S)
        self.per_type_per_minute = per_type_per_minute
        self.id_prefix = id_prefix or source
        self.alerts: list[Alert] = []
        self.raised: dict[str, int] = {severity: 0 for severity in SEVERITIES}
        """Alerts raised per severity since start, a counter (the operator's gates take its increase)."""
        self.on_alert: list[Callable[[Alert], None]] = []
        self._last: dict[str, int] = {}
        self._type_times: dict[str, deque[int]] = {}

    def raise_alert(self, category: str, severity: str, message: str, key: str) -> Alert | None:
        """Record and announce an alert, or None when its key fired within the window or its type is capped."""
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}")
        now = self.clock.now_ns()
        last = self._last.get(key)
        if last is not None and now - last < self.suppress_ns:
            return None
        if self.per_type_per_minute is not None:
            times = self._type_times.setdefault(key.split(":")[0], deque())
            while times and times[0] < now - 60 * NS_PER_S:
                times.popleft()
            if len(times) >= self.per_type_per_minute:
                return None
            times.append(now)
        self._last[key] = now
        alert = Alert(f"{self.id_prefix}-{len(self.alerts) + 1}", severity, self.source, category, message, key, now)
        self.alerts.append(alert)
        self.raised[severity] += 1
        for observer in self.on_alert:
            observer(alert)
        return alert

    def acknowledge(self, alert_id: str, by: str) -> Alert | None:
        for alert in self.alerts:
            if alert.id == alert_id:
                alert.acknowledged, alert.acknowledged_by = True, by
                return alert
        return None
