"""multi-fidelity (eacps.strategies.multi_fidelity): successive halving over partial trajectories. Previews screened
(by a cheaper potential when one is set, in the engine), the best continued, steps and scorer calls charged for the
work done; the adaptive schedule's pilot and plan."""

import itertools
import math

import numpy as np
import pytest
from toy import ToyGenerator, ToyGeneratorParams, ToyMeanScorer, ToyScorer

from eacps import Result, Status
from eacps.agreement import RHO_GRID, agreement_posterior
from eacps.config import ConfigError
from eacps.engine.engine import Engine
from eacps.potential import Criterion, Potential
from eacps.recipe import Recipe
from eacps.screening import on_path
from eacps.strategies.multi_fidelity import (
    SIBLING_SHARE,
    MultiFidelity,
    MultiFidelityParams,
    expected_best,
    plan,
    promoted,
    split_children,
)
from eacps.strategy import SamplerSchedule, schedule_steps
from eacps.testing import fake_objective

T = 10


def run(strategy, objective=None, batch=4):
    strategy.bind(T)
    strategy.optimize(objective or fake_objective(), batch_size=batch)
    return strategy


def test_plan_uses_the_budget():
    assert plan(200, [2], 10, 0.25) == [48, 12]  # 48·2 + 12·8 = 192 <= 200 < 49·2 + 13·8
    assert plan(700, [2, 5], 10, 0.25) == [227, 57, 15]  # 227·2 + 57·3 + 15·5 = 700; 228 would need 702
    with pytest.raises(ValueError, match="cannot pay"):
        plan(5, [2], 10, 0.5)


def test_plan_in_steps():
    assert schedule_steps([0.2], 15) == [3] and schedule_steps([0.2, 0.5], 10) == [2, 5]
    assert plan(300, [3], 15, 0.25) == [48, 12]  # 48·3 + 12·12 = 288 <= 300 < 49·3 + 13·12
    with pytest.raises(ValueError, match="cannot pay"):
        plan(5, [3], 15, 0.25)


def test_promoted_previews_continue_their_trajectory():
    p = MultiFidelityParams(rungs=[0.3], promote=0.25, schedule="fixed", branch_at=[], promotion="drop")  # unbranched
    s = run(MultiFidelity(p, budget=20, seed=0))
    previews = [r for r in s.history if r.recipe.until == 3]
    finals = [r for r in s.history if r.recipe.until is None]
    top = sorted(previews, key=lambda r: -r.potential)[: len(finals)]
    assert [r.recipe.with_until(None) for r in finals] == [r.recipe.with_until(None) for r in top]
    n0, n1 = s.sizes
    assert s.spent_steps == n0 * 3 + n1 * (T - 3) <= 20 * T  # the prefix of a finalist is charged once
    assert s.best in finals
    assert s.preview_rank_correlation() == pytest.approx(1.0)  # the fake objective's previews are exact


def test_each_rung_continues_the_best_of_the_previous_one_to_the_end():
    p = MultiFidelityParams(rungs=[0.2, 0.5], promote=0.25, schedule="fixed", branch_at=[], promotion="drop")
    s = run(MultiFidelity(p, budget=20, seed=3))
    assert s.sizes == plan(200, [2, 5], T, 0.25) == [64, 16, 4]  # 196 steps: the largest n0 that fits 200
    rungs = [[r for r in s.history if r.recipe.until == u] for u in (2, 5, None)]
    assert [len(r) for r in rungs] == s.sizes
    for lower, upper in itertools.pairwise(rungs):
        top = sorted(lower, key=lambda r: -r.potential)[: len(upper)]
        assert {r.recipe.with_until(None) for r in upper} == {r.recipe.with_until(None) for r in top}
    assert s.spent_steps == 64 * 2 + 16 * 3 + 4 * 5  # each rung pays only its own stretch of the trajectory
    assert s.stop() == {"plan": [64, 16, 4]}  # the plan is done with steps left over
    assert s.diagnostics()["rung_steps"] == [2, 5, T] and s.diagnostics()["plan"] == [64, 16, 4]


