"""eacps-diffusers: Hugging Face diffusers pipelines as an eacps generator (``generator: diffusers``)."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "FAMILIES": "eacps_diffusers.generator",
    "DiffusersGenerator": "eacps_diffusers.generator",
    "DiffusersParams": "eacps_diffusers.generator",
    "Family": "eacps_diffusers.generator",
    "ModelLoadError": "eacps_diffusers.generator",
    "ModelNotCached": "eacps_diffusers.generator",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Import the submodule of ``name`` on first use (PEP 562): importing this package (the entry point does)
    must not import torch or diffusers."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
