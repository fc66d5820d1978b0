"""Promise 10: two ``eacps run`` processes on one run directory: the second refuses with a clear message
(a lock, exit code 2), the first is unharmed."""

from __future__ import annotations

import sqlite3
import tomllib

from configs import edit, write
from test_resume_kill import config, rows, start, wait_for_rows


def test_second_process_refuses_the_first_is_unharmed(tmp_path, figures):
    out = tmp_path / "run"
    cfg = config(tmp_path, tmp_path / "gen.log")
    # the first outlives the second even when a loaded machine takes many seconds to start a Python process
    write(cfg, edit(tomllib.loads(cfg.read_text()), "generator.params.sleep", 1.5))
    first = start(cfg, out)
    wait_for_rows(out, 3, first)
    second = start(cfg, out)
    assert second.wait(60) == 2
    err = second.stderr.read().decode().strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("eacps: error: run directory") and "in use by another eacps process" in err, err
    assert first.poll() is None  # still running
    assert first.wait(120) == 0, first.stderr.read().decode()
    final = rows(out)
    keys = [(s, q) for _, s, q, *_ in final]
    assert len(keys) == len(set(keys)) == 42
    assert all(session == 1 for *_, session in final)
    with sqlite3.connect(out / "store.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1  # the second wrote nothing
    figures("10-lock", second_runs_refused=1, candidates_checked=len(final), lost=0)
