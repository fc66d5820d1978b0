"""What a branch move does to the distribution of samples, on an analytic model where the truth is known: data
x0 ~ N(0, s^2 I), the exact posterior-mean denoiser, deterministic DDIM (eta = 0) on a VP schedule. Each of the
D coordinates of one trajectory is an independent sample (the model is isotropic and acts per coordinate), so
one batch of D = 40 000 coordinates measures a variance to about 1%.

* ``renoise`` (the trajectory strategies' branch) contracts the samples: it re-noises around the posterior *mean*
  x0_hat = E[x0 | x], whose spread is smaller than the data's, so the branched samples have less variance than
  the sampler's own, more so for larger theta;
* the root ``pcn`` move (``Recipe.pcn``; tree-search ``move = "pcn"``) keeps the sampler's distribution exactly:
  the child's initial noise is exactly N(0, I), so its samples are distributed as vanilla ones.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eacps.recipe import Recipe
from eacps.trajectory import Trajectory, renoise

D, T, S = 40_000, 10, 0.5  # coordinates (independent samples), steps, data standard deviation
ABAR = np.linspace(0.999, 0.02, 1000)  # cumulative alphas of a VP schedule over 1000 training timesteps
TIMESTEPS = np.linspace(999, 0, T).round().astype(int)  # trailing spacing: the first model call at pure-ish noise


def coeffs(k: int) -> tuple[float, float]:
    """x_k = a x0 + b eps after k model calls (k = T: the clean data)."""
    if k >= T:
        return 1.0, 0.0
    ab = float(ABAR[TIMESTEPS[k]])
    return math.sqrt(ab), math.sqrt(1 - ab)


def advance(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One exact DDIM step from x_k: the posterior mean E[x0 | x_k] and x_{k+1}."""
    a, b = coeffs(k)
    x0 = a * S**2 / (a * a * S**2 + b * b) * x
    eps = (x - a * x0) / b
    a2, b2 = coeffs(k + 1)
    return x0, a2 * x0 + b2 * eps


def final(recipe: Recipe) -> torch.Tensor:
    """The sample of a path recipe under the analytic model (branches by the core's own ``renoise``)."""
    x, x0 = recipe.noise((1, D)).double(), None  # x_0 = the initial noise, as DDIM starts
    for k in range(T):
        move = next((m for m in recipe.branches if m.step == k), None)
        if move is not None:
            traj = renoise(Trajectory(x.float(), x0.float(), k, T, (recipe,)), coeffs(k), [move])
            x = traj.latents.double()
        x0, x = advance(x, k)
    return x.flatten()


def test_renoise_contracts_the_samples_and_root_pcn_keeps_them():
    vanilla = final(Recipe.from_seed(1)).var().item()  # the sampler's own spread (10 DDIM steps: below S^2)
    small = final(Recipe.from_seed(1).branch(5, 0.3, 2)).var().item()
    full = final(Recipe.from_seed(1).branch(5, math.pi / 2, 2)).var().item()
    late = final(Recipe.from_seed(1).branch(8, math.pi / 2, 2)).var().item()
    assert full < small < vanilla and full < 0.88 * vanilla  # a contraction, stronger for larger theta
    assert late < 0.9 * full  # here a later branch contracts more (its x0_hat is weighed by a larger a)
    for theta in (0.3, 1.0, math.pi / 2):  # root pCN: the noise stays exactly N(0, I), the samples vanilla
        child = final(Recipe.from_seed(1).pcn(theta, 2)).var().item()
        assert child == pytest.approx(vanilla, rel=0.03)
        z = Recipe.from_seed(1).pcn(theta, 2).noise((1, D)).double()
        assert z.var().item() == pytest.approx(1.0, rel=0.03)
        assert np.corrcoef(z.numpy()[0], Recipe.from_seed(1).noise((1, D)).double().numpy()[0])[0, 1] == \
            pytest.approx(math.cos(theta), abs=0.02)
