"""The diffusers generator passes the ``eacps.testing`` generator suite (stepping section included) on tiny
pipelines: SD with DDIM, SDXL with Euler, FLUX (flow matching), PixArt-Σ (DDIM) and Sana (flow matching).

Not with a stochastic scheduler (Euler-ancestral, DDPM): the suite requires the same initial noise reached by
two recipes (``seed=s`` and ``basis=(s,), coeffs=(1.0,)``) to give the same image, but there the per-step noise
comes from the recipe too (the seed, as in plain diffusers; a noise-space recipe's key), so the images differ.
"""

from __future__ import annotations

import pytest
from eacps_diffusers import DiffusersGenerator
from eacps_diffusers.tiny import CALL_KWARGS, tiny_pipeline

from eacps import Condition
from eacps.testing import GeneratorCase, GeneratorConformance

SETUPS = {
    "sd-ddim": ("sd", None),
    "sdxl-euler": ("sdxl", None),
    "flux": ("flux", None),
    "pixart-sigma": ("pixart-sigma", None),
    "sana": ("sana", None),
}


class TestDiffusersGenerator(GeneratorConformance):
    covers = ("diffusers",)

    @pytest.fixture(params=list(SETUPS))
    def generator_case(self, request) -> GeneratorCase:
        family, scheduler = SETUPS[request.param]

        def make(**kw) -> DiffusersGenerator:
            base = dict(model=f"tiny-{family}", steps=3, height=32, width=32, scheduler=scheduler,
                        call_kwargs=CALL_KWARGS[family])
            return DiffusersGenerator.from_pipe(tiny_pipeline(family), **{**base, **kw})

        return GeneratorCase(
            make, Condition(id="c", prompt="a photo of a cat"), seeds=(0, 1, 2),
            tolerance=1e-4,  # CPU convolutions of other batch sizes differ in the last bits
            changes={"steps": 4, "guidance_scale": 2.5},
            runtime={"max_batch_size": 2},
            preview_steps=2,
        )
