"""The run store read back: run directories of any name, every stored value validated (one line naming the row
and field, never a traceback), images only by the store's own names, and the run directory's lock."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import configs
import pytest
import toy
from configs import edit, write
from runs import candidates, count, digest, rows, run_config, session_versions, toy_config
from test_resume_kill import config, start, wait_for_rows
from test_resume_kill import rows as resume_rows

from eacps import Condition
from eacps.api import make_strategy
from eacps.commands.cli import main
from eacps.engine.engine import Engine
from eacps.potential import Criterion, Potential
from eacps.store import Store, StoreError, read_only, search_id


def _digest(run_dir: Path) -> dict[str, str]:
    """sha256 of the run directory's files (not the lock, nor the empty WAL/shm files a SQLite reader makes)."""
    skip = (".lock", "store.sqlite-wal", "store.sqlite-shm")
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name not in skip}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A finished two-condition toy run (budget 6), copied by the tests that edit it."""
    import toy

    from eacps import plugins

    tmp = tmp_path_factory.mktemp("store")
    plugins.register_plugin(toy)
    try:
        cfg = write(tmp / "cfg.toml", configs.toy(budget=6))
        assert main(["run", str(cfg), "--out", str(tmp / "run"), "--quiet"]) == 0
    finally:
        plugins.unregister_plugin(toy)
    return tmp / "run"


def _copy(toy_run: Path, dest: Path) -> Path:
    shutil.copytree(toy_run, dest, ignore=shutil.ignore_patterns(".lock"))
    return dest


def _one_line(capsys, code: int) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eacps: error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


# -- run directories whose names hold URI characters -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["p%41", "q#x", "r?mode=rwc", "s%2F t"])
def test_a_run_directory_is_opened_by_its_own_name(tmp_path, toy_run, capsys, name):
    """``file:{path}?mode=ro`` unquoted opened ``runs/p%41`` as ``runs/pA`` and created ``runs/q`` for ``q#x``."""
    runs = tmp_path / "runs"
    runs.mkdir()
    _copy(toy_run, runs / "pA")  # the directory p%41 would have been read as
    target = runs / name
    target.mkdir()
    (target / "store.sqlite").write_bytes(b"")  # an empty database: no candidates
    before = sorted(p.name for p in runs.iterdir())
    store = read_only(target)
    try:
        assert store.candidates() == []  # its own (empty) store, not pA's
    finally:
        store.close()
    assert main(["show", str(target)]) == 0
    assert "0 tasks" in capsys.readouterr().out
    assert sorted(p.name for p in runs.iterdir()) == before  # nothing created beside it (runs/q, runs/r)


