"""eacps scorers from embedding models: ``clip-text`` and ``image-similarity``."""

from eacps_clip.calibration import Calibration
from eacps_clip.clip_text import ClipTextParams, ClipTextScorer
from eacps_clip.image_similarity import ImageSimilarityParams, ImageSimilarityScorer

__all__ = ["Calibration", "ClipTextParams", "ClipTextScorer", "ImageSimilarityParams", "ImageSimilarityScorer"]
