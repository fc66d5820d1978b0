"""Promise 1: a run killed with SIGKILL at random points resumes with nothing lost, nothing generated twice,
and the same final best as an uninterrupted run.

Two digits runs (the embedded testbed, real ``eacps run`` processes) are each killed at 10 random row
counts chosen with a fixed seed; after every kill the next process resumes the run. Every generator call is logged
per process, so a candidate generated again after it was stored is caught. (The Ray worker kill is covered
by ``plugins/eacps-ray/tests``; this module kills the driver.)
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from relhelp import rows

KILLS = 20
CONFIG = """
[generator]
name = "digits"
params = { steps = 4 }

[potential.criteria.consistency]
scorer = "digits-consistency"

[potential.criteria.realism]
scorer = "digits-realism"

[search]
strategy = "eacps"
budget = 22
batch_size = 2
params = { k_global = 6, m = 2, k_local = 4, generations = 3 }

[[conditions]]
id = "three"
class_label = 3

[[conditions]]
id = "seven"
class_label = 7
"""
TOTAL = 2 * (1 + 22)  # a prior and 24 candidates per condition (k_global + 2 generations x m x k_local)

# wraps the digits generator so that every candidate it generates is logged (after generation, before storing)
RUNNER = """
import sys
from eacps_digits.generator import DigitsGenerator
real = DigitsGenerator.generate
def generate(self, recipes, condition, **kw):
    out = real(self, recipes, condition, **kw)
    with open({log!r}, "a") as f:
        f.writelines(f"{{condition.id}} {{r.key}}\\n" for r in recipes)
    return out
DigitsGenerator.generate = generate
from eacps.cli import main
sys.exit(main(["run", {cfg!r}, "--out", {out!r}, "--quiet"]))
"""
ENV = {**os.environ, "EACPS_LOAD_PLUGINS": "eacps-digits", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def start(cfg: Path, out: Path, log: Path) -> subprocess.Popen:
    code = RUNNER.format(cfg=str(cfg), out=str(out), log=str(log))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)


def count(out: Path) -> int:
    try:
        db = sqlite3.connect(out / "store.sqlite", timeout=0.1)
        try:
            return db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def finished(out: Path) -> set[str]:
    return {f"{cond} {recipe}" for _, _, _, cond, recipe, *_ in rows(out)} if (out / "store.sqlite").exists() else set()


def chain(cfg: Path, out: Path, logs: Path, kills: int, seed: int) -> dict:
    """Kill ``kills`` processes of one run, each at a random row count past what is already stored (plus a
    random delay that lands inside the next batch), then let a last process finish it."""
    rng = random.Random(seed)
    delivered, generated_again, lost, at = 0, set(), 0, []
    for session in range(kills + 1):
        before = rows(out) if (out / "store.sqlite").exists() else []
        done_before = finished(out)
        log = logs / f"{out.name}-session{session}.log"
        proc = start(cfg, out, log)
        if session == kills:  # the last process runs to the end
            assert proc.wait(120) == 0, proc.stderr.read().decode()
        else:
            k = min(len(before) + rng.randint(1, 2), TOTAL - 3)  # the last batch (2 rows) would end the run
            t0 = time.time()
            while count(out) < k:
                assert proc.poll() is None, f"run ended before row {k}: {proc.stderr.read().decode()}"
                assert time.time() - t0 < 60, "the run did not progress"
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
            if proc.poll() is None:
                delivered += 1
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            at.append(count(out))
        after = rows(out)
        lost += len(set(before) - set(after))  # a finished candidate missing or rewritten after the kill/resume
        if log.exists():
            generated_again |= set(log.read_text().splitlines()) & done_before
    return {"delivered": delivered, "generated_again": generated_again, "lost": lost, "at": at}


def test_kill_9_at_20_random_points_then_resume(tmp_path, figures):
    cfg = tmp_path / "digits.toml"
    cfg.write_text(CONFIG)
    ref_out = tmp_path / "ref"
    ref = start(cfg, ref_out, tmp_path / "ref.log")
    runs = [tmp_path / "run-a", tmp_path / "run-b"]  # two runs killed 10 times each, side by side
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda a: chain(cfg, a[1], tmp_path, KILLS // 2, seed=1000 + a[0]), enumerate(runs)))
    assert ref.wait(120) == 0, ref.stderr.read().decode()
    reference = rows(ref_out)
    assert len(reference) == TOTAL

    best = ("SELECT search, recipe, potential FROM candidates WHERE role='search' AND status='OK' "
            "ORDER BY search, potential DESC, seq")
    with sqlite3.connect(ref_out / "store.sqlite") as db:
        ref_best = {s: (r, p) for s, r, p in reversed(db.execute(best).fetchall())}
    sessions = 0
    for out, res in zip(runs, results, strict=True):
        final = rows(out)
        keys = [(s, q, role) for s, q, role, *_ in final]
        assert res["lost"] == 0
        assert not res["generated_again"], f"generated again: {sorted(res['generated_again'])[:5]}"
        assert len(keys) == len(set(keys)) == TOTAL  # none lost, none stored twice
        assert final == reference  # same recipes, statuses, potentials and scores as the uninterrupted run
        with sqlite3.connect(out / "store.sqlite") as db:
            assert {s: (r, p) for s, r, p in reversed(db.execute(best).fetchall())} == ref_best
            sessions += db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
        print(f"{out.name}: rows stored at each kill {res['at']}")
    delivered = sum(r["delivered"] for r in results)
    assert delivered == KILLS, f"only {delivered} kills hit a live process"
    assert sessions >= KILLS  # every killed process had opened the store (killed mid-run, not at startup)
    figures("1-kill", kills=delivered, candidates_checked=sum(len(rows(o)) for o in runs), lost=0,
            generated_twice=0, sessions=sessions)
