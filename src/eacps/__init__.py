"""eacps: inference-time search over diffusion-model noise.

The public names below are imported on first use (PEP 562), so that ``import eacps.store`` (reading a run)
loads neither torch nor the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from eacps.hookspecs import hookimpl
from eacps.params import NoParams, Params

if TYPE_CHECKING:
    from eacps.allocate import Allocation, Mean, Threshold, Worst, search_all
    from eacps.api import make_strategy, run_config, search
    from eacps.engine.engine import Engine, SearchResult
    from eacps.generator import Generator
    from eacps.potential import Calibration, Criterion, Potential
    from eacps.recipe import PCN, Recipe
    from eacps.scorer import Scorer
    from eacps.store import Candidate, Store
    from eacps.strategy import SeedStream, Strategy, StrategyError
    from eacps.types import Condition, Generated, Image, Result, Status

__version__ = "0.1.0"

_LAZY = {
    "eacps.allocate": ("Allocation", "Mean", "Threshold", "Worst", "search_all"),
    "eacps.api": ("make_strategy", "run_config", "search"),
    "eacps.engine.engine": ("Engine", "SearchResult"),
    "eacps.generator": ("Generator",),
    "eacps.potential": ("Calibration", "Criterion", "Potential"),
    "eacps.recipe": ("PCN", "Recipe"),
    "eacps.scorer": ("Scorer",),
    "eacps.store": ("Candidate", "Store"),
    "eacps.strategy": ("SeedStream", "Strategy", "StrategyError"),
    "eacps.types": ("Condition", "Generated", "Image", "Result", "Status"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "PCN",
    "Allocation",
    "Calibration",
    "Candidate",
    "Condition",
    "Criterion",
    "Engine",
    "Generated",
    "Generator",
    "Image",
    "Mean",
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
    "Threshold",
    "Worst",
    "hookimpl",
    "make_strategy",
    "run_config",
    "search",
    "search_all",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'eacps' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
