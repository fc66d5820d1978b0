"""The run store read back: run directories of any name, every stored value validated (one line naming the row
and field, never a traceback), images only by the store's own names, and the run directory's lock."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import configs
import pytest

from eacps.cli import main
from eacps.store import Store, StoreError, read_only


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
        cfg = configs.write(tmp / "cfg.toml", configs.toy(budget=6))
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


# -- run directories whose names hold URI characters ---------------------------------------------------------
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
    first = configs.write(tmp_path / "a.toml", configs.toy(budget=4))
    second = configs.write(tmp_path / "b.toml", configs.toy(budget=4, strategy="best-of-n"))
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


# -- every stored value validated --------------------------------------------------------------------------
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
    from eacps.serve import state

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
    db = sqlite3.connect(out / "store.sqlite")
    name = db.execute("SELECT image FROM candidates WHERE image IS NOT NULL ORDER BY potential DESC").fetchone()[0]
    db.close()
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


# -- terminal output of untrusted strings --------------------------------------------------------------------
def test_show_escapes_control_characters_of_stored_strings(tmp_path, toy_plugin, capsys):
    """Condition ids (and so search ids) with ESC[2J and an OSC title sequence print escaped, not raw."""
    cfg = configs.toy(budget=4)
    cfg["conditions"] = [{"id": "evil\x1b[2J\x1b]0;pwned\x07", "prompt": "x"}]
    path = configs.write(tmp_path / "cfg.toml", cfg)
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\x07" not in text
    assert "evil\\x1b[2J\\x1b]0;pwned\\x07" in text


# -- the lock ----------------------------------------------------------------------------------------------
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


def test_a_deleted_lock_file_under_a_real_run_is_named(tmp_path):
    """Two processes: the second ``eacps run`` names the run directory as in use, one line, exit 2."""
    import tomllib

    from test_resume_kill import config, start, wait_for_rows

    out = tmp_path / "run"
    cfg = config(tmp_path, tmp_path / "gen.log")
    configs.write(cfg, configs.edit(tomllib.loads(cfg.read_text()), "generator.params.sleep", 1.0))
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
    from eacps.summary import load_searches, summarize_store

    with read_only(run_dir) as ro:
        recs = load_searches(ro)
        summary = summarize_store(ro, recs)
    return [(r.search, [(c.seq, c.charge, c.parent) for c in r.candidates],
             summary["strategies"][r.strategy]["cost_per_search"]["steps"]) for r in recs]


def _tree_search(store: Store):
    import toy

    from eacps import Condition
    from eacps.api import make_strategy
    from eacps.engine import Engine
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
