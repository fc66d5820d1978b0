"""The batch computer: generate -> quantize/filter -> score, for one ``Batch``. No store, no loop, no engine.

It is the only thing an executor needs: in-process executors call it, remote ones (Ray actors) build their
own from the same generator and potential specs. Every shared rule of a batch lives here once: grouping by
steps, out-of-memory splitting, time limits on plugin calls, the 8-bit quantization (what is stored is what
is scored) and the black/NaN filter with the generator's declared ``black_level``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from eacps.errors import CallTimeout, call_with_timeout, one_line
from eacps.generator import Generator
from eacps.potential import Potential, Scored, Stats
from eacps.recipe import Recipe
from eacps.stepping import StateCache, generate_paths
from eacps.store import quantize
from eacps.types import Condition, Generated, Image, Status

#: images whose brightest pixel is at or below this are FILTERED as all black (unless the generator declares
#: its own ``black_level``)
DEFAULT_BLACK_LEVEL = 1e-6

Pair = tuple[Generated, Scored | None]


@dataclass(frozen=True)
class Batch:
    """One unit of work for an executor: recipes of one search on one condition, with every input explicit.

    ``prior`` is the search's stage-0 image (scorers and img2img generators see it as ``condition.prior``);
    ``stats``/``preview_stats`` are the condition's calibration statistics of the potential and the preview
    potential. ``calibrate`` asks for the raw scores of that potential's ``standardize`` criteria instead (a
    calibration set; its first recipe is the prior's seed, so its first image serves as the prior).
    """

    recipes: tuple[Recipe, ...]
    condition: Condition
    prior: Image | None = field(default=None, compare=False, repr=False)
    stats: Stats = field(default_factory=dict)
    preview_stats: Stats = field(default_factory=dict)
    calibrate: Literal["potential", "preview"] | None = None

    @property
    def scoring_condition(self) -> Condition:
        """The condition the generator and scorers see: the caller's, with the search's prior."""
        return self.condition if self.prior is None else self.condition.with_prior(self.prior)


def is_oom(exc: BaseException) -> bool:
    """``torch.OutOfMemoryError``, or a RuntimeError saying "out of memory" (older torch, other backends)."""
    import torch

    oom = getattr(torch, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def clear_device_cache() -> None:
    """Free what an out-of-memory error left behind before retrying smaller (CUDA or Apple MPS)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def image_problem(image: Image | None, black_level: float = DEFAULT_BLACK_LEVEL) -> str | None:
    """Why an image cannot be scored (no image, NaN/inf, all black), or None."""
    if image is None:
        return "generator returned no image"
    if not np.all(np.isfinite(image)):
        return "NaN/inf in image"
    if float(np.max(image)) <= black_level:
        return "all-black image"
    return None


