"""The ``diffusers`` generator on img2img, which takes seed-only recipes, passes
``eacps.testing.GeneratorConformance`` on a tiny seeded pipeline (no download): its noise-recipe capability is
honest (``check`` refuses noise-space recipes before compute). The text-to-image families (noise recipes and the
stepping section) run the same suite in ``plugins/eacps-diffusers/tests/test_conformance.py``."""

from __future__ import annotations

import numpy as np
import pytest

from eacps.testing import GeneratorCase, GeneratorConformance
from eacps.types import Condition

pytest.importorskip("eacps_diffusers")

REFERENCE = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)


class TestDiffusersImg2Img(GeneratorConformance):
    covers = ("diffusers",)

    @pytest.fixture
    def generator_case(self) -> GeneratorCase:
        from eacps_diffusers import DiffusersGenerator
        from eacps_diffusers.tiny import tiny_pipeline

        pipe = tiny_pipeline("sd-img2img")
        base = {"steps": 4, "call_kwargs": {"strength": 0.5}}  # 2 model calls (a preview of 2 steps: 1)
        return GeneratorCase(
            lambda **kw: DiffusersGenerator.from_pipe(pipe, **{**base, **kw}),
            Condition("c0", prompt="a photo of a cat", reference=REFERENCE),
            tolerance=1e-4,  # CPU convolutions at other batch sizes differ in the last bits
            changes={"steps": 3, "guidance_scale": 2.0},
            runtime={"max_batch_size": 1},
            preview_steps=2,
        )
