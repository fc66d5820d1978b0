"""eacps-diffusers: Hugging Face diffusers pipelines as an eacps generator (``generator: diffusers``)."""

from __future__ import annotations

from eacps.plugins import lazy_attributes

__version__ = "0.1.0"

_LAZY = {
    "FAMILIES": "eacps_diffusers.generator",
    "DiffusersGenerator": "eacps_diffusers.generator",
    "DiffusersParams": "eacps_diffusers.generator",
    "Family": "eacps_diffusers.generator",
    "ModelLoadError": "eacps_diffusers.generator",
    "ModelNotCached": "eacps_diffusers.generator",
}
__all__ = sorted(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)  # submodules import on first use: no torch or diffusers at import
