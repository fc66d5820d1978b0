"""``clip-text`` and ``image-similarity`` (both backends) pass ``eacps.testing.ScorerConformance`` on tiny random
CLIP / DINOv2 checkpoints; their raw cosines are checked through their declared default calibration."""

from __future__ import annotations

import numpy as np
import pytest
from eacps_clip import ClipTextScorer, ImageSimilarityScorer

from eacps.testing import ScorerCase, ScorerConformance
from eacps.types import Condition


def images(n: int, seed: int = 0, shape=(40, 36, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(shape, dtype=np.float32) ** (1 + i) for i in range(n)]


COND = Condition("c0", prompt="a red cube", reference=images(1, seed=7)[0])
TWO_CHANNELS = np.zeros((8, 8, 2), np.float32)  # not an image any backend reads: FAILED, the batch goes on
CASES = {
    "clip-text": (ClipTextScorer, "tiny_clip", {}, None),
    "image-similarity-clip": (ImageSimilarityScorer, "tiny_clip", {"pooling": "mean", "against": "prior"}, None),
    "image-similarity-dinov2": (ImageSimilarityScorer, "tiny_dinov2", {"pooling": "mean", "against": "prior"},
                                {"against": "prior"}),
}


class TestClipScorers(ScorerConformance):
    covers = ("clip-text", "image-similarity")

    @pytest.fixture(params=list(CASES))
    def scorer_case(self, request) -> ScorerCase:
        cls, model, changes, failing = CASES[request.param]
        path = request.getfixturevalue(model)

        def make(**kw):
            return cls(cls.Params(**{"model": str(path), "device": "cpu", "dtype": "float32", **kw}))

        return ScorerCase(
            make, COND, images(3),
            changes={"dtype": "bfloat16", "revision": "v2", **changes},
            runtime={"batch_size": 1, "device": "cpu", "local_files_only": True},
            bad_images=[TWO_CHANNELS],
            failing=failing,  # COND has no prior: against = "prior" fails every candidate, as data
        )
