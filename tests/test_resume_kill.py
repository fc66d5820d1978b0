"""A real `eacps run` process killed with SIGKILL resumes without losing or regenerating finished work."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from test_cli import GOOD

HERE = Path(__file__).parent
RUNNER = """
import sys
sys.path.insert(0, {here!r})
import toy
from eacps import plugins
from eacps.cli import main
plugins.register_plugin(toy)
sys.exit(main(["run", {cfg!r}, "--out", {out!r}, "--quiet"]))
"""


def config(tmp_path: Path, log: Path) -> Path:
    text = GOOD.replace('name = "toy"', f'name = "toy"\nparams = {{ sleep = 0.03, log = "{log}" }}')
    text = text.replace("batch_size = 6", "batch_size = 2")
    p = tmp_path / "cfg.toml"
    p.write_text(text)
    return p


def start(cfg: Path, out: Path) -> subprocess.Popen:
    code = RUNNER.format(here=str(HERE), cfg=str(cfg), out=str(out))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def rows(out: Path) -> list[tuple]:
    db = sqlite3.connect(out / "store.sqlite")
    try:
        return db.execute("SELECT id, search, seq, recipe, status, potential, session FROM candidates ORDER BY id")\
            .fetchall()
    finally:
        db.close()


def wait_for_rows(out: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            if len(rows(out)) >= n:
                return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.01)
    raise AssertionError("the run did not progress")


def bests(out: Path) -> dict[str, tuple]:
    db = sqlite3.connect(out / "store.sqlite")
    q = ("SELECT search, recipe, potential FROM candidates c WHERE role='search' AND status='OK' AND potential = "
         "(SELECT MAX(potential) FROM candidates d WHERE d.search = c.search AND d.status='OK') ORDER BY search")
    return {s: (r, p) for s, r, p in db.execute(q)}


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