def test_failed_previews_are_not_promoted():
    def objective(r):
        if r.until is not None and r.seed % 2 == 0:
            return Result(r, Status.FAILED, None, reason="even")
        return fake_objective()(r)

    s = MultiFidelity(budget=20, seed=1).bind(10)
    s.optimize(objective, batch_size=7)
    previewed = {r.recipe.root: r.ok for r in s.history if r.recipe.until is not None}
    finals = [r.recipe.root for r in s.history if r.recipe.until is None]
    promoted = [f for f in finals if f in previewed]
    assert promoted and all(previewed[f] for f in promoted)  # only OK previews continue
    assert any(not ok for ok in previewed.values())  # (the objective did fail some)


def test_results_at_full_fidelity_only_are_best():
    s = MultiFidelity(budget=20, seed=0).bind(10)
    rs = s.ask(16)
    assert all(r.until == 3 for r in rs)  # the pilot's previews at the first rung (0.3 of T)
    s.tell([Result(r, Status.OK, 100.0) for r in rs])
    assert s.best is None


def test_preview_potential_cascade_in_the_engine(cond):
    cheap = Potential([Criterion("realism", ToyMeanScorer(), 1.0)])
    full = Potential([Criterion("realism", ToyScorer(), 4.0), Criterion("consistency", ToyMeanScorer(), 1.0)])
    gen = ToyGenerator(ToyGeneratorParams(stepping=True))
    eng = Engine(gen, full, preview_potential=cheap, batch_size=8)
    params = MultiFidelityParams(rungs=[0.2], promote=0.25, schedule="fixed", promotion="drop")
    res = eng.run(cond, MultiFidelity(params, budget=20, seed=0))
    n0, n1 = 48, 12  # plan(200 steps, [2], T=10)
    assert res.cost.scorer_calls == {"realism": n0 + n1, "consistency": n1}  # the expensive criterion: finalists
    assert res.cost.steps == n0 * 2 + n1 * 8  # a finalist continues its preview: its prefix is charged once
    previews = [c for c in res.history if c.recipe.until is not None]
    assert len(previews) == n0 and all(set(c.scores) == {"realism"} for c in previews)
    assert res.best is not None and res.best.recipe.until is None
    assert res.diagnostics["preview_rank_spearman"] is not None
    eng.close()


def test_needs_a_generator_that_steps(cond):
    import eacps

    with pytest.raises(ConfigError, match="needs stepping"):
        eacps.search(cond, generator=ToyGenerator(), potential=Potential([Criterion("r", ToyScorer(), 1.0)]),
                     strategy="multi-fidelity", budget=20)


# -- the adaptive schedule: a pilot measures how previews rank finals, the plan follows -----------------
def _adaptive(seed: int = 0, **params) -> MultiFidelity:
    return MultiFidelity(MultiFidelityParams(schedule="adaptive", rungs=[0.2, 0.5], pilot=0.25, **params),
                         budget=20, seed=seed).bind(10)


def _previews(agree: float):
    """An objective whose previews are ``agree`` × the final potential plus noise of the recipe (seeded), so the
    rank agreement of previews with finals is set by the test."""
    final = fake_objective()

    def objective(r):
        res = final(r.with_until(None))
        if r.until is None:
            return res
        noise = float(np.random.default_rng([r.seed, r.until]).normal(0, 3))
        return Result(r, Status.OK, agree * res.potential + noise)

    return objective


def test_expected_best_of_the_plans():
    rng = np.random.default_rng(0)
    assert expected_best(0.3, 20, 20, 0, rng, sims=20000) == pytest.approx(1.867, abs=0.03)  # best of 20: e(20)
    assert expected_best(1.0, 40, 4, 0, rng, sims=20000) == pytest.approx(2.161, abs=0.03)  # exact previews: e(40)
    assert expected_best(0.0, 40, 4, 0, rng, sims=20000) == pytest.approx(1.03, abs=0.03)  # useless ones: e(4)


