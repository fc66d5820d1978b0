"""Promise 1: a run killed with SIGKILL at random points resumes with nothing lost, nothing generated twice,
and the same final best as an uninterrupted run.

One digits run (the embedded testbed, ``eacps run`` in real processes) is killed with SIGKILL at 20
random points chosen with a fixed seed (a row count past what is stored, then a random delay); after every
kill the next process resumes the run. Every generator call is logged
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
from pathlib import Path

import crashing
import numpy as np
import pytest
import runs as run_helpers
from configs import digits, edit, toy, write
from runs import rows

from eacps import Condition, Generated, Recipe, Status
from eacps.engine.planner import CRASH_FILE, INFLIGHT_META, MAX_DEATHS, Planner, cache_key
from eacps.potential import Scored
from eacps.store import ReplayError, Store, StoreError
from eacps.strategy import SeedStream

KILLS = 20
CONFIG = digits("eacps", 102, criteria=("consistency", "realism"), batch_size=2,
                params={"k_global": 6, "m": 2, "k_local": 4, "generations": 13})
CONFIG = edit(CONFIG, "generator.params", {"steps": 4})
CONFIG = edit(CONFIG, "conditions", [{"id": "three", "class_label": 3}, {"id": "seven", "class_label": 7}])
# a prior and 102 candidates per condition (k_global + 12 refinements x m x k_local): room for 20 kills that each
# land mid-run (a session stores ~8 rows between the row count it waits for and the kill on an idle machine)
TOTAL = 2 * (1 + 102)

# A fork server: imports eacps and the digits plugin (torch, diffusers) once, then forks one process per
# ``run`` command, so that each of the 21 processes does not pay the imports. Each child is a real process
# running ``eacps run`` (``cli.main``), killed with SIGKILL by the test. Every candidate the digits generator
# generates is logged (after generation, before it is stored) to that child's log.
ZYGOTE = """
import os, sys, traceback
from diffusers import DDIMScheduler, UNet2DModel  # noqa: F401 (warm the lazy imports)
from eacps_digits.generator import DigitsGenerator
import eacps.api, eacps.analysis.report, eacps.analysis.summary  # noqa: F401
from eacps.commands.cli import main
real, LOG = DigitsGenerator.generate, []
def generate(self, recipes, condition, **kw):
    out = real(self, recipes, condition, **kw)
    with open(LOG[0], "a") as f:
        f.writelines(f"{condition.id} {r.key}\\n" for r in recipes)
    return out
DigitsGenerator.generate = generate
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "run":
        cfg, out, log = args
        pid = os.fork()
        if pid == 0:
            LOG.append(log)
            fd = os.open(log + ".err", os.O_WRONLY | os.O_CREAT)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            try:
                rc = main(["run", cfg, "--out", out, "--quiet"])
            except BaseException:
                traceback.print_exc()
                rc = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
        print(pid, flush=True)
    elif cmd == "wait":
        print(os.waitstatus_to_exitcode(os.waitpid(int(args[0]), 0)[1]), flush=True)
"""
ENV = {**os.environ, "EACPS_LOAD_PLUGINS": "eacps-digits", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class Runs:
    """Talks to the fork server."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV, text=True
        )

    def _ask(self, line: str) -> int:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def start(self, cfg: Path, out: Path, log: Path) -> int:
        return self._ask(f"run {cfg} {out} {log}")

    def wait(self, pid: int) -> int:
        return self._ask(f"wait {pid}")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


