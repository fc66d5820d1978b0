"""The engine: ask -> serve from the store -> generate in batches -> score -> store -> tell.

Cost is counted twice on purpose. *Charged* cost (``Cost.candidates``, ``steps``, ``scorer_calls``) is what
the search would have spent on its own: every candidate it asked, whether computed now or served from
the store (a resumed run, or a strategy that shares seeds with another). *Spent* work
(``Cost.generated``) is what this process computed. Comparisons use charged cost, so reuse never flatters
a strategy.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.std import tqdm

from eacps.cost import META_KEY as COST_META
from eacps.cost import accumulate, empty_totals
from eacps.executor import Executor, LocalExecutor
from eacps.generator import Generator
from eacps.potential import Potential, Scored, ScoreError
from eacps.recipe import Recipe
from eacps.store import Candidate, Store, quantize
from eacps.strategy import SeedStream, Strategy, StrategyError
from eacps.types import Condition, Generated, Status

DEFAULT_PRIOR_SEED = 0
CALIBRATION_SEED = 0xCA1B


@dataclass
class Cost:
    candidates: int = 0  # charged: candidates the search asked
    steps: int = 0  # charged: denoising steps of those candidates
    scorer_calls: dict[str, int] = field(default_factory=dict)  # charged: per criterion
    generated: int = 0  # spent: candidates computed by this process
    generated_steps: int = 0  # spent: denoising steps of those
    reused: int = 0  # served from the store
    gen_seconds: float = 0.0  # of the candidates computed
    score_seconds: float = 0.0

    def charge(self, c: Candidate, criteria: Sequence[str], *, computed: bool) -> None:
        self.candidates += 1
        self.steps += c.steps
        if c.image_path is not None and c.status is not Status.FILTERED:  # it reached the scorers
            for name in criteria:
                self.scorer_calls[name] = self.scorer_calls.get(name, 0) + 1
        if computed:
            self.generated += 1
            self.generated_steps += c.steps
            self.gen_seconds += c.gen_seconds
            self.score_seconds += c.score_seconds
        else:
            self.reused += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates, "steps": self.steps, "scorer_calls": dict(self.scorer_calls),
            "generated": self.generated, "reused": self.reused,
            "gen_seconds": round(self.gen_seconds, 4), "score_seconds": round(self.score_seconds, 4),
        }


@dataclass
class SearchResult:
    search_id: str
    condition: Condition
    strategy: str
    prior: Candidate
    best: Candidate | None
    history: list[Candidate]
    cost: Cost
    stop: dict[str, Any]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    #: keeps a temporary store (and so the candidates' images) alive as long as the result
    keepalive: Any = field(default=None, repr=False, compare=False)

    @property
    def improvement(self) -> float | None:
        """Best potential minus the prior's (None if either is missing)."""
        if self.best is None or self.prior.potential is None:
            return None
        return self.best.potential - self.prior.potential

    def best_so_far(self) -> list[float | None]:
        """Best potential after each candidate, in the order asked."""
        out, cur = [], None
        for c in self.history:
            if eligible(c) and (cur is None or c.potential > cur):
                cur = c.potential
            out.append(cur)
        return out


def eligible(c: Candidate) -> bool:
    """OK and at full fidelity: previews (explicit ``steps``), FAILED and FILTERED are never the best."""
    return c.status is Status.OK and c.potential is not None and not c.recipe.is_preview


@dataclass
class Job:
    """One search for ``Engine.run_all``."""

    condition: Condition
    strategy: Strategy
    label: str | None = None
    search_id: str | None = None
    prior_seed: int = DEFAULT_PRIOR_SEED


@dataclass
class _Batch:
    recipes: list[Recipe]
    condition: Condition
    search: str
    seq0: int
    role: str
    strategy: str | None
    keys: list[str]
    cands: list[Candidate | None] = field(default_factory=list)
    computed: list[bool] = field(default_factory=list)
    todo: list[int] = field(default_factory=list)
    new: list[Candidate] = field(default_factory=list)
    future: Future | None = None

    def __post_init__(self) -> None:
        self.cands = [None] * len(self.recipes)
        self.computed = [False] * len(self.recipes)


