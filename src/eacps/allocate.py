"""Budgets across conditions: one total budget spent over many conditions, where an objective says it helps most.

``search_all`` runs one search per condition (best-of-N by default), but instead of giving each the same budget
it grants candidates a batch at a time. After a warm-up (``min_per_condition`` candidates each), every decision
uses each condition's own evidence: a normal model of the upper half of the potentials it has seen (what a best
can rise into: centred at their median, with the spread above it, shrunk towards the pooled spread with
``prior_weight`` pseudo-observations, so two samples do not make a wild guess; a bad draw below the median does not
widen it), its best so far, and the order statistics of the next batch (``eacps.orderstats``):

* ``mean`` — the condition whose best is expected to rise most per candidate (expected improvement of the max);
* ``worst`` — raise the mean of the lowest ``fraction`` of the bests (the worst decile by default): among the
  conditions in that bottom set, the largest expected rise per candidate, counted only up to the best just above
  the set (past it the condition leaves the set and that one takes its place); conditions outside it wait;
* ``Threshold(tau)`` — among conditions below τ, the one most likely to reach τ with its next batch; it stops
  when every condition has reached τ (or the budget is spent).

Each round is an ``Engine.run_all`` over the granted searches: candidates go to the run store like any run's, a
killed run resumes by replaying the stored results (the allocation is a function of them, so the same
decisions, the same candidates and the same winners follow), and every decision is kept (store meta
``allocation/<label>``) with its reason for ``eacps show`` and the report.

Any strategy that asks whole candidates can be allocated: it is built with the per-condition cap as its budget
and asked, batch by batch, only what was granted (a prefix of the search it would have run). The evidence model
assumes independent draws, which holds for best-of-N; for a strategy whose later candidates depend on earlier
ones the prediction is a heuristic.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from eacps.allocation_log import META_PREFIX
from eacps.api import check_compatible, identity, make_strategy, open_run_dir
from eacps.config import AllocationConfig, ConfigError, RunConfig, SearchConfig, search_section
from eacps.engine.engine import DEFAULT_PRIOR_SEED, Engine, Job, SearchResult
from eacps.engine.meter import Cost
from eacps.generator import Generator
from eacps.orderstats import expected_improvement_normal, prob_reach_normal, upper_half
from eacps.potential import Potential
from eacps.recipe import Recipe
from eacps.store import best_of, search_id
from eacps.strategy import Strategy
from eacps.types import Condition, Result


# -- evidence -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """A condition's evidence: the centre (median) and (shrunk) upper spread of its OK potentials, its best, and
    their count."""

    mu: float
    sigma: float
    best: float
    n: int

    def __str__(self) -> str:
        """What a decision's reason says of the evidence: the best, and the model its predicted figure comes from."""
        return f"best {self.best:.3f} (median {self.mu:.3f}, upper spread {self.sigma:.3f}, {self.n} seen)"


def estimates(scores: Sequence[Sequence[float]], prior_weight: float) -> tuple[list[Estimate | None], float]:
    """Per condition, a normal model of the upper half of its OK potentials (None without any): centred at their
    median, its variance from the excesses above it, shrunk towards the pooled such variance with ``prior_weight``
    pseudo-observations; and the pooled such standard deviation.

    Only the upper half, because a best rises into the upper tail: digits potentials are skewed to the left, and a
    normal fit to all of them read one bad draw as a wide spread, so the condition that had drawn it was credited a
    large expected gain (the `mean` objective then lost to uniform budgets; docs/findings.md, Budgets across
    conditions)."""
    fits = [upper_half(ys) if ys else None for ys in scores]
    num = sum(f[1] for ys, f in zip(scores, fits, strict=True) if f is not None and len(ys) > 1)
    dof = sum(len(ys) - 1 for ys in scores if len(ys) > 1)
    pooled = num / dof if dof else 0.0
    out: list[Estimate | None] = []
    for ys, f in zip(scores, fits, strict=True):
        if f is None:
            out.append(None)
            continue
        m, ss = f
        var = (ss + prior_weight * pooled) / (len(ys) - 1 + prior_weight) if len(ys) > 1 or prior_weight else 0.0
        out.append(Estimate(m, math.sqrt(var), max(ys), len(ys)))
    return out, math.sqrt(pooled)