def alive(pid: int) -> bool:
    """Running (not exited, not a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except (FileNotFoundError, IndexError):
        return False


def count(out: Path) -> int:
    try:
        return run_helpers.count(out)
    except (FileNotFoundError, StoreError, sqlite3.OperationalError):  # not created yet
        return 0


def finished(out: Path) -> set[str]:
    return {f"{cond} {recipe}" for _, _, _, cond, recipe, *_ in rows(out)} if (out / "store.sqlite").exists() else set()


def err(log: Path) -> str:
    p = Path(f"{log}.err")
    return p.read_text()[-2000:] if p.exists() else ""


@pytest.mark.slow
def test_kill_9_at_20_random_points_then_resume(tmp_path, figures):
    cfg = write(tmp_path / "digits.toml", CONFIG)
    runs = Runs()
    try:
        ref_out, ref_log = tmp_path / "ref", tmp_path / "ref.log"
        assert runs.wait(runs.start(cfg, ref_out, ref_log)) == 0, err(ref_log)
        reference = rows(ref_out)
        assert len(reference) == TOTAL

        rng = random.Random(20240601)
        out = tmp_path / "run"
        delivered, generated_again, lost, at = 0, set(), 0, []
        for session in range(KILLS + 1):
            before = rows(out) if (out / "store.sqlite").exists() else []
            done_before = finished(out)
            log = tmp_path / f"session{session}.log"
            pid = runs.start(cfg, out, log)
            if session == KILLS:  # the last process runs to the end
                assert runs.wait(pid) == 0, err(log)
            else:  # a random row count past what is stored, then a random delay that lands inside the next batch
                k = min(len(before) + rng.randint(1, 3), TOTAL - 12)  # leave the run more than the delay can finish
                t0 = time.time()
                while count(out) < k:
                    assert alive(pid), f"run ended before row {k}: {err(log)}"
                    assert time.time() - t0 < 60, "the run did not progress"
                    time.sleep(0.002)
                time.sleep(rng.uniform(0, 0.03))
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
                rc = runs.wait(pid)
                assert rc in (0, -signal.SIGKILL), err(log)
                delivered += rc == -signal.SIGKILL
                at.append(count(out))
            after = rows(out)
            lost += len(set(before) - set(after))  # a finished candidate missing or rewritten after kill/resume
            if log.exists():
                generated_again |= set(log.read_text().splitlines()) & done_before
    finally:
        runs.close()

    final = rows(out)
    keys = [(s, q, role) for s, q, role, *_ in final]
    print(f"rows stored at each kill: {at}")
    assert delivered == KILLS, f"only {delivered} kills hit a live process"
    assert lost == 0
    assert not generated_again, f"finished candidates generated again: {sorted(generated_again)[:5]}"
    assert len(keys) == len(set(keys)) == TOTAL  # none lost, none stored twice
    assert final == reference  # same recipes, statuses, potentials and scores as the uninterrupted run
    def bests(run_dir: Path) -> dict[str, tuple]:
        return {s: (c.recipe.key, c.potential) for s, c in run_helpers.best_by_search(run_dir).items()}

    assert bests(out) == bests(ref_out)
    sessions = len(run_helpers.session_versions(out))
    assert sessions >= KILLS  # the killed processes had opened the store: killed mid-run, not at startup
    figures(
        "1-kill",
        kills=delivered,
        candidates_checked=len(final),
        lost=lost,
        generated_twice=len(generated_again),
        sessions=sessions,
    )


# -- promise 19: a plugin that ends the process (moved from tests/reliability/test_19_crashing_plugins.py) -----------
# Promise 19: a plugin that ends the process (``os._exit``, a segfault) cannot block a run forever.
#
# The batch being computed is recorded in the store before it is submitted. When the process dies with crash
# evidence (the plugin's ``os._exit`` or a fatal signal's traceback in ``RUN_DIR/.crash``), the resume names the
# batch on stderr and computes it alone; a batch that ended the process twice is FAILED with that reason and the
# run completes. Every other candidate equals a run without the faulty batch.


CRASH_CONFIG = toy(strategy="best-of-n", budget=12, batch_size=3)
CRASH_CONFIG = edit(CRASH_CONFIG, "conditions", CRASH_CONFIG["conditions"][:1])


def run(tmp_path: Path, out: Path, seed: int, how: str) -> tuple[int, str]:
    generator = {"name": "toy-crash", "params": {"crash_seed": seed, "how": how, "steps": 10}}
    cfg = write(tmp_path / f"{out.name}.toml", edit(CRASH_CONFIG, "generator", generator))
    p = subprocess.run(crashing.run_command(cfg, out), capture_output=True, text=True, timeout=300)
    return p.returncode, p.stderr


@pytest.mark.slow
@pytest.mark.parametrize("how, code", [("exit", 3), ("segfault", -11)])
def test_a_batch_that_ends_the_process_twice_is_failed_and_the_run_completes(tmp_path, figures, how, code):
    crash_seed = SeedStream(0).take(12)[7]  # in best-of-n's third batch (seq 6..8)
    ref_rc, ref_err = run(tmp_path, tmp_path / "ref", -1, how)
    assert ref_rc == 0, ref_err
    out, codes, errs = tmp_path / "run", [], []
    for _ in range(4):
        rc, err = run(tmp_path, out, crash_seed, how)
        codes.append(rc)
        errs.append(err)
        if rc == 0:
            break
    assert codes == [code, code, 0], errs  # died, died again with the batch alone, then skipped it
    assert "Traceback" not in errs[2] and "the previous run died while computing batch" in errs[1]
    assert "died with it 2 time(s)" in errs[2] and "(seq 6..8)" in errs[2]
    final, ref = rows(out), rows(tmp_path / "ref")
    assert [r[:5] for r in final] == [r[:5] for r in ref]  # the same candidates in the same searches
    skipped = [r for r in final if r[5] == "FAILED"]
    assert {r[1] for r in skipped} == {6, 7, 8} and all("died 2 times while computing this batch" in r[7]
                                                     for r in skipped)
    others = [(a, b) for a, b in zip(final, ref, strict=True) if a[5] != "FAILED"]
    assert all(a == b for a, b in others)  # every other candidate exactly as without the fault
    figures("19-crashing-plugins", process_deaths=2, runs=len(codes), batches_skipped=len(skipped) // 3,
            candidates_checked=len(final), other_candidates_changed=0)


# -- the planner on a real store: cache keys, plan, commit, the in-flight log ------------------------------------------
def planner(store: Store, generator_fp: str = "gen") -> Planner:
    return Planner(store, generator_fp, lambda r: ("pot", r.steps or 10))


def ok(image_value: float = 0.5) -> tuple[Generated, Scored]:
    return Generated(np.full((4, 4, 1), image_value, np.float32)), Scored({"m": 5.0}, 5.0, None)


def test_a_cache_key_names_everything_a_candidate_depends_on():
    cond, r = Condition("c", prompt="p"), Recipe.from_seed(1)
    key = cache_key("gen", "pot", cond, r, 10)
    assert key == cache_key("gen", "pot", Condition("c", prompt="p"), Recipe.from_seed(1), 10)
    assert key == cache_key("gen", "pot", cond, r.with_steps(10), 10)  # steps count once, from the argument
    others = [cache_key("gen2", "pot", cond, r, 10), cache_key("gen", "pot2", cond, r, 10),
              cache_key("gen", "pot", Condition("c", prompt="q"), r, 10), cache_key("gen", "pot", cond, r, 11),
              cache_key("gen", "pot", cond, Recipe.from_seed(2), 10),
              cache_key("gen", "pot", cond.with_prior(np.zeros((4, 4, 1), np.float32)), r, 10)]
    assert len({key, *others}) == 1 + len(others)


def test_a_planned_batch_is_computed_once_then_resumed_then_served_to_another_search(tmp_path):
    cond, recipes = Condition("c"), [Recipe.from_seed(s) for s in range(3)]
    with Store.open(tmp_path) as store:
        p = planner(store)
        b = p.plan(recipes, cond, search="s1", seq0=0, role="search", strategy="best-of-n")
        assert b.todo == [0, 1, 2] and b.cands == [None] * 3
        rows_ = p.commit(b, [ok(0.1), ok(0.2), ok(0.3)], [10, 10, 10])
        assert [c.seq for c in rows_] == [0, 1, 2] and b.computed == [True] * 3
        assert [c.id is not None for c in rows_] == [True] * 3 and b.skipped == [False] * 3
        again = p.plan(recipes, cond, search="s1", seq0=0, role="search", strategy="best-of-n")
        assert again.todo == [] and [c.id for c in again.cands] == [c.id for c in rows_] and again.new == []
        other = p.plan(recipes[1:], cond, search="s2", seq0=5, role="search", strategy="eacps")
        assert other.todo == [] and [c.reused_from for c in other.new] == [rows_[1].id, rows_[2].id]
        assert [(c.search, c.seq, c.strategy, c.id) for c in other.new] == [("s2", 5, "eacps", None),
                                                                            ("s2", 6, "eacps", None)]
        p.commit(other, None, [])
        assert other.computed == [False, False]  # served, not computed
        uncached = p.plan(recipes[:1], cond, search="s3", seq0=0, role="search", strategy=None, cache=False)
        assert uncached.todo == [0]
        assert len(store.candidates()) == 5


def test_a_failed_score_is_a_failed_candidate_with_the_reason_and_its_other_scores(tmp_path):
    with Store.open(tmp_path) as store:
        p = planner(store)
        b = p.plan([Recipe.from_seed(0), Recipe.from_seed(1)], Condition("c"), search="s", seq0=0, role="search",
                   strategy=None)
        bad = (Generated(np.full((4, 4, 1), 0.5, np.float32)), Scored({"m": 5.0}, None, "criterion x: returned NaN"))
        c_bad, c_gen = p.commit(b, [bad, (Generated.failed("generator (toy): boom"), None)], [10, 10])
    assert (c_bad.status, c_bad.reason, c_bad.scores, c_bad.potential) == (
        Status.FAILED, "criterion x: returned NaN", {"m": 5.0}, None)
    assert c_bad.image_path is not None  # its image is kept
    assert (c_gen.status, c_gen.reason, c_gen.image_path) == (Status.FAILED, "generator (toy): boom", None)


def test_calibration_rows_are_never_served_as_search_candidates(tmp_path):
    cond, r = Condition("c"), [Recipe.from_seed(0)]
    with Store.open(tmp_path) as store:
        p = planner(store)
        cal = p.plan(r, cond, search="calibration/c/0", seq0=0, role="calibration", strategy=None, cache=False)
        (row,) = p.commit(cal, [ok()], [10])
        assert row.cache_key.startswith("calibration:") and row.image_path is None
        assert [c.role for c in store.candidates()] == ["calibration"]  # never a search's (generated) candidate
        assert p.plan(r, cond, search="s", seq0=0, role="search", strategy=None).todo == [0]


def test_a_batch_in_flight_when_the_process_was_killed_is_named_and_computed_alone(tmp_path):
    cond, recipes = Condition("c"), [Recipe.from_seed(0)]
    with Store.open(tmp_path) as store:
        p = planner(store)
        b = p.plan(recipes, cond, search="s", seq0=0, role="search", strategy=None)
        p.begin(b)
        assert store.get_meta(INFLIGHT_META) == {b.id: {"what": b.describe()}}
    with Store.open(tmp_path) as store:  # the next process: no crash evidence (SIGKILL)
        p = planner(store)
        (line,) = p.recover()
        assert "was killed while computing batch" in line and "computed alone" in line
        assert store.get_meta(INFLIGHT_META) == {} and p.recover() == []
        again = p.plan(recipes, cond, search="s", seq0=0, role="search", strategy=None)
        assert again.id == b.id and again.alone and again.deaths == 0 and p.killed_reason(again) is None


def test_a_batch_that_killed_the_process_twice_is_skipped_with_the_reason(tmp_path):
    cond, recipes = Condition("c"), [Recipe.from_seed(0), Recipe.from_seed(1)]
    for death in range(1, MAX_DEATHS + 1):
        with Store.open(tmp_path) as store:
            p = planner(store)
            b = p.plan(recipes, cond, search="s", seq0=0, role="search", strategy=None)
            assert b.deaths == death - 1
            p.begin(b)
        (tmp_path / CRASH_FILE).write_text("Fatal Python error: Segmentation fault\n")
        with Store.open(tmp_path) as store:
            (line,) = planner(store).recover()
            assert "died while computing" in line and f"died with it {death} time(s)" in line
            assert not (tmp_path / CRASH_FILE).exists()
    with Store.open(tmp_path) as store:
        p = planner(store)
        b = p.plan(recipes, cond, search="s", seq0=0, role="search", strategy=None)
        assert b.deaths == MAX_DEATHS and "died 2 times while computing this batch" in p.killed_reason(b)


def test_abandon_forgets_this_processs_batches_in_flight(tmp_path):
    with Store.open(tmp_path) as store:
        p = planner(store)
        b = p.plan([Recipe.from_seed(0)], Condition("c"), search="s", seq0=0, role="search", strategy=None)
        p.begin(b)
        p.abandon()
        assert store.get_meta(INFLIGHT_META) == {}
    with Store.open(tmp_path) as store:
        assert planner(store).recover() == []


def test_commit_removes_the_in_flight_record_in_the_batchs_transaction(tmp_path):
    with Store.open(tmp_path) as store:
        p = planner(store)
        a = p.plan([Recipe.from_seed(0)], Condition("c"), search="s", seq0=0, role="search", strategy=None)
        b = p.plan([Recipe.from_seed(1)], Condition("c"), search="s", seq0=1, role="search", strategy=None)
        p.begin(a)
        p.begin(b)
        p.commit(a, [ok()], [10], meta={"note": 1})
        assert set(store.get_meta(INFLIGHT_META)) == {b.id} and store.get_meta("note") == 1


# -- replay: a resumed search asks, at every stored seq, the recipe stored there -------------------------------------
def test_a_replay_that_asks_another_recipe_at_a_stored_seq_is_a_replay_error_naming_both(tmp_path):
    cond, recipes = Condition("c"), [Recipe.from_seed(s) for s in range(3)]
    with Store.open(tmp_path) as store:
        p = planner(store)
        p.commit(p.plan(recipes, cond, search="s", seq0=0, role="search", strategy=None), [ok()] * 3, [10] * 3)
        changed = [recipes[0], recipes[1].pcn(0.5, 7), recipes[2]]  # what a changed default would ask at seq 1
        with pytest.raises(ReplayError) as exc:
            p.plan(changed, cond, search="s", seq0=0, role="search", strategy=None)
        msg = str(exc.value)
        assert isinstance(exc.value, StoreError) and exc.value.exit_code == 2 and "\n" not in msg
        assert f"search 's' asks {changed[1].key} at seq 1, where the store holds {recipes[1].key}" in msg
        assert "changed since this run was stored; use another --out, or the version that wrote it" in msg
        # a batch that only reaches a stored seq: the same refusal; past the stored seqs: new candidates
        with pytest.raises(ReplayError, match=r"at seq 2, where the store holds \{\"seed\":2\}"):
            p.plan([Recipe.from_seed(9), Recipe.from_seed(10)], cond, search="s", seq0=2, role="search", strategy=None)
        assert p.plan([Recipe.from_seed(9)], cond, search="s", seq0=3, role="search", strategy=None).todo == [0]
        assert len(store.candidates()) == 3  # nothing written


def test_a_replay_of_the_same_recipes_resumes_without_generating_anything(tmp_path):
    cond, recipes = Condition("c"), [Recipe.from_seed(s) for s in range(4)]
    with Store.open(tmp_path) as store:
        p = planner(store)
        first = [p.commit(p.plan(recipes[i:i + 2], cond, search="s", seq0=i, role="search", strategy=None),
                          [ok(0.1 * i), ok(0.1 * i + 0.05)], [10, 10]) for i in (0, 2)]
    with Store.open(tmp_path) as store:  # the next process asks the same recipes at the same seqs
        p = planner(store)
        for i, rows_ in zip((0, 2), first, strict=True):
            b = p.plan(recipes[i:i + 2], cond, search="s", seq0=i, role="search", strategy=None)
            assert b.todo == [] and b.new == [] and [c.id for c in b.cands] == [c.id for c in rows_]
            assert p.commit(b, None, []) == b.cands and b.computed == [False, False]
        assert len(store.candidates()) == 4
