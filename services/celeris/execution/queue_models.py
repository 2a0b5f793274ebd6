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
MAX_POWER_N = 10.0
"""The largest n `power:N` accepts. Beyond it the model is already its limit (the whole unexplained
decrease is taken from the front whenever front > back, from the back otherwise), and x**n stays finite
for any level below 1e30 instrument units; the probability is computed so that it cannot overflow even
past that (see Probabilistic.depth)."""


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
    n: float | None = None
    """f's exponent when f(x) = x**n: p is then computed from the ratio when x**n overflows."""

    def depth(self, ahead: int, traded: int, prev_qty: int, new_qty: int) -> int:
        chg = prev_qty - new_qty - traded  # the trades' part of the decrease already moved us
        if chg < 0:  # an increase (or trades explain it all): new orders join behind us
            return max(0, min(ahead, new_qty))
        front, back = ahead, max(prev_qty - ahead, 0)
        try:
            fb, ff = self.f(back * self.lot), self.f(front * self.lot)
            finite = math.isfinite(fb + ff)
        except OverflowError:
            finite = False
        if finite:
            p = fb / (fb + ff) if fb + ff > 0 else 1.0
        elif self.n is not None and back and front:
            # x**n left the float range: the same p = 1 / (1 + (front/back)**n), as a logistic in logs
            p = _logistic(self.n * (math.log(front) - math.log(back)))
        else:
            p = 0.0 if not back else 1.0
        expected = (1.0 - p) * chg + max(p * chg - back, 0.0)
        steps = math.floor(expected)
        if self.rng.random() < expected - steps:
            steps += 1
        return max(0, min(front - steps, new_qty))


def _power(n: float) -> Callable[[float], float]:
    return lambda x: x ** n


def _logistic(t: float) -> float:
    """1 / (1 + e**t) without overflow."""
    if t >= 0:
        e = math.exp(-t) if t < 745 else 0.0
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(t))


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
        if 0 < n <= MAX_POWER_N:
            return Probabilistic(name, _power(n), rng, lot, n)
        if n > MAX_POWER_N:
            raise ValueError(f"queue model {name!r}: n must be more than 0 and at most {MAX_POWER_N:g}")
    raise ValueError(f"unknown queue model {name!r}: allowed are {', '.join(NAMES)} (power:N for another n, "
                     f"0 < N <= {MAX_POWER_N:g})")