#: ``Worst``'s default: the worst decile (the figure the issue asks about)
FRACTION = 0.1


# -- objectives -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """What an objective sees of all conditions at a decision: every condition's best (sorted; those with an OK
    candidate) and the pooled deviation."""

    bests: tuple[float, ...]
    sigma: float


class Objective(ABC):
    """What the total budget is for. ``priority`` ranks a condition for the next batch of ``k`` candidates."""

    name: ClassVar[str]

    def reached(self, best: float | None) -> bool:
        """Whether a condition needs nothing more (only ``Threshold`` says so)."""
        return False

    @abstractmethod
    def priority(self, e: Estimate, k: int, f: Field) -> tuple[float, float, str]:
        """(priority per candidate, predicted figure, reason) of giving ``k`` more candidates to ``e``'s condition."""

    def value(self, bests: Sequence[float | None]) -> float:
        """The objective's own figure of a set of bests (for reports and tests)."""
        ok = [b for b in bests if b is not None]
        return sum(ok) / len(ok) if ok else math.nan

    def to_json(self) -> dict[str, Any]:
        return {"objective": self.name}


@dataclass(frozen=True)
class Mean(Objective):
    """Maximise the average best: the largest expected rise of a condition's best per candidate."""

    name: ClassVar[str] = "mean"

    def priority(self, e: Estimate, k: int, f: Field) -> tuple[float, float, str]:
        gain = expected_improvement_normal(e.mu, e.sigma, e.best, k)
        return gain / k, gain, f"{e}: predicted gain {gain:+.3f} from {k} more (largest per candidate)"


@dataclass(frozen=True)
class Worst(Objective):
    """Raise the weakest conditions first: the mean of the lowest ``fraction`` of bests (at least one). A condition
    in that bottom set is credited its expected rise up to the best just above the set (beyond it, it leaves the
    set and that one takes its place); a condition outside it comes after every one inside, weakest first."""

    fraction: float = FRACTION
    name: ClassVar[str] = "worst"

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")

    def priority(self, e: Estimate, k: int, f: Field) -> tuple[float, float, str]:
        m = max(1, math.ceil(self.fraction * len(f.bests)))
        bar = f.bests[m] if m < len(f.bests) else math.inf
        if e.best >= bar and not (e.best == bar == f.bests[m - 1]):
            return (-1.0 - (e.best - bar), 0.0, f"best {e.best:.3f}, above the lowest {m} (bar {bar:.3f}); the "
                    "weakest of those outside")
        gain = expected_improvement_normal(e.mu, e.sigma, e.best, k, cap=None if math.isinf(bar) else bar)
        return (gain / k, gain, f"{e}, among the lowest {m}: predicted rise {gain:+.3f} from {k} "
                f"more (up to {bar:.3f}; largest per candidate)")

    def value(self, bests: Sequence[float | None]) -> float:
        """The mean of the lowest ``fraction`` of the bests (the worst decile by default)."""
        return worst_decile(bests, self.fraction)

    def to_json(self) -> dict[str, Any]:
        return {"objective": self.name, "fraction": self.fraction}


@dataclass(frozen=True)
class Threshold(Objective):
    """Bring as many conditions as possible to a best >= ``tau``, then stop: the likeliest to reach it first."""

    tau: float
    name: ClassVar[str] = "threshold"

    def __post_init__(self) -> None:
        if not math.isfinite(self.tau):
            raise ValueError(f"threshold must be a finite number, got {self.tau}")

    def reached(self, best: float | None) -> bool:
        return best is not None and best >= self.tau

    def priority(self, e: Estimate, k: int, f: Field) -> tuple[float, float, str]:
        p = prob_reach_normal(e.mu, e.sigma, self.tau, k)
        return p / k, p, f"{e} < τ {self.tau:g}: P(reach τ with {k} more) = {p:.2f} (highest)"

    def value(self, bests: Sequence[float | None]) -> float:
        """The fraction of conditions at or above τ."""
        return sum(self.reached(b) for b in bests) / len(bests) if bests else math.nan

    def to_json(self) -> dict[str, Any]:
        return {"objective": self.name, "threshold": self.tau}


OBJECTIVES = ("mean", "worst", "threshold")


