"""Per family: the seed -> noise mapping reproduces plain diffusers exactly, batching is faithful."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from eacps_diffusers import DiffusersGenerator
from eacps_diffusers.tiny import CALL_KWARGS, sana_components, tiny_pipeline
from eacps_diffusers.tiny import vanilla as _vanilla

from eacps import Recipe, Status

SIZE, STEPS, PROMPT = 32, 2, "a photo of a cat"
FAMILY_KWARGS = {f: CALL_KWARGS[f] for f in ("sd", "sdxl", "sd3", "flux", "pixart-sigma", "pixart-alpha", "sana")}


def vanilla(pipe, seed, steps=STEPS, **kw):
    return _vanilla(pipe, PROMPT, seed, steps=steps, size=SIZE, **kw)


FAMILIES = list(FAMILY_KWARGS)


def make(family: str, **params) -> tuple[object, DiffusersGenerator]:
    pipe = tiny_pipeline(family)
    params.setdefault("call_kwargs", FAMILY_KWARGS[family])
    gen = DiffusersGenerator.from_pipe(pipe, steps=STEPS, height=SIZE, width=SIZE, **params)
    return pipe, gen


@pytest.mark.parametrize("family", FAMILIES)
def test_seed_recipe_is_bit_identical_to_vanilla_and_noise_shape_is_the_pipelines(family, condition, monkeypatch):
    pipe, gen = make(family)
    module = sys.modules[type(pipe).__module__]
    drawn = []
    real = module.randn_tensor

    def spy(shape, *a, **kw):
        drawn.append((tuple(shape), kw.get("dtype")))
        return real(shape, *a, **kw)

    monkeypatch.setattr(module, "randn_tensor", spy)
    expected = vanilla(pipe, 7, **FAMILY_KWARGS[family])
    assert drawn[0] == (gen.noise_shape(condition), gen.noise_dtype)  # the shape the pipeline itself draws
    drawn.clear()
    (g,) = gen.generate([Recipe.from_seed(7)], condition)
    assert not drawn  # the plugin passed latents=, the pipeline drew nothing itself
    assert g.status is Status.OK and g.image.dtype == np.float32 and g.image.shape == (SIZE, SIZE, 3)
    assert np.array_equal(g.image, expected)
    other = vanilla(pipe, 8, **FAMILY_KWARGS[family])
    assert not np.array_equal(other, expected)  # a different seed gives a different image


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_equals_single(family, condition):
    _, gen = make(family)
    recipes = [Recipe.from_seed(s) for s in (1, 2, 3)]
    batched = gen.generate(recipes, condition)
    for r, b in zip(recipes, batched, strict=True):
        (single,) = gen.generate([r], condition)
        np.testing.assert_allclose(b.image, single.image, atol=1e-4, rtol=0)
    assert not np.allclose(batched[0].image, batched[1].image, atol=1e-3)


@pytest.mark.parametrize("family", ["sd", "flux"])
def test_noise_space_recipes_regenerate_exactly(family, condition):
    pipe, gen = make(family)
    parent = Recipe.from_seed(5)
    child = parent.pcn(0.3, 11)
    sub = Recipe(basis=(1, 2), coeffs=(0.6, 0.8))
    first = gen.generate([parent, child, sub], condition)
    _, fresh = make(family)  # a new generator over the same weights, as after a restart
    again = fresh.generate([child, sub], condition)
    assert np.array_equal(first[1].image, again[0].image) and np.array_equal(first[2].image, again[1].image)
    assert not np.allclose(first[0].image, first[1].image, atol=1e-4)
    # the child's noise is what the pipeline received: vanilla call with latents= gives the same image
    noise = child.noise(gen.noise_shape(condition), gen.noise_dtype)
    out = pipe(
        "a photo of a cat",
        num_inference_steps=STEPS,
        height=SIZE,
        width=SIZE,
        output_type="np",
        latents=gen.pipeline_latents(noise),
        **FAMILY_KWARGS[family],
    ).images[0]
    np.testing.assert_allclose(first[1].image, out, atol=1e-4, rtol=0)


def test_fidelity_override(condition):
    pipe, gen = make("sd")
    (one,) = gen.generate([Recipe.from_seed(3)], condition, steps=1)
    assert np.array_equal(one.image, vanilla(pipe, 3, steps=1))
    (two,) = gen.generate([Recipe.from_seed(3)], condition)
    assert not np.allclose(one.image, two.image, atol=1e-3)
    assert gen.default_steps == STEPS


def test_stochastic_scheduler_reproduces_vanilla(condition):
    """Ancestral sampling draws fresh noise every step: the per-candidate generator must be in the vanilla state."""
    pipe, gen = make("sd", scheduler="EulerAncestralDiscreteScheduler")
    assert type(pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    (g,) = gen.generate([Recipe.from_seed(9)], condition)
    assert np.array_equal(g.image, vanilla(pipe, 9))
    batched = gen.generate([Recipe.from_seed(4), Recipe.from_seed(9)], condition)
    np.testing.assert_allclose(batched[1].image, g.image, atol=1e-4, rtol=0)


def test_negative_prompt_and_guidance_reach_the_pipeline(condition):
    pipe, gen = make("sd", negative_prompt="blurry", guidance_scale=3.0)
    (g,) = gen.generate([Recipe.from_seed(2)], condition)
    assert np.array_equal(g.image, vanilla(pipe, 2, negative_prompt="blurry", guidance_scale=3.0))
    assert not np.array_equal(g.image, vanilla(pipe, 2, guidance_scale=3.0))


def test_flux_latents_are_packed_from_the_unpacked_draw(condition):
    pipe, gen = make("flux")
    shape = gen.noise_shape(condition)
    vsf = pipe.vae_scale_factor
    c = pipe.transformer.config.in_channels // 4
    assert shape == (1, c, 2 * (SIZE // (vsf * 2)), 2 * (SIZE // (vsf * 2)))
    z = Recipe.from_seed(1).noise(shape)
    packed = gen.pipeline_latents(z)
    assert packed.shape == (1, (shape[2] // 2) * (shape[3] // 2), c * 4)
    assert torch.equal(type(pipe)._unpack_latents(packed, SIZE, SIZE, vsf), z)


def test_pixart_resolution_binning_without_a_table_is_a_clear_error(condition):
    _, gen = make("pixart-sigma", call_kwargs={"max_sequence_length": 16, "clean_caption": False})
    with pytest.raises(ValueError, match="use_resolution_binning"):
        gen.noise_shape(condition)


class _Drawn(Exception):
    """Raised by the randn_tensor spy: the pipeline's initial draw is all a test needs, not the denoising."""


