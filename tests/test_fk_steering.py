"""fk-steering (eacps.strategies.fk_steering): N particles resampled along the chain on their previews' rewards
(potential max / difference / sum over the ancestry, λ on standardized rewards), copies diverging by a seeded
``renoise``; and its adaptive schedule: resampling only when the effective sample size of the weights falls,
selection pressure tempered to keep it, and no selection when previews stop agreeing with later ones."""

from __future__ import annotations

import numpy as np
import pytest

from eacps import Result, Status
from eacps.strategies.fk_steering import FKParams, FKSteering, ess, resample, temper
from eacps.strategy import SamplerSchedule
from eacps.testing import fake_objective

T = 10


def run(strategy, objective=None, batch=4):
    strategy.bind(T)
    strategy.optimize(objective or fake_objective(), batch_size=batch)
    return strategy


def adaptive(budget: int = 8, **params) -> FKSteering:
    return FKSteering(FKParams(schedule="adaptive", resample_at=[0.3, 0.6], **params), budget=budget, seed=3).bind(T)


def tell(s: FKSteering, values) -> list:
    asked = s.ask(len(values))
    s.tell([Result(r, Status.OK, float(v)) for r, v in zip(asked, values, strict=True)])
    return asked


def test_ess_and_tempering():
    assert ess(np.zeros(5)) == pytest.approx(5.0)
    assert ess(np.array([0.0, -np.inf, -np.inf])) == pytest.approx(1.0)
    g = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    lam = temper(g, 5.0, 2.5)
    assert 0 < lam < 5.0 and ess(lam * g) == pytest.approx(2.5, abs=1e-6)
    assert temper(g, 0.01, 2.5) == 0.01  # already above the target: λ unchanged


def test_equal_rewards_keep_every_particle_without_resampling():
    s = adaptive()
    first = tell(s, [5.0] * 8)
    second = s.ask(8)  # the next stage: the same particles, continued, no copies and no branches
    assert s.checks[0]["resampled"] is False and s.checks[0]["ess_at_lam"] == pytest.approx(8.0)
    assert [r.with_until(None) for r in second] == [r.with_until(None) for r in first]
    assert all(not r.branches for r in second)
    assert s.diagnostics()["resampled_at"] == []


def test_a_falling_ess_resamples_with_lambda_tempered_to_the_threshold():
    s = adaptive(lam=4.0, ess_threshold=0.5)
    tell(s, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 9.0])  # one particle far ahead: the ESS at λ = 4 collapses
    second = s.ask(8)  # the check runs when the next stage is asked
    c = s.checks[0]
    assert c["resampled"] is True and c["ess_at_lam"] < 0.5 * 8 and 0 < c["lam"] < 4.0
    assert s.ess[0] == pytest.approx(0.5 * 8, rel=1e-6)  # tempered: exactly the threshold's diversity is kept
    assert any(r.branches for r in second)  # copies of the resampled particles branch
    assert s.diagnostics()["resampled_at"] == [3]


def test_previews_that_disagree_with_later_ones_get_no_selection():
    s = adaptive(lam=4.0)
    tell(s, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 9.0])
    second = s.ask(8)
    prev = {r.with_until(None): h[-1] for r, h in zip(s.paths, s.rewards, strict=True)}
    # each particle's new preview reverses the order of its previous one: agreement -1
    s.tell([Result(r, Status.OK, -prev[r.with_until(None)] + 0.01 * i) for i, r in enumerate(second)])
    third = s.ask(8)
    c = s.checks[1]
    assert c["agreement"] < 0 and c["resampled"] is False
    assert [r.with_until(None) for r in third] == [r.with_until(None) for r in second]


def test_the_fixed_schedule_resamples_at_every_point():
    s = FKSteering(FKParams(resample_at=[0.3, 0.6]), budget=8, seed=3).bind(T)
    s.optimize(fake_objective(), batch_size=4)
    assert len(s.ancestors) == 2 and "checks" not in s.diagnostics()


def test_adaptive_is_deterministic_under_a_seed():
    def one(seed):
        s = FKSteering(FKParams(schedule="adaptive"), budget=12, seed=seed).bind(T)
        best = s.optimize(fake_objective(), batch_size=5)
        return [r.recipe for r in s.history], best.recipe, s.diagnostics()

    assert one(7) == one(7)
    assert one(7)[0] != one(8)[0]


def test_resampling_follows_the_weights():
    rng = np.random.default_rng(0)
    assert resample(np.array([0.0, 1.0, 0.0]), 5, rng, "systematic") == [1] * 5
    assert resample(np.ones(4), 4, rng, "systematic") == [0, 1, 2, 3]  # equal weights: each particle once
    draws = resample(np.array([1.0, 3.0]), 4000, rng, "multinomial")
    assert abs(draws.count(1) / 4000 - 0.75) < 0.03


def test_fk_spends_n_trajectories_and_steers_towards_high_rewards():
    s = run(FKSteering(FKParams(resample_at=[0.3, 0.6], lam=50.0), budget=12, seed=1))
    assert s.spent_steps == 12 * T  # N·T: a copy shares its ancestor's prefix
    assert sum(r.recipe.until == 3 for r in s.history) == 12 and sum(r.recipe.until is None for r in s.history) == 12
    assert s.ancestors[0] == 1  # a very low temperature keeps only the best particle
    finals = [r.recipe for r in s.history if r.recipe.until is None]
    assert all(r.root == finals[0].root for r in finals)
    assert all(b.step in (3, 6) and b.theta == 1.0 for r in finals for b in r.branches)


