"""Out of memory splits the batch (in the engine's batch computer, the one place); safety hits are FILTERED by the
plugin, black/NaN images by the engine's filter at the generator's declared black level."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from eacps_diffusers import DiffusersGenerator
from eacps_diffusers.tiny import tiny_pipeline

from eacps import Condition, Recipe, Status
from eacps.engine.batch import Batch, BatchComputer
from eacps.store import quantize

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


def compute(gen, recipes):
    """Generate through the engine's batch computer: the one place that splits on out-of-memory and filters."""
    return BatchComputer(gen, None).generate(Batch(tuple(recipes), COND))


@pytest.mark.parametrize("error", [None, RuntimeError("CUDA error: out of memory")])
def test_oom_splits_the_batch_and_keeps_noise_bit_identical(monkeypatch, error):
    gen = make(max_batch_size=4)
    recipes = [Recipe.from_seed(s) for s in (10, 11, 12)] + [Recipe.from_seed(13).pcn(0.4, 2)]
    reference = make().generate(recipes, COND)
    seen = inject_oom(gen, monkeypatch, fits=1, error=error)
    computer = BatchComputer(gen, None)
    out = computer.generate(Batch(tuple(recipes), COND))
    assert [len(b) for b in seen] == [1, 1, 1, 1]
    shape = gen.noise_shape(COND)
    for r, (z,), g, ref in zip(recipes, seen, out, reference, strict=True):
        assert torch.equal(z, r.noise(shape)[0])
        assert g.status is Status.OK
        np.testing.assert_allclose(g.image, quantize(ref.image), atol=1 / 255 + 1e-6, rtol=0)  # stored 8-bit
    assert computer.fits == 1  # later calls start at the size that fitted
    seen.clear()
    computer.generate(Batch(tuple(recipes[:2]), COND))
    assert [len(b) for b in seen] == [1, 1]


def test_the_generator_lets_out_of_memory_out(monkeypatch):
    gen = make()
    inject_oom(gen, monkeypatch, fits=0)
    with pytest.raises(torch.OutOfMemoryError):  # no second splitting rule inside the plugin
        gen.generate([Recipe.from_seed(1), Recipe.from_seed(2)], COND)


def test_oom_at_batch_size_one_fails_that_candidate(monkeypatch):
    gen = make()
    inject_oom(gen, monkeypatch, fits=0)
    out = compute(gen, [Recipe.from_seed(1), Recipe.from_seed(2)])
    assert [g.status for g in out] == [Status.FAILED, Status.FAILED]
    assert "out of memory at batch size 1" in out[0].reason and out[0].image is None


def test_other_errors_fail_the_batch_with_the_reason(monkeypatch):
    gen = make()
    inject_oom(gen, monkeypatch, fits=0, error=RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        gen.generate([Recipe.from_seed(1)], COND)
    out = compute(gen, [Recipe.from_seed(1), Recipe.from_seed(2)])
    assert all(g.status is Status.FAILED and "shape mismatch" in g.reason for g in out)


def test_safety_hit_black_and_nan_images_are_filtered(monkeypatch):
    gen = make()
    real = gen._invoke

    def invoke(kw):
        out = real(kw)
        images = out.images.copy()
        images[1] = 0.0
        images[2, 0, 0, 0] = np.nan
        images[3] = 0.5 / 255  # below the generator's declared black level (1/255), above the core default
        return SimpleNamespace(images=images, nsfw_content_detected=[False, False, False, False, True])

    monkeypatch.setattr(gen, "_invoke", invoke)
    out = compute(gen, [Recipe.from_seed(s) for s in range(5)])
    assert [g.status for g in out] == [Status.OK] + [Status.FILTERED] * 4
    assert "black" in out[1].reason and "NaN" in out[2].reason and "black" in out[3].reason
    assert "safety" in out[4].reason
    assert gen.black_level == pytest.approx(1 / 255)
