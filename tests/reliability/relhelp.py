"""Helpers shared by the reliability modules (store readers, toy configs)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path


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


TOY = """
[generator]
name = "{generator}"
params = {gen_params}

[potential.criteria.realism]
scorer = "toy-pixel"

[potential.criteria.consistency]
scorer = "{scorer}"
params = {scorer_params}

[search]
strategy = "{strategy}"
budget = {budget}
batch_size = {batch_size}

[[conditions]]
id = "a"
prompt = "first"

[[conditions]]
id = "b"
prompt = "second"
"""


def toy_config(
    tmp_path: Path,
    name: str = "cfg.toml",
    *,
    generator: str = "toy",
    gen_params: str = "{}",
    scorer: str = "toy-mean",
    scorer_params: str = "{}",
    strategy: str = "eacps",
    budget: int = 20,
    batch_size: int = 6,
) -> Path:
    """A two-condition toy config (the toy plugin of tests/toy.py must be registered)."""
    p = tmp_path / name
    p.write_text(
        TOY.format(
            generator=generator,
            gen_params=gen_params,
            scorer=scorer,
            scorer_params=scorer_params,
            strategy=strategy,
            budget=budget,
            batch_size=batch_size,
        )
    )
    return p


def vlm_test_helpers(module: str = "conftest"):
    """A module of the vlm plugin's tests (``conftest``: tiny LLaVA builder, fake chat-completions server;
    ``test_injection``: the injection scenes, judge and thresholds), imported by path as the package
    ``eacps_vlm_tests`` so their relative imports work: reused, not copied."""
    import importlib
    import sys
    import types

    if "eacps_vlm_tests" not in sys.modules:
        pkg = types.ModuleType("eacps_vlm_tests")
        pkg.__path__ = [str(Path(__file__).parents[2] / "plugins" / "eacps-vlm" / "tests")]
        sys.modules["eacps_vlm_tests"] = pkg
    return importlib.import_module(f"eacps_vlm_tests.{module}")
