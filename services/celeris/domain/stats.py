"""Percentiles of latency samples: one definition for every component, report and benchmark."""

from __future__ import annotations

from typing import Iterable


def percentile(samples: Iterable[int | float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]) of the samples; 0 for none. The rank is ceil(q * n), so p99
    of 100 samples is the 99th smallest, not the maximum."""
    ordered = sorted(samples)
    if not ordered:
        return 0.0
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a percentile is between 0 and 1, not {q}")
    rank = max(1, -(-int(q * 1_000_000) * len(ordered) // 1_000_000))
    return float(ordered[min(len(ordered), rank) - 1])
