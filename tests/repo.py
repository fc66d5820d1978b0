"""What this repository ships, as opposed to whatever else is installed beside it: tests that loop over
registered plugins loop over these (a third-party plugin runs the suites in its own repository)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
