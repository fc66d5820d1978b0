"""eacps executor on Ray: ``[executor] name = "ray"``."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "RayExecutor": "eacps_ray.executor",
    "RayParams": "eacps_ray.executor",
    "PluginSpec": "eacps_ray.specs",
    "PotentialSpec": "eacps_ray.specs",
    "SpecError": "eacps_ray.specs",
    "WorkerSpec": "eacps_ray.specs",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Import the submodule of ``name`` on first use (PEP 562): importing this package (the entry point does)
    must not import ray."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
