import threading

import numpy as np
import pytest
from configs import digits, edit, write
from runs import count, digest, rows, session_versions
from toy import BadParams, BadScorer, ToyGenerator, ToyGeneratorParams, ToyScorer

from eacps import Condition, Recipe, Status, plugins, search
from eacps.commands.cli import main
from eacps.engine.engine import Engine
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
    assert count(tmp_path) == 21


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
    from eacps.engine.engine import Job
    from eacps.engine.executor import InlineExecutor, LocalExecutor, LocalParams
    from eacps.strategies.multi_fidelity import MultiFidelity
    from eacps.strategies.zero_order import ZeroOrder

    assert {"inline", "local"} <= set(plugins.get_registry().names("executor"))
    conds = [Condition(f"c{i}") for i in range(3)]

    def run(executor):
        gen = ToyGenerator(ToyGeneratorParams(sleep=0.002, stepping=True))  # multi-fidelity steps
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


# -- the parts and their one-way flow (issue 13), and the engine defects of issue 12 ---------------------------------

class PriorDistance(ToyScorer):
    """10 x mean |image - prior|: depends on the search's prior (0 when there is none)."""

    name = "toy-prior-distance"
    requires = ("prior",)

    def score(self, images, condition):
        if condition.prior is None:
            return [0.0 for _ in images]
        return [10.0 * float(np.mean(np.abs(img - condition.prior))) for img in images]


def test_the_prior_is_part_of_the_cache_key(tmp_path, toy_potential, cond):
    """Regression (issue 12): a search with prior_seed=1 reused the candidates scored against prior_seed=0."""
    pot = Potential([*toy_potential.criteria, Criterion("identity", PriorDistance(), 1.5)])
    with Store.open(tmp_path) as store:
        eng = Engine(ToyGenerator(), pot, store, batch_size=5)
        r0 = eng.run(cond, BestOfN(budget=10, seed=0), label="p0", prior_seed=0)
        r1 = eng.run(cond, BestOfN(budget=10, seed=0), label="p1", prior_seed=1)
        again = eng.run(cond, BestOfN(budget=10, seed=0), label="p0-again", prior_seed=0)
        eng.close()
    assert r0.prior.recipe != r1.prior.recipe
    assert r1.cost.reused == 0 and r1.cost.generated == 10  # nothing served from the other prior's search
    prior1 = r1.prior.image
    for c in r1.history:  # scored against its own prior
        want = 10.0 * float(np.mean(np.abs(c.image - prior1)))
        assert c.scores["identity"] == pytest.approx(want, abs=1e-5)
    assert again.cost.reused == 10  # the same prior still shares the store
    assert [c.potential for c in again.history] == [c.potential for c in r0.history]


class Previews(BestOfN):
    """Best-of-N whose every other candidate is a 3-step preview."""

    name = "toy-previews"

    def _ask(self, n):
        return [r.with_steps(3) if (self.asked + i) % 2 else r for i, r in enumerate(self.fresh_seeds(n))]


def test_a_standardized_preview_potential_is_calibrated(toy_potential, cond):
    """Regression (issue 12): with calibration.kind = "standardize" in the preview potential every preview
    FAILED ("no calibration statistics") and multi-fidelity silently promoted fresh seeds."""
    from eacps.potential import Calibration

    preview = Potential([Criterion("realism", ToyScorer(), 1.0, Calibration(kind="standardize"))],
                        calibration_samples=6)
    eng = Engine(ToyGenerator(), toy_potential, preview_potential=preview, batch_size=4)
    res = eng.run(cond, Previews(budget=12, seed=0))
    previews = [c for c in res.history if c.recipe.is_preview]
    assert len(previews) == 6 and all(c.status is Status.OK and 0 <= c.scores["realism"] <= 10 for c in previews)
    assert all(set(c.scores) == {"realism"} for c in previews)  # scored by the preview potential
    assert res.best is not None and not res.best.recipe.is_preview
    stats = eng.calibrator.stats[(cond.id, 0, "preview")]["realism"]
    assert stats[1] > 0
    rows = eng.store.candidates(search=f"calibration-preview/{cond.id}/0")
    assert len(rows) == 6 and all("realism" in r.scores for r in rows)
    eng.close()


