import pytest
from test_strategies import drive
from toy import ToyGenerator, ToyMeanScorer, ToyScorer

from eacps import Result, Status
from eacps.engine import Engine
from eacps.potential import Criterion, Potential
from eacps.strategies.multi_fidelity import MultiFidelity, MultiFidelityParams, plan


def test_plan_uses_the_budget():
    assert plan(20, 1, 0.25) == [16, 4]
    assert plan(70, 2, 0.25) == [52, 13, 4]  # 53 previews would need 53 + 14 + 4 = 71
    with pytest.raises(ValueError, match="too small"):
        plan(1, 1, 0.5)


def test_successive_halving_promotes_the_best_previews():
    s = drive(MultiFidelity(MultiFidelityParams(rungs=[3], promote=0.25), budget=20, seed=0), batch=7)
    previews, finals = s.history[:16], s.history[16:]
    assert all(r.recipe.steps == 3 for r in previews) and all(r.recipe.steps is None for r in finals)
    top = sorted(previews, key=lambda r: -r.potential)[:4]
    assert [r.recipe.with_steps(None) for r in finals] == [r.recipe.with_steps(None) for r in top]
    assert s.best in finals  # previews are never the best
    assert s.preview_rank_correlation() == pytest.approx(1.0)  # this objective ignores steps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_failed_previews_are_not_promoted(seed):
    fail = lambda r: r.steps == 3 and r.seed % 2 == 0  # noqa: E731
    s = drive(MultiFidelity(budget=20, seed=seed), fail=fail)
    previews, finals = s.history[:16], s.history[16:]
    failed = {r.recipe.with_steps(None) for r in previews if not r.ok}
    assert 0 < len(failed) <= 16 - 4, "some previews fail, and enough succeed to fill the finals"
    top = sorted((r for r in previews if r.ok), key=lambda r: -r.potential)[:4]
    assert [r.recipe for r in finals] == [r.recipe.with_steps(None) for r in top]  # the best OK previews, no others
    assert not failed & {r.recipe for r in finals}


def test_budget_for_equal_cost():
    b = MultiFidelity.budget_for(20, full_steps=15)
    sizes = plan(b, 1, 0.25)
    assert sizes[0] * 3 + sizes[1] * 15 <= 20 * 15 < plan(b + 1, 1, 0.25)[0] * 3 + plan(b + 1, 1, 0.25)[1] * 15 + 15


def test_preview_potential_cascade(cond):
    cheap = Potential([Criterion("realism", ToyMeanScorer(), 1.0)])
    full = Potential([Criterion("realism", ToyScorer(), 4.0), Criterion("consistency", ToyMeanScorer(), 1.0)])
    eng = Engine(ToyGenerator(), full, preview_potential=cheap, batch_size=8)
    res = eng.run(cond, MultiFidelity(budget=20, seed=0))
    assert res.cost.scorer_calls == {"realism": 20, "consistency": 4}  # the expensive criterion saw finalists only
    assert res.cost.steps == 16 * 3 + 4 * 10
    assert all(set(c.scores) == {"realism"} for c in res.history[:16])
    assert res.best in res.history[16:]
    eng.close()


def test_results_at_full_fidelity_only_are_best():
    s = MultiFidelity(budget=20, seed=0)
    rs = s.ask(16)
    s.tell([Result(r, Status.OK, 100.0) for r in rs])
    assert s.best is None
