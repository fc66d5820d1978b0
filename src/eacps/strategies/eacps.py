"""EACPS: global exploration, keep the elites, refine around them.

Paper algorithm (two stages): K_global random seeds; keep the top M by potential; spawn K_local
children around each elite; return the argmax over everything (defaults 8 + 3 x 4 = 20).

Neighbourhoods:

* ``seed-offset`` -- the paper's children ``s + delta``, delta = 1..K_local. Kept for fidelity; note that
  PyTorch noise from seeds s and s+1 is uncorrelated, so these "neighbours" are fresh random draws
  (``eacps landscape`` measures this). An offset that hits an already evaluated seed is skipped and the
  next offset is used, so no candidate is evaluated twice.
* ``pcn`` -- children ``cos(theta)·z + sin(theta)·xi``: noise correlation exactly cos(theta) with the elite.

Annealing: ``generations = G`` runs G-1 refinement stages, each keeping the top M over everything so
far and spawning K_local children per elite with angle ``theta * theta_decay**(g-1)``; G = 2 with
a fixed angle is the paper's algorithm. The budget is K_global + (G-1)·M·K_local.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from eacps.hookspecs import hookimpl
from eacps.params import Params
from eacps.recipe import SEED_MAX, Recipe
from eacps.strategy import Strategy


class EACPSParams(Params):
    k_global: int | None = Field(None, ge=1, description="stage-1 random seeds (default: derived from the budget)")
    m: int = Field(3, ge=1, description="elites kept per stage")
    k_local: int | None = Field(None, ge=1, description="children per elite per stage (default: derived)")
    neighborhood: Literal["seed-offset", "pcn"] = Field("seed-offset", description="how children are made")
    theta: float = Field(0.3, gt=0, le=math.pi / 2, description="pCN angle (radians) of the first refinement")
    theta_decay: float = Field(1.0, gt=0, le=1, description="angle multiplier per further generation")
    generations: int = Field(2, ge=2, description="1 exploration stage + G-1 refinement stages")


class EACPS(Strategy):
    name = "eacps"
    ask_ahead = True
    Params = EACPSParams

    def __init__(self, params: EACPSParams | None = None, *, budget: int = 20, seed: int = 0) -> None:
        super().__init__(params, budget=budget, seed=seed)
        p = self.params
        k_global, k_local = self.split(budget, p)
        if k_global < 1 or k_local < 1 or k_global + (p.generations - 1) * p.m * k_local != budget:
            raise ValueError(
                f"eacps: budget ({budget}) must equal k_global + (generations-1)*m*k_local "
                f"(= {k_global} + {p.generations - 1}*{p.m}*{k_local}); adjust budget, k_global or k_local"
            )
        self.k_local = k_local
        self.k_global = k_global
        self.generation = 0  # 0: exploration; g >= 1: refinement stage g
        self.queue: list[Recipe] = []
        self.stage_left = k_global  # recipes of the current stage not yet asked

    def needs(self) -> frozenset[str]:
        """pCN children are noise-space recipes; seed-offset children are plain seeds."""
        return frozenset({"noise_recipes"}) if self.params.neighborhood == "pcn" else frozenset()

    @staticmethod
    def split(budget: int, p: EACPSParams) -> tuple[int, int]:
        """(k_global, k_local) for a budget. Unset values keep the paper's proportions (8 of 20 global):
        k_global = round(0.4·budget), k_local = the rest split over (G-1)·M elites, leftovers to stage 1.
        Budget 20 with the defaults gives the paper's 8 + 3×4."""
        stages = (p.generations - 1) * p.m
        if p.k_local is not None:
            k_local = p.k_local
            k_global = p.k_global if p.k_global is not None else budget - stages * k_local
        else:
            k_global = p.k_global if p.k_global is not None else max(1, round(0.4 * budget))
            k_local = max(1, (budget - k_global) // stages)
            if p.k_global is None:
                k_global = budget - stages * k_local
        return k_global, k_local

    def theta_at(self, g: int) -> float:
        return self.params.theta * self.params.theta_decay ** (g - 1)

    def _ask(self, n: int) -> list[Recipe]:
        if self.stage_left == 0:
            if self.pending:  # stage boundary: the elites need every result of this stage
                return []
            self._next_generation()
        if self.generation == 0:  # drawn per ask, never the whole stage at once (a budget of 10^5 is 4·10^4 seeds)
            out = self.fresh_seeds(min(n, self.stage_left))
            self.stage_left -= len(out)
            return out
        out, self.queue = self.queue[:n], self.queue[n:]
        self.stage_left -= len(out)
        return out

    def _next_generation(self) -> None:
        self.generation += 1
        p = self.params
        ok = sorted((r for r in self.history if r.ok), key=lambda r: -r.potential)  # stable: earlier wins ties
        elites = [r.recipe for r in ok[: p.m]]
        n_children = p.m * self.k_local
        if not elites:  # nothing scored: fall back to exploration rather than waste the budget
            self.queue = self.fresh_seeds(n_children)
        else:
            # the children of missing elites go round-robin to the elites we have
            per = [n_children // len(elites) + (i < n_children % len(elites)) for i in range(len(elites))]
            self.queue = []
            for e, k in zip(elites, per, strict=True):
                self.queue += self.children(e, k)  # children() avoids what is already queued
        self.stage_left = len(self.queue)

    def children(self, parent: Recipe, k: int) -> list[Recipe]:
        out: list[Recipe] = []
        if self.params.neighborhood == "pcn":
            theta = self.theta_at(self.generation)
            while len(out) < k:
                c = parent.pcn(theta, self.local_seeds.next())
                if c not in self.seen:
                    out.append(c)
            return out
        taken = self.seen | set(self.queue)
        delta = 0
        while len(out) < k:
            delta += 1
            if parent.seed is not None and not parent.moves:
                c = Recipe(seed=(parent.seed + delta) % SEED_MAX, steps=parent.steps)
            else:  # seed offsets of a composite parent: offset its last pCN seed
                last = parent.moves[-1]
                c = Recipe(parent.seed, parent.basis, parent.coeffs,
                           (*parent.moves[:-1], type(last)(last.theta, (last.seed + delta) % SEED_MAX)), parent.steps)
            if c not in taken and c not in out:
                out.append(c)
        return out


@hookimpl
def register_strategies(register):
    register(EACPS)
