"""The engine facade: one generator and potential, a store, an executor; ``run``/``run_all`` searches.

It wires the parts, each with one job and one direction of flow (see docs/concepts.md):

* ``BatchComputer`` (eacps.engine.batch): generate -> quantize/filter -> score one ``Batch``; all an executor gets;
* ``Planner`` (eacps.engine.planner): cache keys, store lookups before a batch, rows written after it;
* ``Calibrator`` (eacps.engine.calibrator): per-condition statistics of ``standardize`` criteria;
* ``CostMeter`` (eacps.engine.meter): charged cost per search, measured unit costs from the results;
* ``Scheduler`` (eacps.engine.scheduler): the ask/tell loop over many searches through the executor.

Cost is charged per search for every candidate it asked, computed or served from the store; see
``eacps.engine.meter``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from eacps import capabilities
from eacps.cost import META_KEY as COST_META
from eacps.cost import empty_totals
from eacps.engine.batch import BatchComputer, is_oom
from eacps.engine.calibrator import CALIBRATION_SEED, Calibrator
from eacps.engine.executor import Executor, LocalExecutor
from eacps.engine.meter import Cost, CostMeter
from eacps.engine.planner import Planner
from eacps.engine.scheduler import DEFAULT_PRIOR_SEED, Job, Scheduler, SearchResult, prior_search
from eacps.generator import Generator
from eacps.potential import Potential
from eacps.recipe import Recipe
from eacps.store import Candidate, Store, best_of, eligible
from eacps.strategy import Strategy, StrategyError
from eacps.types import Condition

__all__ = ["CALIBRATION_SEED", "DEFAULT_PRIOR_SEED", "Cost", "Engine", "Job", "SearchResult", "best_of", "eligible",
           "is_oom"]


class Engine:
    """Runs searches for one generator and potential, writing every finished batch to ``store`` (a temporary
    one when None). ``batch_size`` and ``max_steps`` are defaults of ``run``/``run_all``; ``timeout_s`` limits
    every generator and scorer call (FAILED with the reason when exceeded)."""

    def __init__(
        self,
        generator: Generator,
        potential: Potential,
        store: Store | None = None,
        *,
        batch_size: int = 8,
        progress: bool = False,
        max_steps: int | None = None,
        preview_potential: Potential | None = None,
        executor: Executor | None = None,
        timeout_s: float | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._tmp: tempfile.TemporaryDirectory | None = None
        if store is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="eacps-")
            store = Store(Path(self._tmp.name))
        self.store = store
        self.batch_size, self.max_steps = batch_size, max_steps
        self.computer = BatchComputer(generator, potential, preview_potential, timeout_s=timeout_s)
        self.meter = CostMeter(store.get_meta(COST_META, empty_totals()))
        self.planner = Planner(store, generator.fingerprint(), self._key_of)
        self.calibrator = Calibrator(self.computer, self.planner)
        self.executor = executor if executor is not None else LocalExecutor()
        self.scheduler = Scheduler(self.computer, self.planner, self.calibrator, self.meter, self.executor, store,
                                   progress=progress)
        self._started: Executor | None = None
        for line in self.planner.recover():
            self.scheduler.notify(line)

    @property
    def generator(self) -> Generator:
        return self.computer.generator

    @property
    def potential(self) -> Potential:
        return self.computer.potential

    @property
    def preview_potential(self) -> Potential | None:
        return self.computer.preview_potential

    @property
    def generated(self) -> int:
        """Candidates computed (not served from the store) by this engine."""
        return self.meter.generated

    def _key_of(self, recipe: Recipe) -> tuple[str, int]:
        return self.computer.potential_for(recipe).fingerprint(), self.computer.steps_of(recipe)

    def cache_key(self, recipe: Recipe, condition: Condition) -> str:
        return self.planner.cache_key(recipe, condition)

    def _start(self) -> None:
        if self._started is not self.executor:
            self.executor.start(self.computer)
            self._started = self.executor

    # -- searches -------------------------------------------------------------------------------
    def run(self, condition: Condition, strategy: Strategy, *, label: str | None = None,
            search_id: str | None = None, prior_seed: int = DEFAULT_PRIOR_SEED, batch_size: int | None = None,
            max_steps: int | None = None) -> SearchResult:
        """One search; see ``run_all``."""
        return self.run_all([Job(condition, strategy, label, search_id, prior_seed)], batch_size=batch_size,
                            max_steps=max_steps)[0]

    def run_all(self, jobs: Sequence[Job], *, batch_size: int | None = None,
                max_steps: int | None = None) -> list[SearchResult]:
        """Run several searches at once through the executor, so that no worker idles while one search
        waits on its strategy. Each search's results are told in the order asked and each finished batch
        is stored before that search is asked again. ``batch_size``/``max_steps`` default to the engine's."""
        bs = batch_size if batch_size is not None else self.batch_size
        if bs < 1:
            raise ValueError(f"batch_size must be >= 1, got {bs}")
        cap = max_steps if max_steps is not None else self.max_steps
        self.check_jobs(jobs, cap)
        self._start()
        return self.scheduler.run_all(jobs, batch_size=bs, max_steps=cap)

    def check_jobs(self, jobs: Sequence[Job], max_steps: int | None = None) -> None:
        """Before any compute (configs and eacps.search check the same earlier, as config errors): every strategy
        is a fresh instance, used once, that this generator can run and that can finish a candidate within
        ``max_steps``."""
        if len({id(job.strategy) for job in jobs}) != len(jobs):
            raise StrategyError("the same strategy instance is given to two searches; a strategy runs one search: "
                                "make a new one for each")
        generator = self.computer.generator
        for job in jobs:
            job.strategy.check_fresh()
            if (why := capabilities.problem(job.strategy, generator)) is not None:
                raise ValueError(why)
            if (problem := job.strategy.steps_problem(generator.default_steps, max_steps)) is not None:
                raise ValueError(f"{problem[0]}: {problem[1]}")

    # -- single batches (landscape, notebooks) --------------------------------------------------
    def prior(self, condition: Condition, prior_seed: int = DEFAULT_PRIOR_SEED) -> Candidate:
        """Stage 0: the candidate from a fixed seed (after the condition's calibration); not charged."""
        self._start()
        try:
            jobs = [Job(condition, None, prior_seed=prior_seed)]  # type: ignore[arg-type]
            return self.scheduler.priors(jobs)[prior_search(condition, prior_seed)][0]
        finally:
            self.planner.abandon()

    def evaluate(self, recipes: Sequence[Recipe], condition: Condition, *, search: str, seq0: int,
                 role: str = "search", strategy: str | None = None,
                 prior_seed: int = DEFAULT_PRIOR_SEED) -> tuple[list[Candidate], list[bool]]:
        """Candidates for ``recipes`` (seq0, seq0+1, ...) from this search's stored rows, the store's cache,
        or computed now through the executor. Also returns, per candidate, whether this call computed it.
        ``condition.prior`` (if any) is the prior its scorers see; standardized criteria use the statistics
        of ``prior_seed``'s calibration set (computed by ``prior``)."""
        self._start()
        stats, preview_stats = self.calibrator.stats_for(condition, prior_seed)
        b = self.planner.plan(recipes, condition, search=search, seq0=seq0, role=role, strategy=strategy)
        p = self.scheduler.submit(b, condition=condition, stats=stats, preview_stats=preview_stats)
        try:
            return self.scheduler.commit(p), b.computed
        finally:
            self.planner.abandon()

    # -- lifecycle ------------------------------------------------------------------------------
    def release(self) -> None:
        """Stop the executor's workers (it restarts on the next run); the store stays open."""
        if self._started is not None:
            self._started.shutdown()
            self._started = None

    def close(self) -> None:
        """Release the executor and remove a temporary store."""
        self.release()
        if self._tmp is not None:
            self.store.close()
            self._tmp.cleanup()
            self._tmp = None
