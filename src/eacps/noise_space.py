"""The continuous noise parametrization shared by the optimizer plugins (optuna, nevergrad).

A point ``x`` in the box ``[-bound, bound]^K`` names a subspace recipe over seeded Gaussian basis
noises ``z_1..z_K`` (seeds from the strategy's ``SeedStream``, so a seed fixes the basis):

* ``anchored`` (default): ``z(x) = (z_0 + sum_i x_i z_i) / sqrt(1 + ||x||^2)``, stored as the recipe
  ``basis=(s_0, s_1..s_K), coeffs=(1, x_1..x_K)``. The centre ``x = 0`` is the anchor noise ``z_0``;
  the map is one-to-one (every ``x`` is a different noise) and smooth everywhere, which suits local
  optimizers that start at the centre (CMA-ES, NGOpt). The largest angle from the anchor is
  ``atan(bound·sqrt(K))`` (70.5° for the defaults K=8, bound=1).
* ``sphere``: ``z(x) = sum_i x_i z_i / ||x||``, the plain subspace ``basis=(s_1..s_K), coeffs=x``.
  It reaches every direction of the span but only the direction of ``x`` matters (``x`` and ``2x`` are
  the same noise; the strategy recognises such repeats), and it is undefined at ``x = 0``, which is
  mapped to ``z_1``.

Both are exactly N(0, I) for any fixed ``x``: basis noises are independent standard Gaussians.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from eacps import Params, Recipe, SeedStream

Chart = Literal["anchored", "sphere"]


class NoiseParams(Params):
    dim: int = Field(8, ge=1, le=256, description="K, the number of searched coefficients")
    bound: float = Field(1.0, gt=0, le=100, description="coefficients are searched in [-bound, bound]^K")
    chart: Chart = Field("anchored", description="anchored (z_0 + sum x_i z_i) or sphere (sum x_i z_i)")


class NoiseChart:
    """Maps points of ``[-bound, bound]^dim`` to subspace recipes; the basis is drawn once, at creation."""

    def __init__(self, seeds: SeedStream, *, dim: int, bound: float, chart: Chart = "anchored") -> None:
        self.dim, self.bound, self.chart = int(dim), float(bound), chart
        self.basis = tuple(seeds.take(self.dim + (chart == "anchored")))

    def recipe(self, x: Sequence[float]) -> Recipe:
        x = [float(v) for v in x]
        if len(x) != self.dim:
            raise ValueError(f"expected {self.dim} coefficients, got {len(x)}")
        if not all(math.isfinite(v) for v in x):
            raise ValueError(f"coefficients must be finite, got {x}")
        x = [min(max(v, -self.bound), self.bound) for v in x]  # optimizers may step a hair outside
        if self.chart == "anchored":
            return Recipe(basis=self.basis, coeffs=(1.0, *x))
        if not any(x):
            x = [1.0] + [0.0] * (self.dim - 1)
        return Recipe(basis=self.basis, coeffs=tuple(x))

    def same_noise_key(self, recipe: Recipe) -> tuple[float, ...]:
        """A key equal for recipes that make the same noise (the sphere chart ignores the scale)."""
        c = recipe.coeffs
        norm = math.sqrt(sum(v * v for v in c))
        return tuple(round(v / norm, 12) for v in c)
