"""The nevergrad strategy: conformance suite for a few optimizers, plus failure handling."""

from __future__ import annotations

import threading

import nevergrad as ng
import numpy as np
import pytest
from eacps_nevergrad import NevergradParams, NevergradStrategy
from pydantic import ValidationError

from eacps import Recipe, Result, Status
from eacps.plugins import build_registry
from eacps.testing import StrategyConformance, fake_objective


class TestNevergradConformance(StrategyConformance):
    budget = 20

    # NGOpt with 8 workers, a population method, and Cobyla: sequential, run by nevergrad in a thread
    @pytest.fixture(params=[("NGOpt", 8), ("TwoPointsDE", 4), ("Cobyla", 1)], ids=lambda p: f"{p[0]}-{p[1]}")
    def make_strategy(self, request):
        name, workers = request.param
        params = NevergradParams(optimizer=name, num_workers=workers)
        return lambda budget, seed: NevergradStrategy(params, budget=budget, seed=seed)


def test_registered_through_the_entry_point() -> None:
    reg = build_registry()
    assert reg.get("strategy", "nevergrad") is NevergradStrategy
    assert reg.entries["strategy"]["nevergrad"].distribution == "eacps-nevergrad"


@pytest.mark.parametrize("name", ["CMA", "PSO", "OnePlusOne", "RandomSearch"])
def test_optimizer_by_name(name: str) -> None:
    s = NevergradStrategy(NevergradParams(optimizer=name, num_workers=4, dim=4), budget=12, seed=0)
    assert s.optimizer.name == name
    assert s.optimizer.num_workers == 4
    s.optimize(fake_objective(), batch_size=3)
    assert s.asked == 12 and s.stop() == {"budget": 12}
    assert s.optimizer.num_tell == 12
    rec = s.optimizer.provide_recommendation().value
    assert np.all(np.abs(rec) <= 1.0)


def test_unknown_optimizer_lists_close_matches() -> None:
    with pytest.raises(ValidationError) as e:
        NevergradParams(optimizer="NGOptt")
    msg = str(e.value)
    assert "NGOpt" in msg and "nevergrad.optimizers.registry" in msg


def test_minimizes_minus_potential() -> None:
    s = NevergradStrategy(NevergradParams(optimizer="RandomSearch", num_workers=2, dim=3), budget=2, seed=0)
    a, b = s.ask(2)
    s.tell([Result(a, Status.OK, 7.0), Result(b, Status.OK, 2.0)])
    losses = sorted(mv.mean for mv in s.optimizer.archive.values())
    assert losses == [-7.0, -2.0]
    best = s.optimizer.provide_recommendation().value
    assert s.chart.recipe(best.tolist()) == a


def test_failed_candidates_are_told_as_infeasible_with_the_worst_ok_loss() -> None:
    s = NevergradStrategy(NevergradParams(optimizer="RandomSearch", num_workers=4, dim=3), budget=4, seed=0)
    a, b, c, d = s.ask(4)
    assert s.failure_loss() == 0.0  # before any success
    s.tell([Result(b, Status.FAILED, None, reason="api"), Result(a, Status.OK, 5.0), Result(d, Status.OK, 1.0)])
    assert s.optimizer.num_tell == 0  # a batch is told together, once complete
    s.tell([Result(c, Status.FILTERED, None, reason="nsfw")])
    assert s.optimizer.num_tell == 4 and s.failures_told == 2
    # told in ask order: b failed after a (worst OK so far 5.0), c failed after a and b (still 5.0)
    assert s.failure_loss() == -1.0
    # infeasible candidates never enter the archive, so they are never recommended
    assert len(s.optimizer.archive) == 2
    rec = s.chart.recipe(s.optimizer.provide_recommendation().value.tolist())
    assert rec == a


def test_failures_do_not_stall_any_optimizer() -> None:
    """Every ask is answered, so even sequential and population optimizers use the whole budget."""
    for name, workers in [("Cobyla", 1), ("CMA", 4), ("DE", 3)]:
        s = NevergradStrategy(NevergradParams(optimizer=name, num_workers=workers, dim=4), budget=15, seed=1)
        s.optimize(fake_objective(0.5), batch_size=2)
        assert s.asked == 15 and "budget" in s.stop(), name
        assert s.optimizer.num_tell >= 15 and s.failures_told > 0
        assert s.best is not None and s.best.ok


def test_recast_threads_are_stopped_when_the_search_ends() -> None:
    before = set(threading.enumerate())
    s = NevergradStrategy(NevergradParams(optimizer="Cobyla", num_workers=1), budget=6, seed=0)
    s.optimize(fake_objective(), batch_size=1)
    for t in set(threading.enumerate()) - before:
        t.join(timeout=5)
        assert not t.is_alive(), "a nevergrad background thread outlived the search"


def test_recipes_are_the_anchored_subspace_of_the_candidates() -> None:
    s = NevergradStrategy(NevergradParams(dim=5, bound=2.0, num_workers=3), budget=3, seed=4)
    recipes = s.ask(3)
    assert s.ask(1) == [] and len(s.pending) == 3
    for r in recipes:
        assert r.basis == s.chart.basis and len(r.basis) == 6
        assert r.coeffs[0] == 1.0 and all(abs(v) <= 2.0 for v in r.coeffs[1:])
    assert isinstance(recipes[0], Recipe)


def test_seed_sets_the_parametrization_random_state() -> None:
    def first(seed: int) -> list[str]:
        s = NevergradStrategy(NevergradParams(optimizer="RandomSearch", num_workers=4), budget=4, seed=seed)
        return [r.key for r in s.ask(4)]

    assert first(3) == first(3) != first(4)
    assert isinstance(NevergradStrategy(budget=2).optimizer.parametrization.random_state, np.random.RandomState)
    assert "NGOpt" in ng.optimizers.registry
