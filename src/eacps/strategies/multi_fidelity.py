"""``multi-fidelity``: successive halving over *partial trajectories*.

Rung 0 runs ``n0`` random seeds for the first ``rungs[0]`` fraction of the denoising schedule and scores the
model's clean-image prediction there (a preview: a path recipe with ``until``). The top ``promote`` fraction
*continues the same trajectory* to the next rung, the last rung being the end of the schedule; the prefix
already computed is neither recomputed nor charged again (``eacps.stepping``). Only finished trajectories
can be the best.

Promotion (``promotion``): ``"drop"`` is successive halving as above, the paths not promoted end and their steps
buy more fresh paths at rung 0 (a screen at a fraction f of the schedule can at most let 1/f times as many paths
start). ``"branch"`` (the default since 2026-12-06, chosen with rungs 0.3/0.6 by ``benchmarks/tune_trajectories.py
--round promotion`` over four tuning testbeds under both cost models) keeps each rung's count: the promoted paths
share it as *children*, each renoised at the rung (angle ``branch_theta``, its own seed, then its own ``branch_at``
renoises), so the steps the others would have spent continue the best prefixes, which the children share.

Budget B is B·T denoising steps (T the generator's schedule): dropping, ``n0`` is the largest count whose plan fits,
``n0·k_1 + n_1·(k_2 - k_1) + ... + n_final·(T - k_last)``; branching, every rung holds B (or what the pilot left)
paths. Every preview is one potential evaluation; pair it
with a ``preview_potential`` (a cheap screen) when the full potential is expensive. Needs a generator that
can step.

Fixed schedule (``schedule = "fixed"``): measured on the digits model (``eacps landscape --per-step``), the
potential of the step-k prediction ranks like the final one with Spearman about 0.55 at 20% of the schedule and
0.9 at 50%, against 0.38 for a separately regenerated 3-step preview. Rungs at 20% and 50% (promote 25%) did best
of the three plans tried on the tuning split of the digits tasks; on the high-dimension sharp gaussian-mixture
landscape the same plan finishes 4 candidates of 20 and loses to best-of-N. The default is the adaptive schedule
below, chosen by the joint rule of ``benchmarks/tune_trajectories.py`` over the tuning splits of all testbeds.

Adaptive schedule (``schedule = "adaptive"``): instead of trusting fractions tuned on one landscape, the search
first runs a *pilot* of ``pilot``·B trajectories to the end, scoring a preview at every point of ``rungs`` on the
way (the prefix is shared: a pilot trajectory costs T steps, like a best-of-N candidate). From the pilot's
(preview, final) pairs it measures the rank agreement (Spearman ρ) at each point, then spends the rest of the
budget on the one-rung plan (a point of ``rungs``, a promotion fraction of ``PROMOTE_GRID``) whose expected best
final is highest when previews and finals are standard bivariate normal with correlation ρ (a seeded Monte Carlo
estimate, the pilot's finals included). Uninformative previews choose promotion 1: the rest of the budget is
best-of-N without previews, so the search degrades to best-of-N instead of losing to it. Branching, a plan's
children are valued with a sibling model (``expected_best(children=...)``, ``SIBLING_SHARE``) and the pilot's
trajectories are renoised right after each rung point, as a child is: the agreement measured is that of a preview
with the final of a child, which a renoise makes far looser than with its own continuation.

How ρ enters (``agreement``): a pilot is small (5 trajectories at budget 20; 3 with the earlier pilot of 0.15), and
the Spearman ρ of three pairs is one of -1, -0.5, 0.5, 1 whatever the landscape: previews that rank *against* the
finals (gm-flow up to a third of the schedule) read 0.5 or 1 in about a third of the searches, and the point
estimate then screens hard on them. ``"posterior"`` (the default) weighs each plan by the *posterior* of ρ given the
pilot's Spearman (a uniform prior on ρ in (-1, 1); the likelihood of the observed Spearman under each ρ simulated
for that number of pairs, ``agreement_posterior``): a plan is chosen for the expected best averaged over what ρ may
be, so a few pairs that happen to agree cannot buy a hard screen, and a large pilot that agrees clearly gets the
same plan as the point estimate. ``"point"`` plans for the measured ρ itself (the rule before 2026-12-06; ρ <= 0:
promotion 1). The posterior rule with a pilot of 0.25·B (it was 0.15 with the point rule) was chosen by the joint
rule over the tuning splits of four testbeds (``benchmarks/tune_trajectories.py --round pilot``, docs/findings.md).

Branched sampler (``branch_at``, default one renoise at 0.8 of the schedule, θ = ``branch_theta`` = 1): every
trajectory, the pilot's included, carries the same seeded renoise moves, as ``branched-best-of-n``'s do; a preview
before a move does not carry it. On the high-dimension sharp gaussian-mixture landscape the previews of the
unbranched sampler rank the body of the finals (Spearman about 0.86 at 20%) but not its rare best ones, whose
previews rank low at every rung up to 70%, so screening cannot find them and the plain search lost to best-of-N;
the branch was chosen by the joint rule on the tuning splits of the three testbeds (docs/findings.md, "How the
defaults were chosen"). ``branch_at = []`` is the unbranched search.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from eacps.agreement import RHO_GRID, agreement_posterior, spearman_of
from eacps.hookspecs import hookimpl
from eacps.params import BranchFractions, Params, ScheduleFractions
from eacps.recipe import Recipe
from eacps.screening import ScreenParams, on_path, preview_of, screen_of
from eacps.strategy import SamplerSchedule, Strategy
from eacps.types import Result


class MultiFidelityParams(Params):
    rungs: ScheduleFractions = Field(default_factory=lambda: [0.3, 0.6],
                                     description="preview points as fractions of the schedule, increasing, in (0, 1)")
    promote: float = Field(0.25, gt=0, le=1, description="fraction promoted from each rung to the next")
    schedule: Literal["fixed", "adaptive"] = Field(
        "adaptive", description="fixed: rungs and promote as given; adaptive: a pilot measures the preview/final rank "
        "agreement at each point of rungs, then the best one-rung plan for it (promote ignored)")
    pilot: float = Field(0.25, gt=0, lt=1, description="adaptive: the pilot's trajectories as a fraction of B "
                         "(at least 3, at most 32)")
    agreement: Literal["posterior", "point"] = Field(
        "posterior", description="adaptive: plan for the expected best averaged over the posterior of the "
        "preview/final agreement given the pilot (posterior), or for the measured agreement itself (point)")
    value_model: ScreenParams | None = Field(None, description="screen promotions with a value model "
                                             "(eacps.screening): a promoted path that cannot win is not continued")
    branch_at: BranchFractions = Field(default_factory=lambda: [0.8], description="renoise every trajectory at these "
                                   "fractions of the schedule (increasing, in (0, 1); empty: no branch): a sampler "
                                   "change, as branched-best-of-n's, that the previews after it see")
    branch_theta: float = Field(1.0, gt=0, le=math.pi / 2, description="angle of each branch_at renoise")
    promotion: Literal["drop", "branch"] = Field(
        "branch", description="drop: a promoted path continues alone, the others end (successive halving); branch: "
        "the promoted paths fill the rung's count with renoised children (angle branch_theta), so the steps the "
        "dropped paths free go to the best prefixes")


#: the adaptive schedule's largest pilot (enough pairs to measure a rank correlation; keeps a huge B's first ask small)
MAX_PILOT = 32
#: promotion fractions the adaptive schedule chooses from (1: no screening, best-of-N)
PROMOTE_GRID = (1.0, 1 / 2, 1 / 3, 1 / 4, 1 / 6, 1 / 8)


#: the plan model's share of a child's unexplained variance that its siblings share (``promotion = "branch"``):
#: a renoise of angle 1 at a rung leaves the residuals of sibling finals about uncorrelated early and somewhat
#: correlated late (partial Spearman given the preview -0.13 to +0.17 at 20-53% of the schedule, +0.04 to +0.43 at
#: 67-70%, tuning tasks of digits, gm-easy and gm-flow: ``benchmarks/siblings.py``); a quarter keeps the model
#: from overrating children
SIBLING_SHARE = 0.25

def expected_best(rho: float | np.ndarray, n0: int, m: int, pilot: int, rng: np.random.Generator,
                  sims: int = 4000, children: int | None = None) -> float:
    """E[max] of the pilot's ``pilot`` finals and the finals of the top ``m`` of ``n0`` previews, when preview and
    final are standard bivariate normal with correlation ``rho`` (Monte Carlo, in units of the final's sd).
    ``rho`` may be posterior weights over ``RHO_GRID`` (an array): each simulation then draws its own ρ from them,
    and the result is the expected best averaged over the posterior. ``children``: the top ``m`` are not finished
    once each but have that many renoised children between them (``split_children``), each final
    ``ρ·z + sqrt(1-ρ²)·(sqrt(s)·u + sqrt(1-s)·e)`` with ``u`` its parent's and ``e`` its own (s = ``SIBLING_SHARE``)."""
    if isinstance(rho, np.ndarray):
        rho = rng.choice(RHO_GRID, size=(sims, 1), p=rho)
    z = rng.standard_normal((sims, n0))
    top = np.argpartition(-z, m - 1, axis=1)[:, :m] if m < n0 else np.broadcast_to(np.arange(n0), (sims, n0))
    resid = np.sqrt(np.maximum(0.0, 1 - rho * rho))
    if children is None:
        f = rho * z + resid * rng.standard_normal((sims, n0))
        best = np.take_along_axis(f, top, axis=1).max(axis=1)
    else:
        parent = np.repeat(np.arange(min(m, n0)), split_children(children, min(m, n0)))
        zt = np.take_along_axis(z, top, axis=1)[:, parent]
        shared = rng.standard_normal((sims, min(m, n0)))[:, parent]
        own = rng.standard_normal((sims, len(parent)))
        f = rho * zt + resid * (math.sqrt(SIBLING_SHARE) * shared + math.sqrt(1 - SIBLING_SHARE) * own)
        best = f.max(axis=1)
    if pilot:
        best = np.maximum(best, rng.standard_normal((sims, pilot)).max(axis=1))
    return float(best.mean())


def split_children(children: int, parents: int) -> list[int]:
    """``children`` shared among ``parents`` ranked best first, as evenly as can be (the best get the remainder)."""
    return [children // parents + (i < children % parents) for i in range(parents)]


def promoted(size: int, promote: float) -> int:
    """How many of a rung's ``size`` paths ``promote`` keeps (at least one)."""
    return max(1, math.ceil(size * promote))


def plan(step_budget: int, steps: Sequence[int], total: int, promote: float) -> list[int]:
    """Trajectories per rung (previews..., final): the largest ``n0`` whose plan fits ``step_budget``."""
    points = [0, *steps, total]

    def sizes_of(n0: int) -> list[int]:
        sizes = [n0]
        for _ in steps:
            sizes.append(promoted(sizes[-1], promote))
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
        # adaptive: the pilot's trajectories, how far they have been queued, their results by (root, until)
        self.pilot: list[Recipe] = []
        self.pilot_fresh: int | None = None  # pilot trajectories not drawn yet (None: not sized yet)
        self.pilot_stage = 0
        self.pilot_results: dict[tuple[Recipe, int | None], Result] = {}
        self.adapted: dict[str, Any] = {}
        self.path_of: dict[Recipe, Recipe] = {}  # each asked preview's whole path (its branch_at renoises included)
        self.promote = self.params.promote  # the promotion fraction in effect (adaptive: the plan's)

    @property
    def branching(self) -> bool:
        return self.params.promotion == "branch"

    def _plan(self) -> None:
        """The plan needs T: made at the first ask (after ``bind``); adaptive: after the pilot."""
        if self.params.schedule == "adaptive":
            self._adaptive_plan()
            return
        total = self.full_steps
        steps = self.schedule_steps(self.params.rungs)
        self.points = [*steps, total]
        if self.branching:  # every rung keeps the count: n0 whole trajectories' worth of steps
            self.sizes = [self.step_budget // total] * (len(steps) + 1)  # type: ignore[operator]
            if not self.sizes[0]:
                raise ValueError(f"multi-fidelity: {self.step_budget} steps cannot pay one trajectory of {total}")
        else:
            self.sizes = plan(self.step_budget, steps, total, self.params.promote)
        self.rung_results = [[] for _ in self.sizes]
        self.fresh0 = self.sizes[0]

    def _fill(self, n: int) -> None:
        """At least ``n`` recipes queued while rung-0 seeds are left to draw (the same seeds, in the same order, as
        drawing them all at once)."""
        if self.pilot_fresh and len(self.queue) < n:  # adaptive: the pilot's first previews, the same way
            k = min(self.pilot_fresh, n - len(self.queue))
            self.pilot_fresh -= k
            drawn = self.roots(k, pilot=True)
            self.pilot += drawn
            self.queue.extend(self.at(r, self._pilot_points()[0]) for r in drawn)
        if self.fresh0 and len(self.queue) < n:
            k = min(self.fresh0, n - len(self.queue))
            self.fresh0 -= k
            self.queue.extend(self.at(r, self.until_of(0)) for r in self.roots(k))

    def roots(self, k: int, pilot: bool = False) -> list[Recipe]:
        """``k`` fresh trajectories: random seeds, each with the ``branch_at`` renoises (their seeds drawn from the
        local stream in order, so the same asks give the same paths). With ``promotion = "branch"`` a pilot's
        trajectory is also renoised right after each rung point, as a promoted path's children are: its agreement
        is then that of a preview with the final of a child."""
        sched = self.sampler_schedule() if pilot else self._schedule(self.params.branch_at)
        roots = self.fresh_seeds(k)
        return [sched.branched(r, self.local_seeds) for r in roots] if sched else roots

    def _schedule(self, fractions: Sequence[float]) -> SamplerSchedule | None:
        if not fractions:
            return None
        steps = self.schedule_steps(fractions)
        return SamplerSchedule(tuple(steps), (self.params.branch_theta,) * len(steps))

    def sampler_schedule(self) -> SamplerSchedule | None:
        """Every trajectory carries the ``branch_at`` renoises, and with ``promotion = "branch"`` the renoise of a
        child at each rung point (None without any: a plain sample of the sampler, multi-fidelity's selection
        alone does not change how a candidate is drawn)."""
        return self._schedule([*self.params.branch_at, *(self.params.rungs if self.branching else [])])

    def child(self, path: Recipe, step: int) -> Recipe:
        """A child of ``path`` at rung step ``step``: its trajectory to there, renoised by ``branch_theta`` with a fresh
        seed, then its own ``branch_at`` renoises after that step (fresh seeds: siblings do not share them)."""
        out = preview_of(path, step).branch(step, self.params.branch_theta, self.local_seeds.next())
        for later in self.schedule_steps(self.params.branch_at) if self.params.branch_at else []:
            if later > step:
                out = out.branch(later, self.params.branch_theta, self.local_seeds.next())
        return out

    def at(self, path: Recipe, until: int | None) -> Recipe:
        """``path`` stopped after ``until`` model calls (its renoises before that step), or whole (``None``)."""
        if until is None:
            return path
        preview = preview_of(path, until)
        self.path_of[preview] = path
        return preview

    def path(self, recipe: Recipe) -> Recipe:
        """The whole path an asked recipe (a preview or a final) belongs to."""
        return recipe if recipe.until is None else self.path_of.get(recipe, recipe.with_until(None))

    def until_of(self, rung: int) -> int | None:
        return self.points[rung] if rung < len(self.points) - 1 else None

    def _pilot_points(self) -> list[int | None]:
        return [*self.schedule_steps(self.params.rungs), None]

    def _run_pilot(self) -> bool:
        """Adaptive: queue the pilot's next wave (previews at each rung point, then finals) once the previous one
        is told. True while the pilot is not over (nothing else may be asked)."""
        points = self._pilot_points()
        if self.pilot_fresh is None:  # its size: pilot·B, at least 3, at most MAX_PILOT, leaving a candidate's steps
            n = min(MAX_PILOT, max(3, round(self.params.pilot * self.budget)),
                    self.step_budget // self.full_steps - 1)  # type: ignore[operator]
            self.pilot_fresh = n if n >= 3 else 0  # too few to measure anything: no pilot
            self.pilot_stage = 1 if n >= 3 else len(points)  # its first previews are drawn per ask (``_fill``)
        if self.pilot_fresh or self.queue or self.pending:
            return True
        while self.pilot_stage < len(points):
            until, before = points[self.pilot_stage], points[self.pilot_stage - 1] if self.pilot_stage else 0
            # a failed preview ends its trajectory (nothing grows out of it), as in the fixed plan
            alive = [r for r in self.pilot if not before or ((v := self.pilot_results.get((r, before))) and v.ok)]
            self.pilot_stage += 1
            if alive:  # (every pilot trajectory failed: the plan goes on from what is left)
                self.queue = deque(self.at(r, until) for r in alive)
                return True
        return False

    def _adaptive_plan(self) -> None:
        """From the pilot's (preview, final) pairs: the rank agreement at each rung point, and the one-rung plan
        with the highest expected best final for it (promotion 1: the rest as whole candidates, no previews)."""
        total, left = self.full_steps, self.steps_left
        finals = {r: v.potential for (r, u), v in self.pilot_results.items() if u is None and v.ok}
        rhos: dict[int, float | None] = {}
        beliefs: dict[int, float | np.ndarray] = {}  # per point: what the plan's value is averaged over
        posterior = self.params.agreement == "posterior"
        for k in self.schedule_steps(self.params.rungs):
            pairs = [(v.potential, finals[r]) for (r, u), v in self.pilot_results.items()
                     if u == k and v.ok and r in finals]
            rhos[k] = spearman_of(pairs)
            if rhos[k] is not None and (posterior or rhos[k] > 0):
                beliefs[k] = agreement_posterior(rhos[k], len(pairs)) if posterior else rhos[k]
        rng = np.random.default_rng([self.seed, 0x3F])
        n_pilot = len(finals)
        whole = left // total
        best = (expected_best(0.0, max(whole, 1), max(whole, 1), n_pilot, rng), None, 1.0, [whole])
        for k, belief in beliefs.items():
            for q in PROMOTE_GRID[1:]:
                if left < k + (total - k) or (self.branching and whole < 2):
                    continue
                if self.branching:  # n0 previews, their top q·n0 share n0 children
                    sizes = [whole, whole]
                    value = expected_best(belief, whole, promoted(whole, q), n_pilot, rng, children=whole)
                else:
                    sizes = plan(left, [k], total, q)
                    value = expected_best(belief, sizes[0], sizes[1], n_pilot, rng)
                if value > best[0]:
                    best = (value, k, q, sizes)
        value, k, q, sizes = best
        self.promote = q
        self.points = [total] if k is None else [k, total]
        self.sizes = sizes if whole or k is not None else [0]
        self.rung_results = [[] for _ in self.sizes]
        self.fresh0 = self.sizes[0]
        means = {str(k): float(b @ RHO_GRID) for k, b in beliefs.items() if isinstance(b, np.ndarray)}
        self.adapted = {"pilot": len(self.pilot), "agreement": {str(s): r for s, r in rhos.items()},
                        **({"agreement_posterior_mean": means} if posterior else {}),
                        "rung_step": k, "promote": q, "promotion": self.params.promotion, "plan": self.sizes,
                        "expected_best_sd": value}

    def _next_rung(self) -> None:
        """When a rung is complete, queue the next one (what no longer fits ends the plan). Run at every ask and
        after every tell, so ``stop()`` only reads the plan's state; adaptive: the pilot runs first."""
        if not self.sizes and self.params.schedule == "adaptive" and self._run_pilot():
            return
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
        size = self.sizes[self.rung]
        chosen = ranked[: promoted(self.sizes[self.rung - 1], self.promote) if self.branching else size]
        short = size - len(chosen)  # failed previews: fresh trajectories fill in
        if self.screen is not None:  # promoted paths the value model rules out are dropped, not refilled
            x = [self.screen.x(r, r.recipe.until, self.full_steps) for r in ranked]  # type: ignore[arg-type]
            drop = self.screen.prune(x[: len(chosen)], competitors=x)
            chosen = [r for r, d in zip(chosen, drop, strict=True) if not d]
        if self.branching and chosen:  # the rung's count, as renoised children of the promoted paths, best first
            step = self.points[self.rung - 1]
            self.queue = deque(self.at(self.child(self.path(r.recipe), step), until)
                               for r, c in zip(chosen, split_children(size, len(chosen)), strict=True)
                               for _ in range(c))
            return
        self.queue = deque(self.at(self.path(r.recipe), until) for r in chosen)
        self.queue.extend(self.at(r, until) for r in self.roots(short))

    def _tell(self, results: Sequence[Result]) -> None:
        pilot = set(self.pilot)
        for r in results:
            if (root := self.path(r.recipe)) in pilot:
                self.pilot_results[(root, r.recipe.until)] = r
                if self.screen is not None and r.recipe.until is None and r.ok:  # the pilot's pairs train it too
                    for (q, u), p in self.pilot_results.items():
                        if q == root and u is not None and p.ok:
                            self.screen.add(p.recipe, self.screen.x(p, u, self.full_steps), r.recipe, r.potential)
                continue
            u = r.recipe.until
            self.rung_results[len(self.points) - 1 if u is None else self.points.index(u)].append(r)
            if self.screen is not None and u is None and r.ok:  # a final: pairs with its path's previews
                for p in (p for rung in self.rung_results[:-1] for p in rung if p.ok and on_path(p.recipe, r.recipe)):
                    self.screen.add(p.recipe, self.screen.x(p, p.recipe.until, self.full_steps),  # type: ignore
                                    r.recipe, r.potential)
        self._next_rung()

    def _stop(self) -> dict[str, Any]:
        done = bool(self.sizes) and self.rung + 1 >= len(self.sizes) and not self.queue and not self.pending
        return {"plan": self.sizes} if done and self.steps_left > 0 else {}

    def diagnostics(self) -> dict[str, Any]:
        out = {"plan": self.sizes, "rung_steps": self.points, "preview_rank_spearman": self.preview_rank_correlation(),
               **({"schedule": "adaptive", **self.adapted} if self.params.schedule == "adaptive" else {})}
        return out if self.screen is None else {**out, "value_model": self.screen.diagnostics()}

    def preview_rank_correlation(self, rung: int = 0) -> float | None:
        """Spearman correlation between rung-``rung`` preview potentials and final potentials of the same path."""
        if not self.rung_results:
            return None
        final = {r.recipe: r.potential for r in self.rung_results[-1] if r.ok}
        return spearman_of([(r.potential, final[self.path(r.recipe)]) for r in self.rung_results[rung]
                            if r.ok and self.path(r.recipe) in final])


@hookimpl
def register_strategies(register):
    register(MultiFidelity)