def as_objective(spec: Objective | str, threshold: float | None = None, fraction: float = FRACTION) -> Objective:
    """An objective from ``"mean"``, ``"worst"`` (of the lowest ``fraction``), ``"threshold"`` (with ``threshold``)
    or an ``Objective``."""
    if isinstance(spec, Objective):
        return spec
    if spec == "mean":
        return Mean()
    if spec == "worst":
        return Worst(fraction)
    if spec == "threshold":
        if threshold is None:
            raise ValueError("objective 'threshold' needs a threshold (τ, in potential units)")
        return Threshold(float(threshold))
    raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)} or an eacps.allocate.Objective, got {spec!r}")


def worst_decile(bests: Sequence[float | None], fraction: float = 0.1) -> float:
    """Mean of the lowest ceil(fraction x n) of the bests, at least one (a condition without any counts as −inf)."""
    xs = sorted(-math.inf if b is None else b for b in bests)
    if not xs:
        return math.nan
    low = xs[: max(1, math.ceil(fraction * len(xs)))]
    return sum(low) / len(low)


# -- the allotted strategy ------------------------------------------------------------------------------------
class Allotted(Strategy):
    """A condition's strategy, asked only what the allocator has granted so far (its budget is the cap). When
    the grant is used up it stops with ``{"allotted": n}``; a later ``grant`` lets the next run ask again."""

    def __init__(self, inner: Strategy) -> None:
        if inner.counts_steps:
            raise ValueError(f"{inner.name!r} spends denoising steps on partial paths; allocation grants whole "
                             "candidates (use a strategy that asks whole candidates, e.g. best-of-n)")
        super().__init__(inner.params, budget=inner.budget, seed=inner.seed)
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.ask_ahead = inner.ask_ahead  # type: ignore[misc]
        self.granted = 0

    def needs(self) -> frozenset[str]:
        return self.inner.needs()

    def grant(self, n: int) -> None:
        self.granted = min(self.budget, self.granted + n)

    def check_fresh(self) -> None:
        """Continued round after round by its allocator (each ``run_all`` asks only the new grant), so a used
        instance is expected; the inner strategy still runs one search."""

    def _ask(self, n: int) -> list[Recipe]:
        return self.inner.ask(min(n, self.granted - self.asked)) if self.granted > self.asked else []

    def _tell(self, results: Sequence[Result]) -> None:
        self.inner.tell(results)

    def _stop(self) -> dict[str, Any]:
        inner = self.inner.stop()
        if inner:
            return {f"inner:{k}": v for k, v in inner.items()}
        return {"allotted": self.granted} if self.asked >= self.granted and not self.pending else {}

    def diagnostics(self) -> dict[str, Any]:
        return self.inner.diagnostics()


# -- decisions and the result ---------------------------------------------------------------------------------
@dataclass
class Decision:
    """One grant: which condition, how many candidates, and why (its best and predicted figure then)."""

    round: int
    condition: str
    candidates: int
    spent: int  # the condition's candidates before this grant
    best: float | None
    predicted: float | None  # predicted gain (mean, worst) or probability of reaching τ (threshold)
    priority: float | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class Allocation:
    """What ``search_all`` returns: one ``SearchResult`` per condition (in order), every decision, why it stopped."""

    objective: Objective
    total_budget: int
    label: str
    results: list[SearchResult]
    decisions: list[Decision]
    stop: dict[str, Any]
    keepalive: Any = field(default=None, repr=False, compare=False)

    @property
    def spent(self) -> int:
        """Candidates charged over every condition (never more than ``total_budget``)."""
        return sum(r.cost.candidates for r in self.results)

    @property
    def bests(self) -> list[float | None]:
        return [r.best.potential if r.best is not None else None for r in self.results]

    @property
    def value(self) -> float:
        """The objective's figure: mean best, worst-decile mean, or fraction at or above τ."""
        return self.objective.value(self.bests)

    def rows(self) -> list[dict[str, Any]]:
        """Per condition: candidates spent, best, and the reason of its last grant."""
        last = {d.condition: d for d in self.decisions}
        return [{"condition": r.condition.id, "candidates": r.cost.candidates, "best": b,
                 "last_reason": last[r.condition.id].reason if r.condition.id in last else None}
                for r, b in zip(self.results, self.bests, strict=True)]

    def to_json(self) -> dict[str, Any]:
        return {**self.objective.to_json(), "label": self.label, "total_budget": self.total_budget,
                "spent": self.spent, "stop": self.stop, "value": self.value, "rows": self.rows(),
                "decisions": [d.to_json() for d in self.decisions]}


