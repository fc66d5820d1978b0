"""The optuna strategy: conformance suite for each sampler, plus sampler-specific behaviour."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from eacps_optuna import SAMPLERS, OptunaParams, OptunaStrategy
from optuna.trial import TrialState
from pydantic import ValidationError

from eacps import Recipe, Result, Status
from eacps.plugins import build_registry
from eacps.testing import StrategyConformance, fake_objective

# gp is slower (a GP fit per trial): it gets the specific tests below, not the whole suite
SUITE_SAMPLERS = ["tpe", "cmaes", "random", "qmc"]


class TestOptunaConformance(StrategyConformance):
    budget = 20
    early_stop_reasons = ("exhausted",)  # a sampler with nothing new to propose (documented)

    @pytest.fixture(params=SUITE_SAMPLERS)
    def make_strategy(self, request):
        params = OptunaParams(sampler=request.param, batch_size=4)
        return lambda budget, seed: OptunaStrategy(params, budget=budget, seed=seed)


class TestOptunaSphereChart(StrategyConformance):
    """The scale-free chart makes repeats likely (x and 2x are the same noise): still no duplicates."""

    budget = 16
    early_stop_reasons = ("exhausted",)

    @pytest.fixture
    def make_strategy(self):
        params = OptunaParams(sampler="tpe", chart="sphere", dim=2, batch_size=3)
        return lambda budget, seed: OptunaStrategy(params, budget=budget, seed=seed)


def test_registered_through_the_entry_point() -> None:
    reg = build_registry()
    assert reg.get("strategy", "optuna") is OptunaStrategy
    assert reg.entries["strategy"]["optuna"].distribution == "eacps-optuna"


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_by_name(name: str) -> None:
    s = OptunaStrategy(OptunaParams(sampler=name, batch_size=4, dim=3), budget=12, seed=0)
    assert type(s.study.sampler) is SAMPLERS[name]
    s.optimize(fake_objective(), batch_size=4)
    assert s.asked == 12 and s.stop() == {"budget": 12}
    assert len(s.study.get_trials(states=[TrialState.COMPLETE])) == 12
    assert s.best.potential == max(t.value for t in s.study.trials)


def test_unknown_sampler_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError) as e:
        OptunaParams(sampler="hyperband")
    for name in SAMPLERS:
        assert name in str(e.value)


def test_sampler_options_reach_the_sampler_and_seed_is_refused() -> None:
    s = OptunaStrategy(OptunaParams(sampler="tpe", options={"n_startup_trials": 3}), budget=4)
    assert s.study.sampler._n_startup_trials == 3
    with pytest.raises(ValidationError, match="seed"):
        OptunaParams(options={"seed": 1})


def test_recipes_are_the_anchored_subspace_of_the_trial_params() -> None:
    s = OptunaStrategy(OptunaParams(dim=4, bound=0.5), budget=8, seed=1)
    recipes = s.ask(8)
    assert s.ask(1) == []  # the batch (8) is in flight: the next one needs its results
    for r, t in zip(recipes, s.study.trials, strict=True):
        x = [t.params[f"x{i}"] for i in range(4)]
        assert all(-0.5 <= v <= 0.5 for v in x)
        assert r == Recipe(basis=s.chart.basis, coeffs=(1.0, *x))
        z = r.noise((4096,)).numpy()
        assert abs(z.std() - 1.0) < 0.05  # exactly N(0, I): unit variance whatever x


def test_failed_candidates_reach_the_study_as_fail() -> None:
    objective = fake_objective(0.3)
    s = OptunaStrategy(OptunaParams(batch_size=5), budget=20, seed=2)
    s.optimize(objective, batch_size=5)
    failed = [r.recipe.key for r in s.history if r.status is Status.FAILED]
    assert failed
    fail_trials = s.study.get_trials(states=[TrialState.FAIL])
    assert sorted(t.user_attrs["recipe"] for t in fail_trials) == sorted(failed)
    assert all(t.user_attrs["status"] == "FAILED" and t.user_attrs["reason"] == "fake failure" for t in fail_trials)
    assert s.study.best_trial.user_attrs["recipe"] == s.best.recipe.key


def test_nan_potential_is_told_as_fail() -> None:
    s = OptunaStrategy(budget=2, seed=0)
    a, b = s.ask(2)

    s.tell([Result(a, Status.OK, float("nan")), Result(b, Status.OK, 3.0)])
    states = [t.state for t in s.study.trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE]


def test_deterministic_and_seed_sensitive() -> None:
    def run(seed: int) -> list[str]:
        s = OptunaStrategy(OptunaParams(sampler="cmaes", batch_size=4), budget=12, seed=seed)
        s.optimize(fake_objective(), batch_size=3)
        return [r.recipe.key for r in s.history]

    assert run(0) == run(0) != run(1)


def test_tpe_improves_on_random_sampling() -> None:
    """The sampler really learns from the results: TPE beats random search on the fake objective."""

    def best(sampler: str, seed: int) -> float:
        s = OptunaStrategy(OptunaParams(sampler=sampler, batch_size=2, dim=4), budget=40, seed=seed)
        s.optimize(fake_objective(), batch_size=2)
        return s.best.potential

    tpe = np.mean([best("tpe", k) for k in range(3)])
    rnd = np.mean([best("random", k) for k in range(3)])
    assert tpe > rnd


def test_storage_url_writes_an_sqlite_study_and_resume_does_not_duplicate(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    params = OptunaParams(batch_size=4, storage=url, study_name="watch-me")
    objective = fake_objective(0.25)
    s = OptunaStrategy(params, budget=12, seed=0)
    s.optimize(objective, batch_size=4)
    study = optuna.load_study(study_name="watch-me", storage=url)
    trials = study.get_trials()
    assert len(trials) == 12
    assert {t.user_attrs["recipe"] for t in trials} == {r.recipe.key for r in s.history}
    n_fail = sum(not r.ok for r in s.history)
    assert sum(t.state is TrialState.FAIL for t in trials) == n_fail
    assert math.isclose(study.best_value, s.best.potential)
    assert study.user_attrs["eacps_basis"] == list(s.chart.basis)
    # a resumed run (same params) replays into the same study without adding copies
    again = OptunaStrategy(params, budget=12, seed=0)
    again.optimize(objective, batch_size=12)
    assert len(optuna.load_study(study_name="watch-me", storage=url).get_trials()) == 12


def test_repeated_proposals_are_told_not_asked() -> None:
    """dim=1 on the sphere chart has only two noises (+z1, -z1): the sampler exhausts them and stops."""
    s = OptunaStrategy(OptunaParams(sampler="random", chart="sphere", dim=1, batch_size=2), budget=10, seed=0)
    s.optimize(fake_objective(), batch_size=2)
    asked = [r.recipe for r in s.history]
    assert sorted(s.chart.same_noise_key(r) for r in asked) == [(-1.0,), (1.0,)]
    assert "exhausted" in s.stop() and "budget" not in s.stop()
    assert len(s.study.trials) > len(asked)  # the repeats were told their known results
    assert all(t.state is not TrialState.RUNNING for t in s.study.trials)
