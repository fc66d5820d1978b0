"""eacps-diffusers: Hugging Face diffusers pipelines as an eacps generator (``generator: diffusers``)."""

from eacps_diffusers.generator import FAMILIES, DiffusersGenerator, DiffusersParams, Family, ModelLoadError

__version__ = "0.1.0"

__all__ = ["FAMILIES", "DiffusersGenerator", "DiffusersParams", "Family", "ModelLoadError"]
