"""eacps (eacps.strategies.eacps): K_global random seeds, the top M become elites, K_local children around each
elite (seed offsets or pCN moves, annealed over generations), the argmax over everything wins; 8 + 3x4 = 20 by
default."""

from __future__ import annotations

from dataclasses import replace

import pytest

from eacps import Recipe, Result, Status
from eacps.strategies.best_of_n import BestOfN
from eacps.strategies.eacps import EACPS, EACPSParams


def objective(r: Recipe) -> float:
    """A fast stand-in potential of the recipe's noise."""
    return float(r.noise((1, 1, 4, 4)).flatten()[0])


def drive(strategy, f=objective, batch=8):
    """Run ``strategy`` to its end with ``Strategy.optimize``, ``f`` as potential."""
    strategy.optimize(f, batch_size=batch)
    return strategy


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


@pytest.mark.parametrize("budget, split", [(20, (8, 4)), (8, (5, 1)), (16, (7, 3)), (32, (14, 6)), (40, (16, 8)),
                                           (64, (28, 12)), (4, (1, 1))])
def test_eacps_scales_with_the_budget_in_the_paper_proportions(budget, split):
    s = EACPS(budget=budget)
    assert (s.k_global, s.k_local) == split
    assert len(drive(s).history) == budget


def test_the_defaults_are_8_global_then_3_elites_times_4_children():
    s = EACPS(seed=5)  # budget 20
    assert (s.k_global, s.params.m, s.k_local, s.budget) == (8, 3, 4, 20)
    stage1 = s.ask(100)
    assert len(stage1) == 8 and s.ask(100) == []
    s.tell([Result(r, Status.OK, float(i % 4)) for i, r in enumerate(stage1)])  # ties: 3.0 at positions 3 and 7
    children = s.ask(100)
    assert len(children) == 12 and s.ask(100) == []
    # the elites are the top 3 (of ties, the first told): positions 3, 7, then 2; 4 seed-offset children each
    elites = [stage1[3], stage1[7], stage1[2]]
    assert [c.seed for c in children] == [e.seed + d for e in elites for d in range(1, 5)]


def test_the_winner_is_the_argmax_over_both_stages():
    for stage1_wins in (True, False):
        s = EACPS(budget=20, seed=2)
        stage1 = s.ask(8)
        s.tell([Result(r, Status.OK, float(i)) for i, r in enumerate(stage1)])
        children = s.ask(12)
        low, high = (-1.0, 0.0) if stage1_wins else (8.0, 20.0)
        s.tell([Result(r, Status.OK, high if i == 5 else low) for i, r in enumerate(children)])
        assert s.best.recipe == (stage1[7] if stage1_wins else children[5])


def test_when_nothing_of_stage_1_succeeds_stage_2_explores_fresh_seeds():
    s = EACPS(budget=20, seed=3)
    s.tell([Result(r, Status.FAILED, None, reason="boom") for r in s.ask(8)])
    assert s.ask(12) == BestOfN(budget=20, seed=3).ask(20)[8:]  # the next seeds of the same stream


def test_each_generation_keeps_the_top_m_over_everything_so_far():
    p = EACPSParams(neighborhood="pcn", generations=3, theta=0.4, k_global=6, m=2, k_local=3)
    s = drive(EACPS(p, budget=6 + 2 * 2 * 3, seed=1), f=lambda r: len(r.moves) + objective(r) / 100)
    gen1, gen2 = s.history[6:12], s.history[12:]
    top = sorted(s.history[:12], key=lambda r: -r.potential)[:2]
    assert all(r in gen1 for r in top)  # deeper children score higher here: generation 2 refines generation 1
    parents = [replace(r.recipe, moves=r.recipe.moves[:-1]) for r in gen2]
    assert parents == [top[0].recipe] * 3 + [top[1].recipe] * 3
    assert s.best == max(s.history, key=lambda r: r.potential) and s.best in gen2


def test_pcn_children_need_noise_recipes_and_seed_offsets_do_not():
    assert EACPS(EACPSParams(neighborhood="pcn")).needs() == {"noise_recipes"}
    assert EACPS().needs() == frozenset()
    s = drive(EACPS(budget=20, seed=0))
    assert all(r.recipe == Recipe.from_seed(r.recipe.seed) for r in s.history)  # seed offsets: plain seeds
