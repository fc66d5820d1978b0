"""Entry point of the ``eacps-ray`` plugin: the ``ray`` executor (registered by reference: ray is imported when a
config uses it)."""

from __future__ import annotations

from eacps import hookimpl


@hookimpl
def register_executors(register):
    register("eacps_ray.executor:RayExecutor", name="ray")
