"""The strategy interface: an ask/tell optimizer over noise recipes.

The engine owns the loop (ask -> generate -> score -> tell). A strategy only proposes recipes and
learns from results; it must be deterministic under its seed, so a run can be resumed by replaying
the stored results (no pickles of live objects).
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from eacps.params import MAX_BUDGET, NoParams, Params
from eacps.recipe import SEED_MAX, Recipe
from eacps.trees import PathLedger
from eacps.types import Result, Status


class SeedStream:
    """Distinct uniform seeds in [0, 2^32) from a seeded numpy generator.

    Every built-in strategy draws its *global* (exploration) seeds from ``SeedStream(seed)``, so
    under the same seed best-of-N and EACPS stage 1 start from the same seeds: common random numbers
    make strategy comparisons paired (lower variance) and let a shared store reuse the candidates.
    """

    def __init__(self, *seed: int) -> None:
        self._rng = np.random.default_rng(list(seed))
        self._seen: set[int] = set()

    def next(self) -> int:
        while True:
            s = int(self._rng.integers(0, SEED_MAX, dtype=np.uint64))
            if s not in self._seen:
                self._seen.add(s)
                return s

    def take(self, n: int) -> list[int]:
        return [self.next() for _ in range(n)]


@dataclass(frozen=True)
class SamplerSchedule:
    """How a strategy's paths branch, apart from any selection: ``renoise`` moves after ``steps[i]`` model calls
    of the bound T-step schedule, of angle ``thetas[i]``. ``eacps compare`` draws random paths with every one of
    these branches and no selection (``branched-best-of-n`` with ``params()``) to tell what the branch move does
    to the samples from what the search does."""

    steps: tuple[int, ...]
    thetas: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.thetas):
            raise ValueError(f"a sampler schedule needs one theta per step, got {self.steps} and {self.thetas}")

    def branched(self, root: Recipe, seeds: SeedStream) -> Recipe:
        """``root``'s trajectory with every move of the schedule, each seeded by the next of ``seeds``."""
        for step, theta in zip(self.steps, self.thetas, strict=True):
            root = root.branch(step, theta, seeds.next())
        return root

    def params(self) -> dict[str, Any]:
        """``branched-best-of-n``'s params for exactly this schedule."""
        return {"steps": list(self.steps), "theta": list(self.thetas)}

    @property
    def label(self) -> str:
        """Short text, e.g. ``renoise@3,6 theta=1,1``."""
        return (f"renoise@{','.join(map(str, self.steps))} theta={','.join(f'{t:.4g}' for t in self.thetas)}"
                if self.steps else "no branches")


class StrategyError(RuntimeError):
    """A strategy broke the ask/tell contract."""


@dataclass(frozen=True)
class Asked:
    """One recipe as asked (``Strategy.ask_records``), with the bookkeeping the search's ``PathLedger`` gave it when
    it was asked: ``seq`` its place in the search (ask order), ``steps`` the denoising steps the search is charged
    for it (model calls beyond prefixes already asked; None before ``bind``), ``parent`` the seq of the earlier
    path it continues or branches (None: a fresh trajectory, or not bound). The engine stores these figures with
    the candidate; summaries, reports and ``eacps serve`` read them back from the store."""

    recipe: Recipe
    seq: int
    steps: int | None = None
    parent: int | None = None


def schedule_steps(fractions: Sequence[float], total: int, who: str = "this strategy") -> list[int]:
    """Steps (model calls) of a ``total``-step schedule at ``fractions``, distinct, in 1..total-1."""
    steps = sorted({min(total - 1, max(1, round(f * total))) for f in fractions})
    if total < 2 or not steps:
        raise ValueError(f"{who} needs a schedule of at least 2 steps, got {total}")
    return steps


