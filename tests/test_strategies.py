import math

import pytest

from eacps import Recipe, Result, Status, StrategyError
from eacps.strategies.best_of_n import BestOfN
from eacps.strategies.eacps import EACPS, EACPSParams
from eacps.strategies.zero_order import ZeroOrder, ZeroOrderParams


def objective(r: Recipe) -> float:
    """A fast stand-in potential of the recipe's noise."""
    return float(r.noise((1, 1, 4, 4)).flatten()[0])


def drive(strategy, f=objective, batch=8, fail=lambda r: False):
    """Run ``strategy`` to its end with ``Strategy.optimize``: ``f`` as potential, FAILED where ``fail``."""
    strategy.optimize(lambda r: Result(r, Status.FAILED, None, reason="x") if fail(r) else Result(r, Status.OK, f(r)),
                      batch_size=batch)
    return strategy


def test_best_of_n_uses_exactly_its_budget_of_distinct_seeds():
    s = drive(BestOfN(budget=13, seed=4), batch=5)
    seeds = [r.recipe.seed for r in s.history]
    assert len(seeds) == 13 == len(set(seeds))
    assert s.best.potential == max(objective(r.recipe) for r in s.history)


def test_eacps_is_the_paper_algorithm():
    s = drive(EACPS(budget=20, seed=1), batch=3)
    hist = [r.recipe for r in s.history]
    assert len(hist) == 20
    stage1 = s.history[:8]
    # stage 1 shares its seeds with best-of-N under the same seed (common random numbers)
    assert [r.recipe for r in stage1] == [r.recipe for r in drive(BestOfN(budget=8, seed=1)).history]
    elites = sorted(stage1, key=lambda r: -r.potential)[:3]
    children = hist[8:]
    expected = []
    taken = set(hist[:8])
    for e in elites:
        d, got = 0, []
        while len(got) < 4:
            d += 1
            c = Recipe.from_seed((e.recipe.seed + d) % 2**32)
            if c not in taken and c not in got:
                got.append(c)
        taken |= set(got)
        expected += got
    assert children == expected
    assert s.best.potential == max(r.potential for r in s.history)


class AdjacentEACPS(EACPS):
    """Stage-1 seeds 100..107: the elites' offset children collide with each other and with stage 1."""

    def fresh_seeds(self, n):
        return [Recipe.from_seed(100 + i) for i in range(n)]


def test_eacps_never_evaluates_a_recipe_twice_when_elites_are_adjacent():
    s = drive(AdjacentEACPS(budget=20, seed=0), f=lambda r: -float(r.seed))  # elites: 100, 101, 102
    seeds = [r.recipe.seed for r in s.history]
    assert len(seeds) == len(set(seeds)) == 20
    assert seeds[8:] == [*range(108, 112), *range(112, 116), *range(116, 120)]


def test_eacps_pcn_children_are_pcn_moves_of_the_elites():
    s = drive(EACPS(EACPSParams(neighborhood="pcn", theta=0.2), budget=20, seed=2))
    elites = {r.recipe for r in sorted(s.history[:8], key=lambda r: -r.potential)[:3]}
    for r in s.history[8:]:
        parent = Recipe(r.recipe.seed)
        assert parent in elites and r.recipe.moves[0].theta == pytest.approx(0.2)


def test_eacps_elites_skip_failed_and_spread_children():
    # only 2 stage-1 candidates succeed: their 12 children split 6/6
    s = EACPS(budget=20, seed=3)
    stage1 = s.ask(8)
    ok = stage1[:2]
    s.tell([Result(r, Status.OK, 1.0) if r in ok else Result(r, Status.FAILED, None, reason="boom") for r in stage1])
    kids = s.ask(20)
    assert len(kids) == 12
    assert {k.seed - 1 for k in kids if k.seed - 1 in {r.seed for r in ok}}  # offsets of the OK elites
    assert sum(1 for k in kids if 1 <= k.seed - ok[0].seed <= 6) == 6


def test_eacps_stage_boundary_asks_nothing_until_told():
    s = EACPS(budget=20, seed=0)
    first = s.ask(8)
    assert s.ask(8) == []  # stage 2 needs every stage-1 result
    s.tell([Result(r, Status.OK, 1.0) for r in first])
    assert len(s.ask(8)) == 8


def test_eacps_annealing_schedule_and_budget():
    p = EACPSParams(neighborhood="pcn", generations=3, theta=0.4, theta_decay=0.5, k_global=6, m=2, k_local=3)
    s = drive(EACPS(p, budget=6 + 2 * 2 * 3, seed=0))
    thetas = [r.recipe.moves[-1].theta for r in s.history[6:]]
    assert thetas[:6] == [0.4] * 6 and thetas[6:] == [0.2] * 6


def test_eacps_budget_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="k_global"):
        EACPS(EACPSParams(k_global=8, k_local=4), budget=21)
    with pytest.raises(ValueError, match="budget"):
        EACPS(EACPSParams(k_local=4), budget=10)  # 10 - 12 < 1


@pytest.mark.parametrize("budget, split", [(20, (8, 4)), (8, (5, 1)), (16, (7, 3)), (32, (14, 6)), (64, (28, 12)),
                                           (4, (1, 1))])
def test_eacps_scales_with_the_budget_in_the_paper_proportions(budget, split):
    s = EACPS(budget=budget)
    assert (s.k_global, s.k_local) == split
    assert len(drive(s).history) == budget


def test_zero_order_moves_only_on_improvement():
    s = drive(ZeroOrder(ZeroOrderParams(n_neighbors=3, threshold=0.9), budget=40, seed=0))
    assert len(s.history) == 40
    theta = math.acos(0.9)
    for r in s.history:
        assert all(m.theta == pytest.approx(theta) for m in r.recipe.moves)
    assert s.accepted >= 1 and s.rounds >= 5


def test_strategies_are_deterministic_and_replayable():
    for make in (lambda: BestOfN(budget=20, seed=5), lambda: EACPS(budget=20, seed=5),
                 lambda: ZeroOrder(budget=20, seed=5)):
        a, b = drive(make(), batch=4), drive(make(), batch=7)
        assert [r.recipe for r in a.history] == [r.recipe for r in b.history]


def test_contract_violations_are_caught():
    s = BestOfN(budget=4, seed=0)
    with pytest.raises(StrategyError):
        s.tell([Result(Recipe.from_seed(1), Status.OK, 1.0)])
    rs = s.ask(10)
    assert len(rs) == 4 and s.ask(1) == []
    s.tell([Result(r, Status.OK, 0.0) for r in rs])
    assert s.stop() == {"budget": 4}