def test_the_adaptive_plan_promotes_more_when_previews_disagree_with_finals():
    promote = {}
    for agree in (10.0, 1.0, -10.0):
        s = _adaptive(branch_at=[])  # (a renoise after the previews would blur what they say of the finals)
        s.optimize(_previews(agree), batch_size=6)
        d = s.diagnostics()
        assert d["schedule"] == "adaptive" and d["pilot"] == 5 and set(d["agreement"]) == {"2", "5"}
        assert s.spent_steps <= 200
        promote[agree] = d["promote"]
    assert promote[10.0] < 1.0  # previews that rank finals: screen hard
    assert promote[10.0] <= promote[1.0] <= promote[-10.0] == 1.0  # previews that reverse them: best-of-N


def test_the_agreement_posterior_is_wide_for_few_pairs_and_narrows_with_more():
    three = agreement_posterior(1.0, 3)  # three pairs in perfect order: one chance in six under no agreement at all
    assert three.sum() == pytest.approx(1.0) and 0.3 < three @ RHO_GRID < 0.6 and three[RHO_GRID < 0].sum() > 0.1
    assert agreement_posterior(-0.5, 3) @ RHO_GRID < 0
    many = agreement_posterior(0.5, 30)  # Spearman 0.5 is a normal correlation of 2·sin(pi/12) = 0.52
    assert many @ RHO_GRID == pytest.approx(0.52, abs=0.08) and many[RHO_GRID < 0].sum() < 0.01
    assert agreement_posterior(0.9, 8)[RHO_GRID > 0.5].sum() > 0.85


def test_a_small_pilot_does_not_screen_on_anti_correlated_previews_by_luck():
    """Previews that rank against the finals (normal correlation -0.3), a pilot of three: the point estimate reads
    0.5 or 1 in a good share of the searches and screens on them; the posterior rule screens in fewer searches and
    its winners are at least as good on average. Previews that rank the finals are screened on under both."""
    final = fake_objective()
    mu, sd = 5.14, 2.38  # fake_objective's potential over seeds (mean, sd)

    def against(r):
        res = final(r.with_until(None))
        if r.until is None:
            return res
        noise = float(np.random.default_rng([r.seed, r.until]).normal())
        return Result(r, Status.OK, -0.3 * (res.potential - mu) / sd + math.sqrt(1 - 0.09) * noise)

    screened, best = {}, {}
    for rule in ("point", "posterior"):
        runs = []
        for seed in range(40):
            s = MultiFidelity(MultiFidelityParams(pilot=0.15, branch_at=[], agreement=rule, promotion="drop",
                                                  rungs=[0.2, 0.5]), budget=20,
                              seed=seed).bind(10)
            runs.append((s.optimize(against, batch_size=8).potential, s.diagnostics()["promote"] < 1))
        screened[rule], best[rule] = sum(x for _, x in runs), sum(b for b, _ in runs) / len(runs)
    assert screened["posterior"] < screened["point"] and screened["point"] >= 8
    assert best["posterior"] >= best["point"]
    s = MultiFidelity(MultiFidelityParams(pilot=0.15, branch_at=[], promotion="drop"), budget=20, seed=0).bind(10)
    s.optimize(_previews(100.0), batch_size=8)
    assert s.diagnostics()["pilot"] == 3 and s.diagnostics()["promote"] < 1  # three pairs in order still screen


def test_uninformative_previews_degrade_to_best_of_n_without_previews():
    s = _adaptive(promotion="drop")
    s.optimize(_previews(-10.0), batch_size=4)
    pilot = set(s.pilot)
    after = [r for r in s.history if s.path(r.recipe) not in pilot]  # (the default branch at 0.8 included)
    assert s.diagnostics()["plan"] == [15] and len(after) == 15  # 5 pilot + 15 whole candidates = best-of-20
    assert all(r.recipe.until is None for r in after) and s.spent_steps == 200


def test_the_adaptive_plan_is_deterministic_under_a_seed():
    def one(seed):
        s = _adaptive(seed)
        best = s.optimize(_previews(1.0), batch_size=7)
        return [r.recipe for r in s.history], best.recipe, s.diagnostics()

    assert one(4) == one(4)
    assert one(4)[0] != one(5)[0]