@dataclass
class _SearchState:
    job: Job
    label: str
    search_id: str
    prior: Candidate
    cond: Condition
    history: list[Candidate] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    inflight: deque[_Batch] = field(default_factory=deque)
    stop: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    best: Candidate | None = None

    @property
    def strategy(self) -> Strategy:
        return self.job.strategy


def best_of(cands: Sequence[Candidate]) -> Candidate | None:
    """argmax of the potential over eligible candidates; the earliest wins ties."""
    best = None
    for c in cands:
        if eligible(c) and (best is None or c.potential > best.potential):
            best = c
    return best


def is_oom(exc: BaseException) -> bool:
    """``torch.OutOfMemoryError``, or a RuntimeError saying "out of memory" (older torch, other backends)."""
    oom = getattr(torch, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def clear_device_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _image_problem(image: np.ndarray | None) -> str | None:
    if image is None:
        return "generator returned no image"
    if not np.all(np.isfinite(image)):
        return "NaN/inf in image"
    if float(np.max(image)) <= 1e-6:
        return "all-black image"
    return None


class BatchComputer:
    """Generates and scores one batch: the engine's batch code, without a store or a loop. Executors that
    run elsewhere (e.g. Ray actors) build one from the same generator and potential."""

    def __init__(self, generator: Generator | None, potential: Potential | None,
                 preview_potential: Potential | None = None) -> None:
        self.generator = generator
        self.potential = potential
        self.preview_potential = preview_potential

    def potential_for(self, recipe: Recipe) -> Potential:
        """Previews are scored by ``preview_potential`` when one is set (a scoring cascade)."""
        return self.preview_potential if recipe.is_preview and self.preview_potential else self.potential

    def steps_of(self, recipe: Recipe) -> int:
        return recipe.steps if recipe.steps is not None else self.generator.default_steps

    def generate_batch(self, recipes: Sequence[Recipe], condition: Condition) -> list[Generated]:
        """Generate (grouped by steps). Generator errors fail their group; images are quantized to 8 bits
        (what is stored is what is scored); black/NaN images are FILTERED."""
        self.generator.check(recipes)
        gens: list[Generated | None] = [None] * len(recipes)
        groups: dict[int, list[int]] = defaultdict(list)
        for i, r in enumerate(recipes):
            groups[self.steps_of(r)].append(i)
        for steps, idx in groups.items():
            t0 = time.perf_counter()
            outs = self._generate_split([recipes[i] for i in idx], condition, steps)
            dt = (time.perf_counter() - t0) / len(idx)
            for i, g in zip(idx, outs, strict=True):
                if g.status is Status.OK:
                    problem = _image_problem(g.image)
                    g = Generated.filtered(problem, g.image) if problem else Generated(quantize(g.image))
                g.seconds = dt
                gens[i] = g
        return gens  # type: ignore[return-value]

    def _generate_split(self, recipes: list[Recipe], condition: Condition, steps: int) -> list[Generated]:
        """One generator call; on out-of-memory, split the batch in halves and retry (each recipe's noise
        is the same whatever the batch), FAILED at batch size 1. Other errors fail the batch."""
        try:
            outs = list(self.generator.generate(recipes, condition, steps=steps))
            if len(outs) != len(recipes):
                raise RuntimeError(f"returned {len(outs)} outputs for {len(recipes)} recipes")
            return outs
        except Exception as exc:
            if is_oom(exc) and len(recipes) > 1:
                clear_device_cache()
                half = len(recipes) // 2
                return (self._generate_split(recipes[:half], condition, steps)
                        + self._generate_split(recipes[half:], condition, steps))
            what = f"out of memory at batch size {len(recipes)}" if is_oom(exc) else "generator"
            reason = f"{what} ({self.generator.name}): {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            return [Generated.failed(reason) for _ in recipes]

    def score_batch(self, recipes: Sequence[Recipe], gens: Sequence[Generated],
                    condition: Condition) -> list[tuple[Generated, Scored | None]]:
        """Score the OK images (previews with ``preview_potential`` when set)."""
        out: list[tuple[Generated, Scored | None]] = [(g, None) for g in gens]
        by_potential: dict[int, list[int]] = defaultdict(list)
        for i, g in enumerate(gens):
            if g.status is Status.OK:
                by_potential[id(self.potential_for(recipes[i]))].append(i)
        for idx in by_potential.values():
            pot = self.potential_for(recipes[idx[0]])
            t0 = time.perf_counter()
            scored = pot.evaluate([gens[i].image for i in idx], condition)
            dt = (time.perf_counter() - t0) / len(idx)
            for i, sc in zip(idx, scored, strict=True):
                sc.seconds = dt
                out[i] = (gens[i], sc)
        return out

    def compute(self, recipes: Sequence[Recipe], condition: Condition) -> list[tuple[Generated, Scored | None]]:
        """Generate and score one batch; no store involved."""
        return self.score_batch(recipes, self.generate_batch(recipes, condition), condition)



class Engine(BatchComputer):
    """Runs searches for one generator and potential, writing every finished batch to ``store``."""

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
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        super().__init__(generator, potential, preview_potential)
        self._tmp: tempfile.TemporaryDirectory | None = None
        if store is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="eacps-")
            store = Store(Path(self._tmp.name))
        self.store = store
        self.batch_size = batch_size
        self.progress = progress
        self.max_steps = max_steps
        self.executor = executor if executor is not None else LocalExecutor()
        self._executor_started: Executor | None = None
        self._reference_paths: dict[str, str] = {}
        self._unit_totals = store.get_meta(COST_META, empty_totals())
        self._pot_snapshot: dict[tuple[int, str], tuple[int, float]] = {}
        self._gen_fp = generator.fingerprint()

    # -- keys ---------------------------------------------------------------------------------
    def cache_key(self, recipe: Recipe, condition: Condition) -> str:
        ref = None if condition.reference is None else hashlib.sha256(
            np.ascontiguousarray(condition.reference).tobytes()).hexdigest()[:16]
        spec = [self._gen_fp, self.potential_for(recipe).fingerprint(), condition.describe(), ref,
                recipe.with_steps(None).key, self.steps_of(recipe)]
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()

    # -- the run loop --------------------------------------------------------------------------
    def _plan(self, recipes: Sequence[Recipe], condition: Condition, *, search: str, seq0: int, role: str,
              strategy: str | None) -> _Batch:
        """Resolve what the store already has; the rest is ``todo`` (to compute)."""
        b = _Batch(list(recipes), condition, search, seq0, role, strategy,
                   [self.cache_key(r, condition) for r in recipes])
        for i, r in enumerate(recipes):
            if (row := self.store.find_in_search(search, r)) is not None:
                b.cands[i] = row  # resumed: told again, not recomputed, not re-stored
            elif (hit := self.store.find_cached(b.keys[i])) is not None:
                b.cands[i] = replace(hit, search=search, seq=seq0 + i, role=role, recipe=r, strategy=strategy,
                                     reused_from=hit.reused_from or hit.id, id=None)
                b.new.append(b.cands[i])
            else:
                b.todo.append(i)
        return b

    def _finish(self, b: _Batch, computed: Sequence[tuple[Generated, Scored | None]] | None) -> list[Candidate]:
        """Turn computed results into candidates and write every new row in one transaction."""
        for i, (g, sc) in zip(b.todo, computed or [], strict=True):
            r = b.recipes[i]
            c = Candidate(b.search, b.seq0 + i, b.role, b.condition.id, r, self.steps_of(r), g.status, None,
                          cache_key=b.keys[i], strategy=b.strategy, gen_seconds=g.seconds)
            if g.status is Status.OK and sc is not None:
                c.scores, c.potential, c.score_seconds = sc.scores, sc.potential, sc.seconds
                if sc.reason is not None:
                    c.status, c.reason = Status.FAILED, sc.reason
            else:
                c.reason = g.reason
            if g.image is not None and np.all(np.isfinite(g.image)):
                c.image_path = self.store.write_image(b.keys[i], g.image)
            b.cands[i] = c
            b.computed[i] = True
            b.new.append(c)
        self.store.generated += len(b.todo)
        if b.new:
            desc = b.condition.describe()
            if b.condition.id in self._reference_paths:
                desc["reference_image"] = self._reference_paths[b.condition.id]
            computed = [c for c, new in zip(b.cands, b.computed, strict=True) if new]
            meta = {COST_META: self._measurements(computed)} if computed else None
            self.store.add(b.new, desc, meta)
        return b.cands  # type: ignore[return-value]

    def evaluate(self, recipes: Sequence[Recipe], condition: Condition, *, search: str, seq0: int,
                 role: str = "search", strategy: str | None = None) -> tuple[list[Candidate], list[bool]]:
        """Synchronously: candidates for ``recipes`` (seq0, seq0+1, ...) from this search's stored rows, the
        store's cache, or computed now. Also returns, per candidate, whether this call computed it."""
        b = self._plan(recipes, condition, search=search, seq0=seq0, role=role, strategy=strategy)
        computed = self.compute([recipes[i] for i in b.todo], condition) if b.todo else None
        return self._finish(b, computed), b.computed

    def calibrate(self, condition: Condition, prior_seed: int = DEFAULT_PRIOR_SEED) -> None:
        """Per-condition standardization: score the condition's calibration set (the prior's seed and
        ``calibration_samples - 1`` fixed seeds) with the raw scorers of every ``standardize`` criterion and
        record their mean and std. Stored as role ``calibration`` rows, so a resumed run reads them back."""
        pot = self.potential
        crits = pot.standardizes
        if not crits or condition.id in pot.condition_stats:
            return
        sid = f"calibration/{condition.id}/{prior_seed}"
        rows = self.store.candidates(search=sid, role="calibration")
        if len(rows) == pot.calibration_samples:
            raw = {c.name: [r.scores.get(c.name) for r in rows if r.status is Status.OK] for c in crits}
        else:
            seeds = [prior_seed, *SeedStream(CALIBRATION_SEED, prior_seed).take(pot.calibration_samples - 1)]
            recipes = [Recipe.from_seed(s) for s in seeds]
            gens = self.generate_batch(recipes, condition)
            first = gens[0].image if gens[0].status is Status.OK else None
            cond = condition.with_prior(first)
            ok = [i for i, g in enumerate(gens) if g.status is Status.OK]
            raw_ok = pot.raw_scores([gens[i].image for i in ok], cond, crits)
            raw = {name: list(values) for name, values in raw_ok.items()}
            new = []
            for i, (r, g) in enumerate(zip(recipes, gens, strict=True)):
                scores = {}
                if i in ok:
                    j = ok.index(i)
                    for name in raw:
                        v = raw[name][j]
                        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                            scores[name] = float(v)
                key = f"calibration:{self.cache_key(r, condition)}"  # never served as a search candidate
                new.append(Candidate(sid, i, "calibration", condition.id, r, self.steps_of(r),
                                     g.status if i in ok else Status.FAILED, None, scores,
                                     None if i in ok else g.reason, cache_key=key, gen_seconds=g.seconds))
            self.store.add(new, condition.describe())
        try:
            pot.set_condition_stats(condition.id, raw)
        except ScoreError as exc:
            raise RuntimeError(f"cannot calibrate condition {condition.id!r}: {exc}") from None

    def _stash_reference(self, condition: Condition) -> None:
        """Store the condition's reference image once (reports show it beside the prior)."""
        if condition.reference is None or condition.id in self._reference_paths:
            return
        key = "reference:" + hashlib.sha256(np.ascontiguousarray(condition.reference).tobytes()).hexdigest()
        path = self.store.image_path_for(key)
        if not (self.store.root / path).exists():
            self.store.write_image(key, condition.reference)
        self._reference_paths[condition.id] = path

    @staticmethod
    def prior_search(condition: Condition, prior_seed: int) -> str:
        return f"prior/{condition.id}/{prior_seed}"

    def prior(self, condition: Condition, prior_seed: int = DEFAULT_PRIOR_SEED) -> Candidate:
        """Stage 0: the candidate from a fixed seed, generated first; not charged to any search."""
        self.calibrate(condition, prior_seed)
        self._stash_reference(condition)
        (c,), _ = self.evaluate([Recipe.from_seed(prior_seed)], condition,
                                search=self.prior_search(condition, prior_seed), seq0=0, role="prior")
        return c

    def _priors(self, jobs: Sequence[Job]) -> dict[str, Candidate]:
        """The priors of many searches at once, through the executor (one batch per condition)."""
        batches: dict[str, _Batch] = {}
        for job in jobs:
            sid = self.prior_search(job.condition, job.prior_seed)
            if sid in batches:
                continue
            self.calibrate(job.condition, job.prior_seed)
            self._stash_reference(job.condition)
            b = self._plan([Recipe.from_seed(job.prior_seed)], job.condition, search=sid, seq0=0, role="prior",
                           strategy=None)
            if b.todo:
                b.future = self.executor.submit([b.recipes[i] for i in b.todo], job.condition)
            batches[sid] = b
        return {sid: self._finish(b, self._result(b))[0] for sid, b in batches.items()}

    def _result(self, b: _Batch) -> list[tuple[Generated, Scored | None]] | None:
        """A batch's computed results; an executor failure fails the batch (the run goes on)."""
        if b.future is None:
            return None
        try:
            return b.future.result()
        except Exception as exc:
            reason = f"executor {self.executor.name}: {type(exc).__name__}: {exc}"
            return [(Generated.failed(reason), None) for _ in b.todo]

    def run(self, condition: Condition, strategy: Strategy, *, label: str | None = None,
            search_id: str | None = None, prior_seed: int = DEFAULT_PRIOR_SEED) -> SearchResult:
        """One search; see ``run_all``."""
        return self.run_all([Job(condition, strategy, label, search_id, prior_seed)])[0]

    def run_all(self, jobs: Sequence[Job]) -> list[SearchResult]:
        """Run several searches at once through the executor, so that no worker idles while one search
        waits on its strategy. Each search's results are told in the order asked and each finished batch
        is stored before that search is asked again."""
        if self._executor_started is not self.executor:
            self.executor.start(self)
            self._executor_started = self.executor
        priors = self._priors(jobs)
        states = []
        for job in jobs:
            label = job.label or job.strategy.name
            sid = job.search_id or f"{job.condition.id}/{label}/b{job.strategy.budget}/s{job.strategy.seed}"
            prior = priors[self.prior_search(job.condition, job.prior_seed)]
            states.append(_SearchState(job, label, sid, prior, job.condition.with_prior(prior.image)))
        total = sum(j.strategy.budget for j in jobs)
        # disable=None: a bar only on a terminal (no bar spam in logs and pipes)
        bar = tqdm(total=total, desc=f"{len(jobs)} search(es)", disable=None if self.progress else True, leave=False,
                   unit="cand")
        t0 = time.perf_counter()
        try:
            active = list(states)
            while active:
                progressed = False
                inflight = sum(len(st.inflight) for st in active)
                for st in list(active):
                    while st.inflight and (st.inflight[0].future is None or st.inflight[0].future.done()):
                        self._complete(st, st.inflight.popleft(), bar)
                        inflight -= 1
                        progressed = True
                    if not st.inflight:
                        stop = st.strategy.stop()
                        if not stop and self.max_steps is not None and st.cost.steps >= self.max_steps:
                            stop = {"max_steps": self.max_steps}
                        if stop:
                            st.stop = stop
                            st.diagnostics = st.strategy.diagnostics()
                            if st.diagnostics:
                                self.store.set_meta(f"diagnostics/{st.search_id}", st.diagnostics)
                            st.strategy.close()
                            active.remove(st)
                            progressed = True
                            continue
                    can_ahead = not st.inflight or getattr(st.strategy, "ask_ahead", False)
                    if inflight < self.executor.capacity and can_ahead:
                        recipes = st.strategy.ask(self.batch_size)
                        if recipes:
                            b = self._plan(recipes, st.cond, search=st.search_id, role="search",
                                           seq0=st.strategy.asked - len(recipes), strategy=st.label)
                            if b.todo:
                                b.future = self.executor.submit([recipes[i] for i in b.todo], st.cond)
                            st.inflight.append(b)
                            inflight += 1
                            progressed = True
                        elif not st.inflight:
                            raise StrategyError(f"{st.strategy.name}: ask() returned nothing, nothing is pending, "
                                                "and stop() is empty")
                if not progressed:
                    futures = [st.inflight[0].future for st in active if st.inflight and st.inflight[0].future]
                    if futures:
                        wait(futures, return_when=FIRST_COMPLETED)
                bests = [st.best.potential for st in states if st.best is not None]
                dt = time.perf_counter() - t0
                bar.set_postfix(best=round(max(bests), 3) if bests else None, workers=self.executor.workers,
                                cand_s=round(bar.n / dt, 1) if dt > 0 else None, refresh=False)
        finally:
            bar.close()
        return [SearchResult(st.search_id, st.job.condition, st.label, st.prior, best_of(st.history), st.history,
                             st.cost, st.stop, st.diagnostics) for st in states]

    def _measurements(self, computed: Sequence[Candidate]) -> dict[str, Any]:
        """The running unit-cost totals including ``computed`` (the candidates this batch computed)."""
        calls: dict[str, int] = defaultdict(int)
        seconds: dict[str, float] = defaultdict(float)
        for p in (self.potential, self.preview_potential):
            if p is None:
                continue
            for k, n in p.calls.items():
                snap_n, snap_s = self._pot_snapshot.get((id(p), k), (0, 0.0))
                calls[k] += n - snap_n
                seconds[k] += p.seconds.get(k, 0.0) - snap_s
                self._pot_snapshot[(id(p), k)] = (n, p.seconds.get(k, 0.0))
        local = any(n for p in (self.potential, self.preview_potential) if p is not None for n in p.calls.values())
        if not local:  # scored elsewhere (e.g. Ray actors): split candidates' scoring time evenly
            for c in computed:
                for k in c.scores:
                    calls[k] += 1
                    seconds[k] += c.score_seconds / len(c.scores)
        return accumulate(self._unit_totals, gen_seconds=sum(c.gen_seconds for c in computed),
                          steps=sum(c.steps for c in computed), calls=calls, score_seconds=seconds)

    def _complete(self, st: _SearchState, b: _Batch, bar: tqdm) -> None:
        computed = self._result(b)
        cands = self._finish(b, computed)
        st.strategy.tell([c.result for c in cands])
        for c, new in zip(cands, b.computed, strict=True):
            st.cost.charge(c, [k.name for k in self.potential_for(c.recipe).criteria], computed=new)
        st.history.extend(cands)
        st.best = best_of(st.history)
        bar.update(len(cands))

    def release(self) -> None:
        """Stop the executor's workers (it restarts on the next run); the store stays open."""
        if self._executor_started is not None:
            self._executor_started.shutdown()
            self._executor_started = None

    def close(self) -> None:
        """Release the executor and remove a temporary store."""
        self.release()
        if self._tmp is not None:
            self.store.close()
            self._tmp.cleanup()
            self._tmp = None
