"""Pipelines whose latents= is not the initial noise: per-candidate generators, seed-only recipes."""

from __future__ import annotations

import numpy as np
import pytest
from eacps_diffusers import DiffusersGenerator
from eacps_diffusers.tiny import tiny_pipeline, vanilla

from eacps import Condition, Recipe, Status
from eacps.config import ConfigError

REF = np.linspace(0, 1, 32 * 32 * 3, dtype=np.float32).reshape(32, 32, 3)


@pytest.fixture
def gen_pipe():
    pipe = tiny_pipeline("sd-img2img")
    return DiffusersGenerator.from_pipe(pipe, steps=4, call_kwargs={"strength": 0.6}), pipe


def cond(**kw) -> Condition:
    return Condition(id="edit", prompt="a photo of a cat", **kw)


def test_seed_recipe_reproduces_vanilla_img2img(gen_pipe):
    gen, pipe = gen_pipe
    assert gen.family is None and gen.noise_recipes_problem() is not None
    (g,) = gen.generate([Recipe.from_seed(5)], cond(reference=REF))
    expected = vanilla(pipe, "a photo of a cat", 5, steps=4, size=None, image=REF, strength=0.6)
    assert g.status is Status.OK and np.array_equal(g.image, expected)


def test_batched_img2img_equals_single(gen_pipe):
    gen, _ = gen_pipe
    recipes = [Recipe.from_seed(s) for s in (1, 2, 3)]
    batched = gen.generate(recipes, cond(reference=REF))
    for r, b in zip(recipes, batched, strict=True):
        (single,) = gen.generate([r], cond(reference=REF))
        np.testing.assert_allclose(b.image, single.image, atol=1e-4, rtol=0)
    assert not np.allclose(batched[0].image, batched[2].image, atol=1e-3)


def test_image_input_prefers_reference_then_prior(gen_pipe):
    gen, _ = gen_pipe
    other = 1.0 - REF
    (a,) = gen.generate([Recipe.from_seed(1)], cond(prior=other))
    (b,) = gen.generate([Recipe.from_seed(1)], cond(prior=other, reference=REF))
    (c,) = gen.generate([Recipe.from_seed(1)], cond(reference=REF))
    assert np.array_equal(b.image, c.image) and not np.allclose(a.image, c.image, atol=1e-3)


def test_noise_space_recipe_is_refused_before_compute(gen_pipe, monkeypatch):
    gen, _ = gen_pipe
    calls = []
    monkeypatch.setattr(gen, "_invoke", lambda kw: calls.append(kw))
    with pytest.raises(ValueError, match="seed-only"):
        gen.generate([Recipe.from_seed(1), Recipe.from_seed(1).pcn(0.2, 3)], cond(reference=REF))
    with pytest.raises(ValueError, match="seed-only"):
        gen.check([Recipe(basis=(1, 2), coeffs=(1.0, 1.0))])
    assert calls == []
    with pytest.raises(ValueError, match="generator mode"):
        gen.noise_shape(cond(reference=REF))


def test_steps_times_strength_below_one_is_named_not_a_vae_crash():
    """SD img2img runs int(steps x strength) steps; at zero it used to fail deep inside the VAE. ``load`` (called
    before a run) refuses the setting, naming the field; a preview at fewer steps fails with the same reason."""
    pipe = tiny_pipeline("sd-img2img")
    gen = DiffusersGenerator.from_pipe(pipe, steps=1, call_kwargs={"strength": 0.6})
    why = r"runs int\(steps x strength\) = int\(1 x 0.6\) = 0 denoising steps; use steps >= 2"
    with pytest.raises(ConfigError, match="params.steps: .*" + why):
        gen.load()
    zero = DiffusersGenerator.from_pipe(pipe, steps=4, call_kwargs={"strength": 0.0})
    with pytest.raises(ConfigError, match=r"params.call_kwargs.strength: .* no denoising step at strength 0.0"):
        zero.load()
    ok = DiffusersGenerator.from_pipe(pipe, steps=2, call_kwargs={"strength": 0.6})
    ok.load()
    assert ok.generate([Recipe.from_seed(1)], cond(reference=REF))[0].status is Status.OK
    with pytest.raises(ValueError, match=why):  # a preview at fewer steps than configured
        ok.generate([Recipe.from_seed(1)], cond(reference=REF), steps=1)
    DiffusersGenerator.from_pipe(tiny_pipeline("sd"), steps=1, height=32, width=32).load()  # text-to-image


@pytest.mark.parametrize("family, cls, steps, call_kwargs", [
    ("flux", "FluxImg2ImgPipeline", 1, {"strength": 0.6}),  # flow-matching img2img rounds steps x strength up
    ("sdxl", "StableDiffusionXLImg2ImgPipeline", 3, {"denoising_start": 0.5}),  # the refiner ignores strength
])
def test_img2img_settings_diffusers_runs_are_not_refused(family, cls, steps, call_kwargs):
    import diffusers
    from eacps_diffusers.tiny import CALL_KWARGS

    pipe = getattr(diffusers, cls)(**tiny_pipeline(family).components)
    gen = DiffusersGenerator.from_pipe(pipe, steps=steps, height=32, width=32,
                                       call_kwargs={**CALL_KWARGS[family], **call_kwargs})
    gen.load()
    (g,) = gen.generate([Recipe.from_seed(1)], cond(reference=REF))
    assert g.status is Status.OK and np.isfinite(g.image).all()
