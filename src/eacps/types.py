"""Plain data shared by generators, scorers, strategies and the engine."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from eacps.recipe import Recipe

Image = np.ndarray
"""An image is a float32 array of shape (H, W, C) with values in [0, 1]."""


class Status(enum.StrEnum):
    OK = "OK"
    FAILED = "FAILED"  # generation or a scorer failed; ``reason`` says why
    FILTERED = "FILTERED"  # generated but rejected before scoring (safety hit, black/NaN image)


@dataclass(frozen=True)
class Condition:
    """What to generate, and what scorers may compare against.

    ``reference`` is an identity/style reference image, ``prior`` the stage-0 image (set by the engine
    before the search). ``extra`` carries plugin-specific fields from the config, JSON-serializable.
    """

    id: str
    prompt: str | None = None
    negative_prompt: str | None = None
    class_label: int | None = None
    reference: Image | None = field(default=None, compare=False, repr=False)
    reference_path: str | None = None
    prior: Image | None = field(default=None, compare=False, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def with_prior(self, prior: Image | None) -> Condition:
        return replace(self, prior=prior)

    def describe(self) -> dict[str, Any]:
        """A JSON-serializable description (no arrays), stored with every candidate."""
        d: dict[str, Any] = {"id": self.id}
        for k in ("prompt", "negative_prompt", "class_label", "reference_path"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if self.extra:
            d["extra"] = dict(self.extra)
        return d


@dataclass
class Generated:
    """One generator output: an image, or a non-OK status with its reason."""

    image: Image | None
    status: Status = Status.OK
    reason: str | None = None
    seconds: float = 0.0  # generation time per candidate, set by the engine

    @classmethod
    def failed(cls, reason: str) -> Generated:
        return cls(None, Status.FAILED, reason)

    @classmethod
    def filtered(cls, reason: str, image: Image | None = None) -> Generated:
        return cls(image, Status.FILTERED, reason)


@dataclass(frozen=True)
class Result:
    """What a strategy is told about one candidate. ``potential`` is None unless status is OK."""

    recipe: Recipe
    status: Status
    potential: float | None
    scores: Mapping[str, float] = field(default_factory=dict)
    reason: str | None = None
    #: a preview's feature vector from the generator (``Generator.preview_features``), when a strategy's value
    #: model asks for one (``eacps.screening``); None otherwise
    features: tuple[float, ...] | None = None

    @property
    def ok(self) -> bool:
        """OK with a finite potential (a NaN potential is never usable, whatever the status says)."""
        return self.status is Status.OK and self.potential is not None and math.isfinite(self.potential)

    @property
    def eligible(self) -> bool:
        """Can be the best: OK and at full fidelity (previews never are)."""
        return self.ok and not self.recipe.is_preview
