"""eacps.noise_space: the continuous noise parametrization of the optimizer plugins. A chart maps a point of the box
to a subspace recipe whose noise is exactly N(0, I) (anchored: the centre is the anchor noise; sphere: only the
direction counts); ``ChartOptimizer`` keeps the strategy contract for any ask/tell optimizer: proposals told together
in proposal order, evaluated noise never asked again, ``exhausted`` when nothing new comes."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from pydantic import Field

from eacps import Recipe, Result, Status
from eacps.noise_space import ChartOptimizer, NoiseChart, NoiseParams
from eacps.recipe import gaussian
from eacps.strategy import SeedStream
from eacps.testing import StrategyConformance

SHAPE = (1, 4, 8, 8)


def chart(kind: str = "anchored", dim: int = 3, bound: float = 1.0, seed: int = 0) -> NoiseChart:
    return NoiseChart(SeedStream(seed), dim=dim, bound=bound, chart=kind)


def test_the_basis_comes_from_the_seed_stream():
    a, s = chart("anchored"), chart("sphere")
    assert a.basis == tuple(SeedStream(0).take(4)) and s.basis == tuple(SeedStream(0).take(3))  # anchor + K, or K
    assert chart(seed=1).basis != a.basis and chart().basis == a.basis  # a seed fixes the basis


def test_the_anchored_centre_is_the_anchor_noise_and_every_point_is_a_different_noise():
    c = chart("anchored")
    centre = c.recipe([0.0, 0.0, 0.0])
    assert centre == Recipe(basis=c.basis, coeffs=(1.0, 0.0, 0.0, 0.0))
    assert torch.allclose(centre.noise(SHAPE), gaussian(c.basis[0], SHAPE))
    x = [0.5, -0.25, 1.0]
    z = c.recipe(x).noise(SHAPE)
    by_hand = (gaussian(c.basis[0], SHAPE) + sum(v * gaussian(s, SHAPE) for v, s in zip(x, c.basis[1:], strict=True)))
    assert torch.allclose(z, by_hand / math.sqrt(1 + sum(v * v for v in x)), atol=1e-6)  # N(0, I) for a fixed x
    assert c.same_noise_key(c.recipe(x)) != c.same_noise_key(c.recipe([2 * v for v in x]))  # one-to-one
    assert c.recipe([0.5, 0.5, 0.5]) != c.recipe([0.25, 0.25, 0.25])


def test_the_sphere_chart_ignores_the_scale_and_maps_the_centre_to_the_first_basis_noise():
    c = chart("sphere", bound=4.0)
    x = [0.5, -0.25, 1.0]
    assert c.recipe(x).coeffs == tuple(x) and c.recipe(x).basis == c.basis
    assert c.same_noise_key(c.recipe(x)) == c.same_noise_key(c.recipe([2 * v for v in x]))  # x and 2x: one noise
    assert torch.allclose(c.recipe(x).noise(SHAPE), c.recipe([2 * v for v in x]).noise(SHAPE))
    assert c.recipe([0.0, 0.0, 0.0]).coeffs == (1.0, 0.0, 0.0)
    assert torch.allclose(c.recipe([0.0, 0.0, 0.0]).noise(SHAPE), gaussian(c.basis[0], SHAPE))


def test_points_are_checked_and_clamped_to_the_box():
    c = chart("anchored", bound=1.0)
    assert c.recipe([1.0 + 1e-9, -7.0, 0.5]).coeffs == (1.0, 1.0, -1.0, 0.5)  # optimizers step a hair outside
    with pytest.raises(ValueError, match="expected 3 coefficients, got 2"):
        c.recipe([0.0, 0.0])
    with pytest.raises(ValueError, match="coefficients must be finite"):
        c.recipe([0.0, math.nan, 0.0])


def test_noise_params_bound_the_search_space():
    assert NoiseParams() == NoiseParams(dim=8, bound=1.0, chart="anchored")
    for bad in ({"dim": 0}, {"dim": 257}, {"bound": 0}, {"chart": "torus"}):
        with pytest.raises(ValueError):
            NoiseParams(**bad)


# -- ChartOptimizer, with a seeded random-search "optimizer" ---------------------------------------------------------
class GridParams(NoiseParams):
    dim: int = 2
    size: int = Field(3, ge=1, description="points proposed (and told) together")
    grid: int = Field(0, ge=0, description="propose only points of a grid of this many values per axis (0: any)")


class GridSearch(ChartOptimizer):
    """Proposes seeded random points (on a small grid, to force repeats); records every token it is told."""

    name = "test-grid"
    Params = GridParams

    def __init__(self, params: GridParams | None = None, *, budget: int, seed: int = 0) -> None:
        super().__init__(params, budget=budget, seed=seed)
        p = self.params
        self.chart = NoiseChart(self.global_seeds, dim=p.dim, bound=p.bound, chart=p.chart)
        self.rng = np.random.default_rng([seed, 7])
        self.told: list[tuple[int, float | None]] = []
        self.tokens = 0

    def proposal_size(self) -> int:
        return self.params.size

    def _propose_one(self) -> tuple[list[float], Any]:
        p = self.params
        x = (self.rng.integers(0, p.grid, p.dim) / max(1, p.grid - 1) * 2 - 1 if p.grid
             else self.rng.uniform(-p.bound, p.bound, p.dim))
        self.tokens += 1
        return x.tolist(), self.tokens

    def _tell_token(self, token: Any, result: Result) -> None:
        self.told.append((token, result.potential))


def value(recipe: Recipe) -> float:
    return float(sum(recipe.coeffs))


def test_a_batch_is_told_together_in_proposal_order_once_every_result_is_in():
    s = GridSearch(budget=6, seed=0)
    first = s.ask(2)
    s.tell([Result(first[1], Status.OK, value(first[1]))])
    assert s.told == []  # nothing told before the whole proposal is in
    rest = s.ask(5)
    assert len(rest) == 1  # the rest of this proposal only
    assert s.ask(5) == []  # the next proposal needs this one's results
    s.tell([Result(r, Status.OK, value(r)) for r in (rest[0], first[0])])
    assert s.told == [(1, value(first[0])), (2, value(first[1])), (3, value(rest[0]))]


def test_evaluated_noise_is_never_asked_again_and_the_optimizer_stops_when_nothing_is_new():
    s = GridSearch(GridParams(grid=2, size=2, chart="sphere"), budget=40, seed=1)  # 4 points: {-1, 1}^2
    s.optimize(value, batch_size=2)
    keys = [s.chart.same_noise_key(r.recipe) for r in s.history]
    assert len(keys) == len(set(keys)) <= 4  # each noise once, though proposed again and again
    assert s.tokens > len(s.history) and len(s.told) == s.tokens  # every token is answered
    known = {s.chart.same_noise_key(r.recipe): r.potential for r in s.history}
    assert {p for _, p in s.told} <= set(known.values())  # repeats are told the known result
    assert "exhausted" in s.stop() and "proposed only evaluated noise" in s.stop()["exhausted"]
    assert s.asked < s.budget


class TestChartOptimizerConformance(StrategyConformance):
    """Any optimizer behind ``ChartOptimizer`` asks independently of batching and resumes by replay."""

    early_stop_reasons: ClassVar[tuple[str, ...]] = ("exhausted",)

    @pytest.fixture(params=["anchored", "sphere"])
    def make_strategy(self, request):
        return lambda budget, seed: GridSearch(GridParams(chart=request.param), budget=budget, seed=seed)