class Recording:
    """An executor that records what it is given: the batch computer at start, Batches at submit."""

    name = "recording"

    def __init__(self):
        from eacps.engine.executor import InlineExecutor

        self.inner = InlineExecutor()
        self.started, self.batches = [], []
        self.capacity, self.workers = 1, 1

    def start(self, computer):
        self.started.append(computer)
        self.inner.start(computer)

    def submit(self, batch):
        self.batches.append(batch)
        return self.inner.submit(batch)

    def shutdown(self):
        pass


def test_executors_get_the_batch_computer_and_every_batch_including_calibration_and_priors(cond):
    from eacps.engine.batch import Batch, BatchComputer
    from eacps.potential import Calibration

    pot = Potential([Criterion("realism", ToyScorer(), 4.0, Calibration(kind="standardize")),
                     Criterion("identity", PriorDistance(), 1.0)], calibration_samples=4)
    ex = Recording()
    eng = Engine(ToyGenerator(), pot, executor=ex, batch_size=5)
    res = eng.run(cond, BestOfN(budget=10))
    prior_image = res.prior.image
    eng.close()
    assert len(ex.started) == 1 and type(ex.started[0]) is BatchComputer
    assert all(type(b) is Batch for b in ex.batches)
    kinds = [b.calibrate or ("prior" if b.prior is None else "search") for b in ex.batches]
    assert kinds == ["potential", "prior", "search", "search"]
    assert len(ex.batches[0].recipes) == 4 and ex.batches[0].recipes[0] == Recipe.from_seed(0)
    search = ex.batches[2]
    assert np.array_equal(search.prior, prior_image) and set(search.stats) == {"realism"}
    assert search.scoring_condition.prior is search.prior and cond.prior is None  # the caller's is untouched


def test_unit_costs_come_with_the_results(tmp_path, toy_potential, cond):
    """The meter adds up per-criterion seconds returned with each Scored (no counters read off a potential)."""
    from eacps.cost import META_KEY

    with Store.open(tmp_path) as store:
        eng = Engine(ToyGenerator(), toy_potential, store, batch_size=4)
        eng.run(cond, BestOfN(budget=12))
        totals = store.get_meta(META_KEY)
        assert eng.generated == 13  # the cost meter: the one count of generated candidates
        eng.close()
    assert totals["calls"] == {"realism": 13, "consistency": 13} and totals["steps"] == 130
    assert all(v > 0 for v in totals["score_seconds"].values())


class Forever:
    """A release-able 'forever' (the hung threads end with the test)."""

    release = threading.Event()


class HangingScorer(ToyScorer):
    name = "toy-hangs"

    def score(self, images, condition):
        Forever.release.wait(60)
        return super().score(images, condition)


class HangingGenerator(ToyGenerator):
    name = "toy-hangs"

    def generate(self, recipes, condition, *, steps=None):
        Forever.release.wait(60)
        return super().generate(recipes, condition, steps=steps)


@pytest.mark.parametrize("what", ["scorer", "generator"])
def test_a_plugin_that_never_returns_fails_its_candidates_and_the_run_ends(toy_potential, cond, what):
    gen = HangingGenerator() if what == "generator" else ToyGenerator()
    pot = toy_potential if what == "generator" else Potential([*toy_potential.criteria,
                                                               Criterion("identity", HangingScorer(), 1.0)])
    try:
        res = search(cond, generator=gen, potential=pot, strategy="best-of-n", budget=6, batch_size=3,
                     timeout_s=0.3)
    finally:
        Forever.release.set()
        Forever.release.clear()
    assert res.best is None and len(res.history) == 6
    reason = f"{what} 'toy-hangs' timed out after 0.3 s"
    assert all(c.status is Status.FAILED and reason in c.reason for c in [res.prior, *res.history])


class SeedOnly(ToyGenerator):
    name = "toy-seed-only"
    supports_noise_recipes = False


@pytest.mark.parametrize("strategy, params", [("zero-order", {}), ("eacps", {"neighborhood": "pcn"}),
                                              ("adaptive", {"strategy": "zero-order"})])
