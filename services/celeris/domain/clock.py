"""Time as a port: the `Clock` protocol and a `TestClock` that tests move by hand.

The core never reads the wall clock; engines are handed a Clock. The real one lives in
celeris.runtime.clock.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S


@runtime_checkable
class Clock(Protocol):
    def now_ns(self) -> int:
        """Nanoseconds since the Unix epoch (UTC)."""
        ...


class TestClock:
    """A clock that only moves when told to."""

    __test__ = False  # not a pytest test class

    def __init__(self, start_ns: int = 1_700_000_000 * NS_PER_S) -> None:
        self._now_ns = start_ns

    def now_ns(self) -> int:
        return self._now_ns

    def advance(self, ns: int = 0, *, ms: int = 0, s: float = 0) -> int:
        step = ns + ms * NS_PER_MS + int(s * NS_PER_S)
        if step < 0:
            raise ValueError("a clock never goes back")
        self._now_ns += step
        return self._now_ns

    def set(self, now_ns: int) -> None:
        if now_ns < self._now_ns:
            raise ValueError("a clock never goes back")
        self._now_ns = now_ns


def utc_day_start_ns(ts_ns: int) -> int:
    """Start of the UTC day containing ts_ns (daily PnL and drawdown reset at 00:00 UTC)."""
    return ts_ns - ts_ns % NS_PER_DAY