class Strategy(ABC):
    """Base class. Subclasses implement ``_ask`` (and usually ``_tell``); the public methods keep the
    contract: never more than the budget, results told only for asked recipes, history kept.

    The budget B is B·T denoising steps, T the generator's full schedule (``bind(full_steps=T)``; the engine
    binds it before the first ask). A strategy that asks only full candidates spends T per candidate, so B
    candidates; one that asks path recipes (previews part way, branches; ``counts_steps = True``) is charged
    per model call by a ``PathLedger`` (a shared prefix once) and may ask any number of candidates within B·T.

    ``_ask(n)`` may return fewer than ``n`` recipes, and returns ``[]`` when it needs the results of
    pending recipes first (for example at an EACPS stage boundary). Everything it returns before then
    is *ask-ahead*: the engine may generate it while earlier results are still being scored, without
    changing what the strategy would have asked.
    """

    name: ClassVar[str]
    Params: ClassVar[type[Params]] = NoParams
    #: True when ``ask`` never depends on results still pending: whatever it returns while results are in
    #: flight is what it would have returned after them (it returns ``[]`` when it does need them). The
    #: engine then asks ahead to overlap generation and scoring; otherwise it asks only when idle.
    ask_ahead: ClassVar[bool] = False
    #: generator capabilities every instance needs (eacps.capabilities); ``needs()`` adds what params ask for
    requires: ClassVar[frozenset[str]] = frozenset()
    #: True for strategies that ask path recipes: the budget is enforced in denoising steps, not candidates.
    counts_steps: ClassVar[bool] = False

    def __init__(self, params: Params | None = None, *, budget: int, seed: int = 0) -> None:
        # seeds past 2^32 are allowed here: compare's reference pool draws from a stream no config seed can name
        for what, value, low, high in (("budget", budget, 1, MAX_BUDGET), ("seed", seed, 0, None)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or \
                    (high is not None and value > high):
                raise ValueError(f"{what} must be an integer in {low}..{high if high is not None else ''}, "
                                 f"got {value!r}")
        self.params = params if params is not None else self.Params()
        self.budget = int(budget)
        self.seed = int(seed)
        self.global_seeds = SeedStream(self.seed)
        self.local_seeds = SeedStream(self.seed, 1)
        self.history: list[Result] = []
        self.asked = 0
        self.pending: dict[Recipe, int] = {}
        self.seen: set[Recipe] = set()
        self.full_steps: int | None = None
        self.max_steps: int | None = None  # a cap on the denoising steps of the search (``limit``)
        self.spent_steps = 0  # charged denoising steps of everything asked (known once bound)
        self.ledger: PathLedger | None = None  # what was asked, as paths: charges and parent links (once bound)

    def needs(self) -> frozenset[str]:
        """The generator capabilities this instance needs: the class's ``requires``; a strategy whose needs depend
        on its params (or on a strategy it wraps) overrides this, never ``requires``."""
        return frozenset(self.requires)

    def bind(self, full_steps: int) -> Strategy:
        """Tell the strategy the generator's full schedule T (before the first ask; binding again to the same T
        is a no-op)."""
        if isinstance(full_steps, bool) or not isinstance(full_steps, int) or full_steps < 1:
            raise ValueError(f"full_steps must be a positive int, got {full_steps!r}")
        if self.full_steps == full_steps:
            return self  # already bound: the ledger keeps what was asked
        if self.full_steps is not None:
            raise StrategyError(f"{self.name}: already bound to {self.full_steps} steps, not {full_steps}")
        if self.asked:
            raise StrategyError(f"{self.name}: bind(full_steps) before the first ask")
        self.full_steps = full_steps
        self.ledger = PathLedger(full_steps)
        return self

    def limit(self, max_steps: int | None) -> Strategy:
        """Cap the denoising steps this search may spend (``search.max_steps``), before the first ask: asks stop
        where the next candidate would pass it, and a step-counting strategy plans within it."""
        if max_steps == self.max_steps:
            return self
        if self.asked:
            raise StrategyError(f"{self.name}: limit(max_steps) before the first ask")
        if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral)
                                      or max_steps < 1):
            raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
        self.max_steps = max_steps
        return self

    def min_steps(self, full_steps: int) -> int:
        """The fewest denoising steps in which a search can finish a candidate on a ``full_steps``-step schedule
        (one whole candidate; fk-steering: all its particles)."""
        return full_steps

    def steps_problem(self, full_steps: int, max_steps: int | None = None) -> tuple[str, str] | None:
        """Why a search could not finish a candidate on a ``full_steps``-step schedule within ``max_steps``, as (the
        setting at fault, ``"steps"`` or ``"max_steps"``; one line with the allowed values), or None. Checked
        before any compute (configs, ``eacps.search``, ``Engine.run_all``)."""
        if self.counts_steps and full_steps < 2:
            return "steps", (f"{self.name} stops and continues trajectories part way, which needs a schedule of at "
                             f"least 2 denoising steps (got {full_steps}); allowed: >= 2, or a strategy that asks "
                             "whole candidates")
        need = self.min_steps(full_steps)
        if max_steps is not None and max_steps < need:
            return "max_steps", (f"{self.name} needs {need} denoising steps to finish a candidate on this "
                                 f"{full_steps}-step schedule (got {max_steps}); allowed: >= {need}, or unset")
        return None

    def check_fresh(self) -> None:
        """StrategyError when this instance already ran a search: a strategy runs one search (its history, seed
        streams and ledger are spent); make a new one for each."""
        if self.asked or self.history or self.pending:
            raise StrategyError(f"{self.name}: this strategy instance already ran a search ({self.asked} recipes "
                                "asked); a strategy runs one search: make a new one for each")

    def schedule_steps(self, fractions: Sequence[float]) -> list[int]:
        """Steps of the bound T-step schedule at ``fractions``: distinct, in 1..T-1."""
        total = self.full_steps
        if total is None:
            raise StrategyError(f"{self.name}: bind(full_steps=T) first (the engine does)")
        return schedule_steps(fractions, total, self.name)

    @property
    def step_budget(self) -> int | None:
        """B·T denoising steps, or ``max_steps`` when lower (None until bound)."""
        if self.full_steps is None:
            return None
        full = self.budget * self.full_steps
        return full if self.max_steps is None else min(full, self.max_steps)

    @property
    def capped(self) -> bool:
        """``max_steps`` is below B·T: the cap, not the budget, ends the search."""
        return self.max_steps is not None and self.full_steps is not None and \
            self.max_steps < self.budget * self.full_steps

    @property
    def steps_left(self) -> int:
        if self.step_budget is None:
            raise StrategyError(f"{self.name}: counts denoising steps; bind(full_steps=T) first (the engine does)")
        return self.step_budget - self.spent_steps

    def cost_of(self, recipe: Recipe) -> int:
        """Denoising steps ``recipe`` would be charged now (its model calls beyond prefixes already asked)."""
        if self.ledger is None:
            raise StrategyError(f"{self.name}: bind(full_steps=T) before costing recipes")
        return self.ledger.peek(recipe)

    # -- public contract ----------------------------------------------------------------------
    def room(self, n: int) -> int:
        """How many of ``n`` recipes may be asked now: within the budget (candidates, or steps for a step-counting
        strategy) and, once bound, whole candidates within the steps left (``max_steps``)."""
        if self.counts_steps:
            return n if self.steps_left > 0 else 0
        n = min(n, self.budget - self.asked)
        return n if not self._step_capped() else min(n, self.steps_left // self.full_steps)  # type: ignore[operator]

    def _step_capped(self) -> bool:
        return self.max_steps is not None and self.full_steps is not None

    def ask(self, n: int) -> list[Recipe]:
        """Up to ``n`` recipes to evaluate next (``[]``: none now); the recipes of ``ask_records``."""
        return [a.recipe for a in self.ask_records(n)]

    def ask_records(self, n: int) -> list[Asked]:
        """Up to ``n`` recipes to evaluate next, each with its seq, charged steps and parent (``Asked``): the one
        source of those figures (the engine stores them with the candidates)."""
        n = self.room(int(n))
        if n <= 0:
            return []
        recipes = list(self._ask(n))
        if len(recipes) > n:
            raise StrategyError(f"{self.name}: asked for {n} recipes, got {len(recipes)}")
        out = []
        for r in recipes:
            if r in self.seen:
                raise StrategyError(f"{self.name}: proposed an already evaluated recipe {r.key}")
            steps, parent = self._charge(r)
            self.seen.add(r)
            self.pending[r] = self.asked
            out.append(Asked(r, self.asked, steps, parent))
            self.asked += 1
        return out

    def _charge(self, recipe: Recipe) -> tuple[int | None, int | None]:
        """Charge ``recipe`` to the ledger: (its charged steps, its parent's seq); (None, None) before ``bind``."""
        if self.ledger is None:
            if recipe.is_path:
                raise StrategyError(f"{self.name}: path recipes need bind(full_steps=T) first (the engine does)")
            return None, None
        steps = self.ledger.charge(recipe)
        if self.counts_steps and self.spent_steps + steps > self.step_budget:  # type: ignore[operator]
            raise StrategyError(f"{self.name}: {recipe.key} needs {steps} steps, {self.steps_left} left of the "
                                f"budget {self.budget} x {self.full_steps}")
        self.spent_steps += steps
        return steps, self.ledger.parents[-1]

    def tell(self, results: Sequence[Result]) -> None:
        for res in results:
            if res.recipe not in self.pending:
                raise StrategyError(f"{self.name}: told a result for a recipe it did not ask: {res.recipe.key}")
            del self.pending[res.recipe]
        self.history.extend(results)
        self._tell(results)

    def stop(self) -> dict[str, Any]:
        """Why the search is over (empty while it goes on), as in pycma's ``stop()``."""
        reasons = dict(self._stop())
        if self.counts_steps:
            spent = self.steps_left <= 0
        else:
            spent = self.asked >= self.budget or (self._step_capped() and self.steps_left < self.full_steps)
        if spent and not self.pending:
            reasons.update({"max_steps": self.max_steps} if self.capped else {"budget": self.budget})
        return reasons

    @property
    def best(self) -> Result | None:
        """The argmax of the potential over OK full-fidelity results (FAILED/FILTERED/previews never are)."""
        ok = [r for r in self.history if r.eligible]
        return max(ok, key=lambda r: r.potential) if ok else None  # first of ties wins

    @property
    def remaining(self) -> int:
        """Full candidates left (for strategies that ask only full candidates)."""
        return self.budget - self.asked

    def sampler_schedule(self) -> SamplerSchedule | None:
        """The branch moves this strategy's paths may take (after ``bind``), or None when every candidate it asks
        is a plain sample of the generator's sampler (no ``renoise`` branches; selection alone, such as
        multi-fidelity's, does not change how a candidate is drawn). Declared, never guessed from the name:
        ``eacps compare`` uses it for the same-sampler baseline."""
        return None

    def diagnostics(self) -> dict[str, Any]:
        """JSON-serializable facts about the finished search (stored with it, aggregated by compare)."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (threads, storages); the engine calls it when the search ends."""

    # -- to override --------------------------------------------------------------------------
    @abstractmethod
    def _ask(self, n: int) -> Sequence[Recipe]: ...

    def _tell(self, results: Sequence[Result]) -> None:  # noqa: B027 - optional hook
        pass

    def _stop(self) -> dict[str, Any]:
        return {}

    # -- helpers ------------------------------------------------------------------------------
    def fresh_seeds(self, n: int) -> list[Recipe]:
        """``n`` new random-seed recipes from the global stream, skipping any already evaluated."""
        out: list[Recipe] = []
        while len(out) < n:
            r = Recipe.from_seed(self.global_seeds.next())
            if r not in self.seen:
                out.append(r)
        return out

    def optimize(self, objective: Callable[[Recipe], Result | float], *, batch_size: int = 1) -> Result | None:
        """Run the search to its end, as pycma's ``OOOptimizer.optimize``: built only from ``ask``, ``tell`` and
        ``stop``, every result told before the next ask. ``objective`` returns a :class:`Result` or a number (a
        non-finite number is FAILED). Returns :attr:`best` (None when no candidate succeeded)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        while not self.stop():
            recipes = self.ask(batch_size)
            if not recipes:
                if self.stop():  # the ask itself found the search over (e.g. a sampler with nothing new)
                    break
                raise StrategyError(f"{self.name}: ask returned nothing, with {len(self.pending)} result(s) pending "
                                    "and no stop reason")
            results = []
            for r in recipes:
                v = objective(r)
                if not isinstance(v, Result):
                    v = float(v)
                    ok = bool(np.isfinite(v))
                    v = Result(r, Status.OK, v) if ok else Result(r, Status.FAILED, None, reason=f"objective gave {v}")
                results.append(v)
            self.tell(results)
        return self.best
