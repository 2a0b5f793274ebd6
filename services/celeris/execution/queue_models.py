"""Queue-position models of the paper venue: how much of a price level is ahead of our resting order.

Owns the estimate of "queue ahead" (integer quantity steps) as hftbacktest defines it
(hftbacktest/src/backtest/models/queue.rs), selected by name:

- `risk_averse` (hftbacktest's RiskAdverseQueueModel): only trades at our price move us forward; a level
  decrease (cancels) only clips the queue ahead to what is left at the level, min(ahead, level).
- `power` (ProbQueueModel with PowerProbQueueFunc, f(x) = x**n, n = 2 by default; `power:3` for n = 3) and
  `log` (LogProbQueueFunc, f(x) = log(1 + x) with x in instrument units, as hftbacktest sees lots):
  a level decrease not explained by the trades seen at the level since its last change is split between
  the part behind us (with probability p = f(back) / (f(back) + f(front))) and the part ahead of us; the
  expected decrease of the front, (1 - p) * chg + max(p * chg - back, 0), is hftbacktest's formula.

hftbacktest keeps quantities as floats; we keep integer steps. The probabilistic models round the expected
decrease of the front stochastically (floor, plus one step with the fractional part as probability) with
the venue's seeded `random.Random`, so the expectation is hftbacktest's and a seed makes a run
reproducible. Only the probability is a float; every quantity is an integer. A level decrease never fills
us by itself (the queue ahead stays >= 0): only a trade does.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Protocol

DEFAULT_POWER_N = 2
"""hftbacktest's examples use PowerProbQueueModel(2) ... (3); 2 is the milder of the two."""


class QueueModel(Protocol):
    name: str

    def depth(self, ahead: int, traded: int, prev_qty: int, new_qty: int) -> int:
        """The queue ahead after the level at our price went from prev_qty to new_qty; `traded` is what
        traded at our price since the level last changed (already taken off `ahead`)."""
        ...


def trade(ahead: int, qty: int) -> tuple[int, int]:
    """A trade of `qty` at our price eats the queue ahead first: (queue ahead after, quantity that reaches
    us). The same in every model (hftbacktest: front_q_qty -= qty)."""
    eaten = min(ahead, qty)
    return ahead - eaten, qty - eaten


@dataclass(frozen=True)
class RiskAverse:
    name: str = "risk_averse"

    def depth(self, ahead: int, traded: int, prev_qty: int, new_qty: int) -> int:
        return max(0, min(ahead, new_qty))


@dataclass(frozen=True)
class Probabilistic:
    name: str
    f: Callable[[float], float]
    rng: random.Random
    lot: float = 1.0
    """One quantity step in instrument units (0.001 BTC): hftbacktest's f sees quantities, not steps."""

    def depth(self, ahead: int, traded: int, prev_qty: int, new_qty: int) -> int:
        chg = prev_qty - new_qty - traded  # the trades' part of the decrease already moved us
        if chg < 0:  # an increase (or trades explain it all): new orders join behind us
            return max(0, min(ahead, new_qty))
        front, back = ahead, max(prev_qty - ahead, 0)
        fb, ff = self.f(back * self.lot), self.f(front * self.lot)
        p = fb / (fb + ff) if fb + ff > 0 and math.isfinite(fb + ff) else 1.0
        expected = (1.0 - p) * chg + max(p * chg - back, 0.0)
        steps = math.floor(expected)
        if self.rng.random() < expected - steps:
            steps += 1
        return max(0, min(front - steps, new_qty))


def _power(n: float) -> Callable[[float], float]:
    return lambda x: x ** n


def _log(x: float) -> float:
    return math.log1p(x)


NAMES = ("risk_averse", "power", "log")


def build(name: str, *, rng: random.Random, lot: float = 1.0) -> QueueModel:
    """A queue model by name: `risk_averse`, `power` (n = 2), `power:N`, `log`. Unknown: ValueError."""
    base, _, arg = name.partition(":")
    if base == "risk_averse" and not arg:
        return RiskAverse()
    if base == "log" and not arg:
        return Probabilistic("log", _log, rng, lot)
    if base == "power":
        try:
            n = float(arg) if arg else float(DEFAULT_POWER_N)
        except ValueError:
            n = -1.0
        if n > 0 and math.isfinite(n):
            return Probabilistic(name, _power(n), rng, lot)
    raise ValueError(f"unknown queue model {name!r}: allowed are {', '.join(NAMES)} (power:N for another n)")