# -- the allocator --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pick:
    """``choose``'s answer: the condition (index) and candidates of the next grant, or why there is none."""

    index: int | None
    candidates: int = 0
    predicted: float | None = None
    priority: float | None = None
    reason: str = ""
    stop: dict[str, Any] = field(default_factory=dict)


def choose(scores: Sequence[Sequence[float]], room: Sequence[int], left: int, objective: Objective, *,
           batch_size: int, prior_weight: float = 4.0) -> Pick:
    """The next grant from every condition's OK potentials so far (``scores``), the candidates each may still
    take (``room``) and the total left: the condition of highest priority per candidate (the first on ties), or
    why the allocation is over. Pure, so that a benchmark can replay it on cached draws."""
    if left <= 0:
        return Pick(None, stop={"budget": "the total budget is spent"})
    if all(objective.reached(max(ys) if ys else None) for ys in scores):
        return Pick(None, stop={"reached": f"every condition reached the objective ({objective.to_json()})"})
    ests, sigma = estimates(scores, prior_weight)
    f = Field(tuple(sorted(e.best for e in ests if e is not None)), sigma)
    best: Pick | None = None
    for i, e in enumerate(ests):
        k = min(batch_size, left, room[i])
        if e is None or k <= 0 or objective.reached(e.best):
            continue
        pri, pred, why = objective.priority(e, k, f)
        if best is None or pri > best.priority:  # type: ignore[operator]
            best = Pick(i, k, pred, pri, why)
    if best is None:
        return Pick(None, stop={"exhausted": "no condition can take more (each at its cap, at the objective, or "
                                "without an OK candidate)"})
    return best


@dataclass
class _Track:
    condition: Condition
    strategy: Allotted
    search_id: str
    result: SearchResult | None = None

    @property
    def spent(self) -> int:
        return self.strategy.asked

    @property
    def scores(self) -> list[float]:
        return [] if self.result is None else [c.potential for c in self.result.history if c.result.ok]

    @property
    def best(self) -> float | None:
        b = None if self.result is None else self.result.best
        return None if b is None else b.potential


def _merge(old: SearchResult | None, new: SearchResult) -> SearchResult:
    if old is None:
        return new
    a, b = old.cost, new.cost
    calls = {k: a.scorer_calls.get(k, 0) + b.scorer_calls.get(k, 0) for k in {*a.scorer_calls, *b.scorer_calls}}
    cost = Cost(a.candidates + b.candidates, a.steps + b.steps, calls, a.generated + b.generated,
                a.generated_steps + b.generated_steps, a.reused + b.reused, a.gen_seconds + b.gen_seconds,
                a.score_seconds + b.score_seconds, a.value_seconds + b.value_seconds)
    history = old.history + new.history
    return SearchResult(new.search_id, new.condition, new.strategy, new.prior, best_of(history), history, cost,
                        new.stop, new.diagnostics)