def test_a_second_config_is_refused_whatever_the_directory_name(tmp_path, toy_plugin, capsys):
    """A different config into ``runs/exp#1`` was accepted (its identity check read ``runs/exp``)."""
    out = tmp_path / "runs" / "exp#1"
    first = write(tmp_path / "a.toml", configs.toy(budget=4))
    second = write(tmp_path / "b.toml", configs.toy(budget=4, strategy="best-of-n"))
    assert main(["run", str(first), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    before = _digest(out)
    assert main(["run", str(second), "--out", str(out), "--quiet"]) == 2
    assert "of a different config" in _one_line(capsys, 2)
    assert _digest(out) == before
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["exp#1"]


def test_writing_a_store_in_a_directory_named_like_a_uri(tmp_path):
    out = tmp_path / "file:x#y?z"
    with Store.open(out) as store:
        store.set_meta("k", 1)
    assert read_only(out).get_meta("k") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file:x#y?z"]


# -- every stored value validated ------------------------------------------------------------------------------------
TAMPERED = [
    ("recipe", "'{not json'", "field recipe: '{not json' is not valid JSON"),
    ("recipe", """'{"seed": 1, "moves": [{"op": "pcn", "theta": NaN, "seed": 2}]}'""", "field recipe: not a valid"),
    ("recipe", """'{"seed": 1, "colour": "red"}'""", "unknown recipe fields: ['colour']"),
    ("recipe", """'{"seed": "one"}'""", "field recipe: not a valid recipe"),
    ("scores", "'[1, 2]'", "field scores"),
    ("scores", """'{"realism": "high"}'""", "field scores"),
    ("steps", "-1", "field steps: -1 is not an integer >= 0"),
    ("potential", "'high'", "field potential: 'high' is not a finite number"),
    ("image", "'../../../../etc/hostname'", "field image: '../../../../etc/hostname' is not one of the store's"),
    ("image", "'/etc/hostname'", "field image"),
    ("image", "'/127.0.0.1:9/track.png'", "field image"),
    ("image", "'images/../../x.png'", "field image"),
    ("image", "x'2e2e'", "field image: b'..' is not one of the store's"),
    ("reason", "x'1b5b324a'", "field reason: b'\\x1b[2J' is not text"),
    ("status", "'MAYBE'", "field status: 'MAYBE' is not one of ['FAILED', 'FILTERED', 'OK']"),
]


@pytest.mark.parametrize("column, value, expected", TAMPERED)
def test_a_tampered_row_is_one_line_naming_row_and_field(tmp_path, toy_run, capsys, column, value, expected):
    """Invalid JSON, theta NaN, an extra key, wrong types, a path out of the run directory: ``show``, ``report`` and
    serve's state stop with one line (exit 2) naming the row and field, and write nothing."""
    from eacps.analysis.serve import state

    out = _copy(toy_run, tmp_path / "run")
    db = sqlite3.connect(out / "store.sqlite")
    db.execute("PRAGMA ignore_check_constraints = 1")
    db.execute(f"UPDATE candidates SET {column} = {value} WHERE id = 3")
    db.commit()
    db.close()
    before = _digest(out)
    for argv in (["show", str(out)], ["show", str(out), "--tree"], ["report", str(out)]):
        assert main(argv) == 2, argv
        line = _one_line(capsys, 2)
        assert "candidate row 3" in line and expected in line, line
    with pytest.raises(StoreError, match="candidate row 3"):
        state(out)
    assert _digest(out) == before


@pytest.mark.parametrize("sql, expected", [
    ("UPDATE meta SET value = '{oops' WHERE key = 'config'", "meta 'config': '{oops' is not a JSON dict"),
    ("UPDATE meta SET value = '[1]' WHERE key = 'config'", "meta 'config': '[1]' is not a JSON dict"),
    ("UPDATE conditions SET json = 'nope' WHERE id = 'a'", "condition 'a': 'nope' is not a JSON dict"),
    ("""UPDATE conditions SET json = '{"id": "a", "reference_image": "../../etc/hostname"}' WHERE id = 'a'""",
     "reference_image '../../etc/hostname' is not one of the store's image names"),
])
def test_tampered_meta_and_conditions_are_one_line(tmp_path, toy_run, capsys, sql, expected):
    out = _copy(toy_run, tmp_path / "run")
    db = sqlite3.connect(out / "store.sqlite")
    db.execute(sql)
    db.commit()
    db.close()
    assert main(["report", str(out), "--output", str(tmp_path / "r.html")]) == 2
    assert expected in _one_line(capsys, 2)
    assert not (tmp_path / "r.html").exists()


def test_report_embeds_only_the_run_directorys_images(tmp_path, toy_run, capsys):
    """An image name that is valid but a symlink out of images/ is refused too (nothing outside is embedded)."""
    out = _copy(toy_run, tmp_path / "run")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nSECRET-BYTES")
    name = max((c for c in candidates(out) if c.image_path is not None), key=lambda c: c.potential).image_path
    (out / name).unlink()
    (out / name).symlink_to(secret)
    assert main(["report", str(out), "--output", str(tmp_path / "r.html")]) == 2
    assert "outside" in _one_line(capsys, 2)
    assert not (tmp_path / "r.html").exists()


def test_image_names():
    from eacps.store import image_name

    assert image_name("images/0123456789abcdef0123.png") == "images/0123456789abcdef0123.png"
    for bad in ("images/../x.png", "/images/0123456789abcdef0123.png", "images/0123456789abcdef0123.png/..",
                "images/0123456789ABCDEF0123.png", "x/0123456789abcdef0123.png", "images/0123456789abcdef0123.svg",
                "//evil/0123456789abcdef0123.png", None, 3):
        assert image_name(bad) is None, bad


# -- terminal output of untrusted strings ----------------------------------------------------------------------------
def test_show_escapes_control_characters_of_stored_strings(tmp_path, toy_plugin, capsys):
    """Condition ids (and so search ids) with ESC[2J and an OSC title sequence print escaped, not raw."""
    cfg = configs.toy(budget=4)
    cfg["conditions"] = [{"id": "evil\x1b[2J\x1b]0;pwned\x07", "prompt": "x"}]
    path = write(tmp_path / "cfg.toml", cfg)
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\x07" not in text
    assert "evil\\x1b[2J\\x1b]0;pwned\\x07" in text


# -- the lock --------------------------------------------------------------------------------------------------------
def test_a_deleted_lock_file_still_keeps_a_second_writer_out(tmp_path):
    """A lock file deleted under a running run: the second run said "run store damaged" (it had written the same
    rows); now it is refused as a run directory in use."""
    from eacps.store import RunLockedError

    first = Store.open(tmp_path / "run")
    try:
        (tmp_path / "run" / ".lock").unlink()
        with pytest.raises(RunLockedError, match=r"in use by another eacps process.*lock file \.lock was deleted"):
            Store.open(tmp_path / "run")
    finally:
        first.close()
    Store.open(tmp_path / "run").close()  # free again once the first is closed


@pytest.mark.slow
def test_a_deleted_lock_file_under_a_real_run_is_named(tmp_path):
    """Two processes: the second ``eacps run`` names the run directory as in use, one line, exit 2."""
    import tomllib

    from test_resume_kill import config, start, wait_for_rows

    out = tmp_path / "run"
    cfg = config(tmp_path, tmp_path / "gen.log")
    write(cfg, edit(tomllib.loads(cfg.read_text()), "generator.params.sleep", 1.0))
    first = start(cfg, out)
    try:
        wait_for_rows(out, 3, first)
        (out / ".lock").unlink()
        second = start(cfg, out)
        assert second.wait(120) == 2
        err = second.stderr.read().decode().strip()
        assert err.count("\n") == 0 and "in use by another eacps process" in err and "damaged" not in err, err
        assert first.poll() is None
    finally:
        if first.poll() is None:
            first.terminate()
        first.wait(60)


def test_meta_keys_by_prefix(tmp_path):
    """``Store.meta_keys``: the keys starting with a prefix, sorted; ``%`` and ``_`` in the prefix are characters."""
    with Store.open(tmp_path / "run") as store:
        for key in ("allocation/b", "allocation/a", "allocations", "alloc_x/a", "config"):
            store.set_meta(key, {})
        assert store.meta_keys("allocation/") == ["allocation/a", "allocation/b"]
        assert store.meta_keys("alloc_") == ["alloc_x/a"] and store.meta_keys("a%") == []
    ro = read_only(tmp_path / "run")
    try:
        assert ro.meta_keys("allocation/") == ["allocation/a", "allocation/b"]
    finally:
        ro.close()


def _figures(run_dir: Path) -> list[tuple]:
    """Per search, in the order run: id, each candidate's (seq, charged steps, parent) and the summary's cost."""
    from eacps.analysis.summary import load_searches, summarize_store

    with read_only(run_dir) as ro:
        recs = load_searches(ro)
        summary = summarize_store(ro, recs)
    return [(r.search, [(c.seq, c.charge, c.parent) for c in r.candidates],
             summary["strategies"][r.strategy]["cost_per_search"]["steps"]) for r in recs]


def _tree_search(store: Store):
    import toy

    from eacps import Condition
    from eacps.api import make_strategy
    from eacps.engine.engine import Engine
    from eacps.potential import Criterion, Potential

    pot = Potential([Criterion("realism", toy.ToyScorer(), 1.0)])
    eng = Engine(toy.ToyGenerator(toy.ToyGeneratorParams(stepping=True)), pot, store, batch_size=3)
    try:
        return eng, eng.run(Condition("c", prompt="p"), make_strategy("tree-search", budget=6, seed=1))
    finally:
        eng.close()


@pytest.mark.parametrize("drop", [("charged",), ("charged", "parent")])
def test_a_store_of_the_old_schema_is_read_and_migrated_with_the_same_figures(tmp_path, drop):
    """A store from before schema 1 (no ``charged`` column, ``user_version`` 0; also without ``parent``: from before
    path recipes) reads as it is read-only, and a write open migrates it once: the charges and parents it fills in
    are the strategy's, so every figure is unchanged and a resume reuses everything."""
    run = tmp_path / "run"
    with Store.open(run) as store:
        _, res = _tree_search(store)
    before = _figures(run)
    assert before[0][2] == res.cost.steps < sum(c.steps for c in res.history)  # prefixes shared: charged once
    db = sqlite3.connect(run / "store.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    for column in drop:  # the old schema, by SQL
        db.execute(f"ALTER TABLE candidates DROP COLUMN {column}")
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()
    digest = _digest(run)
    assert _figures(run) == before  # read-only: the figures its migration would store, the file untouched
    assert _digest(run) == digest
    with Store.open(run) as store:  # a write open migrates
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == 1
        stored = store.db.execute("SELECT seq, charged, parent FROM candidates WHERE role = 'search' ORDER BY seq")
        assert [tuple(r) for r in stored] == [(c.seq, c.charged, c.parent) for c in res.history]
        eng, again = _tree_search(store)  # the resumed search reuses every candidate, charged as before
    assert eng.generated == 0 and again.cost.steps == res.cost.steps
    assert _figures(run) == before


def test_a_store_of_a_newer_schema_is_refused_for_writing(tmp_path):
    with Store.open(tmp_path / "run"):
        pass
    db = sqlite3.connect(tmp_path / "run" / "store.sqlite")
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match=r"store schema 99; this one writes 1"):
        Store.open(tmp_path / "run")
    read_only(tmp_path / "run").close()  # still readable


# -- promise 2: a torn last write (moved from tests/reliability/test_02_torn_store.py) -------------------------------
# Promise 2: a store whose last write was torn opens, keeps every complete candidate, and resumes.
#
# The store is SQLite in WAL mode: the last transaction lives in ``store.sqlite-wal`` until a checkpoint. The
# test copies the run directory while the writing connection is still open, then truncates the WAL copy at
# every byte offset of the last transaction's frames: each copy must open with every candidate of the earlier
# transactions and nothing of the torn one; copies torn inside each frame resume to the uninterrupted result.


COND = Condition("torn", prompt="a torn store")
COLS = "search, seq, role, condition, recipe, status, potential, reason, scores"


def engine(store: Store) -> Engine:
    pot = Potential([Criterion("realism", toy.ToyScorer(), 4.0), Criterion("consistency", toy.ToyMeanScorer(), 1.0)])
    return Engine(toy.ToyGenerator(), pot, store, batch_size=2)


def run(store: Store):
    eng = engine(store)
    try:
        return eng.run(COND, make_strategy("best-of-n", budget=8, seed=3))
    finally:
        eng.release()


def last_transaction(wal: bytes) -> tuple[int, int, int]:
    """(page size, first byte of the last transaction's frames, end of the WAL)."""
    page = struct.unpack(">I", wal[8:12])[0]
    frame = 24 + page
    commits = [
        32 + i * frame
        for i in range((len(wal) - 32) // frame)
        if struct.unpack(">I", wal[32 + i * frame + 4 : 32 + i * frame + 8])[0] != 0
    ]
    assert len(commits) >= 2 and commits[-1] + frame == len(wal)
    return page, commits[-2] + frame, len(wal)


@pytest.mark.slow
def test_torn_last_transaction_at_every_byte(tmp_path, figures):
    src, snap = tmp_path / "run", tmp_path / "snap"
    store = Store.open(src)
    try:
        ref = run(store)
        snap.mkdir()
        for name in ("store.sqlite", "store.sqlite-wal"):  # copied while the writer is open: no checkpoint yet
            shutil.copy(src / name, snap / name)
        shutil.copytree(src / "images", snap / "images")
    finally:
        store.close()
    complete = rows(src)
    db_bytes, wal = (snap / "store.sqlite").read_bytes(), (snap / "store.sqlite-wal").read_bytes()
    page, start, end = last_transaction(wal)
    n_last = 2  # the last batch
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="eacps-torn-", dir=shm if shm.is_dir() else tmp_path))
    checked, resumed = 0, 0
    frame = 24 + page
    samples = {start + k * frame + off for k in range((end - start) // frame) for off in (0, 23, 24 + page // 2)}
    try:
        for cut in range(start, end + 1):
            (work / "store.sqlite").write_bytes(db_bytes)
            (work / "store.sqlite-wal").write_bytes(wal[:cut])
            (work / "store.sqlite-shm").unlink(missing_ok=True)
            db = sqlite3.connect(work / "store.sqlite")
            try:
                got = db.execute(f"SELECT {COLS} FROM candidates ORDER BY search, role, seq").fetchall()
            finally:
                db.close()
            assert got == (complete if cut == end else complete[:-n_last]), cut
            checked += 1
            if cut in samples:  # it resumes: the torn batch is computed again, everything else is reused
                d = tmp_path / f"resume{cut}"
                shutil.copytree(work, d)
                shutil.copytree(snap / "images", d / "images")
                with Store.open(d) as s:
                    res = run(s)
                    assert res.cost.generated == n_last
                assert rows(d) == complete
                assert (res.best.recipe, res.best.potential) == (ref.best.recipe, ref.best.potential)
                resumed += 1
    finally:
        shutil.rmtree(work)
    print(f"WAL: page {page} B, last transaction {end - start} B, {checked} truncations, {resumed} resumed")
    figures(
        "2-torn-store",
        truncations=checked,
        resumed=resumed,
        candidates_checked=checked * (len(complete) - n_last),
        lost=0,
    )


# -- promise 10: one writer per run directory (moved from tests/reliability/test_10_lock.py) -------------------------
# Promise 10: two ``eacps run`` processes on one run directory: the second refuses with a clear message
# (a lock, exit code 2), the first is unharmed.


@pytest.mark.slow
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
    final = resume_rows(out)
    keys = [(s, q) for _, s, q, *_ in final]
    assert len(keys) == len(set(keys)) == 42
    assert all(session == 1 for *_, session in final)
    assert len(session_versions(out)) == 1  # the second wrote nothing
    figures("10-lock", second_runs_refused=1, candidates_checked=len(final), lost=0)


# -- promise 13: a damaged run directory (moved from tests/reliability/test_13_damaged_store.py) ---------------------
# Promise 13: a damaged run directory (store.sqlite overwritten, truncated or with a zeroed page, a garbage WAL
# beside it, the images/ folder deleted) never gives a traceback: `show`, `report` and a resuming `run` either work
# (a garbage WAL is ignored by SQLite) or stop with one line naming the problem and exit code 2, and the damaged
# store is left byte for byte as it was (kept for inspection).


COMMANDS = ("show", "report", "run")


def _argv(cmd: str, cfg, out) -> list[str]:
    return ["run", str(cfg), "--out", str(out), "--quiet"] if cmd == "run" else [cmd, str(out)]


@pytest.fixture
def good_run(tmp_path, toy_plugin, capsys):
    cfg = toy_config(tmp_path, budget=12)
    out = tmp_path / "good"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    return cfg, out


def _damage(kind: str, store_file, rng: random.Random) -> None:
    data = store_file.read_bytes()
    if kind == "garbage":
        store_file.write_bytes(bytes(rng.randrange(256) for _ in range(len(data))))
    elif kind.startswith("truncated"):
        store_file.write_bytes(data[: int(kind.split(":")[1])])
    elif kind == "zeroed-page":  # the second page: the first table's root after sqlite_master
        store_file.write_bytes(data[:4096] + bytes(4096) + data[8192:])
    elif kind == "not-a-store":
        store_file.unlink()
        db = sqlite3.connect(store_file)
        db.execute("CREATE TABLE t (x)")
        db.commit()
        db.close()


DAMAGES = ["garbage", "truncated:50", "truncated:4096", "truncated:12000", "zeroed-page", "not-a-store"]


@pytest.mark.parametrize("kind", DAMAGES)
def test_damaged_store_one_line_exit_2_left_as_it_was(tmp_path, good_run, capsys, figures, kind):
    cfg, good = good_run
    out = tmp_path / kind.replace(":", "-")
    shutil.copytree(good, out)
    _damage(kind, out / "store.sqlite", random.Random(13))
    before = digest(out)
    for cmd in COMMANDS:
        code = main(_argv(cmd, cfg, out))
        err = capsys.readouterr().err
        assert code == 2, (cmd, code, err)
        assert err.count("\n") == 1 and err.startswith("eacps: error: ") and "Traceback" not in err, (cmd, err)
        assert "store" in err, err
        after = {k: v for k, v in digest(out).items() if k != ".lock"}
        assert after == {k: v for k, v in before.items() if k != ".lock"}, cmd  # not a byte written
    figures("13-damaged-store", damaged_stores=1, commands_refused=len(COMMANDS), tracebacks=0, bytes_written=0)


def test_garbage_wal_is_ignored(tmp_path, good_run, capsys, figures):
    cfg, good = good_run
    out = tmp_path / "wal"
    shutil.copytree(good, out)
    expected = rows(out)
    rng = random.Random(7)
    (out / "store.sqlite-wal").write_bytes(bytes(rng.randrange(256) for _ in range(3 * 4096 + 24)))
    for cmd in COMMANDS:
        assert main(_argv(cmd, cfg, out)) == 0, capsys.readouterr().err
    assert rows(out) == expected  # every candidate there, none computed again
    figures("13-damaged-store", garbage_wal_ignored=1, candidates_kept=len(expected))


def test_deleted_images_folder(tmp_path, good_run, capsys, figures):
    cfg, good = good_run
    out = tmp_path / "noimages"
    shutil.copytree(good, out)
    shutil.rmtree(out / "images")
    before = digest(out)
    assert main(["show", str(out)]) == 0  # the table needs no image
    capsys.readouterr()
    for cmd in ("report", "run"):
        assert main(_argv(cmd, cfg, out)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and "images" in err and "missing" in err, err
    assert {k: v for k, v in digest(out).items() if k != ".lock"} == {k: v for k, v in before.items() if k != ".lock"}
    assert not (out / "images").exists()  # not silently recreated empty
    figures("13-damaged-store", images_deleted_refused=2, tracebacks=0)


# -- promise 14: filesystem errors (moved from tests/reliability/test_14_filesystem.py) ------------------------------
# Promise 14: filesystem errors are one line, never a traceback, and never damage the store. A full disk
# (simulated with RLIMIT_FSIZE in a real `eacps run` process, at several sizes) stops the run with exit code 1;
# the store keeps every batch committed before, and a resume completes it to exactly an uninterrupted run's
# result. A read-only filesystem (simulated: EROFS from every write attempt), `--out` naming a file and a report
# written into a missing folder are refused with one line.


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
from eacps.commands.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _run_process(limit: int, cfg: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EACPS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run([sys.executable, "-c", RUNNER.format(tests=str(TESTS)), str(limit), "run", str(cfg),
                           "--out", str(out), "--quiet"], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
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
    return rows(out) if (out / "store.sqlite").exists() else []


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


# -- promise 16: unambiguous search ids (moved from tests/reliability/test_16_ids.py) --------------------------------
# Promise 16: search ids are unambiguous. Condition ids and search labels containing the separator `/` or the
# escape `%` (every pair that joined naively to the same id) give distinct searches, each holding only its own
# condition's candidates, with its own best.


CONDITIONS = ["p", "p/q", "p%2Fq", "p/q/r"]
LABELS = ["r", "q/r", "q%2Fr", "r/b3"]


def test_adversarial_ids_give_distinct_searches(tmp_path, toy_plugin, figures):
    naive = [f"{c}/{lb}/b3/s0" for c in CONDITIONS for lb in LABELS]
    assert len(set(naive)) < len(naive)  # the adversarial set really collides when joined naively
    cfg = configs.toy()
    del cfg["search"]
    cfg["searches"] = [{"strategy": "best-of-n", "label": lb, "budget": 3, "batch_size": 3} for lb in LABELS]
    cfg["conditions"] = [{"id": c, "prompt": f"prompt {i}"} for i, c in enumerate(CONDITIONS)]
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path / "c.toml", cfg)), "--out", str(out), "--quiet"]) == 0
    per_search: dict[str, list[str]] = {}
    for c in candidates(out, role="search"):
        per_search.setdefault(c.search, []).append(c.condition)
    got = [(s, ",".join(sorted(set(conds))), len(conds)) for s, conds in per_search.items()]
    expected = {search_id(c, lb, "b3", "s0"): c for c in CONDITIONS for lb in LABELS}
    assert len(expected) == len(CONDITIONS) * len(LABELS)
    assert {s: c for s, c, _ in got} == expected  # one search per (condition, label), only its own condition
    assert all(n == 3 for _, _, n in got)
    figures("16-ids", searches=len(got), naive_collisions=len(naive) - len(set(naive)), cross_condition=0)


# -- condition texts, old store formats, search ids (moved from tests/test_cli_defects.py) ---------------------------
def test_a_condition_text_is_stored_once(tmp_path, toy_plugin):
    prompt = "a very long prompt " * 50_000  # ~1 MB
    cfg = configs.toy(budget=6, strategy="best-of-n")
    cfg["conditions"] = [{"id": "long", "prompt": prompt}]
    out = tmp_path / "run"
    assert run_config(write(tmp_path / "c.toml", cfg), out) == 0
    db = sqlite3.connect(out / "store.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL folded into the file whose size is measured
    db.close()
    size = (out / "store.sqlite").stat().st_size
    assert count(out) == 7
    # the config (meta) and the conditions table hold it once each; 7 candidate rows used to hold 7 more copies
    assert size < 3 * len(prompt), size
    from eacps.store import read_only

    ro = read_only(out)
    assert ro.condition_json("long")["prompt"] == prompt
    ro.close()


def test_a_store_written_before_the_conditions_table_still_reads_and_resumes(tmp_path, toy_plugin, capsys):
    out = tmp_path / "run"
    cfg = write(tmp_path / "c.toml", configs.toy(budget=8, strategy="best-of-n"))
    assert run_config(cfg, out) == 0
    db = sqlite3.connect(out / "store.sqlite")  # rewrite it in the old format: a condition_json per candidate
    db.execute("ALTER TABLE candidates ADD COLUMN condition_json TEXT NOT NULL DEFAULT ''")
    db.execute("UPDATE candidates SET condition_json = (SELECT json FROM conditions WHERE id = candidates.condition)")
    db.execute("DELETE FROM candidates WHERE seq >= 4 AND role = 'search'")  # a run killed half way
    db.execute("DROP TABLE conditions")
    db.execute("DROP TABLE searches")
    db.commit()
    db.close()
    assert main(["show", str(out)]) == 0 and "a/best-of-n/b8/s0" in capsys.readouterr().out
    assert run_config(cfg, out) == 0  # resumes the old store
    db = sqlite3.connect(out / "store.sqlite")
    rows = db.execute("SELECT condition, condition_json FROM candidates WHERE seq >= 4 AND role = 'search'").fetchall()
    db.close()
    assert len(rows) == 8 and all(json.loads(j)["id"] == c for c, j in rows)
    assert main(["report", str(out)]) == 0


def test_search_ids_are_unambiguous(tmp_path, toy_plugin, capsys):
    cfg = configs.toy()
    del cfg["search"]
    cfg["searches"] = [{"strategy": "best-of-n", "label": "q/r", "budget": 6}, {"strategy": "eacps", "label": "r",
                                                                                 "budget": 6}]
    cfg["conditions"] = [{"id": "p", "prompt": "first"}, {"id": "p/q", "prompt": "second"}]
    out = tmp_path / "run"
    assert run_config(write(tmp_path / "c.toml", cfg), out) == 0
    by_search: dict[str, list[str]] = {}
    for c in candidates(out, role="search"):
        by_search.setdefault(c.search, []).append(c.condition)
    per_search = [(s, len(set(conds)), len(conds)) for s, conds in by_search.items()]
    assert len(per_search) == 4, per_search  # p/q/r/b6/s0 used to be the id of two searches
    assert all(n_cond == 1 and n == 6 for _, n_cond, n in per_search), per_search
    assert {"p/q%2Fr/b6/s0", "p%2Fq/r/b6/s0"} <= {s for s, _, _ in per_search}
