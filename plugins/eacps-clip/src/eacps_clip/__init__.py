"""eacps scorers from embedding models: ``clip-text`` and ``image-similarity`` (raw cosines; each declares the
``default_calibration`` its criterion applies, see ``eacps.potential.Calibration``)."""

from eacps_clip.clip_text import ClipTextParams, ClipTextScorer
from eacps_clip.image_similarity import ImageSimilarityParams, ImageSimilarityScorer

__all__ = ["ClipTextParams", "ClipTextScorer", "ImageSimilarityParams", "ImageSimilarityScorer"]
