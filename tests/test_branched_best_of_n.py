"""branched-best-of-n (eacps.strategies.branched_best_of_n): best-of-N whose candidates are random paths, each
branched by a seeded ``renoise`` at every step of a fixed schedule; T steps a candidate, so B candidates; its root
seeds are best-of-N's under the same seed."""

from __future__ import annotations

import numpy as np
import pytest
from toy import ToyGenerator, ToyGeneratorParams

import eacps
from eacps.api import make_strategy
from eacps.stepping import StateCache, generate_paths
from eacps.store import quantize
from eacps.strategies.branched_best_of_n import BranchedBestOfN, BranchedParams
from eacps.strategy import SamplerSchedule, StrategyError


def test_branched_best_of_n_is_best_of_n_plus_the_branches():
    plain = make_strategy("best-of-n", {}, budget=6, seed=3).bind(15).ask(6)
    branched = make_strategy("branched-best-of-n", {"at": [0.2, 0.8], "theta": [0.5, 1.0]}, budget=6,
                             seed=3).bind(15)
    asked = branched.ask(4) + branched.ask(4)
    assert len(asked) == 6 and branched.stop() == {} and branched.spent_steps == 6 * 15  # B paths, T steps each
    assert [r.root for r in asked] == plain  # common random numbers with best-of-N
    assert all([(b.step, b.theta) for b in r.branches] == [(3, 0.5), (12, 1.0)] for r in asked)
    assert len({b.seed for r in asked for b in r.branches}) == 12
    none = make_strategy("branched-best-of-n", {"steps": []}, budget=6, seed=3).bind(15).ask(6)
    assert none == plain  # no branches: exactly best-of-N


@pytest.mark.parametrize("params, field", [({"at": [0.5], "steps": [3]}, "at, steps"),
                                           ({"steps": [4, 2]}, "steps"), ({"theta": [1.0, 1.0]}, "theta"),
                                           ({"theta": 2.0}, "theta"), ({"at": [1.2]}, "at")])
def test_branched_best_of_n_refuses_bad_params_in_one_line(params, field):
    from eacps.config import ConfigError

    with pytest.raises(ConfigError) as err:
        make_strategy("branched-best-of-n", params, budget=4)
    assert field in str(err.value) and "\n" not in str(err.value)


def test_branched_best_of_n_refuses_a_branch_outside_the_schedule():
    from eacps.config import ConfigError

    with pytest.raises(ConfigError, match=r"params.steps: a branch at step 10 is outside the 10-step schedule"):
        make_strategy("branched-best-of-n", {"steps": [10]}, budget=4).bind(10).ask(1)


def test_the_default_schedule_is_one_branch_at_80_percent_of_angle_1():
    s = BranchedBestOfN(budget=4).bind(15)
    assert s.diagnostics() == {}  # nothing asked yet
    assert s.sampler_schedule() == SamplerSchedule((12,), (1.0,))
    s.ask(4)
    assert s.diagnostics() == {"branch_steps": [12], "branch_thetas": [1.0]}
    steps = BranchedBestOfN(BranchedParams(steps=[2, 7], theta=0.3), budget=4).bind(10)
    assert [(b.step, b.theta) for b in steps.ask(1)[0].branches] == [(2, 0.3), (7, 0.3)]  # exact steps, one angle


def test_it_needs_a_bound_schedule_and_a_generator_that_steps():
    with pytest.raises(StrategyError, match="bind"):
        BranchedBestOfN(budget=4).ask(1)
    assert BranchedBestOfN.requires == {"stepping"} and BranchedBestOfN.counts_steps


def test_a_step_cap_buys_whole_paths_only():
    s = BranchedBestOfN(budget=6, seed=1).bind(10).limit(35)
    asked = s.ask(10)
    assert len(asked) == 3 and s.ask(10) == [] and s.spent_steps == 30  # 3 paths of 10 steps fit in 35


def test_in_the_engine_b_branched_paths_cost_b_times_t_and_the_winner_regenerates(toy_potential, cond):
    gen = ToyGenerator(ToyGeneratorParams(stepping=True))
    res = eacps.search(cond, generator=gen, potential=toy_potential, strategy="branched-best-of-n",
                       params={"at": [0.5]}, budget=6, seed=2, batch_size=4)
    assert len(res.history) == 6 and res.cost.steps == 6 * 10
    assert all(c.recipe.until is None and [b.step for b in c.recipe.branches] == [5] for c in res.history)
    assert res.best.potential == max(c.potential for c in res.history)
    again = generate_paths(gen, [res.best.recipe], cond, cache=StateCache())[0].image
    assert np.array_equal(quantize(again), res.best.image)  # the winner from its recipe alone
    plain = eacps.search(cond, generator=gen, potential=toy_potential, strategy="best-of-n", budget=6, seed=2)
    assert [c.recipe.root for c in res.history] == [c.recipe for c in plain.history]  # the same roots...
    assert all(a.potential != b.potential for a, b in zip(res.history, plain.history, strict=True))  # ...branched
