"""Promise 13: a damaged run directory (store.sqlite overwritten, truncated or with a zeroed page, a garbage WAL
beside it, the images/ folder deleted) never gives a traceback: `show`, `report` and a resuming `run` either work
(a garbage WAL is ignored by SQLite) or stop with one line naming the problem and exit code 2, and the damaged
store is left byte for byte as it was (kept for inspection)."""

from __future__ import annotations

import random
import shutil
import sqlite3

import pytest
from runs import digest, rows, toy_config

from eacps.cli import main

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
