"""multi-fidelity over partial trajectories, in the engine: previews screened (by a cheaper potential when one is
set), the best continued, steps and scorer calls charged for the work done."""

import pytest
from toy import ToyGenerator, ToyGeneratorParams, ToyMeanScorer, ToyScorer

from eacps import Result, Status
from eacps.config import ConfigError
from eacps.engine import Engine
from eacps.potential import Criterion, Potential
from eacps.strategies.multi_fidelity import MultiFidelity, MultiFidelityParams, plan
from eacps.testing import fake_objective


def test_plan_uses_the_budget():
    assert plan(200, [2], 10, 0.25) == [48, 12]  # 48·2 + 12·8 = 192 <= 200 < 49·2 + 13·8
    assert plan(700, [2, 5], 10, 0.25) == [227, 57, 15]  # 227·2 + 57·3 + 15·5 = 700; 228 would need 702
    with pytest.raises(ValueError, match="cannot pay"):
        plan(5, [2], 10, 0.5)


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
    assert all(r.until == 2 for r in rs)
    s.tell([Result(r, Status.OK, 100.0) for r in rs])
    assert s.best is None


def test_preview_potential_cascade_in_the_engine(cond):
    cheap = Potential([Criterion("realism", ToyMeanScorer(), 1.0)])
    full = Potential([Criterion("realism", ToyScorer(), 4.0), Criterion("consistency", ToyMeanScorer(), 1.0)])
    gen = ToyGenerator(ToyGeneratorParams(stepping=True))
    eng = Engine(gen, full, preview_potential=cheap, batch_size=8)
    res = eng.run(cond, MultiFidelity(MultiFidelityParams(rungs=[0.2], promote=0.25), budget=20, seed=0))
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
