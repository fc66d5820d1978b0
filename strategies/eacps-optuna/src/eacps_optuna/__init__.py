"""eacps-optuna: the ``optuna`` strategy, any Optuna sampler searching the diffusion noise."""

from eacps import hookimpl
from eacps_optuna.strategy import SAMPLERS, OptunaParams, OptunaStrategy, make_sampler

__all__ = ["SAMPLERS", "OptunaParams", "OptunaStrategy", "make_sampler"]


@hookimpl
def register_strategies(register):
    register(OptunaStrategy)
