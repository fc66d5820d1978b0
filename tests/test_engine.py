import sqlite3

import numpy as np
import pytest
from toy import BadParams, BadScorer, ToyGenerator, ToyGeneratorParams

from eacps import Condition, Recipe, Status, search
from eacps.engine import Engine
from eacps.potential import Criterion, Potential
from eacps.store import Store
from eacps.strategies.best_of_n import BestOfN
from eacps.strategies.eacps import EACPS


def test_search_returns_the_argmax_and_the_whole_history(toy_potential, cond):
    res = search(cond, generator=ToyGenerator(), potential=toy_potential, strategy="eacps", budget=20, seed=0)
    assert len(res.history) == 20
    assert res.best.potential == max(c.potential for c in res.history)
    assert res.prior.recipe == Recipe.from_seed(0) and res.prior.role == "prior"
    assert res.improvement == pytest.approx(res.best.potential - res.prior.potential)
    # the winner regenerates exactly from its recipe (the stored image is its 8-bit quantization)
    again = ToyGenerator().generate([res.best.recipe], cond)[0].image
    assert np.array_equal(np.round(again * 255), np.round(res.best.image * 255))
    assert res.cost.candidates == 20 and res.cost.steps == 200 and res.cost.scorer_calls == {
        "realism": 20, "consistency": 20}


def test_same_config_same_results(tmp_path, toy_potential, cond):
    def run(d):
        r = search(cond, generator=ToyGenerator(), potential=toy_potential, strategy="eacps", budget=20, seed=3,
                   run_dir=d, batch_size=6)
        return [(c.recipe.key, c.status, c.potential) for c in r.history], r.best.recipe

    assert run(tmp_path / "a") == run(tmp_path / "b")


def test_resume_reuses_every_finished_candidate(tmp_path, toy_potential, cond):
    gen = ToyGenerator()
    first = search(cond, generator=gen, potential=toy_potential, budget=20, run_dir=tmp_path)
    assert gen.generated == 21  # prior + 20
    again = search(cond, generator=gen, potential=toy_potential, budget=20, run_dir=tmp_path)
    assert gen.generated == 21  # nothing generated twice
    assert again.cost.reused == 20 and again.cost.generated == 0 and again.cost.candidates == 20
    assert [c.id for c in again.history] == [c.id for c in first.history]
    n = sqlite3.connect(tmp_path / "store.sqlite").execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
    assert n == 21


def test_strategies_sharing_seeds_share_the_store_but_are_charged_in_full(tmp_path, toy_potential, cond):
    gen = ToyGenerator()
    with Store.open(tmp_path) as store:
        eng = Engine(gen, toy_potential, store, batch_size=8)
        bon = eng.run(cond, BestOfN(budget=20, seed=0))
        before = gen.generated
        ea = eng.run(cond, EACPS(budget=20, seed=0))
    assert ea.cost.reused == 8 and ea.cost.candidates == 20  # stage 1 = best-of-n's first 8 seeds
    assert gen.generated - before == 12
    assert [c.recipe for c in ea.history[:8]] == [c.recipe for c in bon.history[:8]]
    assert {c.potential for c in ea.history[:8]} == {c.potential for c in bon.history[:8]}


def test_failed_candidates_are_recorded_and_never_best(toy_potential, cond):
    pot = Potential([*toy_potential.criteria, Criterion("identity", BadScorer(BadParams(value="nan", every=2)), 1.5)])
    res = search(cond, generator=ToyGenerator(), potential=pot, strategy="best-of-n", budget=30)
    failed = [c for c in res.history if c.status is Status.FAILED]
    assert 5 < len(failed) < 25
    assert all(c.potential is None and "returned NaN" in c.reason for c in failed)
    assert all("realism" in c.scores for c in failed)  # the other sub-scores are kept
    assert res.best.status is Status.OK
    assert res.best.potential == max(c.potential for c in res.history if c.status is Status.OK)


def test_a_failing_generator_fails_its_batch_and_the_run_goes_on(toy_potential, cond):
    res = search(cond, generator=ToyGenerator(ToyGeneratorParams(fail_all=True)), potential=toy_potential,
                 strategy="eacps", budget=20)
    assert len(res.history) == 20 and res.best is None
    assert all(c.status is Status.FAILED and "toy generator exploded" in c.reason for c in res.history)


