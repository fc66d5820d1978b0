"""eacps scorers from embedding models: ``clip-text`` and ``image-similarity`` (raw cosines; each declares the
``default_calibration`` its criterion applies, see ``eacps.potential.Calibration``)."""

from __future__ import annotations

from eacps.plugins import lazy_attributes

_LAZY = {
    "ClipTextParams": "eacps_clip.clip_text",
    "ClipTextScorer": "eacps_clip.clip_text",
    "ImageSimilarityParams": "eacps_clip.image_similarity",
    "ImageSimilarityScorer": "eacps_clip.image_similarity",
}
__all__ = sorted(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)  # submodules import on first use: no torch or transformers at import
