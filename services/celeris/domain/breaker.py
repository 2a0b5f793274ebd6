"""The circuit breaker in front of the venue, as a transition table driven by an injected clock.

CLOSED counts consecutive failures; at the threshold (5) it OPENs and refuses everything for the open
period (30 s); then HALF_OPEN lets a few probes through (3): enough successes (2) close it, any failure
opens it again. Illegal moves raise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from celeris.domain.clock import NS_PER_S, Clock


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerEvent(enum.Enum):
    TRIP = "trip"  # failure threshold reached (closed) or a probe failed (half-open)
    COOL_DOWN = "cool_down"  # the open period elapsed
    RECOVER = "recover"  # enough probes succeeded


BREAKER_TRANSITIONS = {
    (BreakerState.CLOSED, BreakerEvent.TRIP): BreakerState.OPEN,
    (BreakerState.OPEN, BreakerEvent.COOL_DOWN): BreakerState.HALF_OPEN,
    (BreakerState.HALF_OPEN, BreakerEvent.TRIP): BreakerState.OPEN,
    (BreakerState.HALF_OPEN, BreakerEvent.RECOVER): BreakerState.CLOSED,
}


class InvalidBreakerTransition(RuntimeError):
    pass


@dataclass
class CircuitBreaker:
    clock: Clock
    failure_threshold: int = 5
    open_s: float = 30.0
    half_open_probes: int = 3
    close_after_successes: int = 2
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at_ns: int = 0
    probes_sent: int = 0
    probe_successes: int = 0
    trips: int = 0
    history: list[tuple[int, BreakerState]] = field(default_factory=list)

    def _move(self, event: BreakerEvent) -> None:
        try:
            self.state = BREAKER_TRANSITIONS[(self.state, event)]
        except KeyError:
            raise InvalidBreakerTransition(f"{event.value} is illegal in {self.state.value}") from None
        self.history.append((self.clock.now_ns(), self.state))
        if self.state is BreakerState.OPEN:
            self.trips += 1
            self.opened_at_ns = self.clock.now_ns()
        self.failures = self.probes_sent = self.probe_successes = 0

    def allow(self) -> bool:
        """May a request go out now? (A half-open breaker admits a limited number of probes.)"""
        if self.state is BreakerState.OPEN:
            if self.clock.now_ns() - self.opened_at_ns < self.open_s * NS_PER_S:
                return False
            self._move(BreakerEvent.COOL_DOWN)
        if self.state is BreakerState.HALF_OPEN:
            if self.probes_sent >= self.half_open_probes:
                return False
            self.probes_sent += 1
        return True

    def success(self) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self.probe_successes += 1
            if self.probe_successes >= self.close_after_successes:
                self._move(BreakerEvent.RECOVER)
        else:
            self.failures = 0

    def failure(self) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self._move(BreakerEvent.TRIP)
        elif self.state is BreakerState.CLOSED:
            self.failures += 1
            if self.failures >= self.failure_threshold:
                self._move(BreakerEvent.TRIP)

    @property
    def is_open(self) -> bool:
        return self.state is BreakerState.OPEN and self.clock.now_ns() - self.opened_at_ns < self.open_s * NS_PER_S


@dataclass
class SlidingWindowLimit:
    """At most `limit` events per `window_s` (the order-rate limit)."""

    clock: Clock
    limit: int
    window_s: float = 1.0
    _events: list[int] = field(default_factory=list)

    def has_room(self) -> bool:
        """Whether `try_acquire` would succeed now (nothing is taken)."""
        horizon = self.clock.now_ns() - int(self.window_s * NS_PER_S)
        events = self._events
        while events and events[0] <= horizon:
            events.pop(0)
        return len(events) < self.limit

    def room(self) -> int:
        """How many `try_acquire` calls would succeed now (nothing is taken)."""
        self.has_room()  # drops what left the window
        return max(0, self.limit - len(self._events))

    def try_acquire(self) -> bool:
        now = self.clock.now_ns()
        horizon = now - int(self.window_s * NS_PER_S)
        events = self._events
        while events and events[0] <= horizon:
            events.pop(0)
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True
