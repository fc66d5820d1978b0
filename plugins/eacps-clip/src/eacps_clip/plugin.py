"""The eacps plugin of this distribution: registers ``clip-text`` and ``image-similarity``."""

from __future__ import annotations

from eacps.hookspecs import hookimpl
from eacps_clip.clip_text import ClipTextScorer
from eacps_clip.image_similarity import ImageSimilarityScorer


@hookimpl
def register_scorers(register):
    register(ClipTextScorer)
    register(ImageSimilarityScorer)
