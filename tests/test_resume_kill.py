"""A real `eacps run` process killed with SIGKILL resumes without losing or regenerating finished work."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import configs
import crashing
import pytest
import runs as run_helpers

from eacps.store import StoreError

HERE = Path(__file__).parent
RUNNER = """
import sys
sys.path.insert(0, {here!r})
import toy
from eacps import plugins
from eacps.commands.cli import main
plugins.register_plugin(toy)
sys.exit(main(["run", {cfg!r}, "--out", {out!r}, "--quiet"]))
"""


def config(tmp_path: Path, log: Path) -> Path:
    cfg = configs.edit(configs.toy(batch_size=2), "generator.params", {"sleep": 0.03, "log": str(log)})
    return configs.write(tmp_path / "cfg.toml", cfg)


def start(cfg: Path, out: Path) -> subprocess.Popen:
    code = RUNNER.format(here=str(HERE), cfg=str(cfg), out=str(out))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def rows(out: Path) -> list[tuple]:
    return run_helpers.rows(out, "id, search, seq, recipe, status, potential, session", order="id")


def wait_for_rows(out: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            if len(rows(out)) >= n:
                return
        except (FileNotFoundError, StoreError, sqlite3.OperationalError):  # not created yet
            pass
        time.sleep(0.01)
    raise AssertionError("the run did not progress")


def bests(out: Path) -> dict[str, tuple]:
    return {s: (c.recipe.key, c.potential) for s, c in run_helpers.best_by_search(out).items()}


@pytest.mark.slow
def test_kill_9_then_resume(tmp_path):
    ref_out, ref_log = tmp_path / "ref", tmp_path / "ref.log"
    ref = start(config(tmp_path, ref_log), ref_out)
    assert ref.wait(120) == 0, ref.stderr.read().decode()

    for kill_at in (3, 17, 30):  # rows finished before the kill: early, mid first search, second search
        out, log = tmp_path / f"run{kill_at}", tmp_path / f"run{kill_at}.log"
        cfg = config(tmp_path, log)
        proc = start(cfg, out)
        wait_for_rows(out, kill_at, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = rows(out)
        assert len(before) >= kill_at
        log.write_text("")  # from here on, log what the resumed run generates
        again = start(cfg, out)
        assert again.wait(120) == 0, again.stderr.read().decode()
        after = rows(out)
        assert after[: len(before)] == before  # nothing finished was lost or rewritten
        keys = [(s, q) for _, s, q, *_ in after]
        assert len(keys) == len(set(keys)) == 42  # 2 priors + 2 x 20, each exactly once
        finished = {f"{search.split('/')[1] if search.startswith('prior/') else search.split('/')[0]} {recipe}"
                    for _, search, _, recipe, *_ in before}
        regenerated = set(log.read_text().splitlines()) & finished
        assert not regenerated, f"finished candidates generated again: {regenerated}"
        assert bests(out) == bests(ref_out)  # the final best equals an uninterrupted run's


# -- SIGINT/SIGTERM stop cleanly; a plugin that kills the process is named and, after two deaths, skipped ------------

def meta(out: Path, key: str):
    return run_helpers.meta(out, key)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_after_the_batches_in_flight_are_stored(tmp_path, sig, code):
    out, log = tmp_path / "run", tmp_path / "gen.log"
    cfg = config(tmp_path, log)
    proc = start(cfg, out)
    wait_for_rows(out, 8, proc)
    proc.send_signal(sig)
    assert proc.wait(60) == code
    err = proc.stderr.read().decode()
    name = signal.Signals(sig).name
    assert f"interrupted by {name}; every finished batch is stored: rerun the same command to resume" in err
    assert "Traceback" not in err
    stopped = rows(out)
    assert 8 <= len(stopped) < 42 and meta(out, "inflight") == {}  # nothing left half-done
    generated = log.read_text().splitlines()
    assert len(generated) == len(stopped)  # every candidate it generated was stored (none lost in flight)
    again = start(cfg, out)
    assert again.wait(120) == 0, again.stderr.read().decode()
    assert rows(out)[: len(stopped)] == stopped and len(rows(out)) == 42


@pytest.mark.slow
def test_a_batch_that_kills_the_process_is_named_and_skipped_after_two_deaths(tmp_path):
    from eacps.strategy import SeedStream

    crash_seed = SeedStream(0).take(8)[4]  # best-of-n's third batch of two
    cfg = configs.toy(strategy="best-of-n", budget=8, batch_size=2)
    cfg = configs.edit(cfg, "generator", {"name": "toy-crash", "params": {"crash_seed": crash_seed}})
    cfg = configs.write(tmp_path / "cfg.toml", configs.edit(cfg, "conditions", cfg["conditions"][:1]))
    out = tmp_path / "run"

    def run() -> tuple[int, str]:
        p = subprocess.run(crashing.run_command(cfg, out), capture_output=True, text=True, timeout=120)
        return p.returncode, p.stderr

    what = "of search 'a/best-of-n/b8/s0' (seq 4..5)"
    rc, err = run()
    assert rc == 3 and err == ""  # os._exit: no message, but the store names the batch
    assert any(what in v["what"] for v in meta(out, "inflight").values())
    rc, err = run()  # the resume names it, computes it alone, and dies with it again
    assert rc == 3 and "the previous run died while computing batch" in err and what in err
    assert "a plugin called os._exit(3); died with it 1 time(s)" in err
    assert len(meta(out, "inflight")) == 1  # it ran alone
    rc, err = run()  # the second death: FAILED with the reason, the run goes on
    assert rc == 0, err
    assert f"{what} (a plugin called os._exit(3); died with it 2 time(s))" in err
    got = [(c.seq, c.status.value, c.reason) for c in run_helpers.candidates(out, role="search")]
    assert [s for s, *_ in got] == list(range(8))
    assert [st for _, st, _ in got] == ["OK"] * 4 + ["FAILED"] * 2 + ["OK"] * 2
    assert all("the process died 2 times while computing this batch" in r for _, st, r in got if st == "FAILED")
