"""Promise 18: a plugin that never returns, or a SIGINT/SIGTERM, never hangs or tears a run.

* With ``[executor] timeout_s``, a generator call or a scorer call that never returns fails its candidates
  with the reason (``timed out after 0.5 s``); the run goes on and ends.
* SIGINT/SIGTERM stop a real ``eacps run`` after the batches in flight are stored: exit 130/143, one line with
  the resume hint, no traceback, nothing computed and lost; the resume completes to the uninterrupted result.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest
from configs import edit, toy, write
from runs import rows
from test_resume_kill import config, start, wait_for_rows
from toy import ToyGenerator, ToyMeanScorer

from eacps import Condition, Recipe, Status, search
from eacps.engine.engine import Engine
from eacps.engine.executor import InlineExecutor, LocalExecutor
from eacps.engine.planner import CRASH_FILE
from eacps.engine.scheduler import Job, SearchResult, prior_search
from eacps.errors import Interrupted
from eacps.potential import Criterion, Potential
from eacps.store import Store
from eacps.strategies.best_of_n import BestOfN
from eacps.strategies.eacps import EACPS
from eacps.strategy import StrategyError

TESTS = Path(__file__).parent

HUNG_RUNNER = """
import sys, threading
sys.path.insert(0, {tests!r})
import numpy as np
import toy
from eacps import hookimpl, plugins
from eacps.commands.cli import main

FOREVER = threading.Event()

class HangGen(toy.ToyGenerator):
    name = "toy-hang-gen"

    def generate(self, recipes, condition, *, steps=None):
        if any(r.seed is not None and r.seed % 5 == 1 for r in recipes):
            FOREVER.wait()
        return super().generate(recipes, condition, steps=steps)

class HangScore(toy.ToyMeanScorer):
    name = "toy-hang-score"

    def score(self, images, condition):
        if any(round(float(im.reshape(-1)[1]) * 1000) % 4 == 0 for im in images):
            FOREVER.wait()
        return super().score(images, condition)

class Plugin:
    @staticmethod
    @hookimpl
    def register_generators(register):
        register(HangGen)

    @staticmethod
    @hookimpl
    def register_scorers(register):
        register(HangScore)

