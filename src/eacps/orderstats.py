"""Order statistics for "how good is the best of N?".

The write-up's approximation E[max of N] ≈ μ + σ·sqrt(2 ln N) overstates small-N gains (1.18σ vs the
exact 0.56σ at N = 2; 2.45σ vs 1.87σ at N = 20). These are the exact values, for a normal fit and for
an empirical distribution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import integrate, stats


@lru_cache(maxsize=4096)
def expected_max_std_normal(n: int) -> float:
    """E[max of n iid N(0, 1)] = ∫ x · n φ(x) Φ(x)^(n-1) dx, by adaptive quadrature."""
    if n < 1:
        raise ValueError("n must be >= 1")
    if n == 1:
        return 0.0
    f = lambda x: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1)  # noqa: E731
    val, _ = integrate.quad(f, -12, 12, limit=200, points=[0.0, math.sqrt(2 * math.log(n))])
    return float(val)


def expected_max_normal(mu: float, sigma: float, n: int) -> float:
    return mu + sigma * expected_max_std_normal(n)


def expected_max_empirical(samples: Sequence[float], n: int) -> float:
    """E[max of n draws with replacement from ``samples``] = Σ x_(i) [(i/m)^n − ((i−1)/m)^n]."""
    x = np.sort(np.asarray(samples, dtype=float))
    m = x.size
    if m == 0:
        raise ValueError("no samples")
    i = np.arange(1, m + 1)
    w = (i / m) ** n - ((i - 1) / m) ** n
    return float(np.dot(w, x))


def writeup_approximation(mu: float, sigma: float, n: int) -> float:
    """μ + σ·sqrt(2 ln N): the write-up's approximation (labelled as such wherever it is drawn)."""
    return mu + sigma * math.sqrt(2 * math.log(n)) if n > 1 else mu
