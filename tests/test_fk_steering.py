"""fk-steering's adaptive schedule: resampling only when the effective sample size of the weights falls, selection
pressure tempered to keep it, and no selection when previews stop agreeing with later ones."""

from __future__ import annotations

import numpy as np
import pytest

from eacps import Result, Status
from eacps.strategies.fk_steering import FKParams, FKSteering, ess, temper
from eacps.testing import fake_objective

T = 10


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