plugins.register_plugin(toy)
plugins.register_plugin(Plugin)
sys.exit(main(["run", {cfg!r}, "--out", {out!r}, "--quiet"]))
"""

HUNG_CONFIG = edit(toy(strategy="best-of-n", budget=12, batch_size=1), "generator", {"name": "toy-hang-gen"})
HUNG_CONFIG = edit(HUNG_CONFIG, "potential.criteria.consistency.scorer", "toy-hang-score")
HUNG_CONFIG = edit(HUNG_CONFIG, "executor", {"name": "inline", "timeout_s": 0.5})
HUNG_CONFIG = edit(HUNG_CONFIG, "conditions", HUNG_CONFIG["conditions"][:1])


@pytest.mark.slow
def test_a_plugin_that_never_returns_fails_its_candidates_and_the_run_ends(tmp_path, figures):
    cfg, out = write(tmp_path / "cfg.toml", HUNG_CONFIG), tmp_path / "run"
    code = HUNG_RUNNER.format(tests=str(TESTS), cfg=str(cfg), out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr  # some candidates are fine: the run is not all-failed
    got = rows(out, "recipe, status, reason, image")
    gen_hung = [r for r in got if "generator 'toy-hang-gen' timed out after 0.5 s" in (r[2] or "")]
    score_hung = [r for r in got if "consistency (toy-hang-score): CallTimeout: scorer 'toy-hang-score' timed out "
                  "after 0.5 s" in (r[2] or "")]
    ok = [r for r in got if r[1] == "OK"]
    assert len(got) == 13 and gen_hung and score_hung and ok
    assert len(gen_hung) + len(score_hung) + len(ok) == len(got)  # every candidate: OK or FAILED with the reason
    assert all(r[1] == "FAILED" and r[3] is None for r in gen_hung)  # no image from a generator that never returned
    assert all(r[1] == "FAILED" and r[3] is not None for r in score_hung)  # the image is kept, unscored
    figures("18-hung-plugins", hung_generator_calls=len(gen_hung), hung_scorer_calls=len(score_hung),
            candidates_checked=len(got), runs_that_ended=1)


@pytest.mark.slow
def test_sigint_and_sigterm_stop_after_the_batches_in_flight_are_stored(tmp_path, figures):
    ref_out, ref_log = tmp_path / "ref", tmp_path / "ref.log"
    ref = start(config(tmp_path, ref_log), ref_out)
    assert ref.wait(120) == 0, ref.stderr.read().decode()
    reference = rows(ref_out)

    out, rng, signals = tmp_path / "run", random.Random(18), 0
    log = tmp_path / "gen.log"
    cfg = config(tmp_path, log)
    for sig in [signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGTERM]:
        before = len(rows(out)) if (out / "store.sqlite").exists() else 0
        logged = len(log.read_text().splitlines()) if log.exists() else 0
        proc = start(cfg, out)
        wait_for_rows(out, min(before + rng.randint(2, 6), 36), proc, timeout=300)  # 42 rows in all
        proc.send_signal(sig)
        assert proc.wait(120) == 128 + sig
        err = proc.stderr.read().decode()
        assert f"interrupted by {signal.Signals(sig).name}; every finished batch is stored: rerun the same command " \
               "to resume" in err and "Traceback" not in err, err
        stored = rows(out)
        assert len(log.read_text().splitlines()) - logged == len(stored) - before  # computed = stored (none lost)
        signals += 1
    last = start(cfg, out)
    assert last.wait(120) == 0, last.stderr.read().decode()
    final = rows(out)
    assert final == reference  # the same rows as a run never interrupted
    figures("18-hung-plugins", signals=signals, clean_exits=signals, candidates_checked=len(final), lost=0)


# -- the ask/tell loop in process, on the toy generator ----------------------------------------------------------------
class Recording(BestOfN):
    """best-of-n that records, at each ask, how many candidates the store holds and how many results it was told."""

    def __init__(self, store: Store, **kw):
        super().__init__(**kw)
        self.store, self.at_ask, self.told = store, [], []

    def _ask(self, n):
        self.at_ask.append((len(self.store.candidates(role="search")), len(self.told)))
        return super()._ask(n)

    def _tell(self, results):
        self.told.extend(results)
        super()._tell(results)


class SlowFirst(LocalExecutor):
    """Finishes the search's first batch (the second submitted: the prior comes first) only after the next one was
    submitted: results arrive out of order."""

    def submit(self, batch):
        fut = super().submit(batch)
        self.n = getattr(self, "n", 0) + 1
        if self.n == 2:
            self.next = threading.Event()
            out: Future = Future()

            def later():
                self.next.wait(5)
                fut.add_done_callback(lambda f: out.set_result(f.result()))

            threading.Thread(target=later, daemon=True).start()
            return out
        if self.n == 3:
            fut.add_done_callback(lambda _: self.next.set())  # the later batch is done before the first
        return fut


def test_results_are_stored_and_told_in_the_order_asked(tmp_path, toy_potential, cond):
    with Store.open(tmp_path) as store:
        strat = Recording(store, budget=12, seed=0)
        eng = Engine(ToyGenerator(), toy_potential, store, batch_size=3, executor=SlowFirst())
        res = eng.run(cond, strat)
        stored = store.candidates(search=res.search_id)
    assert [r.recipe for r in strat.told] == [c.recipe for c in res.history] == [c.recipe for c in stored]
    assert [c.seq for c in res.history] == list(range(12))
    # ask-ahead: best-of-n is asked again while batches are in flight, but never told out of order
    assert all(told <= stored_n for stored_n, told in strat.at_ask)


def test_a_strategy_that_is_not_ask_ahead_is_asked_only_after_its_batch_is_stored(tmp_path, toy_potential, cond):
    class Waiting(Recording):
        ask_ahead = False

    with Store.open(tmp_path) as store:
        strat = Waiting(store, budget=9, seed=0)
        Engine(ToyGenerator(), toy_potential, store, batch_size=3).run(cond, strat)
    assert strat.at_ask == [(0, 0), (3, 3), (6, 6)]


def test_searches_of_one_condition_and_prior_seed_share_one_prior(tmp_path, toy_potential, cond):
    other = Condition("other", prompt="another toy")
    with Store.open(tmp_path) as store:
        eng = Engine(ToyGenerator(), toy_potential, store, batch_size=4)
        jobs = [Job(cond, BestOfN(budget=4, seed=0)), Job(cond, EACPS(budget=8, seed=0)),
                Job(cond, BestOfN(budget=4, seed=1), label="p1", prior_seed=1), Job(other, BestOfN(budget=4))]
        results = eng.run_all(jobs)
        priors = store.candidates(role="prior")
    assert sorted(c.search for c in priors) == sorted(
        {prior_search(cond, 0), prior_search(cond, 1), prior_search(other, 0)})
    assert results[0].prior.id == results[1].prior.id != results[2].prior.id
    assert results[2].prior.recipe == Recipe.from_seed(1)
    assert [len(r.history) for r in results] == [4, 8, 4, 4]
    assert all(isinstance(r, SearchResult) and r.best.potential == max(c.potential for c in r.history)
               for r in results)


def test_an_executor_failure_fails_its_batch_and_the_run_goes_on(tmp_path, toy_potential, cond):
    class Flaky(InlineExecutor):
        calls = 0

        def submit(self, batch):
            self.calls += 1
            if self.calls == 3:  # the prior is call 1: the search's second batch
                fut: Future = Future()
                fut.set_exception(ConnectionError("worker lost"))
                return fut
            return super().submit(batch)

    with Store.open(tmp_path) as store:
        res = Engine(ToyGenerator(), toy_potential, store, batch_size=3, executor=Flaky()).run(
            cond, BestOfN(budget=9, seed=0))
    failed = [c for c in res.history if c.status is Status.FAILED]
    assert [c.seq for c in failed] == [3, 4, 5]
    assert all(c.reason == "executor inline: ConnectionError: worker lost" for c in failed)
    assert len(res.history) == 9 and res.best.status is Status.OK


def test_a_strategy_asking_nothing_with_nothing_pending_is_an_error(toy_potential, cond):
    class Mute(BestOfN):
        def _ask(self, n):
            return []

    with pytest.raises(StrategyError, match="ask\\(\\) returned nothing, nothing is pending, and stop\\(\\) is empty"):
        search(cond, generator=ToyGenerator(), potential=toy_potential, strategy=Mute(budget=4), budget=4)


def test_a_signal_stops_after_the_batches_in_flight_are_stored(tmp_path, toy_potential, cond):
    class Signalling(ToyMeanScorer):
        calls = 0

        def score(self, images, condition):
            self.calls += 1
            if self.calls == 3:  # calibration-free toy: prior, then the search's first batch, then this one
                signal.raise_signal(signal.SIGINT)
            return super().score(images, condition)

    pot = Potential([Criterion("consistency", Signalling(), 1.0)])
    notes = []
    with Store.open(tmp_path) as store:
        eng = Engine(ToyGenerator(), pot, store, batch_size=2, executor=InlineExecutor())
        eng.scheduler.notify = notes.append
        with pytest.raises(Interrupted) as exc:
            eng.run(cond, BestOfN(budget=10, seed=0))
        assert exc.value.exit_code == 128 + signal.SIGINT
        kept = store.candidates(role="search")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    assert len(kept) == 4 and [c.seq for c in kept] == [0, 1, 2, 3]  # the batch in flight was stored
    assert notes == ["SIGINT: stopping after the batches in flight are stored (send it again to stop at once)"]
    with Store.open(tmp_path) as store:  # the resume computes only what is left
        gen = ToyGenerator()
        res = Engine(gen, Potential([Criterion("consistency", ToyMeanScorer(), 1.0)]), store, batch_size=2).run(
            cond, BestOfN(budget=10, seed=0))
    assert len(res.history) == 10 and gen.generated == 6


def test_the_crash_guard_is_in_place_during_a_run_and_gone_after(tmp_path, toy_potential, cond):
    seen = []

    class Looking(ToyGenerator):
        def generate(self, recipes, condition, *, steps=None):
            seen.append((os._exit is real_exit, (tmp_path / CRASH_FILE).exists()))
            return super().generate(recipes, condition, steps=steps)

    real_exit = os._exit
    with Store.open(tmp_path) as store:
        Engine(Looking(), toy_potential, store, executor=InlineExecutor()).run(cond, BestOfN(budget=4))
    assert seen and all(s == (False, True) for s in seen)  # os._exit leaves evidence while the run is on
    assert os._exit is real_exit and not (tmp_path / CRASH_FILE).exists()
