"""eacps-nevergrad: the ``nevergrad`` strategy, any Nevergrad optimizer searching the diffusion noise."""

from eacps import hookimpl
from eacps_nevergrad.strategy import NevergradParams, NevergradStrategy

__all__ = ["NevergradParams", "NevergradStrategy"]


@hookimpl
def register_strategies(register):
    register(NevergradStrategy)
