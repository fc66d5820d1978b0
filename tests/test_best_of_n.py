"""best-of-n (eacps.strategies.best_of_n): N independent random seeds, N the budget, asked ahead of any result;
the argmax wins."""

from __future__ import annotations

from eacps import Recipe, Result, Status
from eacps.strategies.best_of_n import BestOfN


def objective(r: Recipe) -> float:
    """A fast stand-in potential of the recipe's noise."""
    return float(r.noise((1, 1, 4, 4)).flatten()[0])


def test_best_of_n_uses_exactly_its_budget_of_distinct_seeds():
    s = BestOfN(budget=13, seed=4)
    s.optimize(objective, batch_size=5)
    seeds = [r.recipe.seed for r in s.history]
    assert len(seeds) == 13 == len(set(seeds))
    assert s.best.potential == max(objective(r.recipe) for r in s.history)


def test_the_whole_budget_is_asked_ahead_of_any_result():
    s = BestOfN(budget=10, seed=0)
    asked = s.ask(4) + s.ask(4) + s.ask(4)  # nothing told yet: no ask waits for a result
    assert len(asked) == 10 and s.ask(1) == [] and len(s.pending) == 10
    assert s.stop() == {}  # results in flight: not over yet
    s.tell([Result(r, Status.OK, 0.0) for r in asked])
    assert s.stop() == {"budget": 10}


def test_candidates_are_plain_seeds_of_the_strategy_seed_whatever_the_batches():
    one = BestOfN(budget=12, seed=7).ask(12)
    pieces = BestOfN(budget=12, seed=7)
    split = pieces.ask(1) + pieces.ask(5) + pieces.ask(6)
    assert split == one  # the recipes do not depend on how the engine batches asks
    assert all(r == Recipe.from_seed(r.seed) for r in one)  # whole candidates: no moves, branches or previews
    assert not set(one) & set(BestOfN(budget=12, seed=8).ask(12))  # another seed, other candidates


def test_the_best_is_the_argmax_of_the_successful_candidates():
    s = BestOfN(budget=6, seed=1)
    asked = s.ask(6)
    values = [3.0, None, 9.0, 9.0, None, -1.0]  # None: failed (the failed could have been anything)
    s.tell([Result(r, Status.OK, v) if v is not None else Result(r, Status.FAILED, None, reason="x")
            for r, v in zip(asked, values, strict=True)])
    assert s.best.recipe == asked[2]  # the argmax; of ties the first told
    all_failed = BestOfN(budget=2, seed=1)
    all_failed.tell([Result(r, Status.FAILED, None, reason="x") for r in all_failed.ask(2)])
    assert all_failed.best is None
