from __future__ import annotations

import numpy as np
import pytest
from eacps_digits import tasks
from eacps_digits.generator import DigitsGenerator, DigitsParams

from eacps import Condition, Recipe, Status

COND = Condition(id="three", class_label=3)


def _imgs(gen, recipes, cond=COND, **kw):
    out = gen.generate(recipes, cond, **kw)
    assert all(g.status is Status.OK for g in out)
    return [g.image for g in out]


def test_shape_range_dtype(gen):
    assert gen.noise_shape(COND) == (1, 1, 8, 8)
    assert gen.default_steps == 15
    imgs = _imgs(gen, [Recipe.from_seed(s) for s in range(4)])
    assert len(imgs) == 4
    for im in imgs:
        assert im.shape == (8, 8, 1) and im.dtype == np.float32
        assert im.min() >= 0.0 and im.max() <= 1.0
    assert np.std(np.stack(imgs)) > 0.1  # not blank


def test_empty_batch(gen):
    assert gen.generate([], COND) == []


def test_bit_identical_alone_and_in_batch_position(gen):
    r = Recipe.from_seed(7)
    a = _imgs(gen, [r])[0]
    b = _imgs(gen, [r])[0]
    assert np.array_equal(a, b)
    batch = [Recipe.from_seed(s) for s in (1, 7, 9, 11)]
    b1 = _imgs(gen, batch)
    b2 = _imgs(gen, batch)
    for x, y in zip(b1, b2, strict=True):
        assert np.array_equal(x, y)
    assert np.abs(b1[1] - a).max() < 1e-5  # batched vs single
    assert not np.array_equal(b1[0], b1[1])  # different seeds, different images


def test_pcn_and_subspace_recipes(gen):
    parent = Recipe.from_seed(5)
    near, far = parent.pcn(0.05, 99), parent.pcn(1.2, 99)
    sub = Recipe(basis=(1, 2, 3), coeffs=(0.5, -1.0, 0.25))
    p, n, f, s = _imgs(gen, [parent, near, far, sub])
    assert not np.array_equal(p, n)
    assert np.abs(p - n).mean() < np.abs(p - f).mean()
    alone = _imgs(gen, [sub])[0]
    assert np.array_equal(alone, _imgs(gen, [sub])[0])
    assert np.abs(s - alone).max() < 1e-5


def test_noise_determines_image(gen):
    """Composite recipes are materialized by the base class: equal noise, equal image."""
    r = Recipe.from_seed(3).pcn(0.0, 1)  # theta 0: exactly the parent's noise
    a, b = _imgs(gen, [Recipe.from_seed(3), r])
    assert np.abs(a - b).max() < 1e-6


def test_steps_override(gen):
    r = [Recipe.from_seed(2)]
    full = _imgs(gen, r)[0]
    preview = _imgs(gen, r, steps=3)[0]
    assert preview.shape == (8, 8, 1)
    assert not np.allclose(full, preview)
    assert np.array_equal(full, _imgs(gen, r, steps=15)[0])
    g3 = DigitsGenerator(DigitsParams(steps=3))
    assert np.array_equal(preview, _imgs(g3, r)[0])
    assert g3.fingerprint() != gen.fingerprint()


def test_class_conditioning(gen, scorers):
    recipes = [Recipe.from_seed(1000 + s) for s in range(20)]
    means = []
    for c in range(10):
        cond = Condition(id=f"c{c}", class_label=c)
        means.append(np.mean(scorers["consistency"].score(_imgs(gen, recipes, cond), cond)))
    assert np.mean(means) > 7.0, means  # chance is 1/10 -> 1.0
    assert min(means) > 5.0, means
    # the same noise asked for another class gives a different digit
    a = _imgs(gen, recipes[:1], Condition(id="a", class_label=0))[0]
    b = _imgs(gen, recipes[:1], Condition(id="b", class_label=1))[0]
    assert np.abs(a - b).mean() > 0.05


@pytest.mark.parametrize("label", [None, 10, -1, 2.5, True])
def test_bad_class_label(gen, label):
    with pytest.raises(ValueError, match="class_label"):
        gen.generate([Recipe.from_seed(0)], Condition(id="x", class_label=label))


def test_guidance_option(gen):
    g = DigitsGenerator(DigitsParams(guidance=2.0))
    r = [Recipe.from_seed(4), Recipe.from_seed(5)]
    a = _imgs(g, r)
    assert a[0].shape == (8, 8, 1)
    assert not np.array_equal(a[0], _imgs(gen, r)[0])
    assert g.fingerprint() != gen.fingerprint()


def test_generator_accepts_tasks(gen):
    cond = tasks(1)[0]
    assert _imgs(gen, [Recipe.from_seed(0)], cond)[0].shape == (8, 8, 1)
