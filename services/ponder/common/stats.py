"""Small statistics the benchmarks and evaluations share."""
from __future__ import annotations

import math


def wilson(correct: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (lo, hi) in [0, 1] of the proportion correct / n (95 % at the default z);
    (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)
