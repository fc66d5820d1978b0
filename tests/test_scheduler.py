"""Promise 18: a plugin that never returns, or a SIGINT/SIGTERM, never hangs or tears a run.

* With ``[executor] timeout_s``, a generator call or a scorer call that never returns fails its candidates
  with the reason (``timed out after 0.5 s``); the run goes on and ends.
* SIGINT/SIGTERM stop a real ``eacps run`` after the batches in flight are stored: exit 130/143, one line with
  the resume hint, no traceback, nothing computed and lost; the resume completes to the uninterrupted result.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

from configs import edit, toy, write
from runs import rows
from test_resume_kill import config, start, wait_for_rows

TESTS = Path(__file__).parent

HUNG_RUNNER = """
import sys, threading
sys.path.insert(0, {tests!r})
import numpy as np
import toy
from eacps import hookimpl, plugins
from eacps.cli import main

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
