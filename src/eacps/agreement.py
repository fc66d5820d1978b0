"""How far a preview's rank can be trusted: the posterior of the correlation between previews and finals, given the
Spearman coefficient of a few (preview, final) pairs that a search measured itself. Multi-fidelity plans its rung
from it; tree search widens its nodes by it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

#: the grid of the agreement's posterior: the correlation of preview and final as a standard bivariate normal
RHO_GRID = np.linspace(-0.975, 0.975, 40)
#: simulated Spearman coefficients per grid point behind the posterior's likelihood
LIKELIHOOD_SIMS = 4000


@lru_cache(maxsize=64)
def _spearman_draws(n: int) -> np.ndarray:
    """(len(RHO_GRID), LIKELIHOOD_SIMS) Spearman coefficients of ``n`` bivariate-normal pairs at each grid ρ
    (seeded: the posterior is a fixed function of the observation)."""
    rng = np.random.default_rng([n, 0x5E])
    z = rng.standard_normal((LIKELIHOOD_SIMS, n))
    e = rng.standard_normal((LIKELIHOOD_SIMS, n))
    rz = z.argsort(axis=1).argsort(axis=1).astype(float)
    out = np.empty((len(RHO_GRID), LIKELIHOOD_SIMS))
    for i, rho in enumerate(RHO_GRID):
        rf = (rho * z + math.sqrt(1 - rho * rho) * e).argsort(axis=1).argsort(axis=1).astype(float)
        out[i] = 1 - 6 * ((rz - rf) ** 2).sum(axis=1) / (n * (n * n - 1))
    return out


def agreement_posterior(spearman: float, n: int) -> np.ndarray:
    """The posterior weights over ``RHO_GRID`` of the preview/final correlation, given the Spearman coefficient
    ``spearman`` of ``n`` (preview, final) pairs and a uniform prior: the likelihood is the simulated chance of a
    coefficient within half a step of the observed one (Spearman's values are ``12/(n^3 - n)`` apart; at least 0.05
    wide, so large ``n`` is smoothed alike)."""
    draws = _spearman_draws(n)
    half = max(6 / (n * (n * n - 1)), 0.05)
    like = (np.abs(draws - spearman) <= half + 1e-9).mean(axis=1) + 1e-12
    return like / like.sum()


def agreement_mean(pairs: Sequence[tuple[float, float]]) -> float | None:
    """The posterior mean correlation of previews and finals given ``pairs`` (None below three pairs, or when
    the previews or the finals are all tied: their order says nothing)."""
    if len(pairs) < 3:
        return None
    from scipy.stats import spearmanr

    rho = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return None if math.isnan(rho) else float(agreement_posterior(float(rho), len(pairs)) @ RHO_GRID)