@dataclass
class Allocator:
    """Runs the rounds of a cross-condition search on ``engine`` (see the module's docstring)."""

    engine: Engine
    conditions: Sequence[Condition]
    make: Callable[[int], Strategy]  # a fresh strategy for one condition, given its budget (the cap)
    total_budget: int
    objective: Objective
    label: str
    batch_size: int = 2
    min_per_condition: int = 2
    max_per_condition: int | None = None
    prior_weight: float = 4.0
    seed: int = 0
    prior_seed: int = DEFAULT_PRIOR_SEED
    max_steps: int | None = None
    decisions: list[Decision] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_allocation(len(self.conditions), self.total_budget, self.min_per_condition, self.max_per_condition,
                         self.batch_size)
        self.tracks = [_Track(c, Allotted(self.make(condition_cap(self.total_budget, self.max_per_condition))),
                              search_id(c.id, self.label, f"B{self.total_budget}", f"s{self.seed}"))
                       for c in self.conditions]

    @property
    def left(self) -> int:
        return self.total_budget - sum(t.strategy.granted for t in self.tracks)

    def run(self) -> Allocation:
        self.engine.scheduler.transient_bars = True  # a round's bars vanish: one grant after another, not a pile
        grants = [(t, self.min_per_condition) for t in self.tracks]
        for t in self.tracks:
            self.decisions.append(Decision(0, t.condition.id, self.min_per_condition, 0, None, None, None,
                                           f"warm-up: {self.min_per_condition} candidates for every condition"))
        stop: dict[str, Any] = {}
        rnd = 0
        try:
            while grants:
                self._run_round(grants)
                rnd += 1
                grants, stop = self._next(rnd)
        finally:  # interrupted too: the decisions so far (a resumed run replays them and goes on)
            self._save(stop)
        return Allocation(self.objective, self.total_budget, self.label, [t.result for t in self.tracks],  # type: ignore[misc]
                          self.decisions, stop)

    def _run_round(self, grants: list[tuple[_Track, int]]) -> None:
        jobs = []
        for t, n in grants:
            t.strategy.grant(n)
            jobs.append(Job(t.condition, t.strategy, self.label, t.search_id, self.prior_seed))
        for (t, _), r in zip(grants, self.engine.run_all(jobs, batch_size=self.batch_size, max_steps=self.max_steps),
                             strict=True):
            t.result = _merge(t.result, r)

    def _next(self, rnd: int) -> tuple[list[tuple[_Track, int]], dict[str, Any]]:
        """The next grant (one condition, up to ``batch_size``) or why the allocation is over."""
        room = [self._room(t) for t in self.tracks]
        pick = choose([t.scores for t in self.tracks], room, self.left, self.objective, batch_size=self.batch_size,
                      prior_weight=self.prior_weight)
        if pick.index is None:
            return [], pick.stop
        t = self.tracks[pick.index]
        self.decisions.append(Decision(rnd, t.condition.id, pick.candidates, t.spent, t.best, pick.predicted,
                                       pick.priority, pick.reason))
        return [(t, pick.candidates)], {}

    def _room(self, t: _Track) -> int:
        """Candidates ``t`` can still be granted: none once its strategy stopped, else up to its cap, and within
        ``max_steps`` (a grant the cap would not let it ask is never made)."""
        s = t.strategy  # asked <= granted <= budget: what it may ask up to its cap, less what is granted unasked
        return 0 if s.inner.stop() else max(0, s.room(s.budget) - (s.granted - s.asked))

    def _save(self, stop: dict[str, Any]) -> None:
        rows = [{"condition": t.condition.id, "search": t.search_id, "candidates": t.spent, "best": t.best}
                for t in self.tracks]
        self.engine.store.set_meta(META_PREFIX + self.label, {
            **self.objective.to_json(), "label": self.label, "total_budget": self.total_budget,
            "batch_size": self.batch_size, "min_per_condition": self.min_per_condition,
            "max_per_condition": self.max_per_condition, "stop": stop, "rows": rows,
            "decisions": [d.to_json() for d in self.decisions]})


def check_allocation(n_conditions: int, total_budget: int, min_per_condition: int, max_per_condition: int | None,
                     batch_size: int, where: str = "") -> None:
    """ValueError (ConfigError with ``where``, the config section) for settings that cannot be run."""
    problems = []
    if min_per_condition < 2:
        problems.append(f"min_per_condition: must be >= 2 (a variance needs two samples), got {min_per_condition}")
    elif total_budget < n_conditions * min_per_condition:
        problems.append(f"total_budget: must be >= {n_conditions * min_per_condition} (min_per_condition "
                        f"{min_per_condition} x {n_conditions} conditions), got {total_budget}")
    if max_per_condition is not None and max_per_condition < min_per_condition:
        problems.append(f"max_per_condition: must be >= min_per_condition ({min_per_condition}), got "
                        f"{max_per_condition}")
    if batch_size < 1:
        problems.append(f"batch_size: must be >= 1, got {batch_size}")
    if problems:
        msg = f"{where}.{problems[0]}" if where else problems[0]
        raise (ConfigError if where else ValueError)(msg)


def total_budget(a: AllocationConfig, s: SearchConfig, n_conditions: int) -> int:
    """``[allocation].total_budget``, by default the search's budget x the conditions."""
    return a.total_budget if a.total_budget is not None else s.budget * n_conditions


def condition_cap(total: int, max_per_condition: int | None) -> int:
    """What one condition may be granted at most: ``max_per_condition`` within ``total`` (the total when unset)."""
    return min(total, max_per_condition or total)


