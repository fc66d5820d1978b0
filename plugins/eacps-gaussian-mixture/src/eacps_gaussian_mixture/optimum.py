"""The known optimum of the testbed: the highest potential the model reaches for a condition.

**Reachable** means: the image the generator's own sampler (its sampler, steps and guidance) makes from an
initial noise z whose squared norm lies in the central ``1 - ALPHA`` interval of its chi-square(D)
distribution. Every noise the toolkit draws (seeds, subspace roots, pCN moves, which all preserve N(0, I)) lies
there with probability ``1 - ALPHA`` (ALPHA = 1e-4); a recipe cannot name any other image of this model. A
strategy can beat the optimum only with atypical noise (a gap fraction above 1 says it did).

**Computed** by multi-start projected gradient ascent on z through the exact, differentiable sampler (at
guidance 1 an affine map per coordinate, computed once; otherwise the sampler under autograd) and the
scorers' torch values (``value``), with each criterion's weight and calibration: the ``STARTS`` best of ``POOL``
seeded noises, ``ITERS`` Adam steps each (fewer once the best value moves by less than 1e-6 in 10 steps),
projected back onto the shell after every step. The value returned is the potential the engine would give the
best image found (its 8-bit image, through ``potential.evaluate``):
a lower bound of the true maximum over the shell, never below the best of the starting pool. Cached per
(generator, potential, condition) fingerprint for the process.

A potential with a criterion the testbed cannot differentiate (another scorer, another mixture, a
``standardize`` calibration) has no known optimum: ``optimum`` returns None.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Protocol

import numpy as np
import torch
from scipy import stats

from eacps import Condition
from eacps.store import quantize
from eacps_gaussian_mixture.mixture import Mixture, component_of
from eacps_gaussian_mixture.scorers import _MixtureScorer


class GaussianMixtureGenerator(Protocol):
    """What the optimum needs of ``eacps_gaussian_mixture.generator.GaussianMixtureGenerator`` (which imports this
    module on use: typing against the class would make an import cycle)."""

    mixture: Mixture
    params: Any  # its GaussianMixtureParams (guidance, sampler, ...)

ALPHA = 1e-4
POOL, STARTS, ITERS, LR = 256, 8, 150, 0.05
_CACHE: dict[str, float] = {}


def _calibrated(c: Any, v: torch.Tensor) -> torch.Tensor:
    cal = c.calibration
    if cal.kind == "affine":
        return (cal.scale * v + cal.offset).clamp(0, 10)
    if cal.kind == "range":
        return 10.0 * ((v - cal.lo) / (cal.hi - cal.lo)).clamp(0, 1)
    return v


def supported(generator: GaussianMixtureGenerator, potential: Any) -> bool:
    """Whether every criterion is a scorer of this testbed on the generator's mixture, with a calibration this
    module differentiates (none, affine, range)."""
    return all(isinstance(c.scorer, _MixtureScorer) and c.scorer.mixture.fingerprint == generator.mixture.fingerprint
               and c.calibration.kind in ("none", "affine", "range") for c in potential.criteria)


def shell(dim: int, alpha: float = ALPHA) -> tuple[float, float]:
    """The radii (lo, hi) between which ||z|| lies with probability 1 - alpha, z ~ N(0, I_dim)."""
    return math.sqrt(stats.chi2.ppf(alpha / 2, dim)), math.sqrt(stats.chi2.ppf(1 - alpha / 2, dim))


def _sampler(generator: GaussianMixtureGenerator, condition: Condition):
    """The generator's whole sampler (its steps) as a function of flat noises z (B, D): the final states x."""
    label = component_of(condition, generator.mixture.k)
    total = generator.default_steps
    return lambda z: generator.sample_flat(z, label, 0, total, total)[0]