def test_a_pilot_whose_previews_all_fail_goes_on_as_best_of_n():
    def objective(r):
        return Result(r, Status.FAILED, None, reason="preview") if r.until is not None else fake_objective()(r)

    s = _adaptive()
    best = s.optimize(objective, batch_size=4)
    assert s.diagnostics()["promote"] == 1.0 and s.diagnostics()["agreement"] == {"2": None, "5": None}
    assert best is not None and best.recipe.until is None
    assert s.spent_steps == 5 * 2 + 19 * 10  # the failed pilot's prefixes, then 19 whole candidates


def test_branch_at_renoises_every_trajectory_and_previews_before_it_do_not_see_it():
    p = MultiFidelityParams(rungs=[0.3], promote=0.25, schedule="fixed", branch_at=[0.6], branch_theta=0.7,
                            promotion="drop")
    s = run(MultiFidelity(p, budget=20, seed=0))
    assert s.sampler_schedule() == SamplerSchedule((6,), (0.7,))
    previews = [r.recipe for r in s.history if r.recipe.until == 3]
    finals = [r.recipe for r in s.history if r.recipe.until is None]
    assert len(previews) == s.sizes[0] and len(finals) == s.sizes[1]
    assert not any(r.branches for r in previews)  # a preview at step 3 is before the renoise at step 6
    assert all([(b.step, b.theta) for b in r.branches] == [(6, 0.7)] for r in finals)
    assert len({r.branches[0].seed for r in finals}) == len(finals)  # each path its own renoise
    assert all(any(on_path(p, f) for p in previews) for f in finals)  # the promoted continue their previews' path
    # the same roots as without branches (common random numbers): the branch is the only difference
    plain = run(MultiFidelity(p.model_copy(update={"branch_at": []}), budget=20, seed=0))
    assert plain.sampler_schedule() is None and not any(r.recipe.branches for r in plain.history)
    assert previews == [r.recipe for r in plain.history if r.recipe.until == 3]


def test_branch_at_is_reproducible_and_reaches_the_adaptive_pilot():
    p = MultiFidelityParams(branch_at=[0.2, 0.5], promotion="drop")
    a, b = (run(MultiFidelity(p, budget=20, seed=5)) for _ in range(2))
    assert [r.recipe for r in a.history] == [r.recipe for r in b.history]
    assert a.pilot and all([m.step for m in r.branches] == [2, 5] for r in a.pilot)
    finals = [r.recipe for r in a.history if r.recipe.until is None]
    assert finals and all([m.step for m in r.branches] == [2, 5] for r in finals)
    assert all(all(m.step < r.recipe.until for m in r.recipe.branches) for r in a.history if r.recipe.until)
    # the pilot's previews paired with their (branched) finals
    assert any(v is not None for v in a.adapted["agreement"].values())


@pytest.mark.parametrize("bad", [[0.5, 0.2], [0.0], [1.0]])
def test_branch_at_must_be_increasing_fractions(bad):
    with pytest.raises(ValueError, match="branch_at"):
        MultiFidelityParams(branch_at=bad)


def test_expected_best_of_branching_plans():
    """Children of the top previews: one parent's children share SIBLING_SHARE of their unexplained variance, so with
    useless previews twenty children of one parent are worth sqrt(1 - share)·e(20); with exact previews the
    children of the best preview all score it (and the pilot's finals still count)."""
    rng = np.random.default_rng(0)
    e20 = 1.867
    got = expected_best(0.0, 20, 1, 0, rng, sims=20000, children=20)
    assert got == pytest.approx(math.sqrt(1 - SIBLING_SHARE) * e20, abs=0.03)
    assert expected_best(0.0, 20, 20, 0, rng, sims=20000, children=20) == pytest.approx(e20, abs=0.03)
    assert expected_best(1.0, 20, 2, 0, rng, sims=20000, children=20) == pytest.approx(e20, abs=0.03)
    assert split_children(20, 3) == [7, 7, 6] and split_children(2, 4) == [1, 1, 0, 0]
    assert promoted(15, 1 / 8) == 2 and promoted(3, 0.01) == 1


