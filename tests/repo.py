"""What this repository ships, as opposed to whatever else is installed beside it: tests that loop over
registered plugins loop over these (a third-party plugin runs the suites in its own repository)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).parents[1]


def normalized(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def own_distributions(root: Path = ROOT) -> frozenset[str]:
    """The distributions this repository ships: the core, plugins/* (their pyproject names)."""
    files = [root / "pyproject.toml", *root.glob("plugins/*/pyproject.toml")]
    return frozenset(normalized(tomllib.loads(f.read_text())["project"]["name"]) for f in files)


OWN = own_distributions()


def own_names(registry, kind: str) -> list[str]:
    """The registered ``kind`` names that this repository's distributions register."""
    return sorted(n for n, e in registry.entries[kind].items() if normalized(e.distribution) in OWN)


def load_script(path: Path, name: str) -> ModuleType:
    """A script of this repository that is not a package module (``benchmarks/*.py``, a plugin's test helper),
    imported from its file as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
