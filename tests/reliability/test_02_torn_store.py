"""Promise 2: a store whose last write was torn opens, keeps every complete candidate, and resumes.

The store is SQLite in WAL mode: the last transaction lives in ``store.sqlite-wal`` until a checkpoint. The
test copies the run directory while the writing connection is still open, then truncates the WAL copy at
every byte offset of the last transaction's frames: each copy must open with every candidate of the earlier
transactions and nothing of the torn one; copies torn inside each frame resume to the uninterrupted result.
"""

from __future__ import annotations

import shutil
import sqlite3
import struct
import tempfile
from pathlib import Path

import toy
from runs import rows

from eacps import Condition
from eacps.api import make_strategy
from eacps.engine import Engine
from eacps.potential import Criterion, Potential
from eacps.store import Store

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
                    assert s.generated == n_last
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
