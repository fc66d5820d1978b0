"""The run store: one SQLite file per run directory (``RUN_DIR/store.sqlite``) plus PNG images.

Append-only: each finished batch is one transaction, written before the strategy is asked again, so a
killed run loses at most the batch in flight. Rows are never updated. A run resumes by replaying what
was stored (see ``eacps.engine.engine``). The run directory is locked (``RUN_DIR/.lock``) while a process
uses it, so two runs cannot write the same store.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from eacps.recipe import Recipe
from eacps.trees import charged_steps, parent_links
from eacps.types import Image, Result, Status

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    pid INTEGER NOT NULL,
    argv TEXT,
    versions TEXT
);
CREATE TABLE IF NOT EXISTS conditions (
    id TEXT PRIMARY KEY,           -- condition id
    json TEXT NOT NULL             -- its description (prompt, class label, reference path, extra), stored once
);
CREATE TABLE IF NOT EXISTS searches (
    search TEXT PRIMARY KEY,       -- search id
    prior TEXT NOT NULL            -- the search id of the prior it was run against (prior/<condition>/<seed>)
);
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,
    search TEXT NOT NULL,          -- search id (see search_id(): condition / label / budget / seed, escaped)
    seq INTEGER NOT NULL,          -- order asked within the search; the prior has role 'prior'
    role TEXT NOT NULL,            -- 'prior' | 'search'
    condition TEXT NOT NULL,       -- condition id (its description: the conditions table)
    strategy TEXT,
    recipe TEXT NOT NULL,          -- canonical JSON of the recipe: regenerates the noise exactly
    steps INTEGER NOT NULL,        -- denoising steps used
    cache_key TEXT NOT NULL,       -- generator + potential fingerprints, condition, recipe
    status TEXT NOT NULL CHECK (status IN ('OK', 'FAILED', 'FILTERED')),
    potential REAL,
    reason TEXT,
    scores TEXT NOT NULL,          -- JSON {criterion: value in [0, 10]}
    image TEXT,                    -- PNG path relative to the run directory
    gen_seconds REAL,
    score_seconds REAL,
    session INTEGER NOT NULL,
    reused_from INTEGER,           -- the row this one was served from (cache hit), if any
    created REAL NOT NULL,
    parent INTEGER,                -- seq of the candidate (same search) whose path this one continues or branches
    charged INTEGER,               -- denoising steps its search is charged for it (role 'search', a shared prefix once)
    UNIQUE (search, seq)
);
CREATE INDEX IF NOT EXISTS candidates_cache ON candidates (cache_key);
CREATE INDEX IF NOT EXISTS candidates_search_recipe ON candidates (search, recipe);
"""
#: ``PRAGMA user_version`` of the stores this code writes. 0: a store from before the version (``parent`` maybe
#: missing, no ``charged``); ``Store`` migrates it on a write open (``_migrate``), reads it as it is read-only.
SCHEMA_VERSION = 1


class RunLockedError(RuntimeError):
    pass


