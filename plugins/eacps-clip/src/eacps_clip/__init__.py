"""eacps scorers from embedding models: ``clip-text`` and ``image-similarity`` (raw cosines; each declares the
``default_calibration`` its criterion applies, see ``eacps.potential.Calibration``)."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ClipTextParams": "eacps_clip.clip_text",
    "ClipTextScorer": "eacps_clip.clip_text",
    "ImageSimilarityParams": "eacps_clip.image_similarity",
    "ImageSimilarityScorer": "eacps_clip.image_similarity",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Import the submodule of ``name`` on first use (PEP 562): importing this package (the entry point does)
    must not import torch or transformers."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
