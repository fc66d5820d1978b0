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

from eacps import plugins
from eacps.config import ConfigError, validate_params
from eacps.hookspecs import hookimpl
from eacps.params import Params
from eacps.recipe import Recipe
from eacps.strategy import Strategy
from eacps.types import Result


class AdaptiveParams(Params):
    strategy: str = Field("best-of-n", description="the wrapped strategy")
    params: dict[str, Any] = Field(default_factory=dict, description="the wrapped strategy's parameters")
    min_gain: float = Field(0.5, ge=0, description="stop when the predicted gain of doubling is below this")
    min_samples: int = Field(8, ge=3, description="OK results needed before the rule may stop")
    fit: Literal["normal", "empirical"] = "normal"


class Adaptive(Strategy):
    name = "adaptive"
    Params = AdaptiveParams

    def __init__(self, params: AdaptiveParams | None = None, *, budget: int = 20, seed: int = 0) -> None:
        super().__init__(params, budget=budget, seed=seed)
        try:
            cls = plugins.get("strategy", self.params.strategy)
        except (plugins.UnknownPluginError, plugins.PluginLoadError) as exc:
            raise ConfigError(f"params.strategy: {exc.args[0]}") from None
        if cls is Adaptive:
            raise ConfigError("params.strategy: adaptive cannot wrap itself")
        if cls.counts_steps:  # its budget is B·T steps and it needs bind(T); adaptive predicts per candidate
            raise ConfigError(f"params.strategy: adaptive cannot wrap {cls.name!r}, which spends denoising steps "
                              "on partial paths; wrap a strategy that asks whole candidates")
        inner = validate_params(cls.Params, self.params.params, "params.params")  # one line, not a dump
        try:
            self.inner: Strategy = cls(inner, budget=budget, seed=seed)
        except ConfigError as exc:  # a field of the inner entry, which sits under params
            raise ConfigError(f"params.{exc}") from None
        self.predicted_gain: float | None = None

    @property
    def requires(self) -> frozenset[str]:  # type: ignore[override]
        """What the wrapped strategy needs."""
        return frozenset(getattr(self.inner, "requires", ()))

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
