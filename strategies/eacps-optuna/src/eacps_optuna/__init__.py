"""eacps-optuna: the ``optuna`` strategy, any Optuna sampler searching the diffusion noise.

The package imports no optuna: the strategy is registered by reference and its module imported when a config
first uses it (``eacps --help`` and ``eacps plugins`` stay fast); the names below are imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from eacps import hookimpl

__all__ = ["SAMPLERS", "OptunaParams", "OptunaStrategy", "make_sampler"]


@hookimpl
def register_strategies(register):
    register("eacps_optuna.strategy:OptunaStrategy", name="optuna")


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("eacps_optuna.strategy"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