class StoreError(RuntimeError):
    """A run directory that cannot be used as it is (damaged store, missing images, unwritable); one line.
    ``exit_code``: 2 when refused before any compute, 1 when a write failed during the run."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ReplayError(StoreError):
    """A resumed search asks another recipe at a seq than the one stored there: the code (or its defaults, such as
    a strategy's parameters) changed since the run was stored. One line; exit code 2, nothing of that batch is
    computed or stored."""


def search_id(*parts: object) -> str:
    """An unambiguous search id from its parts, joined by ``/``: each part is percent-escaped (``%`` and ``/``),
    so condition ``p`` with label ``q/r`` and condition ``p/q`` with label ``r`` get different ids. Parts without
    those characters are unchanged (``a/eacps/b20/s0``)."""
    return "/".join(str(p).replace("%", "%25").replace("/", "%2F") for p in parts)


#: ``eacps compare``'s pool labels, the second part of their search ids (``task/best-of-n-pool/N128``,
#: ``task/sampler-pool/<schedule>/N128``): the reference best-of-N pool and the same-sampler pools
POOL, SAMPLER_POOL = "best-of-n-pool", "sampler-pool"


#: the names the store gives its images (``Store.image_path_for``): the only ``image`` values read back
IMAGE_NAME = re.compile(r"images/[0-9a-f]{8,64}\.png")


def image_name(value: object) -> str | None:
    """``value`` if it is one of the store's own image names (``images/<hex>.png``, relative to the run directory),
    else None: a tampered ``image`` column can name no other file (``../../etc/hostname``, ``/host/x.png``)."""
    return value if isinstance(value, str) and IMAGE_NAME.fullmatch(value) else None


def image_file(root: Path, name: str) -> Path:
    """The file of the store image ``name`` (``images/<hex>.png``) in the run directory ``root``, resolved;
    ``StoreError`` when ``name`` is not one of the store's image names or resolves outside ``root/images`` (a
    symlink): reports and ``eacps serve`` read no other file."""
    folder = (root / "images").resolve()
    path = (root / name).resolve()
    if image_name(name) is None or path.parent != folder:
        raise StoreError(f"{root / name}: resolves outside {folder}; a report embeds only the run's own "
                         "images: restore the file, or use another run directory")
    return path


def missing_image(path: Path) -> StoreError:
    """The error for a stored image whose file is gone (``path``: as named in the run directory)."""
    return StoreError(f"{path}: a stored image is missing (was the run's images/ folder deleted or moved?); "
                      "restore it, or use another run directory")


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the SQLite file ``path``, whatever characters its name holds: the path is
    percent-quoted into a ``file:`` URI (``#``, ``?`` and ``%`` in a run directory's name are characters of the
    name, never a fragment, a query or an escape; the file is never created)."""
    return sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True, isolation_level=None)


def describe_os_error(exc: OSError, where: Path | str, action: str = "write") -> str:
    """One line for a filesystem error (full disk, read-only filesystem, a file where a folder belongs)."""
    hints = {errno.ENOSPC: "the disk is full", errno.EFBIG: "file size limit reached", errno.EROFS:
             "read-only filesystem", errno.EACCES: "permission denied", errno.ENOTDIR: "not a directory",
             errno.EEXIST: "exists and is not a directory", errno.EDQUOT: "disk quota exceeded"}
    what = hints.get(exc.errno or -1, exc.strerror or type(exc).__name__)
    return f"cannot {action} {where}: {what} ({exc.__class__.__name__}: {exc.strerror or exc})"


@dataclass
class Candidate:
    """One stored candidate. ``image`` is loaded lazily from ``image_path``."""

    search: str
    seq: int
    role: str
    condition: str
    recipe: Recipe
    steps: int
    status: Status
    potential: float | None
    scores: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    image_path: str | None = None
    cache_key: str = ""
    strategy: str | None = None
    gen_seconds: float = 0.0
    score_seconds: float = 0.0
    id: int | None = None
    reused_from: int | None = None
    session: int | None = None
    root: Path | None = None
    parent: int | None = None  # seq of the candidate (same search) whose path this one continues or branches
    charged: int | None = None  # denoising steps its search is charged for it (the strategy's ledger); search rows

    @property
    def charge(self) -> int:
        """The denoising steps its search is charged for it: the stored figure (``charged``), else its own steps (a
        row no strategy charged: ``Engine.evaluate``'s)."""
        return self.steps if self.charged is None else self.charged

    @property
    def result(self) -> Result:
        return Result(self.recipe, self.status, self.potential if self.status is Status.OK else None,
                      dict(self.scores), self.reason)

    @property
    def image(self) -> Image | None:
        if self.image_path is None or self.root is None:
            return None
        path = self.root / self.image_path
        try:
            return load_png(path)
        except FileNotFoundError:
            raise missing_image(path) from None