def search_all(
    conditions: Sequence[Condition],
    *,
    generator: Generator,
    potential: Potential,
    budget: int,
    objective: Objective | Literal["mean", "worst"] = "mean",
    strategy: str | type[Strategy] = "best-of-n",
    params: dict[str, Any] | None = None,
    batch_size: int = 2,
    min_per_condition: int = 2,
    max_per_condition: int | None = None,
    prior_weight: float = 4.0,
    seed: int = 0,
    prior_seed: int = DEFAULT_PRIOR_SEED,
    run_dir: str | Path | None = None,
    label: str | None = None,
    progress: bool = False,
    preview_potential: Potential | None = None,
    timeout_s: float | None = None,
) -> Allocation:
    """Search every condition under one total ``budget`` (candidates, the priors not counted), granting batches
    where ``objective`` gains most: ``"mean"``, ``"worst"`` or ``Threshold(tau)`` (``eacps.allocate``).

    Each condition's search is ``strategy`` (best-of-N by default; any strategy that asks whole candidates) with
    ``seed``, first granted ``min_per_condition`` candidates, then batches of up to ``batch_size`` one condition
    at a time (at most ``max_per_condition`` each). With ``run_dir`` every candidate is stored there and a
    repeated call resumes: the decisions replay from the stored results. Returns an ``Allocation``: per-condition
    ``SearchResult``s, every decision with its reason, and why it stopped.
    """
    obj = as_objective(objective)
    strategy_name = strategy if isinstance(strategy, str) else strategy.name

    def make(cap: int) -> Strategy:
        return make_strategy(strategy, params, budget=cap, seed=seed)

    check_compatible(Allotted(make(condition_cap(budget, max_per_condition))), generator)
    store = None  # a run_dir belongs to one generator and potential, as for eacps.search
    if run_dir is not None:
        store = open_run_dir(run_dir, identity(generator, potential, preview_potential))
    engine = Engine(generator, potential, store, batch_size=batch_size, progress=progress,
                    preview_potential=preview_potential, timeout_s=timeout_s)
    try:
        out = Allocator(engine, list(conditions), make, budget, obj, label or f"{strategy_name}+{obj.name}",
                        batch_size=batch_size, min_per_condition=min_per_condition,
                        max_per_condition=max_per_condition, prior_weight=prior_weight, seed=seed,
                        prior_seed=prior_seed).run()
    finally:
        engine.release()
        if store is not None:
            store.close()
    if run_dir is None:
        out.keepalive = engine
    return out


def check_config(cfg: RunConfig, n_conditions: int) -> None:
    """ConfigError (one line, naming the field) for an ``[allocation]`` that cannot run over ``n_conditions``
    conditions, before any compute (``eacps run``, and ``eacps check`` before any model is loaded)."""
    a = cfg.allocation
    if a is None:
        return
    for i, s in enumerate(cfg.all_searches()):
        where = search_section(cfg, i)
        total = total_budget(a, s, n_conditions)
        check_allocation(n_conditions, total, a.min_per_condition, a.max_per_condition, a.grant, "allocation")
        try:  # built at the cap it will run with (eacps, say, cannot be built at every budget)
            Allotted(make_strategy(s.strategy, s.params, budget=condition_cap(total, a.max_per_condition), seed=s.seed))
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(f"{where}.strategy: {exc}") from None


def run_allocated(engine: Engine, conditions: Sequence[Condition], s: SearchConfig, a: AllocationConfig
                  ) -> list[SearchResult]:
    """``eacps run`` with ``[allocation]`` (checked by ``check_config``): search ``s`` over ``conditions`` under one
    total budget (default: its budget x the conditions)."""
    total = total_budget(a, s, len(conditions))
    obj = as_objective(a.objective, a.threshold, a.fraction)

    def make(cap: int) -> Strategy:
        return make_strategy(s.strategy, s.params, budget=cap, seed=s.seed)

    label = s.label or f"{s.strategy}+{obj.name}"
    return Allocator(engine, list(conditions), make, total, obj, label, batch_size=a.grant,
                     min_per_condition=a.min_per_condition, max_per_condition=a.max_per_condition, seed=s.seed,
                     prior_seed=s.prior_seed, max_steps=s.max_steps).run().results
