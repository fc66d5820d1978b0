"""Test-only generators for the ray executor (registered in process, imported by actors via plugin_modules).

* ``crashy``: the toy generator, except that inside a Ray actor a batch for ``doomed`` kills the actor
  process (``os._exit``), every time. On the driver it never crashes.
* ``toy-drift``: its fingerprint depends on state set after construction, which no spec can carry.
"""

from __future__ import annotations

import os

from pydantic import Field
from toy import ToyGenerator, ToyGeneratorParams

from eacps import hookimpl


def in_ray_actor() -> bool:
    try:
        import ray

        return ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None
    except Exception:
        return False


class CrashyParams(ToyGeneratorParams):
    doomed: str | None = Field(None, description="condition id whose batches kill the actor process")


class CrashyGenerator(ToyGenerator):
    name = "crashy"
    Params = CrashyParams

    def settings(self):
        return self.params.model_dump(exclude={"log", "sleep", "doomed"})

    def generate(self, recipes, condition, *, steps=None):
        if condition.id == self.params.doomed and in_ray_actor():
            os._exit(1)
        return super().generate(recipes, condition, steps=steps)


class DriftGenerator(ToyGenerator):
    name = "toy-drift"

    def __init__(self, params=None):
        super().__init__(params)
        self.drift = 0

    def settings(self):
        return {**super().settings(), "drift": self.drift}


@hookimpl
def register_generators(register):
    register(CrashyGenerator)
    register(DriftGenerator)
