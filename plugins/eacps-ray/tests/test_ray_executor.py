"""The ray executor on a local 2-CPU Ray: same results as the local executor, bounded fault recovery,
each candidate stored exactly once."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import toy
from crashy import CrashyGenerator, CrashyParams, DriftGenerator
from eacps_ray import RayExecutor, RayParams, SpecError
from eacps_ray.executor import RayExecutorError
from eacps_ray.specs import worker_spec

from eacps import Condition, Status, plugins
from eacps.config import ConfigError, create
from eacps.engine.engine import Engine, Job
from eacps.engine.executor import LocalExecutor
from eacps.potential import Calibration, Criterion, Potential
from eacps.store import Store
from eacps.strategies.best_of_n import BestOfN
from eacps.strategies.eacps import EACPS
from eacps.strategies.multi_fidelity import MultiFidelity

from .conftest import PYTHONPATH

FAST = {"cpus_per_actor": 0.5, "pythonpath": PYTHONPATH}


def toy_potential() -> Potential:
    return Potential(
        [
            Criterion("realism", toy.ToyScorer(toy.ToyScoreParams(pixel=5)), 4.0),
            Criterion("consistency", toy.ToyMeanScorer(), 1.0, Calibration(kind="affine", scale=0.9)),
        ]
    )


def run(tmp: Path, generator, potential, executor, jobs, *, batch_size=3):
    """Run ``jobs`` in a fresh store: (comparable histories, store rows, results, live workers at the end)."""
    store = Store.open(tmp)
    eng = Engine(generator, potential, store, batch_size=batch_size, executor=executor)
    try:
        results = eng.run_all(jobs)
        rows = store.candidates()
        workers = executor.workers  # live actors, before release() stops them
    finally:
        eng.release()
        store.close()
    hist = [
        [(c.seq, c.recipe.key, c.status, c.potential, c.reason) for c in r.history]
        + [r.best.recipe.key if r.best else None]
        for r in results
    ]
    return hist, rows, results, workers


def assert_stored_once(rows, n_search: int, n_prior: int) -> None:
    search = [r for r in rows if r.role == "search"]
    assert len(search) == n_search
    assert len([r for r in rows if r.role == "prior"]) == n_prior
    keys = Counter((r.search, r.seq) for r in rows)
    assert max(keys.values()) == 1, "a candidate was stored twice"
    for sid in {r.search for r in search}:  # nothing lost: seq 0..n-1 in every search
        seqs = sorted(r.seq for r in search if r.search == sid)
        assert seqs == list(range(len(seqs)))


# -- specs and params (no Ray) ----------------------------------------------------------------------
def test_specs_rebuild_the_engine_objects_with_equal_fingerprints(test_plugins):
    gen = toy.ToyGenerator(toy.ToyGeneratorParams(steps=7))
    pot = toy_potential()
    spec = worker_spec(gen, pot)
    assert spec.generator.name == "toy" and spec.generator.params["steps"] == 7
    assert spec.plugin_modules == ("toy",)  # an in-process plugin: actors import its module
    assert spec.entry_points == ()  # nothing else to load
    assert spec.generator.build().fingerprint() == gen.fingerprint()
    assert spec.potential.build().fingerprint() == pot.fingerprint()

    class Unregistered(toy.ToyGenerator):
        name = "toy"  # same name, another class: not what the registry would build

    with pytest.raises(SpecError, match="not a registered generator"):
        worker_spec(Unregistered(), pot)


def test_registered_under_entry_point_with_strict_params():
    assert plugins.get("executor", "ray") is RayExecutor
    ex = create("executor", "ray", {"num_generators": 3, "queue_depth": 4})
    assert isinstance(ex, RayExecutor) and ex.params.num_generators == 3
    with pytest.raises(ConfigError, match="unknown parameter"):
        create("executor", "ray", {"num_gpus": 1})


# -- on Ray ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_refuses_more_actors_than_the_cluster_holds(ray_session, test_plugins, tmp_path):
    ex = RayExecutor(RayParams(num_generators=4, cpus_per_actor=1.0, pythonpath=PYTHONPATH))
    eng = Engine(toy.ToyGenerator(), toy_potential(), executor=ex)
    with pytest.raises(RayExecutorError, match="need 5 CPUs"):
        eng.run(Condition("c"), BestOfN(budget=3, seed=0))
    eng.close()


@pytest.fixture
def one_thread():
    """Actors get one torch thread per CPU (Ray sets OMP_NUM_THREADS); the reference run uses as many, since
    a different thread count changes float reductions in the last bits (and then an 8-bit pixel)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.mark.slow