def test_black_images_are_filtered_not_scored(toy_potential, cond):
    gen = ToyGenerator(ToyGeneratorParams(black_below=-0.2))
    res = search(cond, generator=gen, potential=toy_potential, strategy="best-of-n", budget=30)
    filtered = [c for c in res.history if c.status is Status.FILTERED]
    assert filtered and all(c.reason == "all-black image" and c.scores == {} for c in filtered)
    assert res.cost.scorer_calls["realism"] == 30 - len(filtered)


def test_fidelity_is_part_of_the_recipe(toy_potential, cond):
    eng = Engine(ToyGenerator(), toy_potential)
    r = Recipe.from_seed(5)
    (full, low), _ = eng.evaluate([r, r.with_steps(2)], cond, search="s", seq0=0)
    assert full.steps == 10 and low.steps == 2 and full.potential != low.potential
    assert eng.cache_key(r, cond) == eng.cache_key(r.with_steps(10), cond)
    eng.close()


def test_cache_key_separates_conditions_and_setups(toy_potential):
    a, b = Condition("a", class_label=1), Condition("a", class_label=2)
    e1 = Engine(ToyGenerator(), toy_potential)
    e2 = Engine(ToyGenerator(ToyGeneratorParams(steps=5)), toy_potential)
    r = Recipe.from_seed(1)
    assert len({e1.cache_key(r, a), e1.cache_key(r, b), e2.cache_key(r, a)}) == 3
    e1.close()
    e2.close()


def test_a_second_process_cannot_take_the_run_directory(tmp_path):
    from eacps.store import RunLockedError

    with Store.open(tmp_path), pytest.raises(RunLockedError, match="in use"):
        Store.open(tmp_path)


def test_overlapped_execution_equals_the_sequential_engine(toy_potential):
    """register_executors: the built-in 'local' executor overlaps work without changing any result."""
    from eacps import plugins
    from eacps.engine import Job
    from eacps.executor import InlineExecutor, LocalExecutor, LocalParams
    from eacps.strategies.multi_fidelity import MultiFidelity
    from eacps.strategies.zero_order import ZeroOrder

    assert {"inline", "local"} <= set(plugins.get_registry().names("executor"))
    conds = [Condition(f"c{i}") for i in range(3)]

    def run(executor):
        gen = ToyGenerator(ToyGeneratorParams(sleep=0.002))
        eng = Engine(gen, toy_potential, batch_size=3, executor=executor)
        jobs = [Job(c, make(), label=name) for c in conds for name, make in [
            ("bon", lambda: BestOfN(budget=10, seed=1)), ("eacps", lambda: EACPS(budget=20, seed=1)),
            ("zo", lambda: ZeroOrder(budget=12, seed=1)), ("mf", lambda: MultiFidelity(budget=20, seed=1))]]
        res = eng.run_all(jobs)
        eng.close()
        return [[(c.recipe.key, c.status, c.potential, c.seq) for c in r.history] + [r.best.recipe.key]
                for r in res]

    assert run(InlineExecutor()) == run(LocalExecutor(LocalParams(max_inflight=4)))


class OOMGenerator(ToyGenerator):
    """Raises out-of-memory for batches larger than ``limit``; records the batches it saw."""

    name = "toy-oom"

    def __init__(self, limit, kind="torch"):
        super().__init__()
        self.limit, self.kind, self.batches = limit, kind, []

    def generate(self, recipes, condition, *, steps=None):
        self.batches.append(len(recipes))
        if len(recipes) > self.limit:
            import torch

            raise torch.OutOfMemoryError("CUDA out of memory") if self.kind == "torch" else RuntimeError(
                "CUDA error: out of memory")
        return super().generate(recipes, condition, steps=steps)


@pytest.mark.parametrize("kind", ["torch", "runtime"])
def test_out_of_memory_splits_batches_and_keeps_noises(toy_potential, cond, kind):
    ref = search(cond, generator=ToyGenerator(), potential=toy_potential, strategy="best-of-n", budget=16,
                 batch_size=8)
    gen = OOMGenerator(limit=2, kind=kind)
    res = search(cond, generator=gen, potential=toy_potential, strategy="best-of-n", budget=16, batch_size=8)
    assert gen.batches[1:4] == [8, 4, 2]  # after the prior: split until it fits
    assert [(c.recipe, c.potential) for c in res.history] == [(c.recipe, c.potential) for c in ref.history]
    zero = OOMGenerator(limit=0, kind=kind)
    res = search(cond, generator=zero, potential=toy_potential, strategy="best-of-n", budget=4, batch_size=4)
    assert all(c.status is Status.FAILED and c.reason.startswith("out of memory at batch size 1")
               for c in res.history)
