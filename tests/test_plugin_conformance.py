"""The ``diffusers`` generator passes ``eacps.testing.GeneratorConformance`` on tiny seeded pipelines (no
download): a text-to-image family that takes noise recipes and img2img, which takes seed-only recipes."""

from __future__ import annotations

import numpy as np
import pytest

from eacps.testing import GeneratorCase, GeneratorConformance
from eacps.types import Condition

pytest.importorskip("eacps_diffusers")

REFERENCE = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)


class TestDiffusersGenerator(GeneratorConformance):
    covers = ("diffusers",)

    @pytest.fixture(params=["sd", "sd-img2img"])
    def generator_case(self, request) -> GeneratorCase:
        import torch
        from eacps_diffusers import DiffusersGenerator
        from eacps_diffusers.tiny import tiny_pipeline

        torch.set_num_threads(1)
        pipe = tiny_pipeline(request.param)
        if request.param == "sd-img2img":  # strength 0.5 of 4 steps: 2 model calls (a preview of 2 steps: 1)
            base = {"steps": 4, "call_kwargs": {"strength": 0.5}}
            cond = Condition("c0", prompt="a photo of a cat", reference=REFERENCE)
        else:
            base = {"steps": 2, "height": 32, "width": 32}
            cond = Condition("c0", prompt="a photo of a cat")
        return GeneratorCase(
            lambda **kw: DiffusersGenerator.from_pipe(pipe, **{**base, **kw}), cond,
            tolerance=1e-4,  # CPU convolutions at other batch sizes differ in the last bits
            changes={"steps": 3, "guidance_scale": 2.0},
            runtime={"max_batch_size": 1},
            preview_steps=1 if request.param == "sd" else 2,
        )
