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
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from eacps.generator import Generator
from eacps.potential import Potential
from eacps.recipe import Recipe
from eacps.store import Candidate, Store, quantize
from eacps.strategy import Strategy, StrategyError
from eacps.types import Condition, Generated, Status

DEFAULT_PRIOR_SEED = 0


@dataclass
class Cost:
    candidates: int = 0  # charged: candidates the search asked
    steps: int = 0  # charged: denoising steps of those candidates
    scorer_calls: dict[str, int] = field(default_factory=dict)  # charged: per criterion
    generated: int = 0  # spent: candidates computed by this process
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


def best_of(cands: Sequence[Candidate]) -> Candidate | None:
    """argmax of the potential over eligible candidates; the earliest wins ties."""
    best = None
    for c in cands:
        if eligible(c) and (best is None or c.potential > best.potential):
            best = c
    return best


def _image_problem(image: np.ndarray | None) -> str | None:
    if image is None:
        return "generator returned no image"
    if not np.all(np.isfinite(image)):
        return "NaN/inf in image"
    if float(np.max(image)) <= 1e-6:
        return "all-black image"
    return None


class Engine:
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
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.generator = generator
        self.potential = potential
        self._tmp: tempfile.TemporaryDirectory | None = None
        if store is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="eacps-")
            store = Store(Path(self._tmp.name))
        self.store = store
        self.batch_size = batch_size
        self.progress = progress
        self.max_steps = max_steps
        self.preview_potential = preview_potential
        self._gen_fp = generator.fingerprint()

    def potential_for(self, recipe: Recipe) -> Potential:
        """Previews are scored by ``preview_potential`` when one is set (a scoring cascade)."""
        return self.preview_potential if recipe.is_preview and self.preview_potential else self.potential

    # -- keys ---------------------------------------------------------------------------------
    def steps_of(self, recipe: Recipe) -> int:
        return recipe.steps if recipe.steps is not None else self.generator.default_steps

    def cache_key(self, recipe: Recipe, condition: Condition) -> str:
        ref = None if condition.reference is None else hashlib.sha256(
            np.ascontiguousarray(condition.reference).tobytes()).hexdigest()[:16]
        spec = [self._gen_fp, self.potential_for(recipe).fingerprint(), condition.describe(), ref,
                recipe.with_steps(None).key, self.steps_of(recipe)]
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()

    # -- evaluation ---------------------------------------------------------------------------
    def compute(self, recipes: Sequence[Recipe], condition: Condition) -> list[tuple[Generated, Any]]:
        """Generate (grouped by steps) and score; no store involved. Returns (generated, scored|None)."""
        self.generator.check(recipes)
        gens: list[Generated | None] = [None] * len(recipes)
        secs = [0.0] * len(recipes)
        groups: dict[int, list[int]] = defaultdict(list)
        for i, r in enumerate(recipes):
            groups[self.steps_of(r)].append(i)
        for steps, idx in groups.items():
            t0 = time.perf_counter()
            try:
                outs = list(self.generator.generate([recipes[i] for i in idx], condition, steps=steps))
                if len(outs) != len(idx):
                    raise RuntimeError(f"returned {len(outs)} outputs for {len(idx)} recipes")
            except Exception as exc:
                reason = f"generator {self.generator.name}: {type(exc).__name__}: {exc}"
                outs = [Generated.failed(reason) for _ in idx]
            dt = (time.perf_counter() - t0) / len(idx)
            for i, g in zip(idx, outs, strict=True):
                if g.status is Status.OK:
                    problem = _image_problem(g.image)
                    g = Generated.filtered(problem, g.image) if problem else Generated(quantize(g.image))
                gens[i], secs[i] = g, dt
        out: list[tuple[Generated, Any]] = [(g, None) for g in gens]
        by_potential: dict[int, list[int]] = defaultdict(list)
        for i, g in enumerate(gens):
            if g.status is Status.OK:
                by_potential[id(self.potential_for(recipes[i]))].append(i)
        for idx in by_potential.values():
            pot = self.potential_for(recipes[idx[0]])
            t0 = time.perf_counter()
            scored = pot.evaluate([gens[i].image for i in idx], condition)
            dt = (time.perf_counter() - t0) / len(idx)
            for i, s in zip(idx, scored, strict=True):
                s.seconds = dt
                out[i] = (gens[i], s)
        for (g, _), sec in zip(out, secs, strict=True):
            g.seconds = sec
        return out

    def evaluate(self, recipes: Sequence[Recipe], condition: Condition, *, search: str, seq0: int,
                 role: str = "search", strategy: str | None = None) -> tuple[list[Candidate], list[bool]]:
        """Candidates for ``recipes`` (seq0, seq0+1, ...): resumed rows of this search, rows served from the
        store's cache, or computed now; new rows are written in one transaction. Also returns, per
        candidate, whether this call computed it."""
        out: list[Candidate | None] = [None] * len(recipes)
        computed = [False] * len(recipes)
        new: list[Candidate] = []
        todo: list[int] = []
        keys = [self.cache_key(r, condition) for r in recipes]
        for i, r in enumerate(recipes):
            if (row := self.store.find_in_search(search, r)) is not None:
                out[i] = row  # resumed: told again, not recomputed, not re-stored
            elif (hit := self.store.find_cached(keys[i])) is not None:
                c = replace(hit, search=search, seq=seq0 + i, role=role, recipe=r, strategy=strategy,
                            reused_from=hit.reused_from or hit.id, id=None)
                out[i] = c
                new.append(c)
            else:
                todo.append(i)
        if todo:
            for i, (g, s) in zip(todo, self.compute([recipes[i] for i in todo], condition), strict=True):
                r = recipes[i]
                c = Candidate(search, seq0 + i, role, condition.id, r, self.steps_of(r), g.status, None,
                              cache_key=keys[i], strategy=strategy, gen_seconds=g.seconds)
                if g.status is Status.OK:
                    c.scores, c.potential, c.score_seconds = s.scores, s.potential, s.seconds
                    if s.reason is not None:
                        c.status, c.reason = Status.FAILED, s.reason
                else:
                    c.reason = g.reason
                if g.image is not None and np.all(np.isfinite(g.image)):
                    c.image_path = self.store.write_image(keys[i], g.image)
                out[i] = c
                computed[i] = True
                new.append(c)
            self.store.generated += len(todo)
        if new:
            self.store.add(new, condition.describe())
        return out, computed  # type: ignore[return-value]

    def prior(self, condition: Condition, prior_seed: int = DEFAULT_PRIOR_SEED) -> Candidate:
        """Stage 0: the candidate from a fixed seed, generated first; not charged to any search."""
        (c,), _ = self.evaluate([Recipe.from_seed(prior_seed)], condition,
                                search=f"prior/{condition.id}/{prior_seed}", seq0=0, role="prior")
        return c

    def run(self, condition: Condition, strategy: Strategy, *, label: str | None = None,
            search_id: str | None = None, prior_seed: int = DEFAULT_PRIOR_SEED) -> SearchResult:
        label = label or strategy.name
        search_id = search_id or f"{condition.id}/{label}/b{strategy.budget}/s{strategy.seed}"
        prior = self.prior(condition, prior_seed)
        cond = condition.with_prior(prior.image)
        history: list[Candidate] = []
        cost = Cost()
        bar = tqdm(total=strategy.budget, desc=f"{condition.id} {label}", disable=not self.progress,
                   leave=False, unit="cand")
        try:
            while True:
                stop = strategy.stop()
                if not stop and self.max_steps is not None and cost.steps >= self.max_steps:
                    stop = {"max_steps": self.max_steps}
                if stop:
                    break
                recipes = strategy.ask(self.batch_size)
                if not recipes:
                    raise StrategyError(f"{strategy.name}: ask() returned nothing, nothing is pending, and stop() "
                                        "is empty")
                cands, computed = self.evaluate(recipes, cond, search=search_id, seq0=strategy.asked - len(recipes),
                                                strategy=label)
                strategy.tell([c.result for c in cands])
                for c, new in zip(cands, computed, strict=True):
                    cost.charge(c, [k.name for k in self.potential_for(c.recipe).criteria], computed=new)
                history.extend(cands)
                best = best_of(history)
                bar.update(len(cands))
                bar.set_postfix(best=None if best is None else round(best.potential, 3))
        finally:
            bar.close()
        return SearchResult(search_id, condition, label, prior, best_of(history), history, cost, stop)

    def close(self) -> None:
        if self._tmp is not None:
            self.store.close()
            self._tmp.cleanup()
            self._tmp = None
