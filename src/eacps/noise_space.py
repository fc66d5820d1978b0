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
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from eacps.params import Params
from eacps.recipe import Recipe
from eacps.strategy import SeedStream, Strategy
from eacps.types import Result

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


class ChartOptimizer(Strategy):
    """Base of strategies that wrap an external ask/tell optimizer over a ``NoiseChart`` (optuna, nevergrad).

    Proposals are made ``proposal_size()`` at a time and told together, in proposal order, once every
    result of the batch is in: asks then depend only on results, not on how the engine batches its asks or
    when results arrive (so ``ask_ahead`` holds and a run resumes by replay). A proposal whose noise was
    already evaluated is not asked again: its token is told the known result (or, while that result is
    pending, told together with it). If the optimizer proposes nothing new in ``20·size + 20`` tries the
    strategy stops with reason ``exhausted``.

    Subclasses set ``self.chart`` and implement ``proposal_size``, ``_propose_one`` (a point of the chart's
    box and the optimizer's token for it) and ``_tell_token``.
    """

    ask_ahead = True

    def __init__(self, params: Params | None = None, *, budget: int, seed: int = 0) -> None:
        super().__init__(params, budget=budget, seed=seed)
        self.chart: NoiseChart
        self.queue: list[Recipe] = []  # proposed, not yet asked by the engine
        self.batch: dict[Recipe, list[Any]] = {}  # this batch's recipes (proposal order) -> their tokens
        self.batch_keys: dict[tuple[float, ...], Recipe] = {}
        self.results: dict[Recipe, Result] = {}  # results of this batch so far
        self.known: dict[tuple[float, ...], Result] = {}  # every told result, by noise
        self.exhausted: str | None = None

    @abstractmethod
    def proposal_size(self) -> int:
        """How many points the optimizer proposes (and is told) together."""

    @abstractmethod
    def _propose_one(self) -> tuple[Sequence[float], Any]:
        """The optimizer's next point in the chart's box, and its token (trial, candidate...)."""

    @abstractmethod
    def _tell_token(self, token: Any, result: Result) -> None:
        """Tell the optimizer one token's result (FAILED/FILTERED included)."""

    def _on_exhausted(self) -> None:
        pass

    def _on_batch_told(self) -> None:
        pass

    def _ask(self, n: int) -> list[Recipe]:
        if not self.queue:
            if self.pending or self.exhausted:
                return []
            self._propose(min(self.proposal_size(), self.remaining))
        out, self.queue = self.queue[:n], self.queue[n:]
        return out

    def _propose(self, size: int) -> None:
        tries = 0
        while len(self.queue) < size and tries < 20 * size + 20:
            tries += 1
            x, token = self._propose_one()
            recipe = self.chart.recipe(x)
            key = self.chart.same_noise_key(recipe)
            if key in self.known:  # already evaluated: the optimizer learns the known result
                self._tell_token(token, self.known[key])
            elif key in self.batch_keys:  # in flight: told with the original
                self.batch[self.batch_keys[key]].append(token)
            else:
                self.batch_keys[key] = recipe
                self.batch[recipe] = [token]
                self.queue.append(recipe)
        if not self.queue:
            self.exhausted = f"{self.name} proposed only evaluated noise in {tries} tries"
            self._on_exhausted()

    def _tell(self, results: Sequence[Result]) -> None:
        for r in results:
            self.results[r.recipe] = r
        if self.queue or len(self.results) < len(self.batch):
            return
        for recipe, tokens in self.batch.items():
            res = self.results[recipe]
            self.known[self.chart.same_noise_key(recipe)] = res
            for token in tokens:
                self._tell_token(token, res)
        self.batch, self.batch_keys, self.results = {}, {}, {}
        self._on_batch_told()

    def _stop(self) -> dict[str, Any]:
        return {"exhausted": self.exhausted} if self.exhausted and not self.queue else {}