def test_digits_same_results_as_local_executor(ray_session, one_thread, tmp_path):
    """A generator actor feeding a scorer actor: the same rows, potentials and bests as ``local``, bit for bit."""

    def build():
        gen = create("generator", "digits", {"steps": 4})
        pot = Potential(
            [
                Criterion("consistency", create("scorer", "digits-consistency"), 1.0),
                Criterion("realism", create("scorer", "digits-realism"), 4.0),
            ]
        )
        return gen, pot

    conds = [Condition(f"d{k}", class_label=k) for k in (3, 7)]

    def jobs():
        return [Job(c, s) for c in conds for s in (EACPS(budget=12, seed=1), BestOfN(budget=6, seed=2))]

    local, local_rows, _, _ = run(tmp_path / "local", *build(), LocalExecutor(), jobs(), batch_size=4)
    ex = RayExecutor(RayParams(num_generators=1, num_scorers=1, **FAST))
    seen_workers = []
    gen, pot = build()
    orig = ex.submit

    def submit(batch):
        seen_workers.append(ex.workers)
        return orig(batch)

    ex.submit = submit
    remote, rows, results, workers = run(tmp_path / "ray", gen, pot, ex, jobs(), batch_size=4)
    assert remote == local
    assert [(r.search, r.seq, r.recipe.key, r.potential) for r in rows] == [
        (r.search, r.seq, r.recipe.key, r.potential) for r in local_rows
    ]
    assert_stored_once(rows, n_search=2 * (12 + 6), n_prior=2)
    assert set(seen_workers) == {1} and workers == 1
    assert [i["role"] for i in ex.actor_info] == ["generator", "scorer"]
    assert len({i["pid"] for i in ex.actor_info} | {os.getpid()}) == 3  # two processes, models built once
    assert ex.stats["requeued"] == ex.stats["failed_batches"] == ex.stats["restarts"] == 0
    assert all(r.best is not None for r in results)


@pytest.mark.slow
def test_actor_killed_mid_batch_loses_and_duplicates_nothing(ray_session, test_plugins, tmp_path):
    """ray.kill of a busy generator actor: it is replaced, its batches re-run, every candidate stored once."""
    conds = [Condition(f"c{i}") for i in range(3)]

    def jobs():
        return [Job(c, BestOfN(budget=12, seed=i)) for i, c in enumerate(conds)]

    log = tmp_path / "gen.log"
    local, _, _, _ = run(tmp_path / "local", toy.ToyGenerator(), toy_potential(), LocalExecutor(), jobs())
    ex = RayExecutor(RayParams(num_generators=2, num_scorers=1, max_restarts=2, **FAST))
    gen = toy.ToyGenerator(toy.ToyGeneratorParams(sleep=0.25, log=str(log)))
    killed = []

    def killer():  # once actors are generating (the log grows), kill generator actor 0 in its next batch
        import ray

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.exists() and len(log.read_text().splitlines()) >= 3:  # the prior + two batches
                handle = ex.actors("generator")[0]
                ray.kill(handle, no_restart=False)
                killed.append(handle)
                return
            time.sleep(0.02)

    t = threading.Thread(target=killer)
    t.start()
    remote, rows, _, _ = run(tmp_path / "ray", gen, toy_potential(), ex, jobs())
    t.join()
    assert killed, "the actor was never killed"
    assert ex.stats["restarts"] == 1
    assert ex.stats["requeued"] >= 1  # it was holding a batch: that batch ran again elsewhere
    assert remote == local  # nothing lost, nothing changed, same order
    assert_stored_once(rows, n_search=36, n_prior=3)
    assert all(r.status is Status.OK for r in rows)