def test_a_strategy_the_generator_cannot_serve_is_refused_before_any_compute(toy_potential, cond, strategy, params):
    """Regression (issue 12): pCN or zero-order on a seed-only generator ended with every candidate FAILED."""
    from eacps.config import ConfigError

    gen = SeedOnly()
    with pytest.raises(ConfigError, match=f"search.strategy: strategy '{strategy}' needs noise_recipes, which "
                                          "generator 'toy-seed-only' does not offer"):
        search(cond, generator=gen, potential=toy_potential, strategy=strategy, params=params, budget=12)
    assert gen.calls == 0
    ok = search(cond, generator=gen, potential=toy_potential, strategy="eacps", budget=12)  # seed-offset: fine
    assert ok.best is not None


def test_capabilities_are_checked_by_the_config_before_any_compute(tmp_path, toy_plugin, capsys):
    import configs
    from test_cli import write

    from eacps import hookimpl, plugins
    from eacps.commands.cli import main

    class Plugin:
        @staticmethod
        @hookimpl
        def register_generators(register):
            register(SeedOnly)

    plugins.register_plugin(Plugin)
    try:
        cfg = write(tmp_path, configs.edit(configs.toy(strategy="zero-order", budget=10), "generator.name",
                                           "toy-seed-only"))
        assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    finally:
        plugins.unregister_plugin(Plugin)
    err = capsys.readouterr().err.strip()
    assert err == ("eacps: error: search.strategy: strategy 'zero-order' needs noise_recipes, which generator "
                   "'toy-seed-only' does not offer (it offers: none)")
    assert not (tmp_path / "run").exists()


def test_a_run_whose_every_candidate_failed_exits_non_zero(tmp_path, toy_plugin, capsys):
    import configs
    from test_cli import write

    from eacps.api import run_config
    from eacps.commands.cli import main

    cfg = write(tmp_path, configs.edit(configs.toy(), "generator.params", {"fail_all": True}))
    assert run_config(cfg, tmp_path / "api").all_failed
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    assert "every candidate FAILED" in capsys.readouterr().err
    good = write(tmp_path, configs.toy())
    assert not run_config(good, tmp_path / "good").all_failed


