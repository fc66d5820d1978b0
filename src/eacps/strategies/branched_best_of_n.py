"""``branched-best-of-n``: best-of-N over randomly *branched* paths: the sampler change of the trajectory
strategies, without their search.

Each candidate is a fresh random seed whose trajectory takes a seeded ``renoise`` branch at every step of a
fixed schedule (``at`` as fractions of the schedule, or exact ``steps``), of angle ``theta``; no candidate
depends on another's result, and the argmax wins. A branched path costs exactly what a straight one does (T
model calls: the branch is a move on the state, not a model call), so the budget B buys B candidates, as
best-of-N. Under the same strategy seed its root seeds are best-of-N's (common random numbers), so the two
differ by the branch moves alone.

Why: a ``renoise`` branch changes the distribution of samples by itself (see docs/concepts.md, "What a branch
does to the samples"); on the digits testbed it raises the mean potential with no selection at all. This
strategy takes that gain at best-of-N's price, and ``eacps compare`` uses it (with a trajectory strategy's
declared ``sampler_schedule()``) as the *same-sampler* baseline that tells search from sampler. Needs a
generator that can step.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from eacps.config import ConfigError
from eacps.hookspecs import hookimpl
from eacps.params import BranchFractions, Params
from eacps.recipe import Recipe
from eacps.strategy import SamplerSchedule, Strategy, StrategyError


class BranchedParams(Params):
    at: BranchFractions = Field(default_factory=lambda: [0.8],
                            description="branch points as fractions of the schedule, increasing, in (0, 1)")
    steps: list[int] | None = Field(None, description="exact branch steps (model calls, increasing, in 1..T-1); "
                                                      "replaces at")
    theta: float | list[float] = Field(1.0, description="renoise angle in (0, pi/2]: one for every branch, or "
                                                        "one per branch")

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (any(s < 1 for s in v) or any(b <= a for a, b in itertools.pairwise(v))):
            raise ValueError("must be increasing model calls >= 1")
        return v

    @field_validator("theta")
    @classmethod
    def _theta(cls, v: float | list[float]) -> float | list[float]:
        if any(not 0 < t <= math.pi / 2 for t in (v if isinstance(v, list) else [v])):
            raise ValueError("must be in (0, pi/2]")
        return v

    @model_validator(mode="after")
    def _agree(self) -> BranchedParams:
        if self.steps is not None and {"at", "steps"} <= self.model_fields_set:
            raise ValueError("at, steps: give one of them, not both")
        n = len(self.steps) if self.steps is not None else len(self.at)
        if isinstance(self.theta, list) and len(self.theta) != n:
            raise ValueError(f"theta: one angle per branch point ({n}), got {len(self.theta)}")
        return self


class BranchedBestOfN(Strategy):
    """B random seeds, each branched at every step of a fixed schedule; keep the argmax."""

    name = "branched-best-of-n"
    ask_ahead = True
    counts_steps = True  # asks path recipes (T model calls each, so B of them within B·T)
    requires: ClassVar[frozenset[str]] = frozenset({"stepping"})
    Params = BranchedParams

    def __init__(self, params: BranchedParams | None = None, *, budget: int = 20, seed: int = 0) -> None:
        super().__init__(params, budget=budget, seed=seed)
        self._schedule: SamplerSchedule | None = None

    def sampler_schedule(self) -> SamplerSchedule:
        p = self.params
        total = self.full_steps
        if total is None:
            raise StrategyError(f"{self.name}: bind(full_steps=T) first (the engine does)")
        steps = list(p.steps) if p.steps is not None else self.schedule_steps(p.at) if p.at else []
        if steps and steps[-1] >= total:
            raise ConfigError(f"params.steps: a branch at step {steps[-1]} is outside the {total}-step schedule "
                              f"(allowed: 1..{total - 1})")
        thetas = [float(t) for t in p.theta] if isinstance(p.theta, list) else [float(p.theta)] * len(steps)
        return SamplerSchedule(tuple(steps), tuple(thetas))

    def _ask(self, n: int) -> list[Recipe]:
        if self._schedule is None:
            self._schedule = self.sampler_schedule()
        k = min(n, self.steps_left // self.full_steps)  # type: ignore[operator]
        return [self.branched(r) for r in self.fresh_seeds(k)]

    def branched(self, root: Recipe) -> Recipe:
        """``root``'s trajectory with every branch of the schedule, each with a fresh seed of the local stream."""
        assert self._schedule is not None
        return self._schedule.branched(root, self.local_seeds)

    def diagnostics(self) -> dict[str, Any]:
        s = self._schedule
        return {} if s is None else {"branch_steps": list(s.steps), "branch_thetas": list(s.thetas)}


@hookimpl
def register_strategies(register):
    register(BranchedBestOfN)
