"""eacps executor on Ray: ``[executor] name = "ray"``."""

from __future__ import annotations

from eacps.plugins import lazy_attributes

_LAZY = {
    "RayExecutor": "eacps_ray.executor",
    "RayParams": "eacps_ray.executor",
    "PluginSpec": "eacps_ray.specs",
    "PotentialSpec": "eacps_ray.specs",
    "SpecError": "eacps_ray.specs",
    "WorkerSpec": "eacps_ray.specs",
}
__all__ = sorted(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)  # submodules import on first use: no ray at import
