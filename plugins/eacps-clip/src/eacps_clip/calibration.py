"""Cosine similarity -> [0, 10].

* ``clipscore`` (default of ``clip-text``): CLIPScore (Hessel et al., 2021, "CLIPScore: A Reference-free
  Evaluation Metric for Image Captioning") is ``w * max(c, 0)`` with ``w = 2.5``; we multiply by 4 so the
  scale is [0, 10]: ``min(10, 4 * w * max(c, 0))`` = ``10 * max(c, 0)`` at the published ``w``. Matched
  image-prompt pairs of real CLIP models land around c = 0.25-0.35, i.e. scores of 2.5-3.5: comparable across
  runs and models of the same family, but with a narrow range. Use ``linear`` to stretch it.
* ``linear``: ``10 * clip((c - lo) / (hi - lo), 0, 1)``. Pick ``lo`` / ``hi`` as the cosines you consider
  "unrelated" and "perfect" for your model (e.g. the 5th and 95th percentiles over a set of your own
  candidates); ``image-similarity`` uses it with lo = 0, hi = 1 by default (identical images score 10).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from eacps.params import Params


class Calibration(Params):
    kind: Literal["clipscore", "linear"] = "clipscore"
    w: float = Field(2.5, gt=0)
    lo: float = 0.0
    hi: float = 1.0

    @model_validator(mode="after")
    def _check(self) -> Calibration:
        if self.kind == "linear" and not self.hi > self.lo:
            raise ValueError(f"linear calibration needs hi > lo, got lo={self.lo}, hi={self.hi}")
        return self

    def __call__(self, cosine: float) -> float:
        if self.kind == "clipscore":
            return min(10.0, 4.0 * self.w * max(cosine, 0.0))
        return 10.0 * min(1.0, max(0.0, (cosine - self.lo) / (self.hi - self.lo)))
