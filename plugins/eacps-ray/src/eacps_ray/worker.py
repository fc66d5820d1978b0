"""The actor body: builds the generator and/or potential once, then generates and scores batches.

Generation and scoring reuse the engine's own ``generate_batch`` / ``score_batch`` (grouping by steps,
8-bit quantization, FILTERED black/NaN images, preview potentials), so an actor computes exactly what the
in-process executors compute.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any, Literal

from eacps.engine import BatchComputer
from eacps.potential import Scored
from eacps.recipe import Recipe
from eacps.types import Condition, Generated
from eacps_ray.specs import WorkerSpec

Role = Literal["generator", "scorer", "both"]


def _load(obj: object) -> None:
    load = getattr(obj, "load", None)  # the core's optional "load models now" hook
    if callable(load):
        load()


class Worker:
    """One actor: ``role`` says whether it holds the generator, the potential(s), or both."""

    def __init__(self, spec: WorkerSpec, role: Role) -> None:
        spec.prepare()
        self.role = role
        self.generator = spec.generator.build() if role != "scorer" else None
        self.potential = spec.potential.build() if role != "generator" else None
        self.preview_potential = spec.preview.build() if role != "generator" and spec.preview else None
        if self.generator is not None:
            _load(self.generator)
        for pot in (self.potential, self.preview_potential):
            for c in pot.criteria if pot is not None else ():
                _load(c.scorer)
        self.engine = BatchComputer(self.generator, self.potential, self.preview_potential)

    def ready(self) -> dict[str, Any]:
        """Fingerprints of what was built (checked against the driver's), and where this actor runs."""
        import ray

        return {
            "role": self.role,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "gpus": [str(g) for g in ray.get_gpu_ids()],
            "generator": self.generator.fingerprint() if self.generator is not None else None,
            "potential": self.potential.fingerprint() if self.potential is not None else None,
            "preview": self.preview_potential.fingerprint() if self.preview_potential is not None else None,
        }

    def generate(self, recipes: Sequence[Recipe], condition: Condition) -> list[Generated]:
        return self.engine.generate_batch(recipes, condition)

    def score(self, recipes: Sequence[Recipe], gens: Sequence[Generated], condition: Condition) -> list[Scored | None]:
        """Scores only: the images are already on the driver, so they are not sent back."""
        return [sc for _, sc in self.engine.score_batch(recipes, gens, condition)]

    def run(self, recipes: Sequence[Recipe], condition: Condition) -> list[tuple[Generated, Scored | None]]:
        """Generate and score in this actor (``num_scorers = 0``)."""
        return self.engine.compute(recipes, condition)
