"""eacps-nevergrad: the ``nevergrad`` strategy, any Nevergrad optimizer searching the diffusion noise.

The package imports no nevergrad: the strategy is registered by reference and its module imported when a config
first uses it (``eacps --help`` and ``eacps plugins`` stay fast); the names below are imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from eacps import hookimpl

__all__ = ["NevergradParams", "NevergradStrategy"]


@hookimpl
def register_strategies(register):
    register("eacps_nevergrad.strategy:NevergradStrategy", name="nevergrad")


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("eacps_nevergrad.strategy"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
