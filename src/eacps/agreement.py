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
#: pairs up to which the likelihood is simulated (beyond: a normal approximation)
SIMULATED_UP_TO = 20


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
    wide, so large ``n`` is smoothed alike). Above ``SIMULATED_UP_TO`` pairs (a long search's own pairs) the
    likelihood is the normal law of Fisher's z of Spearman's coefficient instead (variance 1.06 / (n - 3), Fieller,
    Hartley and Pearson 1957; a bivariate normal of correlation ρ has Spearman 6/π·asin(ρ/2)): the simulation's cost
    grows with n, the approximation is close there."""
    if n > SIMULATED_UP_TO:
        expected = np.arctanh(6 / math.pi * np.arcsin(RHO_GRID / 2))
        z = math.atanh(min(max(spearman, -0.999), 0.999))
        like = np.exp(-0.5 * (z - expected) ** 2 * (n - 3) / 1.06)
        return like / like.sum()
    draws = _spearman_draws(n)
    half = max(6 / (n * (n * n - 1)), 0.05)
    like = (np.abs(draws - spearman) <= half + 1e-9).mean(axis=1) + 1e-12
    return like / like.sum()


def spearman_of(pairs: Sequence[tuple[float, float]]) -> float | None:
    """The Spearman coefficient of (preview, final) ``pairs`` (None below three pairs, or when the previews or the
    finals are all tied: their order says nothing)."""
    if len(pairs) < 3 or len({a for a, _ in pairs}) < 2 or len({b for _, b in pairs}) < 2:
        return None
    from scipy.stats import spearmanr

    rho = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return None if math.isnan(rho) else float(rho)


def agreement_mean(pairs: Sequence[tuple[float, float]]) -> float | None:
    """The posterior mean correlation of previews and finals given ``pairs`` (None where ``spearman_of`` is)."""
    rho = spearman_of(pairs)
    return None if rho is None else float(agreement_posterior(rho, len(pairs)) @ RHO_GRID)
