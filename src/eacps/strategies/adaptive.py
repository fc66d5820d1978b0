"""``adaptive``: a stop rule around any strategy.

After each told batch it fits a normal to the potentials seen so far and predicts, with exact order
statistics, the gain of the next doubling: σ·(e(2N) − e(N)) where e(N) = E[max of N standard normals].
It stops when that predicted gain is below ``min_gain`` (in potential units). The write-up's
μ + σ·sqrt(2 ln N) is *not* used: it overstates small-N gains by about 0.6σ.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from eacps.errors import ConfigError
from eacps.hookspecs import hookimpl
from eacps.params import Params
from eacps.recipe import Recipe
from eacps.strategies.best_of_n import BestOfN
from eacps.strategy import Strategy
from eacps.types import Result


class AdaptiveParams(Params):
    strategy: str = Field("best-of-n", description="the wrapped strategy")
    params: dict[str, Any] = Field(default_factory=dict, description="the wrapped strategy's parameters")
    min_gain: float = Field(0.5, ge=0, description="stop when the predicted gain of doubling is below this")
    min_samples: int = Field(8, ge=3, description="OK results needed before the rule may stop")
    fit: Literal["normal", "empirical"] = "normal"


class Adaptive(Strategy):
    """A stop rule around ``inner``, built by whoever builds strategies by name (default: ``best-of-n``)."""

    name = "adaptive"
    Params = AdaptiveParams

    def __init__(self, params: AdaptiveParams | None = None, *, budget: int = 20, seed: int = 0,
                 inner: Strategy | None = None) -> None:
        super().__init__(params, budget=budget, seed=seed)
        p = self.params
        if inner is None:
            if p.strategy != BestOfN.name or p.params:
                raise ValueError(f"adaptive wraps {p.strategy!r} (params.strategy): pass it built, as inner=, or "
                                 "build adaptive by name (eacps.make_strategy('adaptive', params), a config)")
            inner = BestOfN(budget=budget, seed=seed)
        if inner.name != p.strategy:
            raise ValueError(f"params.strategy is {p.strategy!r} but the inner strategy passed is {inner.name!r}")
        if isinstance(inner, Adaptive):
            raise ConfigError("params.strategy: adaptive cannot wrap itself")
        if inner.counts_steps:  # its budget is B·T steps and it needs bind(T); adaptive predicts per candidate
            raise ConfigError(f"params.strategy: adaptive cannot wrap {inner.name!r}, which spends denoising steps "
                              "on partial paths; wrap a strategy that asks whole candidates")
        if inner.budget != self.budget:
            raise ValueError(f"the inner strategy's budget is {inner.budget}, adaptive's {self.budget}: give both one")
        self.inner = inner
        self.predicted_gain: float | None = None

    @classmethod
    def inner_entry(cls, params: AdaptiveParams) -> tuple[str, dict[str, Any]]:
        """The wrapped strategy's registered name and params: what builds strategies by name builds it too and
        passes it as ``inner`` (``eacps.config.inner_strategy``)."""
        return params.strategy, params.params

    def needs(self) -> frozenset[str]:
        """What the wrapped strategy needs."""
        return self.inner.needs()

    def predict_gain(self) -> float | None:
        from eacps.orderstats import expected_max_empirical, expected_max_std_normal  # scipy: only when used

        ys = [r.potential for r in self.history if r.ok]
        n = len(ys)
        if n < self.params.min_samples:
            return None
        if self.params.fit == "empirical":
            return expected_max_empirical(ys, 2 * n) - expected_max_empirical(ys, n)
        sigma = statistics.stdev(ys)
        return sigma * (expected_max_std_normal(2 * n) - expected_max_std_normal(n))

    def _ask(self, n: int) -> list[Recipe]:
        return self.inner.ask(n)

    def _tell(self, results: Sequence[Result]) -> None:
        self.inner.tell(results)
        self.predicted_gain = self.predict_gain()

    def _stop(self) -> dict[str, Any]:
        reasons = {f"inner:{k}": v for k, v in self.inner.stop().items()}
        if not self.pending and self.predicted_gain is not None and self.predicted_gain < self.params.min_gain:
            reasons["predicted_gain"] = round(self.predicted_gain, 4)
        return reasons


@hookimpl
def register_strategies(register):
    register(Adaptive)
