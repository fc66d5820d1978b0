"""The actor body: builds the generator and/or potential once, then generates and scores batches.

Generation and scoring go through the core's ``BatchComputer`` (grouping by steps, out-of-memory splitting,
time limits, 8-bit quantization, FILTERED black/NaN images, preview potentials, calibration statistics), so an
actor computes exactly what the in-process executors compute. Each call gets the batch's context (a ``Batch``
without recipes: condition, prior, statistics) and its recipes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

from eacps.engine.batch import Batch, BatchComputer
from eacps.potential import Scored
from eacps.recipe import Recipe
from eacps.types import Generated
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
        self.computer = BatchComputer(self.generator, self.potential, self.preview_potential, timeout_s=spec.timeout_s)

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

    def generate(self, context: Batch, recipes: Sequence[Recipe]) -> list[Generated]:
        return self.computer.generate(replace(context, recipes=tuple(recipes)))

    def score(self, context: Batch, recipes: Sequence[Recipe], gens: Sequence[Generated]) -> list[Scored | None]:
        """Scores only: the images are already on the driver, so they are not sent back."""
        return [sc for _, sc in self.computer.score(replace(context, recipes=tuple(recipes)), gens)]

    def run(self, context: Batch, recipes: Sequence[Recipe]) -> list[tuple[Generated, Scored | None]]:
        """Generate and score in this actor (``num_scorers = 0``)."""
        return self.computer.compute(replace(context, recipes=tuple(recipes)))
