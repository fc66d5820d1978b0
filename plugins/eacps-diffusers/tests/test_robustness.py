"""Out of memory splits the batch; safety hits and black/NaN images are FILTERED."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from eacps_diffusers import DiffusersGenerator
from eacps_diffusers.tiny import tiny_pipeline

from eacps import Condition, Recipe, Status

COND = Condition(id="c", prompt="a photo of a cat")


def make(**kw) -> DiffusersGenerator:
    return DiffusersGenerator.from_pipe(tiny_pipeline("sd"), steps=2, height=32, width=32, **kw)


def inject_oom(gen, monkeypatch, *, fits: int, error=None):
    """Calls with more than ``fits`` candidates raise; records every call's per-candidate latents."""
    real, seen = gen._invoke, []

    def invoke(kw):
        n = len(kw["generator"])
        if n > fits:
            raise error or torch.OutOfMemoryError(f"CUDA out of memory (injected, batch {n})")
        seen.append([kw["latents"][i].clone() for i in range(n)])
        return real(kw)

    monkeypatch.setattr(gen, "_invoke", invoke)
    return seen


@pytest.mark.parametrize("error", [None, RuntimeError("CUDA error: out of memory")])
def test_oom_splits_the_batch_and_keeps_noise_bit_identical(monkeypatch, error):
    gen = make(max_batch_size=4)
    recipes = [Recipe.from_seed(s) for s in (10, 11, 12)] + [Recipe.from_seed(13).pcn(0.4, 2)]
    reference = make().generate(recipes, COND)
    seen = inject_oom(gen, monkeypatch, fits=1, error=error)
    out = gen.generate(recipes, COND)
    assert [len(b) for b in seen] == [1, 1, 1, 1]
    shape = gen.noise_shape(COND)
    for r, (z,), g, ref in zip(recipes, seen, out, reference, strict=True):
        assert torch.equal(z, r.noise(shape)[0])
        assert g.status is Status.OK
        np.testing.assert_allclose(g.image, ref.image, atol=1e-4, rtol=0)
    assert gen._batch_limit == 1  # later calls start at the size that fitted


def test_oom_at_batch_size_one_fails_that_candidate(monkeypatch):
    gen = make()
    inject_oom(gen, monkeypatch, fits=0)
    out = gen.generate([Recipe.from_seed(1), Recipe.from_seed(2)], COND)
    assert [g.status for g in out] == [Status.FAILED, Status.FAILED]
    assert "out of memory" in out[0].reason and out[0].image is None


def test_other_errors_propagate(monkeypatch):
    gen = make()
    inject_oom(gen, monkeypatch, fits=0, error=RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        gen.generate([Recipe.from_seed(1)], COND)


def test_safety_hit_black_and_nan_images_are_filtered(monkeypatch):
    gen = make()
    real = gen._invoke

    def invoke(kw):
        out = real(kw)
        images = out.images.copy()
        images[1] = 0.0
        images[2, 0, 0, 0] = np.nan
        return SimpleNamespace(images=images, nsfw_content_detected=[False, False, False, True])

    monkeypatch.setattr(gen, "_invoke", invoke)
    out = gen.generate([Recipe.from_seed(s) for s in range(4)], COND)
    assert [g.status for g in out] == [Status.OK, Status.FILTERED, Status.FILTERED, Status.FILTERED]
    assert "black" in out[1].reason and "NaN" in out[2].reason and "safety" in out[3].reason
