"""The generator plugin interface: noise recipes + a condition -> images."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar, cast

import numpy as np
import torch

from eacps.params import NoParams, Params
from eacps.recipe import Recipe
from eacps.stepping import generate_paths
from eacps.trajectory import Trajectory
from eacps.types import Condition, Generated, Image

P = TypeVar("P", bound=Params)


class Generator(ABC, Generic[P]):
    """Turns a batch of noise recipes and one condition into images.

    Subclasses set ``name`` and ``Params``, and implement ``noise_shape``, ``default_steps``,
    ``settings`` and ``generate``. The generator owns the seed -> noise mapping: ``noises()``
    materializes recipes in the shape and dtype the model draws (batch dimension of 1 included),
    so a seed-only recipe reproduces the model's own ``generator=manual_seed(seed)`` call.

    Generic in its params: ``class MyGenerator(Generator[MyParams])`` types ``self.params`` as ``MyParams``.
    """

    name: ClassVar[str]
    Params: ClassVar[type[Params]] = NoParams
    #: False for pipelines whose ``latents=`` is not the initial noise (img2img): seed-only recipes. A generator
    #: whose support depends on the loaded model keeps it True and overrides ``noise_recipes_problem``.
    supports_noise_recipes: ClassVar[bool] = True
    #: True when the generator implements ``start``/``advance``/``decode``/``marginal`` (see ``eacps.stepping``):
    #: path recipes (branches, previews part way) and trajectory strategies need it. A generator whose support
    #: depends on the loaded model (e.g. the scheduler) overrides ``stepping_problem``.
    supports_stepping: ClassVar[bool] = False
    #: images whose brightest pixel is at or below this are FILTERED as all black (before scoring); a generator
    #: may set it per instance (from its params)
    black_level: float = 1e-6

    def __init__(self, params: P | None = None) -> None:
        self.params: P = params if params is not None else cast(P, self.Params())

    def load(self) -> None:
        """Load models now. Called before a run starts, so that a missing or unreadable model is a
        configuration error (exit code 2) rather than a run of FAILED candidates. Raise
        ``eacps.config.ConfigError("params.<field>: why")`` for a setting the loaded model cannot run.
        Default: nothing."""

    def check_condition(self, condition: Condition) -> None:
        """Raise ValueError when ``condition`` lacks what this generator needs (checked before a run)."""

    @abstractmethod
    def noise_shape(self, condition: Condition) -> tuple[int, ...]:
        """Shape of one candidate's initial noise, leading batch dimension 1 included."""

    @property
    def noise_dtype(self) -> torch.dtype:
        return torch.float32

    @property
    @abstractmethod
    def default_steps(self) -> int:
        """Denoising steps used when a recipe does not override ``steps``."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Everything that changes the images: model id/path + revision + weights hash + call settings."""

    def fingerprint(self) -> str:
        """A short stable hash of ``settings()``, part of every cache key."""
        text = json.dumps({"generator": self.name, **self.settings()}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def noises(self, recipes: Sequence[Recipe], condition: Condition) -> torch.Tensor:
        """The batch of initial noises for ``recipes`` (CPU, ``noise_dtype``)."""
        shape = self.noise_shape(condition)
        return torch.cat([r.noise(shape, self.noise_dtype) for r in recipes], dim=0)

    @property
    def capabilities(self) -> frozenset[str]:
        """What this generator offers strategies (``eacps.capabilities``); may depend on the loaded model."""
        return frozenset({"noise_recipes"} if self.noise_recipes_problem() is None else set()) | (
            frozenset({"stepping"}) if self.stepping_problem() is None else frozenset())

    def noise_recipes_problem(self) -> str | None:
        """Why this generator takes seed-only recipes (None when it takes noise-space recipes too)."""
        return None if self.supports_noise_recipes else (
            f"generator {self.name!r} accepts seed-only recipes (its latents are not the initial noise)")

    def stepping_problem(self) -> str | None:
        """Why this generator cannot step (None when it can)."""
        return None if self.supports_stepping else f"generator {self.name!r} has no stepping capability"

    def check(self, recipes: Sequence[Recipe]) -> None:
        """Refuse, before any compute, recipes this generator cannot honour."""
        paths = [r.key for r in recipes if r.is_path]
        if paths and (problem := self.stepping_problem()) is not None:
            raise ValueError(f"{problem}: it cannot compute path recipes (branches/until) {paths[:3]}; "
                             "eacps.stepping.generate_paths computes them on a stepping generator")
        for r in recipes:
            if r.is_path:
                r.check_schedule(r.steps if r.steps is not None else self.default_steps)
        bad = [r.key for r in recipes if not r.is_seed_only]
        if bad and (problem := self.noise_recipes_problem()) is not None:
            raise ValueError(f"{problem}; got noise-space recipe(s) {bad[:3]}")

    # -- stepping (only when ``supports_stepping``; see eacps.stepping) ------------------------------
    def start(self, recipes: Sequence[Recipe], condition: Condition, *, steps: int | None = None) -> Trajectory:
        """The initial states of ``recipes`` (step 0 of a ``steps``-call schedule): what ``generate`` starts from;
        ``Trajectory(latents, None, 0, steps, tuple(recipes))``, each row's origin its recipe."""
        raise NotImplementedError(f"generator {self.name!r} cannot step")

    def advance(self, traj: Trajectory, condition: Condition, until: int) -> Trajectory:
        """Model calls ``traj.step .. until - 1`` for the whole batch; ``x0`` = the last call's clean prediction.
        Returns ``traj.moved(latents, x0, until)``: the same rows, each keeping its origin."""
        raise NotImplementedError(f"generator {self.name!r} cannot step")

    def decode(self, latents: torch.Tensor, condition: Condition) -> list[Generated]:
        """Latents (a clean prediction, or final latents) to images, one per row."""
        raise NotImplementedError(f"generator {self.name!r} cannot step")

    def marginal(self, traj: Trajectory) -> tuple[float, float]:
        """``(a, b)`` with ``x_k = a·x0 + b·eps`` at ``traj.step`` under this generator's scheduler."""
        raise NotImplementedError(f"generator {self.name!r} cannot step")

    # -- preview features (optional; value models, see eacps.screening) ---------------------------------
    def feature_source(self) -> str | None:
        """Names and versions what ``preview_features`` computes (e.g. ``"digits-pixels/7x7/1"``; change it when the
        features change), or None (the default): this generator supplies none. Part of every warm-start file's
        fingerprint, so a changed feature source never reuses a stale fit."""
        return None

    def preview_features(self, images: Sequence[Image], condition: Condition) -> np.ndarray:
        """Feature vectors of ``images`` (decoded previews: the clean-image prediction part way; stored images,
        8- or 16-bit) for a value model (``eacps.screening``, ``value_model.features = "generator"``): a float
        array (n, d), the same d for every image, deterministic. Small models: pixels or latents, downsampled;
        real ones: an embedding. Only when ``feature_source()`` is not None."""
        raise NotImplementedError(f"generator {self.name!r} supplies no preview features")

    # -- a known optimum (optional; testbeds with an exact model) -----------------------------------
    def optimum(self, condition: Condition, potential: Any) -> float | None:
        """The highest value of ``potential`` (an ``eacps.Potential``) this generator can reach for ``condition``,
        when it is known (an analytic testbed), else None (the default). ``eacps compare`` then reports, per
        strategy, the fraction of the gap between best-of-1 and this optimum that it closes. Computed once per
        (generator, potential, condition) and cached by the implementation; return None for a potential it
        cannot bound (e.g. a scorer it does not know)."""
        return None

    def generate_stepwise(self, recipes: Sequence[Recipe], condition: Condition, *,
                          steps: int | None = None) -> list[Generated]:
        """``generate`` built from start / advance / decode, path recipes included: every recipe goes through
        ``eacps.stepping.generate_paths`` (a plain recipe is start -> advance(T) -> decode). A stepping generator
        may use it as its ``generate``; one with a faster whole-call path for plain recipes (a pipeline call)
        uses ``eacps.stepping.route_paths`` instead."""
        return generate_paths(self, recipes, condition, steps=steps)

    @abstractmethod
    def generate(self, recipes: Sequence[Recipe], condition: Condition, *, steps: int | None = None) -> list[Generated]:
        """One image (or a FAILED/FILTERED status) per recipe, in order.

        ``steps`` is the fidelity for the whole batch (the engine groups recipes by their ``steps``);
        None means ``default_steps``. May raise: the engine then marks the whole batch FAILED.

        A recipe is followed whole or refused: path recipes (``branches``, ``until``) are computed exactly as
        ``eacps.stepping.generate_paths`` computes them (``generate_stepwise`` / ``eacps.stepping.route_paths``
        do it), or refused by ``check`` (call it first) on a generator that cannot step, so that
        ``generate([result.best.recipe], condition)`` regenerates any winner.
        """
