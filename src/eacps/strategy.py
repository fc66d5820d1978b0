"""The strategy interface: an ask/tell optimizer over noise recipes.

The engine owns the loop (ask -> generate -> score -> tell). A strategy only proposes recipes and
learns from results; it must be deterministic under its seed, so a run can be resumed by replaying
the stored results (no pickles of live objects).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from eacps.params import NoParams, Params
from eacps.recipe import SEED_MAX, Recipe
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


class StrategyError(RuntimeError):
    """A strategy broke the ask/tell contract."""


class Strategy(ABC):
    """Base class. Subclasses implement ``_ask`` (and usually ``_tell``); the public methods keep the
    contract: never more than ``budget`` recipes, results told only for asked recipes, history kept.

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

    def __init__(self, params: Params | None = None, *, budget: int, seed: int = 0) -> None:
        if budget < 1:
            raise ValueError(f"budget must be >= 1, got {budget}")
        self.params = params if params is not None else self.Params()
        self.budget = int(budget)
        self.seed = int(seed)
        self.global_seeds = SeedStream(self.seed)
        self.local_seeds = SeedStream(self.seed, 1)
        self.history: list[Result] = []
        self.asked = 0
        self.pending: dict[Recipe, int] = {}
        self.seen: set[Recipe] = set()

    # -- public contract ----------------------------------------------------------------------
    def ask(self, n: int) -> list[Recipe]:
        n = min(int(n), self.budget - self.asked)
        if n <= 0:
            return []
        recipes = list(self._ask(n))
        if len(recipes) > n:
            raise StrategyError(f"{self.name}: asked for {n} recipes, got {len(recipes)}")
        for r in recipes:
            if r in self.seen:
                raise StrategyError(f"{self.name}: proposed an already evaluated recipe {r.key}")
            self.seen.add(r)
            self.pending[r] = self.asked
            self.asked += 1
        return recipes

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
        if self.asked >= self.budget and not self.pending:
            reasons["budget"] = self.budget
        return reasons

    @property
    def best(self) -> Result | None:
        """The argmax of the potential over OK full-fidelity results (FAILED/FILTERED/previews never are)."""
        ok = [r for r in self.history if r.eligible]
        return max(ok, key=lambda r: r.potential) if ok else None  # first of ties wins

    @property
    def remaining(self) -> int:
        return self.budget - self.asked

    def diagnostics(self) -> dict[str, Any]:
        """JSON-serializable facts about the finished search (stored with it, aggregated by compare)."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (threads, storages); the engine calls it when the search ends."""

    @classmethod
    def budget_for(cls, cost: float, *, full_steps: int, params: Params | None = None) -> int:
        """The candidate budget whose cost equals ``cost`` full-fidelity candidates (for comparisons at
        equal cost). One candidate per unit unless a strategy asks cheaper previews."""
        return max(1, int(cost))

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
