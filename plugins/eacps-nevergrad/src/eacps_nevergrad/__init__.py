"""eacps-nevergrad: the ``nevergrad`` strategy, any Nevergrad optimizer searching the diffusion noise.

The package imports no nevergrad: the strategy is registered by reference and its module imported when a config
first uses it (``eacps --help`` and ``eacps plugins`` stay fast); the names below are imported on first access.
"""

from __future__ import annotations

from eacps import hookimpl
from eacps.plugins import lazy_attributes

__all__ = ["NevergradParams", "NevergradStrategy"]
_LAZY = dict.fromkeys(__all__, "eacps_nevergrad.strategy")


@hookimpl
def register_strategies(register):
    register("eacps_nevergrad.strategy:NevergradStrategy", name="nevergrad")


__getattr__ = lazy_attributes(__name__, _LAZY)  # the strategy module imports on first use
