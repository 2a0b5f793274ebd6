"""Sample statistics over integers: the one percentile every component reports, and a Sharpe ratio.

Owns `percentile` (nearest rank: the smallest sample with at least q of the samples at or below it, so
the answer is always an observed value, never an interpolation) and `sharpe_ratio_micro` (mean over
sample standard deviation of integer returns, in millionths, computed with integer square roots so no
float enters a money path).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence


def percentile(samples: Iterable[int], q: float) -> int | None:
    """Nearest-rank percentile for 0 < q <= 1: the ceil(q x n)-th smallest sample (None when empty).

    percentile([1, 2, 3, 4], 0.5) == 2; percentile(x, 1) == max(x); q <= 0 gives the minimum.
    """
    ordered = sorted(samples)
    if not ordered:
        return None
    rank = math.ceil(q * len(ordered))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def sharpe_ratio_micro(returns: Sequence[int]) -> int | None:
    """Mean / sample standard deviation of `returns` (any fixed integer unit), in millionths.

    None with fewer than two returns or none of them different (no deviation to divide by). With
    S1 = sum r, S2 = sum r^2 and D = n S2 - S1^2: ratio = S1 sqrt((n - 1) / (n D)); the square root is
    taken of the squared ratio scaled by 10^12, rounded toward zero.
    """
    n = len(returns)
    if n < 2:
        return None
    s1 = sum(returns)
    spread = n * sum(r * r for r in returns) - s1 * s1
    if spread <= 0:
        return None
    magnitude = math.isqrt(s1 * s1 * (n - 1) * 10**12 // (n * spread))
    return magnitude if s1 >= 0 else -magnitude
