"""eacps executor on Ray: ``[executor] name = "ray"``."""

from eacps_ray.executor import RayExecutor, RayParams
from eacps_ray.specs import PluginSpec, PotentialSpec, SpecError, WorkerSpec

__all__ = ["PluginSpec", "PotentialSpec", "RayExecutor", "RayParams", "SpecError", "WorkerSpec"]