class BatchComputer:
    """Generates and scores batches for one generator and potential (plus an optional preview potential
    scoring previews: a scoring cascade). ``timeout_s`` limits each generator and scorer call."""

    def __init__(self, generator: Generator | None, potential: Potential | None,
                 preview_potential: Potential | None = None, *, timeout_s: float | None = None) -> None:
        self.generator = generator
        self.potential = potential
        self.preview_potential = preview_potential
        self.timeout_s = timeout_s
        self.state_cache = StateCache()  # trajectory states of path recipes, reused across this run's batches
        self.fits: int | None = None  # the largest generator call known to fit after an out-of-memory error

    def potential_for(self, recipe: Recipe) -> Potential:
        """Previews are scored by ``preview_potential`` when one is set (a scoring cascade)."""
        return self.preview_potential if recipe.is_preview and self.preview_potential else self.potential

    def steps_of(self, recipe: Recipe) -> int:
        """Model calls on the recipe's path: its ``until`` for a partial trajectory, else its schedule."""
        if recipe.until is not None:
            return recipe.until
        return self.schedule_of(recipe)

    def schedule_of(self, recipe: Recipe) -> int:
        """The length of the recipe's denoising schedule."""
        return recipe.steps if recipe.steps is not None else self.generator.default_steps

    # -- generation ---------------------------------------------------------------------------
    def generate(self, batch: Batch) -> list[Generated]:
        """Generate (grouped by steps). Generator errors fail their group; images are quantized to 8 bits
        and black/NaN images FILTERED; ``seconds`` is each candidate's share of its group's time."""
        recipes, condition = batch.recipes, batch.scoring_condition
        self.generator.check(recipes)
        gens: list[Generated | None] = [None] * len(recipes)
        groups: dict[int, list[int]] = defaultdict(list)
        for i, r in enumerate(recipes):
            groups[self.schedule_of(r)].append(i)
        black = self.generator.black_level
        for steps, idx in groups.items():
            t0 = time.perf_counter()
            outs = self._generate_group([recipes[i] for i in idx], condition, steps)
            dt = (time.perf_counter() - t0) / len(idx)
            for i, g in zip(idx, outs, strict=True):
                if g.status is Status.OK:
                    problem = image_problem(g.image, black)
                    g = Generated.filtered(problem, g.image) if problem else Generated(quantize(g.image))
                g.seconds = dt
                gens[i] = g
        return gens  # type: ignore[return-value]

    def _generate_group(self, recipes: list[Recipe], condition: Condition, steps: int) -> list[Generated]:
        """The one place a group of recipes (same schedule) becomes generator outputs: plain recipes through
        ``generate``, path recipes (branches, previews part way) through ``eacps.stepping.generate_paths``
        with this computer's prefix-state cache."""
        paths = [i for i, r in enumerate(recipes) if r.is_path]
        if not paths:
            return self._generate_split(recipes, condition, steps)
        plain = [i for i, r in enumerate(recipes) if not r.is_path]
        out: list[Generated | None] = [None] * len(recipes)
        for idx, stepwise in ((plain, False), (paths, True)):
            if idx:
                outs = self._generate_split([recipes[i] for i in idx], condition, steps, stepwise=stepwise)
                for i, g in zip(idx, outs, strict=True):
                    out[i] = g
        return out  # type: ignore[return-value]

    def _call(self, recipes: list[Recipe], condition: Condition, steps: int, stepwise: bool) -> list[Generated]:
        if stepwise:
            return generate_paths(self.generator, recipes, condition, steps=steps, cache=self.state_cache)
        return list(self.generator.generate(recipes, condition, steps=steps))

    def _generate_split(self, recipes: list[Recipe], condition: Condition, steps: int, *,
                        stepwise: bool = False) -> list[Generated]:
        """Generator calls of at most the size known to fit (``fits``, learned from out-of-memory errors)."""
        if self.fits is None or len(recipes) <= self.fits:
            return self._generate_halving(recipes, condition, steps, stepwise)
        out: list[Generated] = []
        for i in range(0, len(recipes), self.fits):
            out += self._generate_halving(recipes[i:i + self.fits], condition, steps, stepwise)
        return out

    def _generate_halving(self, recipes: list[Recipe], condition: Condition, steps: int,
                          stepwise: bool) -> list[Generated]:
        """One generator call; on out-of-memory, split the batch in halves and retry (each recipe's noise
        is the same whatever the batch; later calls start at the size that fitted), FAILED at batch size 1.
        Other errors and timeouts fail the batch. The one out-of-memory rule: generators let the error out."""
        what = f"generator {self.generator.name!r}"
        try:
            outs = list(call_with_timeout(lambda: self._call(recipes, condition, steps, stepwise),
                                          self.timeout_s, what))
            if len(outs) != len(recipes):
                raise RuntimeError(f"returned {len(outs)} outputs for {len(recipes)} recipes")
            return outs
        except CallTimeout as exc:
            return [Generated.failed(str(exc)) for _ in recipes]
        except Exception as exc:
            if is_oom(exc) and len(recipes) > 1:
                clear_device_cache()
                half = (len(recipes) + 1) // 2
                self.fits = half if self.fits is None else min(self.fits, half)
                return (self._generate_halving(recipes[:half], condition, steps, stepwise)
                        + self._generate_halving(recipes[half:], condition, steps, stepwise))
            head = f"out of memory at batch size {len(recipes)}" if is_oom(exc) else "generator"
            reason = f"{head} ({self.generator.name}): {one_line(exc)}"
            return [Generated.failed(reason) for _ in recipes]

    # -- scoring ------------------------------------------------------------------------------
    def score(self, batch: Batch, gens: Sequence[Generated]) -> list[Pair]:
        """Score the OK images: previews with ``preview_potential`` when set, each potential with its own
        statistics; a calibration batch gets raw scores."""
        if batch.calibrate is not None:
            return self._score_raw(batch, gens)
        out: list[Pair] = [(g, None) for g in gens]
        groups: dict[bool, list[int]] = defaultdict(list)  # preview potential? -> indices
        for i, g in enumerate(gens):
            if g.status is Status.OK:
                groups[self.potential_for(batch.recipes[i]) is not self.potential].append(i)
        for preview, idx in groups.items():
            pot = self.preview_potential if preview else self.potential
            stats = batch.preview_stats if preview else batch.stats
            scored = pot.evaluate([gens[i].image for i in idx], batch.scoring_condition, stats,
                                  timeout_s=self.timeout_s)
            for i, sc in zip(idx, scored, strict=True):
                out[i] = (gens[i], sc)
        return out

    def _score_raw(self, batch: Batch, gens: Sequence[Generated]) -> list[Pair]:
        pot = self.preview_potential if batch.calibrate == "preview" else self.potential
        prior = gens[0].image if gens and gens[0].status is Status.OK else None
        ok = [i for i, g in enumerate(gens) if g.status is Status.OK]
        scored = pot.raw_scores([gens[i].image for i in ok], batch.condition.with_prior(prior),
                                timeout_s=self.timeout_s)
        out: list[Pair] = [(g, None) for g in gens]
        for i, sc in zip(ok, scored, strict=True):
            out[i] = (gens[i], sc)
        return out

    def compute(self, batch: Batch) -> list[Pair]:
        """Generate and score one batch."""
        return self.score(batch, self.generate(batch))
