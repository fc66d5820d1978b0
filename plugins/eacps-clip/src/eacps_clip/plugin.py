"""The eacps plugin of this distribution: registers ``clip-text`` and ``image-similarity`` by reference (their
modules, and torch, are imported when a config first uses them)."""

from __future__ import annotations

from eacps.hookspecs import hookimpl


@hookimpl
def register_scorers(register):
    register("eacps_clip.clip_text:ClipTextScorer", name="clip-text")
    register("eacps_clip.image_similarity:ImageSimilarityScorer", name="image-similarity")
