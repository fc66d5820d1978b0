"""Test configs built as data: a dict, edited by path, written as TOML (no retyped TOML strings)."""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

from eacps import tomlw


def dumps(cfg: dict[str, Any]) -> str:
    """A config dict as TOML text (the writer ``eacps generate`` uses)."""
    return tomlw.dumps(cfg)


def write(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(dumps(cfg))
    return path


def edit(cfg: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``cfg`` with the dotted ``path`` (list indices as numbers) set to ``value``."""
    out = copy.deepcopy(cfg)
    keys = path.split(".")
    node: Any = out
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
    node[int(keys[-1]) if isinstance(node, list) else keys[-1]] = value
    return out


def toy(**search: Any) -> dict[str, Any]:
    """The two-condition toy config (tests/toy.py must be registered): realism + consistency, one [search]."""
    return {
        "generator": {"name": "toy", "params": {}},
        "potential": {"criteria": {"realism": {"scorer": "toy-pixel"}, "consistency": {"scorer": "toy-mean"}}},
        "search": {"strategy": "eacps", "budget": 20, "batch_size": 6, **search},
        "conditions": [{"id": "a", "prompt": "first"}, {"id": "b", "prompt": "second"}],
    }


def digits(strategy: str, budget: int, *, criteria: tuple[str, ...] = ("consistency", "realism", "identity"),
           **search: Any) -> dict[str, Any]:
    """One digits search on "draw a 3 like reference 59" (the example's first condition)."""
    return {
        "generator": {"name": "digits"},
        "potential": {"criteria": {c: {"scorer": f"digits-{c}"} for c in criteria}},
        "search": {"strategy": strategy, "budget": budget, **search},
        "conditions": [{"id": "three", "class_label": 3, "extra": {"reference_index": 59}}],
    }


def leaves(cfg: Any, where: str = "") -> list[tuple[str, Any]]:
    """Every (dotted path, scalar value) of a config."""
    if isinstance(cfg, dict):
        return [x for k, v in cfg.items() for x in leaves(v, f"{where}.{k}" if where else str(k))]
    if isinstance(cfg, list):
        return [x for i, v in enumerate(cfg) for x in leaves(v, f"{where}.{i}" if where else str(i))]
    return [(where, cfg)]


def unused_port() -> int:
    """A local TCP port nothing listens on now (an unreachable judge URL; a port for a test server)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def toy_stepping(strategy: str, budget: int, **search: Any) -> dict[str, Any]:
    """One search on the stepping toy generator (tests/toy.py, ``stepping = true``: an exact analytic sampler over 10
    steps), for the trajectory strategies without the digits model."""
    cfg = edit(toy(strategy=strategy, budget=budget, **search), "generator.params", {"stepping": True})
    return edit(cfg, "conditions", cfg["conditions"][:1])


def n_candidates(run_dir: Path) -> int:
    """How many candidate rows a run directory's store holds (read-only: the test's own writes are unaffected)."""
    from eacps.store import read_only

    ro = read_only(run_dir)
    try:
        return len(ro.candidates())
    finally:
        ro.close()