def test_condition_errors_come_before_loading_models_and_preflight(tmp_path, toy_plugin, capsys):
    """A condition the generator cannot serve is named before any model loads or any judge is called (which
    could be slow, or fail first and hide it)."""
    import configs
    from test_cli import write

    from eacps import hookimpl, plugins
    from eacps.commands.cli import main

    calls = []

    class Unready(ToyScorer):
        name = "toy-unready"

        def preflight(self):
            calls.append("preflight")
            raise RuntimeError("judge unreachable")

    class Plugin:
        @staticmethod
        @hookimpl
        def register_scorers(register):
            register(Unready)

    plugins.register_plugin(Plugin)
    try:
        cfg = configs.digits("best-of-n", 4, criteria=("realism",))
        cfg = configs.edit(cfg, "potential.criteria.judge", {"scorer": "toy-unready", "weight": 1.0})
        cfg = configs.edit(cfg, "conditions.0", {"id": "no-label", "extra": {"reference_index": 59}})
        assert main(["run", str(write(tmp_path, cfg)), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    finally:
        plugins.unregister_plugin(Plugin)
    err = capsys.readouterr().err.strip()
    assert err.startswith("eacps: error: conditions.0 ('no-label'):") and "class_label" in err, err
    assert calls == []


def test_a_scorer_preflight_failure_is_a_config_error_before_any_compute(tmp_path, toy_plugin, capsys):
    import configs
    from test_cli import write

    from eacps import hookimpl, plugins
    from eacps.commands.cli import main

    class NoKey(ToyScorer):
        name = "toy-no-key"

        def preflight(self):
            raise RuntimeError("environment variable TOY_KEY is not set")

    class Plugin:
        @staticmethod
        @hookimpl
        def register_scorers(register):
            register(NoKey)

    plugins.register_plugin(Plugin)
    log = tmp_path / "gen.log"
    try:
        cfg = configs.edit(configs.toy(), "potential.criteria.consistency.scorer", "toy-no-key")
        cfg = write(tmp_path, configs.edit(cfg, "generator.params", {"log": str(log)}))
        assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    finally:
        plugins.unregister_plugin(Plugin)
    assert capsys.readouterr().err.strip() == (
        "eacps: error: potential.criteria.consistency.params: toy-no-key is not ready: RuntimeError: environment "
        "variable TOY_KEY is not set")
    assert not log.exists()  # nothing generated


@pytest.mark.parametrize("evidence", ["", "a plugin called os._exit(3)\n"])
def test_batches_left_in_flight_by_a_dead_process(tmp_path, toy_potential, cond, evidence, capsys):
    """Crash evidence charges a death (two: FAILED, not computed); a kill from outside only isolates the batch."""
    from eacps.engine.planner import CRASH_FILE, MAX_DEATHS

    def engine(store):
        return Engine(ToyGenerator(), toy_potential, store, batch_size=4, executor=Recording())

    with Store.open(tmp_path) as store:  # the in-flight log of a batch, as a dead process leaves it
        eng = engine(store)
        b = eng.planner.plan([Recipe.from_seed(s) for s in (11, 12)], cond, search="s", seq0=0, role="search",
                             strategy="x")
        eng.planner.begin(b)
        eng.close()
    for death in range(1, MAX_DEATHS + 1):
        (tmp_path / CRASH_FILE).write_text(evidence)
        with Store.open(tmp_path) as store:
            eng = engine(store)
            again = eng.planner.plan(b.recipes, cond, search="s", seq0=0, role="search", strategy="x")
            assert again.id == b.id and again.alone and again.deaths == (death if evidence else 0)
            eng.planner.begin(again)  # and the process dies again
            eng.close()
        err = capsys.readouterr().err
        assert f"batch {b.id} of search 's' (seq 0..1)" in err
        assert ("died with it" in err) == bool(evidence) and ("killed from outside?" in err) != bool(evidence)
    with Store.open(tmp_path) as store:
        eng = engine(store)
        cands, _ = eng.evaluate(b.recipes, cond, search="s", seq0=0)
        eng.close()
    if evidence:
        assert all(c.status is Status.FAILED and "died 2 times while computing this batch" in c.reason for c in cands)
        assert eng.executor.batches == []  # not computed again
    else:
        assert all(c.status is Status.OK for c in cands) and len(eng.executor.batches) == 1


# -- promise 11: the same config twice (moved from tests/reliability/test_11_determinism.py) -------------------------
# Promise 11: the same config twice gives identical stores (recipes, statuses, potentials, scores, images),
# and the library versions are recorded with the run.


CONFIG = digits("eacps", 12, batch_size=4, params={"k_global": 4, "m": 2, "k_local": 4, "neighborhood": "pcn"})
CONFIG = edit(CONFIG, "generator.params", {"steps": 4})
CONFIG = edit(CONFIG, "conditions", [{"id": "seven", "class_label": 7, "extra": {"reference_index": 7}}])
COLS = "search, seq, role, condition, recipe, steps, cache_key, status, potential, reason, scores, image"


def test_same_config_twice_identical_stores(tmp_path, monkeypatch, figures):
    monkeypatch.setenv("EACPS_LOAD_PLUGINS", "eacps-digits")
    plugins.reset()
    cfg = write(tmp_path / "digits.toml", CONFIG)
    stores = []
    try:
        for name in ("one", "two"):
            assert main(["run", str(cfg), "--out", str(tmp_path / name), "--quiet"]) == 0
            stores.append(rows(tmp_path / name, COLS))
            versions = session_versions(tmp_path / name)[0]
    finally:
        plugins.reset()
    assert len(stores[0]) == 13 and stores[0] == stores[1]
    images = [{k: v for k, v in digest(tmp_path / n).items() if k.startswith("images/")} for n in ("one", "two")]
    assert len(images[0]) == 13 and images[0] == images[1]  # bit-identical PNGs
    for lib in ("python", "eacps", "torch", "numpy", "diffusers", "eacps-digits"):
        assert versions.get(lib), lib
    figures("11-determinism", runs=2, candidates_checked=len(stores[0]), differences=0)
