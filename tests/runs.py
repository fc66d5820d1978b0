"""Helpers for tests of whole runs: reading a run store, file digests, toy configs, the vlm plugin's test helpers.

A test reads what a run stored through the store's own read API (``eacps.store.read_only`` and
``Store.candidates``), never with SQL of its schema, so the schema can change without touching tests. Tests that
deliberately damage or rewrite a store (torn WAL, tampered rows, an old store format) write with raw SQL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from configs import edit, toy, write

from eacps.store import Candidate, read_only

DEFAULT_COLS = "search, seq, role, condition, recipe, status, potential, reason, scores"

#: a stored column as the candidate read back gives it (the stored text for recipe, status and scores)
_COLUMN: dict[str, Callable[[Candidate], Any]] = {
    "recipe": lambda c: c.recipe.key,
    "status": lambda c: c.status.value,
    "scores": lambda c: json.dumps(c.scores, sort_keys=True),
    "image": lambda c: c.image_path,
}


def candidates(run_dir: Path, *, search: str | None = None, role: str | None = None) -> list[Candidate]:
    """Every stored candidate of a run directory (optionally of one search or role), in (search, role, seq)
    order, read through the store's read API (every value validated)."""
    store = read_only(run_dir)
    try:
        return store.candidates(search, role)
    finally:
        store.close()


def rows(run_dir: Path, cols: str = DEFAULT_COLS, *, order: str = "search") -> list[tuple]:
    """Every candidate of a run store as tuples of the named columns (``recipe``, ``status``, ``scores`` as stored
    text, ``image`` the image name; any other name a ``Candidate`` field), in (search, role, seq) order or, with
    ``order="id"``, in the order stored."""
    cands = candidates(run_dir)
    if order == "id":
        cands.sort(key=lambda c: c.id)
    names = [n.strip() for n in cols.split(",")]
    return [tuple(_COLUMN[n](c) if n in _COLUMN else getattr(c, n) for n in names) for c in cands]


def count(run_dir: Path, *, role: str | None = None) -> int:
    """How many candidates a run store holds (of one role)."""
    return len(candidates(run_dir, role=role))


def digest(run_dir: Path) -> dict[str, str]:
    """sha256 of every file under ``run_dir`` (what "nothing written" compares)."""
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


def toy_cfg(
    *,
    generator: str = "toy",
    gen_params: dict[str, Any] | None = None,
    scorer: str = "toy-mean",
    scorer_params: dict[str, Any] | None = None,
    strategy: str = "eacps",
    budget: int = 20,
    batch_size: int = 6,
) -> dict[str, Any]:
    """The two-condition toy config (``configs.toy``) with the generator and the consistency scorer chosen, both
    with their ``params`` table spelled out (``{}`` when none)."""
    cfg = edit(toy(strategy=strategy, budget=budget, batch_size=batch_size), "generator",
               {"name": generator, "params": dict(gen_params or {})})
    return edit(cfg, "potential.criteria.consistency", {"scorer": scorer, "params": dict(scorer_params or {})})


def toy_config(tmp_path: Path, name: str = "cfg.toml", **kw: Any) -> Path:
    """``toy_cfg(**kw)`` written to ``tmp_path / name`` (the toy plugin of tests/toy.py must be registered)."""
    return write(tmp_path / name, toy_cfg(**kw))


def vlm_test_helpers(module: str = "conftest"):
    """A module of the vlm plugin's tests (``conftest``: tiny LLaVA builder, fake chat-completions server;
    ``test_injection``: the injection scenes, judge and thresholds), imported by path as the package
    ``eacps_vlm_tests`` so their relative imports work: reused, not copied."""
    import importlib
    import sys
    import types

    if "eacps_vlm_tests" not in sys.modules:
        pkg = types.ModuleType("eacps_vlm_tests")
        pkg.__path__ = [str(Path(__file__).parents[1] / "plugins" / "eacps-vlm" / "tests")]
        sys.modules["eacps_vlm_tests"] = pkg
    return importlib.import_module(f"eacps_vlm_tests.{module}")


def run_config(cfg_path: Path, out: Path, *extra: str) -> int:
    """``eacps run CFG --out OUT --quiet`` in process; the exit code."""
    from eacps.commands.cli import main

    return main(["run", str(cfg_path), "--out", str(out), "--quiet", *extra])


def one_line_error(capsys) -> str:
    """The command's stderr, checked to be one ``eacps: error:`` line and no traceback."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("eacps: error: ") and "Traceback" not in err, err
    return err.strip()


def session_versions(run_dir: Path) -> list[dict[str, str]]:
    """The library versions each session of a run recorded (``Store`` has no reader for its sessions table: this
    is the one place tests read it)."""
    import sqlite3

    db = sqlite3.connect(f"file:{run_dir / 'store.sqlite'}?mode=ro", uri=True)
    try:
        return [json.loads(v) for (v,) in db.execute("SELECT versions FROM sessions ORDER BY id")]
    finally:
        db.close()


def meta(run_dir: Path, key: str, default: Any = None) -> Any:
    """A store meta value (``Store.get_meta``), read without writing."""
    store = read_only(run_dir)
    try:
        return store.get_meta(key, default)
    finally:
        store.close()


def best_by_search(run_dir: Path) -> dict[str, Candidate]:
    """Each search's best OK candidate (the first asked among equal potentials), role ``search`` only."""
    out: dict[str, Candidate] = {}
    for c in candidates(run_dir, role="search"):
        if c.status.value == "OK" and c.potential is not None and (
                c.search not in out or c.potential > out[c.search].potential):
            out[c.search] = c
    return out
