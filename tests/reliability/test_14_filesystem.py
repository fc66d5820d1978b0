"""Promise 14: filesystem errors are one line, never a traceback, and never damage the store. A full disk
(simulated with RLIMIT_FSIZE in a real `eacps run` process, at several sizes) stops the run with exit code 1;
the store keeps every batch committed before, and a resume completes it to exactly an uninterrupted run's
result. A read-only filesystem (simulated: EROFS from every write attempt), `--out` naming a file and a report
written into a missing folder are refused with one line."""

from __future__ import annotations

import errno
import os
import pathlib
import subprocess
import sys
from pathlib import Path

import pytest
from runs import digest, rows, toy_config

from eacps.cli import main

TESTS = Path(__file__).parent
RUNNER = """
import resource, sys
sys.path.insert(0, {tests!r})
import toy
from eacps import plugins
plugins.register_plugin(toy)
limit = int(sys.argv[1])
if limit:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ: writes fail with EFBIG
from eacps.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _run_process(limit: int, cfg: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EACPS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run([sys.executable, "-c", RUNNER.format(tests=str(TESTS)), str(limit), "run", str(cfg),
                           "--out", str(out), "--quiet"], capture_output=True, text=True, env=env, timeout=300)


def test_full_disk_stops_cleanly_and_resumes_to_the_same_result(tmp_path, figures):
    cfg = toy_config(tmp_path, budget=20, batch_size=4)
    reference = tmp_path / "reference"
    assert _run_process(0, cfg, reference).returncode == 0
    expected = rows(reference)
    stopped = 0
    for limit in (40_000, 200_000, 400_000):  # bytes: the WAL reaches the limit before, after 1, after ~6 batches
        out = tmp_path / f"full-{limit}"
        p = _run_process(limit, cfg, out)
        err = p.stderr.strip()
        assert "Traceback" not in p.stderr, p.stderr
        if p.returncode != 0:
            stopped += 1
            assert p.returncode in (1, 2) and err.count("\n") == 0 and err.startswith("eacps: error: "), p.stderr
            assert any(w in err for w in ("full", "size limit", "disk I/O error")), err
        kept = _rows_if_any(out)  # the store opens with plain SQLite and holds only whole candidates
        assert all(r in expected for r in kept), limit
        p2 = _run_process(0, cfg, out)
        assert p2.returncode == 0, p2.stderr
        assert rows(out) == expected, limit  # resumed to exactly the uninterrupted result
        figures("14-filesystem", full_disk_limits=1, full_disk_stopped=int(p.returncode != 0),
                kept_before_resume=len(kept), resumed_equal=1, **{f"kept_at_{limit}_bytes": len(kept)})
    assert stopped >= 2  # the limits really cut the runs


def _rows_if_any(out: Path) -> list:
    """The store's candidate rows; none when the disk filled up before the store's tables were created."""
    import sqlite3

    db = sqlite3.connect(out / "store.sqlite")
    try:
        has = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'candidates'").fetchone()
    finally:
        db.close()
    return rows(out) if has else []


def _erofs(*args, **kw):
    raise OSError(errno.EROFS, "Read-only file system", str(args[0]) if args else None)


def test_read_only_filesystem_is_one_line(tmp_path, toy_plugin, capsys, monkeypatch, figures):
    cfg = toy_config(tmp_path, budget=6)
    existing = tmp_path / "existing"
    assert main(["run", str(cfg), "--out", str(existing), "--quiet"]) == 0
    before = digest(existing)
    capsys.readouterr()
    with monkeypatch.context() as m:  # nothing can be created or opened for writing
        m.setattr(pathlib.Path, "mkdir", _erofs)
        m.setattr(pathlib.Path, "write_text", _erofs)
        m.setattr("eacps.store.os.open", _erofs)
        for argv in (["run", str(cfg), "--out", str(tmp_path / "new"), "--quiet"],
                     ["run", str(cfg), "--out", str(existing), "--quiet"], ["report", str(existing)]):
            code = main(argv)
            err = capsys.readouterr().err
            assert code in (1, 2) and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
            assert "read-only filesystem" in err, err
    assert digest(existing) == before and not (tmp_path / "new").exists()
    figures("14-filesystem", read_only_refused=3)


def test_out_is_a_file_and_report_into_a_missing_folder(tmp_path, toy_plugin, capsys, figures):
    cfg = toy_config(tmp_path, budget=6)
    f = tmp_path / "a-file"
    f.write_text("mine")
    for cmd in ("run", "compare", "landscape"):
        assert main([cmd, str(cfg), "--out", str(f), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Invalid value for '--out'" in err and "is a file" in err, err
    assert main(["demo", "--out", str(f)]) == 2 and "is a file" in capsys.readouterr().err
    assert f.read_text() == "mine"
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--output", str(tmp_path / "missing" / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--output: folder" in err and "does not exist" in err, err
    figures("14-filesystem", out_is_a_file_refused=4, report_missing_folder_refused=1)


@pytest.mark.parametrize("failing", ["image", "store"])
def test_a_write_failing_mid_run_keeps_the_store(tmp_path, toy_plugin, capsys, monkeypatch, figures, failing):
    """ENOSPC from the third image write, or from the store's third batch: exit 1, one line; every committed batch
    is there and a resume completes the run."""
    import eacps.store as store_mod

    cfg = toy_config(tmp_path, budget=20, batch_size=4)
    reference = tmp_path / "reference"
    assert main(["run", str(cfg), "--out", str(reference), "--quiet"]) == 0
    expected = rows(reference)
    out = tmp_path / "run"
    calls = {"n": 0}
    real_save, real_add = store_mod.save_png, store_mod.Store.add

    def save_png(image, path):
        calls["n"] += 1
        if calls["n"] >= 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(image, path)

    def add(self, *args, **kw):
        calls["n"] += 1
        if calls["n"] >= 3:
            import sqlite3

            raise sqlite3.OperationalError("database or disk is full")
        return real_add(self, *args, **kw)

    with monkeypatch.context() as m:
        if failing == "image":
            m.setattr(store_mod, "save_png", save_png)
        else:
            m.setattr(store_mod.Store, "add", add)
        capsys.readouterr()
        assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and "full" in err, err
    kept = rows(out)
    assert kept and all(r in expected for r in kept)
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert rows(out) == expected
    figures("14-filesystem", mid_run_write_failures=1, kept_before_resume=len(kept), resumed_equal=1)
