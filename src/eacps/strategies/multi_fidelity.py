"""``multi-fidelity``: successive halving with cheap previews.

Rung 0 generates ``n0`` random seeds at ``preview_steps`` denoising steps (a recipe with an explicit
``steps``). After every preview is scored, the top ``promote`` fraction is promoted: the *same noise* is
generated again at the next rung, the last rung being the generator's full fidelity (``steps=None``).
Only full-fidelity candidates can be the best: previews are never returned.

Pair it with ``Engine(preview_potential=...)`` for a scoring cascade: a cheap scorer screens previews and
the expensive potential (e.g. a VLM judge) scores only finalists.

The budget counts candidates (previews included). For a comparison at equal cost use
``MultiFidelity.budget_for(cost, ...)``, which turns a cost in full-candidate equivalents into the
number of candidates this plan asks; ``preview_rank_correlation()`` reports how well preview scores
ranked the finals (Spearman).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from eacps.hookspecs import hookimpl
from eacps.params import Params
from eacps.recipe import Recipe
from eacps.strategy import Strategy
from eacps.types import Result


class MultiFidelityParams(Params):
    rungs: list[int] = Field(default_factory=lambda: [3], description="preview step counts, increasing")
    promote: float = Field(0.25, gt=0, le=1, description="fraction promoted from each rung to the next")

    @field_validator("rungs")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if not v or any(s < 1 for s in v) or any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError("rungs must be a non-empty increasing list of positive step counts")
        return v


def plan(budget: int, n_rungs: int, promote: float) -> list[int]:
    """Candidates per rung (previews..., final) using as much of ``budget`` as possible."""
    best = None
    for n0 in range(1, budget + 1):
        sizes = [n0]
        for _ in range(n_rungs):
            sizes.append(max(1, math.ceil(sizes[-1] * promote)))
        if sum(sizes) <= budget:
            best = sizes
        else:
            break
    if best is None:
        raise ValueError(f"multi-fidelity: budget {budget} is too small for {n_rungs} preview rung(s)")
    return best


class MultiFidelity(Strategy):
    name = "multi-fidelity"
    ask_ahead = True
    Params = MultiFidelityParams

    def __init__(self, params: MultiFidelityParams | None = None, *, budget: int = 20, seed: int = 0) -> None:
        super().__init__(params, budget=budget, seed=seed)
        self.sizes = plan(budget, len(self.params.rungs), self.params.promote)
        self.rung = 0
        self.queue: list[Recipe] = [r.with_steps(self.params.rungs[0]) for r in self.fresh_seeds(self.sizes[0])]
        self.rung_results: list[list[Result]] = [[] for _ in self.sizes]

    @classmethod
    def budget_for(cls, cost: float, *, full_steps: int, params: MultiFidelityParams | None = None) -> int:
        """The largest candidate budget whose denoising steps fit ``cost`` full candidates."""
        p = params or cls.Params()
        best = None
        for b in range(len(p.rungs) + 1, 100_000):
            try:
                sizes = plan(b, len(p.rungs), p.promote)
            except ValueError:
                continue
            steps = sum(n * s for n, s in zip(sizes, [*p.rungs, full_steps], strict=True))
            if steps > cost * full_steps:
                break
            best = b
        if best is None:
            raise ValueError(f"a cost of {cost} full candidates is too small for this plan")
        return best

    def steps_of(self, rung: int) -> int | None:
        return self.params.rungs[rung] if rung < len(self.params.rungs) else None

    def _ask(self, n: int) -> list[Recipe]:
        if not self.queue:
            if self.pending or self.rung + 1 >= len(self.sizes):
                return []
            ranked = sorted((r for r in self.rung_results[self.rung] if r.ok), key=lambda r: -r.potential)
            self.rung += 1
            steps = self.steps_of(self.rung)
            self.queue = [r.recipe.with_steps(steps) for r in ranked[: self.sizes[self.rung]]]
            self.queue += [r.with_steps(steps) for r in self.fresh_seeds(self.sizes[self.rung] - len(self.queue))]
        out, self.queue = self.queue[:n], self.queue[n:]
        return out

    def _tell(self, results: Sequence[Result]) -> None:
        for r in results:
            rung = len(self.params.rungs) if r.recipe.steps is None else self.params.rungs.index(r.recipe.steps)
            self.rung_results[rung].append(r)

    def _stop(self) -> dict[str, Any]:
        done = self.rung + 1 >= len(self.sizes) and not self.queue and not self.pending
        return {"plan": self.sizes} if done and self.asked < self.budget else {}

    def diagnostics(self) -> dict[str, Any]:
        return {"plan": self.sizes, "preview_rank_spearman": self.preview_rank_correlation()}

    def preview_rank_correlation(self, rung: int = 0) -> float | None:
        """Spearman correlation between rung-``rung`` preview potentials and final potentials of the same noise."""
        from scipy.stats import spearmanr

        final = {r.recipe.with_steps(None): r.potential for r in self.rung_results[-1] if r.ok}
        pairs = [(r.potential, final[r.recipe.with_steps(None)]) for r in self.rung_results[rung]
                 if r.ok and r.recipe.with_steps(None) in final]
        if len(pairs) < 3:
            return None
        rho = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
        return None if math.isnan(rho) else float(rho)


@hookimpl
def register_strategies(register):
    register(MultiFidelity)
