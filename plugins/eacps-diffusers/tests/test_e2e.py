"""The whole eacps engine over tiny pipelines, end to end: search, store, winner reproduction."""

from __future__ import annotations

import numpy as np
import pytest
from eacps_diffusers import DiffusersGenerator
from eacps_diffusers.tiny import tiny_pipeline, vanilla

import eacps
from eacps import Condition, Recipe, Scorer, Status
from eacps.config import ConfigError
from eacps.potential import Potential
from eacps.stepping import generate_paths


class Brightness(Scorer):
    name = "brightness"

    def score(self, images, condition):
        return [float(10 * img.mean()) for img in images]


def test_eacps_search_over_a_tiny_sd_pipeline(tmp_path):
    pipe = tiny_pipeline("sd")
    gen = DiffusersGenerator.from_pipe(pipe, steps=2, height=32, width=32, max_batch_size=4)
    potential = Potential.from_scorers(weights={"brightness": 1.0}, brightness=Brightness())
    cond = Condition(id="cat", prompt="a photo of a cat")
    params = {"k_global": 4, "m": 2, "k_local": 2, "neighborhood": "pcn", "theta": 0.4}
    result = eacps.search(
        cond,
        generator=gen,
        potential=potential,
        strategy="eacps",
        params=params,
        budget=8,
        seed=1,
        batch_size=4,
        run_dir=tmp_path / "run",
    )
    assert len(result.history) == 8 and all(c.status is Status.OK for c in result.history)
    best = result.best
    assert best.potential == max(c.potential for c in result.history)
    assert sum(not c.recipe.is_seed_only for c in result.history) == 4  # the pCN refinement stage
    # the stored winner regenerates from its recipe alone (quantized in the store)
    (again,) = DiffusersGenerator.from_pipe(pipe, steps=2, height=32, width=32).generate([best.recipe], cond)
    np.testing.assert_allclose(again.image, best.image, atol=1 / 255 + 1e-6)
    # the best seed-only candidate is a seed a user can take to plain diffusers
    seeds = [c for c in result.history if c.recipe.is_seed_only]
    top = max(seeds, key=lambda c: c.potential)
    np.testing.assert_allclose(vanilla(pipe, cond.prompt, top.recipe.seed), top.image, atol=1 / 255 + 1e-6)


def test_seed_offset_search_over_img2img_uses_the_reference(tmp_path):
    pipe = tiny_pipeline("sd-img2img")
    gen = DiffusersGenerator.from_pipe(pipe, steps=2, call_kwargs={"strength": 0.7})
    potential = Potential.from_scorers(weights={"brightness": 1.0}, brightness=Brightness())
    ref = np.full((32, 32, 3), 0.8, np.float32)
    cond = Condition(id="edit", prompt="a red cat", reference=ref)
    result = eacps.search(
        cond,
        generator=gen,
        potential=potential,
        strategy="eacps",
        params={"k_global": 2, "m": 1, "k_local": 2},
        budget=4,
        seed=0,
        batch_size=4,
    )
    assert len(result.history) == 4 and all(c.recipe.is_seed_only for c in result.history)
    assert all(c.status is Status.OK for c in result.history)
    (again,) = gen.generate([Recipe.from_seed(result.best.recipe.seed)], cond)
    np.testing.assert_allclose(again.image, result.best.image, atol=1 / 255 + 1e-6)


@pytest.mark.parametrize("strategy", ["fk-steering", "tree-search"])
def test_trajectory_search_over_a_tiny_sd_pipeline_regenerates_its_winner(strategy, tmp_path):
    """A stepping strategy over SD with a stochastic sampler (Euler-ancestral): every candidate OK, and the
    winner's path recipe (branches included) regenerates from the recipe alone in a fresh generator."""
    pipe = tiny_pipeline("sd")

    def make():
        return DiffusersGenerator.from_pipe(pipe, steps=5, height=32, width=32,
                                            scheduler="EulerAncestralDiscreteScheduler")

    potential = Potential.from_scorers(weights={"brightness": 1.0}, brightness=Brightness())
    cond = Condition(id="cat", prompt="a photo of a cat")
    result = eacps.search(cond, generator=make(), potential=potential, strategy=strategy, budget=4, seed=3,
                          batch_size=4, run_dir=tmp_path / "run")
    assert result.history and all(c.status is Status.OK for c in result.history)
    assert any(c.recipe.branches for c in result.history) and any(c.recipe.until for c in result.history)
    best = result.best
    assert best.recipe.until is None and best.potential == max(
        c.potential for c in result.history if c.recipe.until is None)
    (again,) = generate_paths(make(), [Recipe.from_json(best.recipe.key)], cond)
    np.testing.assert_allclose(again.image, best.image, atol=1 / 255 + 1e-6)  # the store keeps 8-bit images


def test_stepping_strategy_on_img2img_is_a_config_error_before_compute():
    pipe = tiny_pipeline("sd-img2img")
    gen = DiffusersGenerator.from_pipe(pipe, steps=2, call_kwargs={"strength": 0.7})
    calls = []
    pipe.unet.register_forward_pre_hook(lambda *_: calls.append(1))
    potential = Potential.from_scorers(weights={"brightness": 1.0}, brightness=Brightness())
    cond = Condition(id="edit", prompt="a red cat", reference=np.full((32, 32, 3), 0.8, np.float32))
    with pytest.raises(ConfigError) as info:
        eacps.search(cond, generator=gen, potential=potential, strategy="fk-steering", budget=4, seed=0)
    msg = str(info.value)
    assert "\n" not in msg and "needs stepping" in msg
    assert not calls, "the model ran before the refusal"