def test_branch_promotion_fills_each_rung_with_children_of_the_best():
    """promotion = "branch", fixed plan: every rung keeps the count (B whole trajectories' steps, nothing left over);
    the rung's count is split among the top ``promote`` fraction of the previous rung's previews, best first, each
    child renoised at the rung with its own seed, so it shares its parent's prefix (charged once)."""
    p = MultiFidelityParams(rungs=[0.3, 0.6], promote=0.25, schedule="fixed", branch_at=[], promotion="branch")
    s = run(MultiFidelity(p, budget=20, seed=2))
    assert s.sizes == [20, 20, 20] and s.spent_steps == 20 * T
    assert s.sampler_schedule() == SamplerSchedule((3, 6), (1.0, 1.0))
    rung0 = sorted((r for r in s.history if r.recipe.until == 3), key=lambda r: -r.potential)
    rung1 = [r.recipe for r in s.history if r.recipe.until == 6]
    finals = [r.recipe for r in s.history if r.recipe.until is None]
    assert len(rung0) == len(rung1) == len(finals) == 20
    parents = [next(p for p in rung0 if on_path(p.recipe, c.with_until(None))) for c in rung1]
    assert {id(p) for p in parents} == {id(p) for p in rung0[:5]}  # the top quarter, and only them
    assert [sum(p is q for q in parents) for p in rung0[:5]] == [4] * 5
    for c in rung1:  # renoised at the rung (step 3), each with a seed of its own
        assert [b.step for b in c.branches] == [3]
    assert len({c.branches[0].seed for c in rung1}) == 20
    assert all([b.step for b in f.branches][:1] == [3] and f.branches[-1].step == 6 for f in finals)
    assert s.best in [r for r in s.history if r.recipe.until is None]
    again = run(MultiFidelity(p, budget=20, seed=2))
    assert [r.recipe for r in again.history] == [r.recipe for r in s.history]  # reproducible from the seed


def test_adaptive_branch_promotion_screens_on_agreeing_previews_only():
    """The adaptive plan with promotion = "branch": the pilot's paths are renoised right after every rung point (its
    agreement is that of a preview with a child's final); previews that rank the finals buy children of the best
    previews, previews that reverse them buy plain best-of-N, as with dropped
    paths. A final here is its root's value plus a little of its own path's (a child resembles its parent)."""
    base = fake_objective()

    def objective(agree):
        def f(r):
            root = base(Recipe.from_seed(r.seed)).potential
            if r.until is None:
                return Result(r, Status.OK, root + 0.3 * base(r).potential)
            return Result(r, Status.OK, agree * root + float(np.random.default_rng([r.seed, r.until]).normal()))
        return f

    got = {}
    for agree in (10.0, -10.0):
        s = _adaptive(branch_at=[], promotion="branch")
        best = s.optimize(objective(agree), batch_size=6)
        d = s.diagnostics()
        assert d["promotion"] == "branch" and s.spent_steps <= 200
        assert all([b.step for b in r.branches] == [2, 5] for r in s.pilot)
        got[agree] = d, best, s
    d, best, s = got[10.0]
    assert d["promote"] < 1 and d["plan"] == [15, 15] and d["agreement"]["2"] > 0.5
    pilot = {r.seed for r in s.pilot}
    rung = sorted((r for r in s.history if r.recipe.until == d["rung_step"] and r.recipe.seed not in pilot),
                  key=lambda r: -r.potential)
    children = [r.recipe for r in s.history if r.recipe.until is None and r.recipe.seed not in pilot]
    assert len(rung) == len(children) == 15  # the rung's count, as children of the top previews only
    assert {c.seed for c in children} == {r.recipe.seed for r in rung[:promoted(15, d["promote"])]}
    assert all(c.branches[0].step == d["rung_step"] for c in children)
    assert got[-10.0][0]["promote"] == 1.0 and got[-10.0][0]["plan"] == [15]
