"""``multi-fidelity``: successive halving over *partial trajectories*.

Rung 0 runs ``n0`` random seeds for the first ``rungs[0]`` fraction of the denoising schedule and scores the
model's clean-image prediction there (a preview: a path recipe with ``until``). The top ``promote`` fraction
*continues the same trajectory* to the next rung, the last rung being the end of the schedule; the prefix
already computed is neither recomputed nor charged again (``eacps.stepping``). Only finished trajectories
can be the best.

Budget B is B·T denoising steps (T the generator's schedule): ``n0`` is the largest count whose plan fits,
``n0·k_1 + n_1·(k_2 - k_1) + ... + n_final·(T - k_last)``. Every preview is one potential evaluation; pair it
with a ``preview_potential`` (a cheap screen) when the full potential is expensive. Needs a generator that
can step.

Default schedule: measured on the digits model (``eacps landscape --per-step``), the potential of the step-k
prediction ranks like the final one with Spearman about 0.55 at 20% of the schedule and 0.9 at 50%, against
0.38 for a separately regenerated 3-step preview. Rungs at 20% and 50% (promote 25%) did best of the three
plans tried on the tuning split of the digits tasks (``benchmarks/tune_trajectories.py``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field

from eacps.hookspecs import hookimpl
from eacps.params import Params, ScheduleFractions
from eacps.recipe import Recipe
from eacps.screening import ScreenParams, features, on_path, screen_of
from eacps.strategy import Strategy
from eacps.types import Result


class MultiFidelityParams(Params):
    rungs: ScheduleFractions = Field(default_factory=lambda: [0.2, 0.5],
                                     description="preview points as fractions of the schedule, increasing, in (0, 1)")
    promote: float = Field(0.25, gt=0, le=1, description="fraction promoted from each rung to the next")
    value_model: ScreenParams | None = Field(None, description="screen promotions with a value model "
                                             "(eacps.screening): a promoted path that cannot win is not continued")


def plan(step_budget: int, steps: Sequence[int], total: int, promote: float) -> list[int]:
    """Trajectories per rung (previews..., final): the largest ``n0`` whose plan fits ``step_budget``."""
    points = [0, *steps, total]

    def sizes_of(n0: int) -> list[int]:
        sizes = [n0]
        for _ in steps:
            sizes.append(max(1, math.ceil(sizes[-1] * promote)))
        return sizes

    def fits(n0: int) -> bool:
        return sum(n * (points[i + 1] - points[i]) for i, n in enumerate(sizes_of(n0))) <= step_budget

    if not fits(1):
        raise ValueError(f"multi-fidelity: {step_budget} steps cannot pay one trajectory of {total}")
    lo, hi = 1, 2  # the cost grows with n0: the largest n0 that fits, by doubling then bisection
    while fits(hi):
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return sizes_of(lo)


class MultiFidelity(Strategy):
    name = "multi-fidelity"
    ask_ahead = True
    counts_steps = True
    requires: ClassVar[frozenset[str]] = frozenset({"stepping"})
    Params = MultiFidelityParams

    def __init__(self, params: MultiFidelityParams | None = None, *, budget: int = 20, seed: int = 0) -> None:
        super().__init__(params, budget=budget, seed=seed)
        self.sizes: list[int] = []
        self.points: list[int] = []
        self.rung = 0
        self.queue: deque[Recipe] = deque()
        self.fresh0 = 0  # rung-0 trajectories of the plan not drawn yet (drawn per ask, not all at once)
        self.rung_results: list[list[Result]] = []
        self.screen = screen_of(self.params.value_model)

    def _plan(self) -> None:
        """The plan needs T: made at the first ask (after ``bind``)."""
        total = self.full_steps
        steps = self.schedule_steps(self.params.rungs)
        self.points = [*steps, total]
        self.sizes = plan(self.step_budget, steps, total, self.params.promote)
        self.rung_results = [[] for _ in self.sizes]
        self.fresh0 = self.sizes[0]

    def _fill(self, n: int) -> None:
        """At least ``n`` recipes queued while rung-0 seeds are left to draw (the same seeds, in the same order, as
        drawing them all at once)."""
        if self.fresh0 and len(self.queue) < n:
            k = min(self.fresh0, n - len(self.queue))
            self.fresh0 -= k
            self.queue.extend(r.with_until(self.points[0]) for r in self.fresh_seeds(k))

    def until_of(self, rung: int) -> int | None:
        return self.points[rung] if rung < len(self.points) - 1 else None

    def _next_rung(self) -> None:
        """When a rung is complete, queue the next one (what no longer fits ends the plan). Run at every ask and
        after every tell, so ``stop()`` only reads the plan's state."""
        if not self.sizes:
            self._plan()
        self._fill(1)
        self._trim()
        while not self.queue and not self.pending and self.rung + 1 < len(self.sizes):
            self._promote()
            self._trim()

    def _ask(self, n: int) -> list[Recipe]:
        self._next_rung()
        self._fill(n)
        out: list[Recipe] = []
        left = self.steps_left
        while self.queue and len(out) < n and (cost := self.cost_of(self.queue[0])) <= left:
            left -= cost
            out.append(self.queue.popleft())
        return out

    def _trim(self) -> None:
        """Fresh fill-ins (after failed previews) cost whole trajectories: what no longer fits ends the plan."""
        if self.queue and not self.pending and self.cost_of(self.queue[0]) > self.steps_left:
            self.queue.clear()
            self.fresh0 = 0

    def _promote(self) -> None:
        ranked = sorted((r for r in self.rung_results[self.rung] if r.ok), key=lambda r: -r.potential)
        self.rung += 1
        until = self.until_of(self.rung)
        chosen = ranked[: self.sizes[self.rung]]
        short = self.sizes[self.rung] - len(chosen)  # failed previews: fresh trajectories fill in
        if self.screen is not None:  # promoted paths the value model rules out are dropped, not refilled
            x = [features(r.potential, r.recipe.until, self.full_steps) for r in ranked]  # type: ignore[arg-type]
            drop = self.screen.prune(x[: len(chosen)], competitors=x)
            chosen = [r for r, d in zip(chosen, drop, strict=True) if not d]
        self.queue = deque(r.recipe.with_until(until) for r in chosen)
        self.queue.extend(r.with_until(until) for r in self.fresh_seeds(short))

    def _tell(self, results: Sequence[Result]) -> None:
        for r in results:
            u = r.recipe.until
            self.rung_results[len(self.points) - 1 if u is None else self.points.index(u)].append(r)
            if self.screen is not None and u is None and r.ok:  # a final: pairs with its path's previews
                for p in (p for rung in self.rung_results[:-1] for p in rung if p.ok and on_path(p.recipe, r.recipe)):
                    self.screen.add(p.recipe, features(p.potential, p.recipe.until, self.full_steps), r.recipe,
                                    r.potential)
        self._next_rung()

    def _stop(self) -> dict[str, Any]:
        done = bool(self.sizes) and self.rung + 1 >= len(self.sizes) and not self.queue and not self.pending
        return {"plan": self.sizes} if done and self.steps_left > 0 else {}

    def diagnostics(self) -> dict[str, Any]:
        out = {"plan": self.sizes, "rung_steps": self.points, "preview_rank_spearman": self.preview_rank_correlation()}
        return out if self.screen is None else {**out, "value_model": self.screen.diagnostics()}

    def preview_rank_correlation(self, rung: int = 0) -> float | None:
        """Spearman correlation between rung-``rung`` preview potentials and final potentials of the same path."""
        from scipy.stats import spearmanr

        if not self.rung_results:
            return None
        final = {r.recipe.with_until(None): r.potential for r in self.rung_results[-1] if r.ok}
        pairs = [(r.potential, final[r.recipe.with_until(None)]) for r in self.rung_results[rung]
                 if r.ok and r.recipe.with_until(None) in final]
        if len(pairs) < 3:
            return None
        rho = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
        return None if math.isnan(rho) else float(rho)


@hookimpl
def register_strategies(register):
    register(MultiFidelity)