def test_a_batch_that_finished_before_its_actor_died_is_not_taken_for_the_one_that_killed_it(ray_session):
    """A batch's result can be in Ray's store before the dispatch thread hears of it (its ``ref_future`` resolves on
    Ray's event loop), while the next batch already reports the actor's death. Counted as unfinished, the finished
    batch was charged with the death and run again, and the one that killed the actor ran once more (an extra
    death, a lost actor slot; with no retries left, a healthy batch FAILED)."""
    from concurrent.futures import Future

    from eacps_ray.executor import _Task, finished_before_death

    ray = ray_session

    @ray.remote(num_cpus=0.5)
    def died():
        raise RuntimeError("the actor's death")

    @ray.remote(num_cpus=0.5)
    def running():
        time.sleep(5)

    refs = [ray.put(["images"]), died.remote(), running.remote()]
    ray.wait(refs[:2], num_returns=2, timeout=60)
    tasks = []
    for ref in refs:
        t = _Task(recipes=[], context_ref=None, future=Future())
        t.ref, t.ref_future = ref, Future()  # Ray has not told the dispatch thread yet
        tasks.append(t)
    delivered = _Task(recipes=[], context_ref=None, future=Future())
    delivered.ref_future = Future()
    delivered.ref_future.set_result([])
    assert finished_before_death([*tasks, delivered], grace_s=0.5) == [True, False, False, True]
    assert [t.settled_ok() for t in tasks] == [False, False, False]  # what the dispatch thread knew


@pytest.mark.slow
def test_batch_failed_with_reason_after_retry_bound(ray_session, test_plugins, tmp_path):
    """A batch that kills its actor every time: retried, then FAILED with the reason; other searches are
    unaffected; once no actor is left, pending batches fail with that reason."""
    conds = [Condition("ok"), Condition("doomed")]

    def jobs():
        return [Job(c, BestOfN(budget=3, seed=0)) for c in conds]

    local, _, _, _ = run(tmp_path / "local", CrashyGenerator(), toy_potential(), LocalExecutor(), jobs())
    # the doomed condition's prior and its one search batch each kill the actor twice: 4 restarts
    ex = RayExecutor(RayParams(num_generators=1, num_scorers=0, max_restarts=4, max_task_retries=1, **FAST))
    doomed_gen = CrashyGenerator(CrashyParams(doomed="doomed"))
    remote, rows, results, workers = run(tmp_path / "ray", doomed_gen, toy_potential(), ex, jobs())
    assert_stored_once(rows, n_search=6, n_prior=2)
    doomed = results[1]
    assert remote[0] == local[0]
    assert all(c.status is Status.FAILED for c in doomed.history) and doomed.best is None
    assert all("failed this batch 2 time(s) (max_task_retries=1)" in c.reason for c in doomed.history)
    assert "ActorDiedError" in doomed.history[0].reason
    assert doomed.prior.status is Status.FAILED and "max_task_retries=1" in doomed.prior.reason
    assert ex.stats["restarts"] == 4 and workers == 1

    # no restarts left to spend: the actor dies for good and nothing else can run
    ex = RayExecutor(RayParams(num_generators=1, num_scorers=0, max_restarts=0, max_task_retries=0, **FAST))
    jobs2 = [Job(Condition("doomed"), BestOfN(budget=3, seed=0)), Job(Condition("ok"), BestOfN(budget=6, seed=0))]
    _, rows, results, workers = run(
        tmp_path / "ray2", CrashyGenerator(CrashyParams(doomed="doomed")), toy_potential(), ex, jobs2
    )
    assert_stored_once(rows, n_search=9, n_prior=2)
    reasons = {c.reason for r in results for c in r.history if c.status is Status.FAILED}
    assert any("no live ray generator actor is left" in r for r in reasons)
    assert workers == 0


@pytest.mark.slow  # starts a local Ray (about 18 s)
def test_refuses_actors_whose_rebuilt_models_differ(ray_session, test_plugins):
    gen = DriftGenerator()
    gen.drift = 1  # state outside its params: an actor would build a different model
    eng = Engine(gen, toy_potential(), executor=RayExecutor(RayParams(num_scorers=0, **FAST)))
    with pytest.raises(RayExecutorError, match="fingerprint"):
        eng.run(Condition("c"), BestOfN(budget=3, seed=0))
    eng.close()


