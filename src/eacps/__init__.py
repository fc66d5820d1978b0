"""eacps: inference-time search over diffusion-model noise."""

from eacps.api import make_strategy, run_config, search
from eacps.engine import Engine, SearchResult
from eacps.generator import Generator
from eacps.hookspecs import hookimpl
from eacps.params import NoParams, Params
from eacps.potential import Calibration, Criterion, Potential
from eacps.recipe import PCN, Recipe
from eacps.scorer import Scorer
from eacps.store import Candidate, Store
from eacps.strategy import SeedStream, Strategy, StrategyError
from eacps.types import Condition, Generated, Image, Result, Status

__version__ = "0.1.0"

__all__ = [
    "PCN",
    "Calibration",
    "Candidate",
    "Condition",
    "Criterion",
    "Engine",
    "Generated",
    "Generator",
    "Image",
    "NoParams",
    "Params",
    "Potential",
    "Recipe",
    "Result",
    "Scorer",
    "SearchResult",
    "SeedStream",
    "Status",
    "Store",
    "Strategy",
    "StrategyError",
    "hookimpl",
    "make_strategy",
    "run_config",
    "search",
]
