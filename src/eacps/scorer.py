"""The scorer plugin interface: images + a condition -> values in [0, 10]."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar, cast

from eacps.params import NoParams, Params
from eacps.types import Condition, Image

SCORE_MIN, SCORE_MAX = 0.0, 10.0
P = TypeVar("P", bound=Params)


class Scorer(ABC, Generic[P]):
    """Scores a batch of images against one condition.

    ``score`` returns one entry per image: a float in [0, 10], or anything else (NaN, None, an
    out-of-range number, an ``Exception`` instance) which marks that candidate FAILED with the reason.
    It may also raise; the engine then retries the images one at a time to isolate the failure.

    Generic in its params: ``class MyScorer(Scorer[MyParams])`` types ``self.params`` as ``MyParams``.
    """

    name: ClassVar[str]
    Params: ClassVar[type[Params]] = NoParams
    #: Scorers that need these condition fields refuse conditions without them (checked up front).
    requires: ClassVar[tuple[str, ...]] = ()
    #: For scorers whose raw values are not in [0, 10] (cosines...): the ``eacps.potential.Calibration`` (its
    #: fields) a criterion applies when its config sets none. One calibration per criterion: never stacked.
    default_calibration: ClassVar[dict[str, Any] | None] = None

    def __init__(self, params: P | None = None) -> None:
        self.params: P = params if params is not None else cast(P, self.Params())

    def load(self) -> None:
        """Load models now (called before a run starts; errors become configuration errors)."""

    def preflight(self) -> None:
        """Check what scoring will need at run time (credentials, a reachable endpoint) after ``load`` and
        before the first batch; raise with a one-line reason (a configuration error, exit code 2)."""

    def check_condition(self, condition: Condition) -> None:
        """Raise ValueError when ``condition`` lacks what this scorer needs (checked before a run; the
        ``prior`` is always supplied by the engine)."""
        missing = [f for f in self.requires if f != "prior" and getattr(condition, f, None) is None]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}, required by scorer {self.name!r}")

    def settings(self) -> dict[str, Any]:
        """Everything that changes the scores (model hash, prompt version...). Part of cache keys."""
        return self.params.model_dump(mode="json")

    def fingerprint(self) -> str:
        text = json.dumps({"scorer": self.name, **self.settings()}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @abstractmethod
    def score(self, images: Sequence[Image], condition: Condition) -> Sequence[Any]:
        """One value per image, in order."""
