"""eacps.strategy: the ask/tell contract every strategy inherits. Seeds come from distinct seeded streams; the public
methods never ask past the budget (candidates, or B·T denoising steps charged per model call with a shared prefix
once), refuse results for recipes never asked and recipes asked twice, record each ask's seq, charged steps and
parent, stop for the budget or the cap only once nothing is pending, and ``optimize`` is built from ask/tell/stop."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import pytest

from eacps import Recipe, Result, Status
from eacps.params import MAX_BUDGET
from eacps.recipe import SEED_MAX
from eacps.strategy import Asked, SamplerSchedule, SeedStream, Strategy, StrategyError, schedule_steps


class Scripted(Strategy):
    """Asks the given recipes in order (then fresh seeds when ``then_seeds``)."""

    name = "scripted"

    def __init__(self, recipes: Sequence[Recipe] = (), *, budget: int, seed: int = 0, then_seeds: bool = False):
        super().__init__(budget=budget, seed=seed)
        self.todo, self.then_seeds = list(recipes), then_seeds

    def _ask(self, n: int) -> list[Recipe]:
        out, self.todo = self.todo[:n], self.todo[n:]
        return out + (self.fresh_seeds(n - len(out)) if self.then_seeds else [])


class Paths(Scripted):
    name = "paths"
    counts_steps: ClassVar[bool] = True


def ok(recipes: Sequence[Recipe], value: float = 1.0) -> list[Result]:
    return [Result(r, Status.OK, value) for r in recipes]


# -- seeds and schedules -------------------------------------------------------------------------------------------
def test_seed_streams_are_distinct_seeded_and_in_range():
    a = SeedStream(5).take(200)
    assert a == SeedStream(5).take(200) and len(set(a)) == 200 and all(0 <= s < SEED_MAX for s in a)
    assert SeedStream(5, 1).take(5) != a[:5] and SeedStream(6).take(5) != a[:5]
    s = Scripted(budget=4, seed=5)
    assert s.global_seeds.take(3) == a[:3] and s.local_seeds.take(3) == SeedStream(5, 1).take(3)  # paired strategies


def test_fresh_seeds_skip_recipes_already_asked():
    first = SeedStream(0).take(3)
    s = Scripted([Recipe.from_seed(first[1])], budget=4, seed=0, then_seeds=True)
    assert [r.seed for r in s.ask(1)] == [first[1]]
    assert [r.seed for r in s.ask(2)] == [first[0], first[2]]  # the stream's second seed was already asked


def test_schedule_steps_are_distinct_steps_inside_the_schedule():
    assert schedule_steps([0.25, 0.5, 0.75], 10) == [2, 5, 8]  # rounded (banker's: 2.5 -> 2)
    assert schedule_steps([0.01, 0.02, 0.99], 10) == [1, 9]  # clipped to 1..T-1, then deduplicated
    with pytest.raises(ValueError, match="the judge needs a schedule of at least 2 steps, got 1"):
        schedule_steps([0.5], 1, "the judge")
    s = Scripted(budget=2)
    with pytest.raises(StrategyError, match="bind"):
        s.schedule_steps([0.5])
    assert s.bind(4).schedule_steps([0.5]) == [2]


def test_a_sampler_schedule_pairs_steps_with_thetas():
    sched = SamplerSchedule((3, 6), (1.0, 0.5))
    assert sched.params() == {"steps": [3, 6], "theta": [1.0, 0.5]}
    assert sched.label == "renoise@3,6 theta=1,0.5" and SamplerSchedule((), ()).label == "no branches"
    with pytest.raises(ValueError, match="one theta per step"):
        SamplerSchedule((3, 6), (1.0,))
    assert Scripted(budget=2).sampler_schedule() is None  # plain samples unless a strategy declares otherwise


# -- budget, bind, limit -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{"budget": 0}, {"budget": MAX_BUDGET + 1}, {"budget": 2.0}, {"budget": True},
                                {"seed": -1}, {"seed": False}])
def test_budget_and_seed_are_integers_in_range(kw):
    with pytest.raises(ValueError, match=r"^(budget|seed) must be an integer in "):
        Scripted(**{"budget": 4, **kw})
    assert Scripted(budget=4, seed=2**40).seed == 2**40  # compare's reference pool goes past 2^32


def test_bind_once_before_the_first_ask():
    s = Scripted(budget=2)
    with pytest.raises(ValueError, match="full_steps must be a positive int"):
        s.bind(0)
    assert s.bind(10) is s and s.bind(10) is s and s.step_budget == 20  # binding to the same T again: a no-op
    with pytest.raises(StrategyError, match="already bound to 10 steps, not 12"):
        s.bind(12)
    late = Scripted(then_seeds=True, budget=2)
    late.ask(1)
    with pytest.raises(StrategyError, match=r"bind\(full_steps\) before the first ask"):
        late.bind(10)


def test_limit_caps_whole_candidates_within_the_steps_left():
    s = Scripted(then_seeds=True, budget=10).bind(10).limit(25)
    assert s.capped and s.room(8) == 2  # 25 steps hold two 10-step candidates
    asked = s.ask(8)
    assert len(asked) == 2 and s.ask(8) == [] and s.stop() == {}  # pending: not over yet
    s.tell(ok(asked))
    assert s.stop() == {"max_steps": 25}
    with pytest.raises(StrategyError, match=r"limit\(max_steps\) before the first ask"):
        s.limit(30)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="max_steps must be an integer >= 1"):
            Scripted(budget=2).limit(bad)
    assert not Scripted(budget=2).bind(10).limit(20).capped  # not below B·T: the budget ends it


def test_steps_problem_names_the_setting_at_fault():
    assert Scripted(budget=2).steps_problem(1) is None  # whole candidates on a 1-step schedule are fine
    setting, why = Paths(budget=2).steps_problem(1)
    assert setting == "steps" and "needs a schedule of at least 2 denoising steps (got 1)" in why
    setting, why = Scripted(budget=2).steps_problem(10, 9)
    assert setting == "max_steps" and why.startswith("scripted needs 10 denoising steps to finish a candidate")
    assert Scripted(budget=2).steps_problem(10, 10) is None


# -- the ask/tell contract ---------------------------------------------------------------------------------------------
def test_never_more_than_the_budget_and_never_a_recipe_twice():
    s = Scripted(then_seeds=True, budget=3)
    assert len(s.ask(10)) == 3 and s.ask(1) == [] and s.remaining == 0
    dup = Scripted([Recipe.from_seed(1), Recipe.from_seed(1)], budget=4)
    dup.ask(1)
    with pytest.raises(StrategyError, match="proposed an already evaluated recipe"):
        dup.ask(1)

    class Greedy(Scripted):
        def _ask(self, n):
            return self.fresh_seeds(n + 1)

    with pytest.raises(StrategyError, match="asked for 2 recipes, got 3"):
        Greedy(budget=4).ask(2)


def test_results_only_for_asked_recipes_and_history_kept_in_order():
    s = Scripted(then_seeds=True, budget=4)
    with pytest.raises(StrategyError, match="told a result for a recipe it did not ask"):
        s.tell(ok([Recipe.from_seed(1)]))
    a = s.ask(2)
    s.tell(ok(a[1:]))
    assert list(s.pending) == [a[0]] and [r.recipe for r in s.history] == [a[1]]
    with pytest.raises(StrategyError):
        s.tell(ok(a[1:]))  # told once


def test_ask_records_carry_seq_charged_steps_and_parent():
    unbound = Scripted(then_seeds=True, budget=2)
    assert [(a.seq, a.steps, a.parent) for a in unbound.ask_records(2)] == [(0, None, None), (1, None, None)]
    with pytest.raises(StrategyError, match=r"path recipes need bind\(full_steps=T\) first"):
        Scripted([Recipe(seed=1, until=3)], budget=2).ask(1)
    with pytest.raises(StrategyError, match=r"counts denoising steps; bind\(full_steps=T\) first"):
        Paths([Recipe(seed=1, until=3)], budget=2).ask(1)
    todo = [Recipe(seed=1, until=3), Recipe(seed=1).branch(3, 1.0, 5), Recipe(seed=1), Recipe(seed=2, until=3)]
    s = Paths(todo, budget=2).bind(10)
    assert s.cost_of(todo[1]) == 10 and s.spent_steps == 0  # costing charges nothing
    got = s.ask_records(10)
    assert got == [Asked(todo[0], 0, 3, None), Asked(todo[1], 1, 7, 0), Asked(todo[2], 2, 7, 0),
                   Asked(todo[3], 3, 3, None)]  # a shared prefix is charged once, to the first path that ran it
    assert (s.spent_steps, s.steps_left, s.room(5)) == (20, 0, 0)
    assert s.stop() == {}  # the budget is spent, but results are pending
    s.tell(ok(todo))
    assert s.stop() == {"budget": 2}


def test_a_step_counting_strategy_cannot_overspend():
    s = Paths([Recipe(seed=1), Recipe(seed=2, until=5), Recipe(seed=3, until=9)], budget=2).bind(10)
    assert len(s.ask(2)) == 2 and s.steps_left == 5
    with pytest.raises(StrategyError, match=r"needs 9 steps, 5 left of the budget 2 x 10"):
        s.ask(1)


def test_a_strategy_instance_runs_one_search():
    s = Scripted(then_seeds=True, budget=2)
    s.check_fresh()
    s.ask(1)
    with pytest.raises(StrategyError, match=r"already ran a search \(1 recipes asked\)"):
        s.check_fresh()


# -- best, optimize ----------------------------------------------------------------------------------------------------
def test_the_best_is_the_first_eligible_argmax():
    full = [Recipe.from_seed(i) for i in range(4)]
    s = Scripted([*full, Recipe(seed=9, steps=4)], budget=5)
    asked = s.ask(5)
    assert s.best is None
    s.tell([Result(asked[0], Status.OK, 2.0), Result(asked[1], Status.FAILED, None, reason="x"),
            Result(asked[2], Status.OK, 2.0), Result(asked[3], Status.OK, math.nan),
            Result(asked[4], Status.OK, 99.0)])  # a preview never wins, nor a NaN
    assert s.best.recipe == full[0]


def test_optimize_is_ask_tell_stop_and_a_non_finite_objective_is_failed():
    s = Scripted(then_seeds=True, budget=5)
    values = iter([1.0, math.inf, 3.0, math.nan, 2.0])
    best = s.optimize(lambda r: next(values), batch_size=2)
    assert best.potential == 3.0 and len(s.history) == 5 and s.stop() == {"budget": 5}
    assert [r.status for r in s.history] == [Status.OK, Status.FAILED, Status.OK, Status.FAILED, Status.OK]
    assert s.history[1].reason == "objective gave inf"
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        Scripted(budget=2).optimize(lambda r: 1.0, batch_size=0)
    with pytest.raises(StrategyError, match="ask returned nothing, with 0 result"):
        Scripted(budget=2).optimize(lambda r: 1.0)  # nothing to ask and no stop reason: a broken strategy
