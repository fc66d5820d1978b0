"""eacps: inference-time search over diffusion-model noise."""

from eacps.generator import Generator
from eacps.hookspecs import hookimpl
from eacps.params import NoParams, Params
from eacps.recipe import PCN, Recipe
from eacps.scorer import Scorer
from eacps.strategy import SeedStream, Strategy, StrategyError
from eacps.types import Condition, Generated, Image, Result, Status

__version__ = "0.1.0"

__all__ = [
    "PCN",
    "Condition",
    "Generated",
    "Generator",
    "Image",
    "NoParams",
    "Params",
    "Recipe",
    "Result",
    "Scorer",
    "SeedStream",
    "Status",
    "Strategy",
    "StrategyError",
    "hookimpl",
]
