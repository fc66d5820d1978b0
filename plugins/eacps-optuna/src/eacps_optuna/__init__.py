"""eacps-optuna: the ``optuna`` strategy, any Optuna sampler searching the diffusion noise.

The package imports no optuna: the strategy is registered by reference and its module imported when a config
first uses it (``eacps --help`` and ``eacps plugins`` stay fast); the names below are imported on first access.
"""

from __future__ import annotations

from eacps import hookimpl
from eacps.plugins import lazy_attributes

__all__ = ["SAMPLERS", "OptunaParams", "OptunaStrategy", "make_sampler"]
_LAZY = dict.fromkeys(__all__, "eacps_optuna.strategy")


@hookimpl
def register_strategies(register):
    register("eacps_optuna.strategy:OptunaStrategy", name="optuna")


__getattr__ = lazy_attributes(__name__, _LAZY)  # the strategy module imports on first use
