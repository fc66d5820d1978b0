"""Entry point of the ``eacps-ray`` plugin: the ``ray`` executor."""

from __future__ import annotations

from eacps import hookimpl


@hookimpl
def register_executors(register):
    from eacps_ray.executor import RayExecutor

    register(RayExecutor)