def differentiable_potential(generator: GaussianMixtureGenerator, condition: Condition, potential: Any):
    """U(z) for flat noises z (B, D): the sampler from z, then the weighted, calibrated scorer values."""
    sample = _sampler(generator, condition)
    if generator.params.guidance == 1.0:
        # the conditional denoiser is affine in each coordinate, so is the whole sampler: x = shift + scale·z
        with torch.no_grad():
            shift = sample(torch.zeros(1, generator.mixture.dim, dtype=torch.float64))
            scale = sample(torch.ones(1, generator.mixture.dim, dtype=torch.float64)) - shift
        sample = lambda z: shift + scale * z  # noqa: E731

    def u(z: torch.Tensor) -> torch.Tensor:
        x = sample(z)
        return sum(c.weight * _calibrated(c, c.scorer.value(x, condition)) for c in potential.criteria)

    return u


def engine_potentials(generator: GaussianMixtureGenerator, condition: Condition, potential: Any,
                      z: torch.Tensor) -> list[float | None]:
    """The potentials the engine gives the images of flat noises z: sampler, 8-bit image, ``evaluate``."""
    with torch.no_grad():
        x = _sampler(generator, condition)(z.detach().double())
    images = [quantize(g.image) for g in generator.decode(x.reshape(-1, *generator.mixture.shape), condition)]
    return [s.potential for s in potential.evaluate(images, condition)]


def pool(generator: GaussianMixtureGenerator, condition: Condition, potential: Any, n: int,
         seed: int = 0x9001) -> np.ndarray:
    """Potentials of ``n`` independent samples (noise from a torch generator seeded with ``seed``, a stream no
    recipe uses): the best-of-N distribution of the condition, as the engine scores it."""
    gen = torch.Generator("cpu").manual_seed(seed)
    out: list[float | None] = []
    for i in range(0, n, 256):
        z = torch.randn(min(256, n - i), generator.mixture.dim, generator=gen, dtype=torch.float64)
        out += engine_potentials(generator, condition, potential, z)
    return np.array([np.nan if v is None else v for v in out])


def _project(z: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    r = z.norm(dim=1, keepdim=True)
    return z * (r.clamp(lo, hi) / r)


def _ascend(u, z: torch.Tensor, lo: float, hi: float, iters: int) -> torch.Tensor:
    """Projected Adam ascent of u from the rows of z; the best point each row visited."""
    z = _project(z, lo, hi).clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=LR)
    best, best_u = z.detach().clone(), torch.full((z.shape[0],), -math.inf, dtype=torch.float64)
    last = -math.inf
    for i in range(iters + 1):
        val = u(z)
        if i % 10 == 0:  # converged: the best value moved by less than 1e-6 in 10 steps
            if float(best_u.max()) - last < 1e-6:
                break
            last = float(best_u.max())
        better = val.detach() > best_u
        best[better], best_u[better] = z.detach()[better], val.detach()[better]
        opt.zero_grad()
        (-val.sum()).backward()
        opt.step()
        with torch.no_grad():
            z.copy_(_project(z, lo, hi))
    return best


def optimum(generator: GaussianMixtureGenerator, condition: Condition, potential: Any, *,
            iters: int = ITERS) -> float | None:
    """The highest potential reachable for ``condition`` (module docstring), or None when not supported."""
    if not supported(generator, potential):
        return None
    key = hashlib.sha256(json.dumps([generator.fingerprint(), potential.fingerprint(), condition.describe(),
                                     ALPHA, POOL, STARTS, iters, LR], sort_keys=True, default=str).encode()).hexdigest()
    if key not in _CACHE:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # thousands of small ops: threads only add overhead (restored below)
        try:
            _CACHE[key] = _compute(generator, condition, potential, iters)
        finally:
            torch.set_num_threads(threads)
    return _CACHE[key]


def _compute(generator: GaussianMixtureGenerator, condition: Condition, potential: Any, iters: int) -> float:
    u = differentiable_potential(generator, condition, potential)
    lo, hi = shell(generator.mixture.dim)
    gen = torch.Generator("cpu").manual_seed(0x0971)
    z = torch.randn(POOL, generator.mixture.dim, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        z = _project(z, lo, hi)  # starts on the noise shell, so every point scored below is reachable
        starts = z[torch.argsort(u(z), descending=True)[:STARTS]]
    with torch.enable_grad():
        best = _ascend(u, starts, lo, hi, iters)
    values = [v for v in engine_potentials(generator, condition, potential, torch.cat([best, starts]))
              if v is not None]
    return float(max(values))
