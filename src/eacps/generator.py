"""The generator plugin interface: noise recipes + a condition -> images."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from eacps.params import NoParams, Params
from eacps.recipe import Recipe
from eacps.types import Condition, Generated


class Generator(ABC):
    """Turns a batch of noise recipes and one condition into images.

    Subclasses set ``name`` and ``Params``, and implement ``noise_shape``, ``default_steps``,
    ``settings`` and ``generate``. The generator owns the seed -> noise mapping: ``noises()``
    materializes recipes in the shape and dtype the model draws (batch dimension of 1 included),
    so a seed-only recipe reproduces the model's own ``generator=manual_seed(seed)`` call.
    """

    name: ClassVar[str]
    Params: ClassVar[type[Params]] = NoParams
    #: False for pipelines whose ``latents=`` is not the initial noise (img2img): seed-only recipes.
    supports_noise_recipes: ClassVar[bool] = True

    def __init__(self, params: Params | None = None) -> None:
        self.params = params if params is not None else self.Params()

    def load(self) -> None:  # noqa: B027 - optional hook
        """Load models now. Called before a run starts, so that a missing or unreadable model is a
        configuration error (exit code 2) rather than a run of FAILED candidates. Default: nothing."""

    def check_condition(self, condition: Condition) -> None:  # noqa: B027 - optional hook
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

    def check(self, recipes: Sequence[Recipe]) -> None:
        """Refuse, before any compute, recipes this generator cannot honour."""
        if not self.supports_noise_recipes:
            bad = [r.key for r in recipes if not r.is_seed_only]
            if bad:
                raise ValueError(
                    f"generator {self.name!r} accepts seed-only recipes (its latents are not the "
                    f"initial noise); got noise-space recipe(s) {bad[:3]}"
                )

    @abstractmethod
    def generate(self, recipes: Sequence[Recipe], condition: Condition, *, steps: int | None = None) -> list[Generated]:
        """One image (or a FAILED/FILTERED status) per recipe, in order.

        ``steps`` is the fidelity for the whole batch (the engine groups recipes by their ``steps``);
        None means ``default_steps``. May raise: the engine then marks the whole batch FAILED.
        """