@pytest.mark.slow
def test_worker_sigkill_at_20_random_points(ray_session, test_plugins, tmp_path):
    """Reliability promise 1 for Ray workers: the generator actor's process is killed with SIGKILL at 20
    random points of a run (seeded); the run finishes, every candidate is stored exactly once, and the
    results equal the local executor's."""
    import contextlib
    import random
    import signal

    conds = [Condition(f"k{i}") for i in range(4)]

    def jobs():
        return [Job(c, EACPS(budget=20, seed=i)) for i, c in enumerate(conds)]

    log, pid_file = tmp_path / "gen.log", tmp_path / "gen.pid"
    local, _, _, _ = run(tmp_path / "local", toy.ToyGenerator(), toy_potential(), LocalExecutor(), jobs(),
                         batch_size=2)
    ex = RayExecutor(RayParams(num_generators=1, num_scorers=0, max_restarts=40, max_task_retries=40, **FAST))
    gen = toy.ToyGenerator(toy.ToyGeneratorParams(sleep=0.05, log=str(log), pid_file=str(pid_file)))
    rng = random.Random(20)
    points = sorted(rng.sample(range(2, 40), 20))  # kill when the generation log reaches these lengths
    kills: list[int] = []
    done = threading.Event()

    def killer():
        for point in points:
            while not done.is_set():  # a batch in progress past this point, in a process not killed yet
                n = len(log.read_text().splitlines()) if log.exists() else 0
                pid = int(pid_file.read_text()) if pid_file.exists() else None
                if n >= point and pid is not None and pid not in kills:
                    with contextlib.suppress(ProcessLookupError):  # it may have just finished and died
                        os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
                    break
                time.sleep(0.005)

    t = threading.Thread(target=killer)
    t.start()
    try:
        remote, rows, _, _ = run(tmp_path / "ray", gen, toy_potential(), ex, jobs(), batch_size=2)
    finally:
        done.set()
        t.join()
    n_log = len(log.read_text().splitlines())
    assert len(kills) == 20 and len(set(kills)) == 20, (kills, n_log, points, ex.stats)  # 20 processes killed
    assert ex.stats["restarts"] >= 19 and ex.stats["requeued"] >= 1
    assert remote == local  # nothing lost, nothing changed, same order
    assert_stored_once(rows, n_search=80, n_prior=4)


@pytest.mark.slow
@pytest.mark.parametrize("num_scorers", [0, 1])
def test_standardize_calibration_works_on_ray(ray_session, one_thread, tmp_path, num_scorers):
    """Per-condition statistics (calibration.kind = "standardize", main and preview potentials) reach the actors:
    the same rows and potentials as the local executor, no candidate FAILED (issue 12: every one failed on Ray)."""

    def standardized() -> Potential:
        return Potential(
            [
                Criterion("consistency", create("scorer", "digits-consistency"), 1.0, Calibration(kind="standardize")),
                Criterion("realism", create("scorer", "digits-realism"), 4.0, Calibration(kind="standardize")),
            ],
            calibration_samples=4,
        )

    conds = [Condition(f"d{k}", class_label=k) for k in (2, 5)]

    def engine_run(path, executor):
        store = Store.open(path)
        eng = Engine(create("generator", "digits", {"steps": 4}), standardized(), store, batch_size=4,
                     executor=executor, preview_potential=standardized())
        try:
            results = eng.run_all([Job(c, MultiFidelity(budget=6, seed=i)) for i, c in enumerate(conds)])
            rows = store.candidates()
        finally:
            eng.release()
            store.close()
        return results, rows

    local, local_rows = engine_run(tmp_path / "local", LocalExecutor())
    ex = RayExecutor(RayParams(num_generators=1, num_scorers=num_scorers, **FAST))
    remote, rows = engine_run(tmp_path / "ray", ex)
    search = [r for r in rows if r.role == "search"]
    assert search and all(r.status is Status.OK for r in search), {r.reason for r in search if r.reason}
    assert any(r.recipe.until is not None for r in search)  # previews, scored by the preview potential
    assert [(r.search, r.seq, r.recipe.key, r.status, r.potential) for r in rows] == [
        (r.search, r.seq, r.recipe.key, r.status, r.potential) for r in local_rows
    ]
    assert [r.best.recipe.key for r in remote] == [r.best.recipe.key for r in local]
    assert all(0.0 <= s <= 10.0 for r in search for s in r.scores.values())  # standardized onto [0, 10]
