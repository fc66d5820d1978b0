"""Helpers shared by the reliability modules (store readers, toy configs)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from configs import edit, toy, write


def rows(run_dir: Path, cols: str = "search, seq, role, condition, recipe, status, potential, reason, scores") -> list:
    """Every candidate row of a run store, in (search, seq) order (read with a plain sqlite connection)."""
    db = sqlite3.connect(run_dir / "store.sqlite")
    try:
        return db.execute(f"SELECT {cols} FROM candidates ORDER BY search, role, seq").fetchall()
    finally:
        db.close()


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