class _BadValue(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def _check(field: str, value: Any, ok: bool, expected: str) -> Any:
    if not ok:
        raise _BadValue(field, f"{_shown(value)} is not {expected}")
    return value


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


_STATUSES = frozenset(s.value for s in Status)


def _finite(v: Any) -> bool:
    """A finite number (an int or a float, never a bool)."""
    return type(v) in (float, int) and math.isfinite(v)


def _recipe(text: Any) -> Recipe:
    _check("recipe", text, isinstance(text, str), "text")
    try:
        return Recipe.from_json(json.loads(text))
    except json.JSONDecodeError:
        raise _BadValue("recipe", f"{_shown(text)} is not valid JSON") from None
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise _BadValue("recipe", f"not a valid recipe ({type(exc).__name__}: {exc})") from None


def _scores(text: Any) -> dict[str, float]:
    try:
        scores = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        scores = None
    ok = isinstance(scores, dict) and all(isinstance(k, str) and _finite(v) for k, v in scores.items())
    _check("scores", text, ok, "a JSON object of finite scores")
    return scores  # type: ignore[return-value]


def candidate_from_row(row: tuple, root: Path | None) -> Candidate:
    """A ``Candidate`` from a row of ``Store._COLS`` + parent + charged, every value checked (``_BadValue`` names the
    field): read-back values are untrusted (a store may be damaged or edited)."""
    (id_, search, seq, role, cond, strategy, recipe, steps, key, status, pot, reason, scores, image,
     gs, ss, session, reused, parent, charged) = row
    _check_scalars(row)
    return Candidate(search, seq, role, cond, _recipe(recipe), steps, Status(status), pot, _scores(scores), reason,
                     image, key, strategy, gs or 0.0, ss or 0.0, id_, reused, session, root, parent, charged)


def _text(v: Any) -> bool:
    return type(v) is str


def _int(v: Any) -> bool:
    return type(v) is int


def _optional(test: Any) -> Any:
    return lambda v: v is None or test(v)


#: ``(index in the row, field, test, what it must be)`` for every scalar of a row, in the order they are checked:
#: the first that fails is the field named for a bad row. Read-back rows hold only SQLite's own types (str, int,
#: float, bytes, None), so ``type(v) is ...`` is the whole type test.
_ROW_RULES: tuple[tuple[int, str, Any, str], ...] = (
    (1, "search", _text, "text"), (3, "role", _text, "text"), (4, "condition", _text, "text"),
    (8, "cache_key", _text, "text"),
    (5, "strategy", _optional(_text), "text"), (11, "reason", _optional(_text), "text"),
    (0, "id", _int, "an integer"), (2, "seq", _int, "an integer"), (16, "session", _int, "an integer"),
    (17, "reused_from", _optional(_int), "an integer"), (18, "parent", _optional(_int), "an integer"),
    (7, "steps", lambda v: type(v) is int and v >= 0, "an integer >= 0"),
    (19, "charged", _optional(lambda v: type(v) is int and v >= 0), "an integer >= 0"),
    (9, "status", lambda v: v in _STATUSES, f"one of {sorted(_STATUSES)}"),
    (10, "potential", _optional(_finite), "a finite number"),
    (14, "gen_seconds", _optional(_finite), "a finite number"),
    (15, "score_seconds", _optional(_finite), "a finite number"),
    (13, "image", lambda v: v is None or image_name(v) is not None,
     "one of the store's image names (images/<hex>.png inside the run directory)"),
)


def _check_scalars(row: tuple) -> None:
    """``_BadValue`` naming the first scalar of a row that is not of its type (``_ROW_RULES``)."""
    for i, name, ok, expected in _ROW_RULES:
        if not ok(row[i]):
            raise _BadValue(name, f"{_shown(row[i])} is not {expected}")


def eligible(c: Candidate) -> bool:
    """Can be the best (``Result.eligible``): OK, finite potential, full fidelity; previews, FAILED and FILTERED
    never are. The one eligibility rule of the engine, summaries and reports."""
    return c.result.eligible


def best_of(cands: Sequence[Candidate]) -> Candidate | None:
    """argmax of the potential over eligible candidates; the earliest wins ties."""
    best = None
    for c in cands:
        if eligible(c) and (best is None or c.potential > best.potential):
            best = c
    return best


def best_so_far(cands: Sequence[Candidate]) -> list[float | None]:
    """The best eligible potential after each candidate, in the order given (None until one is eligible)."""
    out, cur = [], None
    for c in cands:
        if eligible(c) and (cur is None or c.potential > cur):
            cur = c.potential
        out.append(cur)
    return out


def to_uint8(image: Image) -> np.ndarray:
    return np.round(np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def quantize(image: Image) -> Image:
    """The image as stored (8-bit), back as float32 in [0, 1]: what scorers see and reports show."""
    return to_uint8(image).astype(np.float32) / 255.0


def save_png(image: Image, path: Path) -> None:
    u8 = to_uint8(image)
    if u8.ndim == 3 and u8.shape[2] == 1:
        u8 = u8[:, :, 0]
    tmp = path.with_suffix(".tmp.png")
    try:
        PILImage.fromarray(u8).save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_png(path: Path) -> Image:
    arr = np.asarray(PILImage.open(path), dtype=np.float32) / 255.0
    return arr[:, :, None] if arr.ndim == 2 else arr


class Store:
    """An open run store. Use ``Store.open(run_dir)`` as a context manager (it takes the lock)."""

    def __init__(self, root: Path, *, readonly: bool = False, argv: Iterable[str] = ()) -> None:
        self.root = Path(root)
        self._lock_fd: int | None = None
        self._dir_fd: int | None = None
        self.session = 0
        path = self.root / "store.sqlite"
        if readonly:
            if not path.exists():
                raise FileNotFoundError(f"no run store at {path}")
            self.db = connect_read_only(path)
            self._check_readable(require_candidates=True)
            self.version = self._user_version()  # below SCHEMA_VERSION: read as it is (``_old_columns``)
            return
        existed = path.exists()
        self._make_dirs(existed)
        self._lock()
        try:
            self.db = sqlite3.connect(path.absolute(), isolation_level=None)  # a plain path: never a URI
            self._check_readable(require_candidates=False, integrity=existed)
            self._setup(argv)
        except sqlite3.Error as exc:
            self._unlock()
            raise StoreError(f"{path}: cannot open the run store for writing: {exc}") from None
        except BaseException:
            self._unlock()
            raise

    def _make_dirs(self, existed: bool) -> None:
        """The run directory and its images/ folder; refuses a store whose images/ folder was deleted."""
        if existed:
            check_images(self.root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "images").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(describe_os_error(exc, self.root)) from None

    def _setup(self, argv: Iterable[str]) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed batch survives a killed process (kill -9); only an OS crash or
        # power loss may roll back the last batches, which a resume then recomputes.
        self.db.execute("PRAGMA synchronous=NORMAL")
        version = self._user_version()
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.root / 'store.sqlite'}: written by a newer eacps (store schema {version}; this "
                             f"one writes {SCHEMA_VERSION}); upgrade eacps, or use another run directory")
        old = "candidates" in self._tables and version < SCHEMA_VERSION
        if old:
            self._migrate()
        else:  # a new store (or one whose creation was cut short): all tables or none (a full disk cannot cut it)
            self.db.executescript(f"BEGIN;\n{SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;")
        self.version = SCHEMA_VERSION
        self._tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        from eacps.versions import library_versions

        cur = self.db.execute(
            "INSERT INTO sessions (started, pid, argv, versions) VALUES (?, ?, ?, ?)",
            (time.time(), os.getpid(), json.dumps(list(argv)), json.dumps(library_versions())),
        )
        self.session = int(cur.lastrowid)

    def _user_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        """Schema 0 -> 1 in one transaction: the ``parent`` column (stores from before path recipes: filled from the
        recipes), the ``charged`` column (filled for search rows: ``legacy_bookkeeping``), and the version."""
        with self.transaction():
            for stmt in _SCHEMA_STATEMENTS:  # tables and indexes it lacks (a store from before the conditions table)
                self.db.execute(stmt)
            had_parent = self._has_column("candidates", "parent")
            if not had_parent:
                self.db.execute("ALTER TABLE candidates ADD COLUMN parent INTEGER")
            self.db.execute("ALTER TABLE candidates ADD COLUMN charged INTEGER")
            rows = self.db.execute("SELECT id, search, seq, recipe, steps, parent FROM candidates "
                                   "WHERE role = 'search' ORDER BY search, seq").fetchall()
            for row_id, charged, parent in _legacy_rows(rows, self.root, fill_parents=not had_parent):
                self.db.execute("UPDATE candidates SET charged = ?, parent = ? WHERE id = ?", (charged, parent, row_id))
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_readable(self, *, require_candidates: bool, integrity: bool = False) -> None:
        """Fail in one line on a file that is not a (readable) SQLite database or not a run store. With
        ``integrity`` (before writing to an existing store) a damaged one is refused rather than written to."""
        where = self.root / "store.sqlite"
        try:
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            problem = self.db.execute("PRAGMA quick_check(1)").fetchone()[0] if integrity else "ok"
            if problem != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {problem}")
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise StoreError(f"{where}: damaged or not an eacps run store ({exc}); keep it for inspection and use "
                             "another run directory") from None
        if require_candidates and tables and "candidates" not in tables:  # no tables: creation was cut short
            self.db.close()
            raise StoreError(f"{where}: not an eacps run store (no candidates table)")
        self._tables = tables
        self._legacy = "candidates" in tables and self._has_column("candidates", "condition_json")

    def _has_column(self, table: str, column: str) -> bool:
        return any(r[1] == column for r in self.db.execute(f"PRAGMA table_info({table})"))

    @classmethod
    def open(cls, root: str | Path, **kw: Any) -> Store:
        return cls(Path(root), **kw)

    def _lock(self) -> None:
        try:
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(describe_os_error(exc, self.root / ".lock")) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(
                f"run directory {self.root} is in use by another eacps process; wait for it or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        self._lock_dir()

    def _lock_dir(self) -> None:
        """Also lock the run directory itself: a deleted or replaced ``.lock`` file cannot let a second process in
        while the first still runs (the directory outlives its lock file). Skipped where directories cannot be
        locked (some network filesystems): ``.lock`` alone then."""
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self._unlock()
            raise RunLockedError(
                f"run directory {self.root} is in use by another eacps process (its lock file .lock was deleted or "
                "replaced while that process ran); wait for it or use another --out") from None
        except OSError:
            os.close(fd)
            return
        self._dir_fd = fd

    def close(self) -> None:
        self.db.close()
        self._unlock()

    def _unlock(self) -> None:
        for name in ("_lock_fd", "_dir_fd"):
            fd = getattr(self, name, None)
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                setattr(self, name, None)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta ---------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None, *, expect: type | None = None) -> Any:
        """The stored value of ``key`` (``default`` when absent); ``StoreError`` when it is not valid JSON or, with
        ``expect``, not of that type."""
        if "meta" not in self._tables:  # an empty database (a store whose creation was cut short)
            return default
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        return self._json(row[0], f"meta {key!r}", expect)

    def meta_keys(self, prefix: str) -> list[str]:
        """The meta keys that start with ``prefix``, sorted (SQLite's ``LIKE``: ASCII letters of ``prefix`` match
        either case); none in an empty database."""
        if "meta" not in self._tables:
            return []
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return sorted(r[0] for r in self.db.execute("SELECT key FROM meta WHERE key LIKE ? ESCAPE '\\'", (like,)))

    def _json(self, text: Any, where: str, expect: type | None = None) -> Any:
        """A stored JSON value, checked: one line naming ``where`` when it is damaged."""
        try:
            value = json.loads(text) if isinstance(text, str) else None
            ok = isinstance(text, str) and (expect is None or isinstance(value, expect))
        except json.JSONDecodeError:
            ok = False
        if not ok:
            kind = "valid JSON" if expect is None else f"a JSON {expect.__name__}"
            raise StoreError(f"{self.root / 'store.sqlite'}: {where}: {_shown(text)} is not {kind}; the store was "
                             "damaged or edited: keep it for inspection and use another run directory")
        return value

    # -- candidates ---------------------------------------------------------------------------
    _COLS = ("id, search, seq, role, condition, strategy, recipe, steps, cache_key, status, potential, reason, "
             "scores, image, gen_seconds, score_seconds, session, reused_from")

    @property
    def _cols(self) -> str:
        """``_COLS``, the parent link and the charged steps (a read-only store of an older schema: what it has,
        NULL for the rest, filled by ``candidates``)."""
        if getattr(self, "_cols_cache", None) is None:
            if self.version >= SCHEMA_VERSION:
                self._cols_cache = self._COLS + ", parent, charged"
            else:
                self._cols_cache = self._COLS + "".join(f", {c}" if self._has_column("candidates", c) else ", NULL"
                                                         for c in ("parent", "charged"))
        return self._cols_cache

    def _row(self, row: tuple) -> Candidate:
        """A candidate from a stored row, every value validated (``StoreError`` naming the row and field)."""
        try:
            return candidate_from_row(row, self.root)
        except _BadValue as exc:
            raise StoreError(f"{self.root / 'store.sqlite'}: candidate row {row[0]!r}, field {exc.field}: "
                             f"{exc.problem}; the store was damaged or edited: keep it for inspection and use "
                             "another run directory") from None

    def find_in_search(self, search: str, recipe: Recipe) -> Candidate | None:
        row = self.db.execute(f"SELECT {self._cols} FROM candidates WHERE search = ? AND recipe = ?",
                              (search, recipe.key)).fetchone()
        return self._row(row) if row else None

    def candidates_at(self, search: str, seq0: int, n: int) -> dict[int, Candidate]:
        """``{seq: candidate}``: ``search``'s rows at seq ``seq0 .. seq0 + n - 1`` (one indexed read)."""
        rows = self.db.execute(f"SELECT {self._cols} FROM candidates WHERE search = ? AND seq >= ? AND seq < ?",
                               (search, seq0, seq0 + n))
        return {c.seq: c for c in map(self._row, rows)}

    def find_cached(self, cache_key: str) -> Candidate | None:
        row = self.db.execute(
            f"SELECT {self._cols} FROM candidates WHERE cache_key = ? ORDER BY id LIMIT 1", (cache_key,)
        ).fetchone()
        return self._row(row) if row else None

    def image_path_for(self, cache_key: str) -> str:
        return f"images/{hashlib.sha256(cache_key.encode()).hexdigest()[:20]}.png"

    def write_image(self, cache_key: str, image: Image) -> str:
        rel = self.image_path_for(cache_key)
        try:
            save_png(image, self.root / rel)
        except OSError as exc:  # full disk, read-only filesystem: nothing of this batch is stored
            raise StoreError(describe_os_error(exc, self.root / rel), exit_code=1) from None
        return rel

    def add(self, cands: list[Candidate], condition_json: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        """Insert a finished batch (and any ``meta`` updates that belong to it) in one transaction. The
        condition's description is stored once per condition (the first one written wins)."""
        now = time.time()
        desc = json.dumps(condition_json, sort_keys=True)
        cols = ("search, seq, role, condition, strategy, recipe, steps, cache_key, status, potential, reason, scores,"
                " image, gen_seconds, score_seconds, session, reused_from, created, parent, charged")
        if self._legacy:  # a store written before the conditions table: keep its format
            cols += ", condition_json"
        sql = f"INSERT INTO candidates ({cols}) VALUES ({', '.join('?' * (cols.count(',') + 1))})"
        try:
            with self.transaction():
                for key, value in (meta or {}).items():
                    self.set_meta(key, value)
                for c in cands:
                    self.db.execute("INSERT OR IGNORE INTO conditions (id, json) VALUES (?, ?)", (c.condition, desc))
                    row = (c.search, c.seq, c.role, c.condition, c.strategy, c.recipe.key, c.steps, c.cache_key,
                           c.status.value, c.potential, c.reason, json.dumps(c.scores, sort_keys=True), c.image_path,
                           c.gen_seconds, c.score_seconds, self.session, c.reused_from, now, c.parent, c.charged)
                    cur = self.db.execute(sql, (*row, desc) if self._legacy else row)
                    c.id, c.session, c.root = int(cur.lastrowid), self.session, self.root
        except sqlite3.IntegrityError as exc:  # rows another writer stored: two processes wrote one store
            raise StoreError(f"{self.root / 'store.sqlite'}: another process wrote the same candidates ({exc}): two "
                             "runs used this run directory at once (was its lock file .lock deleted while a run "
                             "used it?); every batch committed before is kept: rerun the same command alone",
                             exit_code=1) from None
        except sqlite3.OperationalError as exc:  # full disk, I/O error: the transaction was rolled back
            raise StoreError(f"{self.root / 'store.sqlite'}: cannot write: {exc} (the store keeps every batch "
                             "committed before)", exit_code=1) from None

    def link_prior(self, search: str, prior_search: str) -> None:
        """Record which prior a search was run against (summaries compare each search with its own prior)."""
        self.db.execute("INSERT OR IGNORE INTO searches (search, prior) VALUES (?, ?)", (search, prior_search))

    def prior_links(self) -> dict[str, str]:
        """``{search id: prior search id}`` as recorded by ``link_prior`` (empty for older stores)."""
        if "searches" not in self._tables:
            return {}
        return {str(a): str(b) for a, b in self.db.execute("SELECT search, prior FROM searches")}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def candidates(self, search: str | None = None, role: str | None = None) -> list[Candidate]:
        if "candidates" not in self._tables:
            return []
        q, args = f"SELECT {self._cols} FROM candidates WHERE 1=1", []
        if search is not None:
            q, args = q + " AND search = ?", [*args, search]
        if role is not None:
            q, args = q + " AND role = ?", [*args, role]
        out = [self._row(r) for r in self.db.execute(q + " ORDER BY search, role, seq", args)]
        if self.version < SCHEMA_VERSION:  # read-only, an older schema: the figures its migration would store
            self._fill_legacy(out)
        return out

    def _fill_legacy(self, cands: list[Candidate]) -> None:
        fill_parents = not self._has_column("candidates", "parent")
        rows = [(c.id, c.search, c.seq, c.recipe, c.steps, c.parent) for c in cands if c.role == "search"]
        by_id = {c.id: c for c in cands}
        for row_id, charged, parent in _legacy_rows(rows, self.root, fill_parents=fill_parents):
            by_id[row_id].charged, by_id[row_id].parent = charged, parent

    def condition_json(self, condition: str) -> dict[str, Any]:
        """The stored description of a condition (as first written)."""
        row = None
        if "conditions" in self._tables:
            row = self.db.execute("SELECT json FROM conditions WHERE id = ?", (condition,)).fetchone()
        if row is None and self._legacy:
            row = self.db.execute("SELECT condition_json FROM candidates WHERE condition = ? ORDER BY id LIMIT 1",
                                  (condition,)).fetchone()
        if row is None:
            return {}
        desc = self._json(row[0], f"condition {condition!r}", dict)
        ref = desc.get("reference_image")
        if ref is not None and image_name(ref) is None:
            raise StoreError(f"{self.root / 'store.sqlite'}: condition {condition!r}: reference_image {_shown(ref)} "
                             "is not one of the store's image names (images/<hex>.png); the store was damaged or "
                             "edited: keep it for inspection and use another run directory")
        return desc

    def searches(self) -> list[str]:
        if "candidates" not in self._tables:
            return []
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT search FROM candidates WHERE role = 'search' ORDER BY search")]


def _statements(script: str) -> list[str]:
    """The SQL statements of ``script``, one each (``sqlite3.complete_statement`` decides where one ends)."""
    out, cur = [], ""
    for line in script.splitlines(keepends=True):
        cur += line
        if sqlite3.complete_statement(cur):
            out.append(cur.strip())
            cur = ""
    return out


#: the statements of ``SCHEMA`` (each ``IF NOT EXISTS``)
_SCHEMA_STATEMENTS = _statements(SCHEMA)


def _legacy_rows(rows: Sequence[tuple], root: Path, *, fill_parents: bool) -> Iterator[tuple[int, int, int | None]]:
    """``(id, charged, parent)`` for the search rows ``(id, search, seq, recipe, steps, parent)`` of a store from
    before charged steps were stored, in (search, seq) order: each search's charges as its ``PathLedger`` would have
    charged them on the schedule T of its full candidates (``legacy_schedule``), and, with ``fill_parents`` (no
    ``parent`` column), the parent links of its recipes. Used by the migration and by read-only opens of such a
    store only; since schema 1 the strategy's figures are stored with each candidate."""
    by_search: dict[str, list[tuple]] = {}
    for row in rows:
        by_search.setdefault(row[1], []).append(row)
    for group in by_search.values():
        group.sort(key=lambda r: r[2])
        recipes = []
        for r in group:
            try:
                recipes.append(r[3] if isinstance(r[3], Recipe) else _recipe(r[3]))
            except _BadValue as exc:
                raise StoreError(f"{root / 'store.sqlite'}: candidate row {r[0]!r}, field {exc.field}: {exc.problem}; "
                                 "the store was damaged or edited: keep it for inspection and use another run "
                                 "directory") from None
        total = legacy_schedule(recipes, [r[4] for r in group])
        charges = charged_steps(recipes, total)
        links = parent_links(recipes) if fill_parents else [None] * len(group)
        for r, charged, link in zip(group, charges, links, strict=True):
            parent = (None if link is None else group[link][2]) if fill_parents else r[5]
            yield r[0], charged, parent


def legacy_schedule(recipes: Sequence[Recipe], steps: Sequence[int]) -> int:
    """The full schedule T of a search's candidates: the steps of a finished full-schedule candidate (else the most
    steps of any)."""
    full = [s for r, s in zip(recipes, steps, strict=True) if r.until is None and r.steps is None]
    return max(full) if full else max(steps, default=1)


def check_images(root: Path) -> None:
    """Refuse (one line) a run directory whose store references images when its images/ folder is gone."""
    if not (root / "images").is_dir() and _has_images(root / "store.sqlite"):
        raise StoreError(f"{root / 'images'}: the images of this run store are missing (folder deleted or moved); "
                         "restore it, or use another run directory")


def _has_images(db_path: Path) -> bool:
    """Whether a store references any image (read without writing; False for a damaged file)."""
    try:
        db = connect_read_only(db_path)
        try:
            return db.execute("SELECT 1 FROM candidates WHERE image IS NOT NULL LIMIT 1").fetchone() is not None
        finally:
            db.close()
    except sqlite3.Error:
        return False


def read_only(root: str | Path) -> Store:
    """Open a store for reading (reports, ``eacps show``): no lock, no writes."""
    return Store(Path(root), readonly=True)
