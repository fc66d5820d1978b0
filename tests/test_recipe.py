import json
import math

import numpy as np
import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor

from eacps import PCN, Recipe


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_seed_noise_is_what_diffusers_draws(dtype):
    shape = (1, 4, 8, 8)
    ours = Recipe.from_seed(1234).noise(shape, dtype)
    theirs = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(1234), dtype=dtype)
    assert ours.dtype == dtype
    assert torch.equal(ours, theirs)


def test_regeneration_is_bit_exact_for_composite_recipes():
    r = Recipe.from_seed(7).pcn(0.3, 11).pcn(0.1, 12)
    again = Recipe.from_json(json.loads(json.dumps(r.to_json())))
    assert again == r and hash(again) == hash(r) and again.key == r.key
    assert torch.equal(r.noise((1, 3, 5, 5)), again.noise((1, 3, 5, 5)))


def test_json_round_trip_of_every_root_and_move():
    for r in [Recipe.from_seed(0), Recipe.from_seed(2**32 - 1, steps=3),
              Recipe(basis=(1, 2, 3), coeffs=(0.5, -0.25, 1e-3)).pcn(0.7, 5)]:
        assert Recipe.from_json(r.key) == r
        assert Recipe.from_json(r.key).key == r.key
    assert Recipe.from_seed(3).key == '{"seed":3}'


def test_pcn_is_a_local_move_and_seed_offsets_are_not():
    shape = (1, 4, 32, 32)
    z = Recipe.from_seed(100).noise(shape).flatten()
    child = Recipe.from_seed(100).pcn(0.3, 999).noise(shape).flatten()
    offset = Recipe.from_seed(101).noise(shape).flatten()
    r_child = float(np.corrcoef(z, child)[0, 1])
    r_offset = float(np.corrcoef(z, offset)[0, 1])
    assert abs(r_child - math.cos(0.3)) < 0.02
    assert abs(r_offset) < 0.05  # s and s+1 are unrelated in PyTorch


def test_pcn_and_subspace_preserve_the_gaussian():
    shape = (1, 1, 128, 128)
    z = Recipe.from_seed(5).pcn(1.0, 6).noise(shape)
    s = Recipe(basis=(1, 2, 3, 4), coeffs=(3.0, -1.0, 0.5, 2.0)).noise(shape)
    for x in (z, s):
        assert abs(float(x.mean())) < 0.03
        assert abs(float(x.std()) - 1.0) < 0.03


def test_subspace_scale_invariance():
    a = Recipe(basis=(1, 2), coeffs=(1.0, 2.0)).noise((1, 1, 4, 4))
    b = Recipe(basis=(1, 2), coeffs=(2.0, 4.0)).noise((1, 1, 4, 4))
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": -1}, "seed"), ({"seed": 2**32}, "seed"), ({}, "seed or"),
    ({"seed": 1, "basis": (2,), "coeffs": (1.0,)}, "not both"),
    ({"basis": (1, 2), "coeffs": (1.0,)}, "same length"), ({"basis": (1,), "coeffs": (0.0,)}, "not all zero"),
    ({"seed": 1, "steps": 0}, "steps"),
])
def test_invalid_recipes_are_refused(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Recipe(**kwargs)


def test_invalid_moves_and_json():
    with pytest.raises(ValueError, match="theta"):
        PCN(2.0, 1)
    with pytest.raises(ValueError, match="unknown move"):
        Recipe.from_json({"seed": 1, "moves": [{"op": "warp"}]})
    with pytest.raises(ValueError, match="unknown recipe fields"):
        Recipe.from_json({"seed": 1, "tensor": [1, 2]})
