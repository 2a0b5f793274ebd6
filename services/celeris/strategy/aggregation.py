"""Combining the signals of several strategies on one symbol into one decision (FR-SE-004).

Three methods, chosen per symbol: majority vote (more than half of the voters on one side), a
performance-weighted average of signed strengths, and the first signal above a strength threshold.
The aggregated signal lists its contributors. Pure functions.

Votes are per (symbol, side) intent: a market maker's passive bid and ask are quotes, not opinions on
direction, so `aggregate_round` never nets them against each other or against anyone's vote; each quote
stays its own strategy's. Only directional (normal or aggressive) signals are combined.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping

from celeris.domain.signals import Signal, Urgency
from celeris.domain.values import Side

_URGENCY_RANK = {Urgency.PASSIVE: 0, Urgency.NORMAL: 1, Urgency.AGGRESSIVE: 2}


class Method(enum.Enum):
    MAJORITY = "majority"
    WEIGHTED = "weighted"
    FIRST_ABOVE = "first_above"


@dataclass(frozen=True, slots=True)
class Aggregated:
    signal: Signal
    contributors: tuple[str, ...]


def aggregate(signals: list[Signal], method: Method, *, weights: Mapping[str, float] | None = None,
              threshold: float = 0.6, voters: int | None = None) -> Aggregated | None:
    """One decision from `signals` (all for the same symbol), or None when they do not agree enough.

    `voters` is the number of strategies that could have voted (abstaining counts against a majority).
    """
    if not signals:
        return None
    if method is Method.FIRST_ABOVE:
        for signal in signals:
            if signal.strength >= threshold:
                return Aggregated(signal, (signal.strategy,))
        return None
    if method is Method.MAJORITY:
        total = max(voters or len(signals), len(signals))
        for side in (Side.BUY, Side.SELL):
            group = [s for s in signals if s.side is side]
            if len(group) * 2 > total:
                return Aggregated(_merge(group, sum(s.strength for s in group) / len(group)),
                                  tuple(s.strategy for s in group))
        return None
    weights = weights or {}
    score = sum(s.side.sign * s.strength * weights.get(s.strategy, 1.0) for s in signals)
    norm = sum(weights.get(s.strategy, 1.0) for s in signals)
    if norm <= 0 or score == 0:
        return None
    side = Side.BUY if score > 0 else Side.SELL
    group = [s for s in signals if s.side is side]
    return Aggregated(_merge(group, min(1.0, abs(score) / norm)), tuple(s.strategy for s in group))


def _merge(group: list[Signal], strength: float) -> Signal:
    lead = max(group, key=lambda s: (_URGENCY_RANK[s.urgency], s.strength))
    reason = "; ".join(f"{s.strategy}: {s.reason}" for s in group)
    return Signal(lead.symbol, lead.side, strength, "+".join(s.strategy for s in group), lead.ts_event_ns,
                  lead.urgency, lead.price_hint_ticks, reason)


def aggregate_round(signals: list[Signal], method: Method, *, weights: Mapping[str, float] | None = None,
                    threshold: float = 0.6, voters: int | None = None) -> list[Aggregated]:
    """The decisions of one round on one symbol: every passive quote as it is (its owner alone), and
    the directional signals combined by `method` (abstaining directional voters count against a majority)."""
    quotes = [Aggregated(s, (s.strategy,)) for s in signals if s.urgency is Urgency.PASSIVE]
    directional = [s for s in signals if s.urgency is not Urgency.PASSIVE]
    combined = aggregate(directional, method, weights=weights, threshold=threshold, voters=voters)
    return quotes + ([combined] if combined else [])