def test_fk_failed_previews_get_no_offspring():
    bad = {}

    def objective(recipe):
        res = fake_objective()(recipe)
        if recipe.until == 3 and len(bad) < 6 and recipe.root not in bad.values():
            bad[recipe] = recipe.root
            return Result(recipe, Status.FAILED, None, reason="boom")
        return res

    s = run(FKSteering(FKParams(resample_at=[0.3], lam=1.0), budget=10, seed=2), objective)
    failed_roots = set(bad.values())
    assert not any(r.recipe.root in failed_roots for r in s.history if r.recipe.until is None)


def test_n_particles_cost_n_times_t_steps_and_n_evaluations_per_point_plus_n_finals():
    s = run(FKSteering(FKParams(particles=4, resample_at=[0.2, 0.5]), budget=12, seed=0))
    assert s.spent_steps == 4 * T and s.stop() == {"particles_finished": 4}  # fewer particles than B: B·T not spent
    assert [r.recipe.until for r in s.history] == [2] * 4 + [5] * 4 + [None] * 4
    assert s.diagnostics()["particles"] == 4 and s.diagnostics()["resample_steps"] == [2, 5]
    with pytest.raises(ValueError, match="particles"):
        FKSteering(FKParams(particles=13), budget=12)  # N·T must fit B·T


@pytest.mark.parametrize("potential", ["max", "sum", "difference"])
def test_the_potential_weighs_the_rewards_along_each_ancestry(potential):
    # the adaptive schedule logs the ESS of the weights at λ at every check, whether it resamples or not
    s = FKSteering(FKParams(schedule="adaptive", resample_at=[0.3, 0.6], potential=potential, lam=3.0,
                            standardize=False, particles=4), budget=4, seed=0).bind(T)
    first = [0.0, 0.1, 0.2, 0.3]
    tell(s, first)  # nearly equal weights: no resampling, every particle keeps its own ancestry
    second = [1.0, 0.0, 2.0, 0.5]  # rank agreement 0 with the first: no selection either
    tell(s, second)
    s.ask(4)  # the second check
    assert [c["resampled"] for c in s.checks] == [False, False]
    g = {"max": np.maximum(first, second), "sum": np.add(first, second), "difference": np.subtract(second, first)}
    assert s.checks[1]["ess_at_lam"] == pytest.approx(ess(3.0 * g[potential]))
    assert len({round(ess(3.0 * v), 6) for v in g.values()}) == 3  # the three potentials do weigh differently


def test_standardized_rewards_make_lambda_scale_free():
    def scaled(k):
        return lambda r: fake_objective()(r).potential * k

    def recipes(standardize, k):
        s = run(FKSteering(FKParams(resample_at=[0.3, 0.6], standardize=standardize), budget=10, seed=4), scaled(k))
        return [r.recipe for r in s.history]

    assert recipes(True, 1.0) == recipes(True, 10.0)  # the same selection whatever the potential's unit
    assert recipes(False, 1.0) != recipes(False, 10.0)


def test_copies_of_a_resampled_particle_branch_by_branch_theta_at_the_resampling_step():
    s = FKSteering(FKParams(resample_at=[0.3], lam=50.0, branch_theta=0.4, renoise="copies"), budget=4,
                   seed=1).bind(T)
    previews = s.ask(4)
    s.tell([Result(r, Status.OK, 10.0 if i == 2 else 0.0) for i, r in enumerate(previews)])
    finals = s.ask(4)
    winner = previews[2].with_until(None)
    assert finals[0] == winner  # renoise = "copies": the first copy continues its ancestor's path
    assert all(c.root == winner.root and [(b.step, b.theta) for b in c.branches] == [(3, 0.4)] for c in finals[1:])
    assert len({c.branches[0].seed for c in finals[1:]}) == 3  # each copy its own seeded move
    assert s.sampler_schedule() == SamplerSchedule((3,), (0.4,))


def test_renoise_all_moves_every_particle_the_first_copy_and_the_unselected_too():
    def finals(renoise, values):
        s = FKSteering(FKParams(resample_at=[0.3], lam=50.0, branch_theta=0.4, renoise=renoise), budget=4,
                       seed=1).bind(T)
        previews = s.ask(4)
        s.tell([Result(r, Status.OK, v) for r, v in zip(previews, values, strict=True)])
        return previews, s.ask(4)

    previews, out = finals("all", [0.0, 0.0, 10.0, 0.0])
    winner = previews[2].with_until(None)
    assert all(c.root == winner.root and [(b.step, b.theta) for b in c.branches] == [(3, 0.4)] for c in out)
    assert len({c.branches[0].seed for c in out}) == 4  # the first copy takes its own move too
    previews, out = finals("all", [5.0] * 4)  # equal rewards: every particle survives once, each moved
    assert [c.root for c in out] == [p.root for p in previews] and all(len(c.branches) == 1 for c in out)
    assert finals("all", [5.0] * 4)[1] == out  # seeded: the same moves again
    assert finals("copies", [5.0] * 4)[1] == [p.with_until(None) for p in previews]  # copies: nothing moves


def test_fk_steering_needs_stepping():
    assert FKSteering.requires == {"stepping"} and FKSteering.counts_steps