def _pipeline_draw(pipe, monkeypatch, **kw) -> tuple[tuple[int, ...], torch.dtype]:
    """(shape, dtype) of the initial noise the vanilla call draws; the call is stopped right there."""
    module = sys.modules[type(pipe).__module__]

    def spy(shape, *a, **k):
        raise _Drawn(tuple(shape), k.get("dtype"))

    monkeypatch.setattr(module, "randn_tensor", spy)
    with pytest.raises(_Drawn) as drawn:
        _vanilla(pipe, PROMPT, 0, steps=STEPS, size=None, **kw)
    monkeypatch.undo()
    return drawn.value.args


@pytest.mark.parametrize(("height", "width"), [(32, 48), (96, 32)])
def test_sana_resolution_binning_noise_shape_is_the_pipelines(height, width, condition, monkeypatch):
    """With bins on (Sana's default), the noise has the binned size: 1024-px bins for sample_size 32."""
    pipe = tiny_pipeline("sana")
    kwargs = {"max_sequence_length": 16}  # use_resolution_binning left at the pipeline's default (True)
    gen = DiffusersGenerator.from_pipe(pipe, steps=STEPS, height=height, width=width, call_kwargs=kwargs)
    shape, dtype = _pipeline_draw(pipe, monkeypatch, height=height, width=width, **kwargs)
    assert (shape, dtype) == (gen.noise_shape(condition), gen.noise_dtype)
    assert shape[2] * pipe.vae_scale_factor >= 512 and shape[2] != shape[3]  # binned, aspect kept
    unbinned = DiffusersGenerator.from_pipe(
        pipe, steps=STEPS, height=height, width=width, call_kwargs={**kwargs, "use_resolution_binning": False}
    )
    assert unbinned.noise_shape(condition) == (1, 4, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)


def test_sana_bfloat16_draws_float32_noise_and_reproduces_vanilla(condition, monkeypatch):
    """Sana draws its initial noise in float32 whatever the model dtype; the plugin must draw the same."""
    import diffusers

    pipe = diffusers.SanaPipeline(**sana_components()).to(torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    gen = DiffusersGenerator.from_pipe(pipe, steps=STEPS, height=SIZE, width=SIZE, call_kwargs=FAMILY_KWARGS["sana"])
    assert gen.torch_dtype == torch.bfloat16
    shape, dtype = _pipeline_draw(pipe, monkeypatch, height=SIZE, width=SIZE, **FAMILY_KWARGS["sana"])
    assert dtype == torch.float32 and (shape, dtype) == (gen.noise_shape(condition), gen.noise_dtype)
    (g,) = gen.generate([Recipe.from_seed(7)], condition)
    assert g.status is Status.OK
    assert np.array_equal(g.image, vanilla(pipe, 7, **FAMILY_KWARGS["sana"]))
