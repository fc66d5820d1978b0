"""Stepping generators and path recipes: exact regeneration, prefix reuse, branch moves, charging."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from repo import own_names
from toy import MU, ToyGenerator, ToyGeneratorParams

from eacps.plugins import build_registry
from eacps.recipe import Branch, Recipe
from eacps.stepping import StateCache, generate_paths
from eacps.store import quantize
from eacps.trajectory import Trajectory, renoise
from eacps.trees import PathLedger
from eacps.types import Condition

T = 15


@pytest.fixture(scope="module")
def gen() -> ToyGenerator:
    """The stepping toy generator (tests/toy.py): an exact analytic sampler over T steps."""
    return ToyGenerator(ToyGeneratorParams(steps=T, stepping=True))


@pytest.fixture(scope="module")
def cond():
    return Condition("c3", class_label=3)


def exact(recipe: Recipe) -> np.ndarray:
    """The toy's final image of a plain recipe in closed form: sigmoid(MU + noise·T/10), HWC."""
    x = MU + recipe.noise((1, 1, 4, 4), torch.float32) * T / 10.0
    return np.transpose(torch.sigmoid(x)[0].numpy(), (1, 2, 0))


class CountingGenerator:
    """Wraps a stepping generator and counts the model calls ``advance`` makes (per trajectory)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def advance(self, traj, condition, until):
        self.calls += (until - traj.step) * len(traj)
        return self.inner.advance(traj, condition, until)


# -- recipes ---------------------------------------------------------------------------------------------------------
def test_path_recipe_round_trips_and_keys():
    r = Recipe.from_seed(7).branch(4, 0.3, 11).branch(9, 0.2, 12).with_until(12)
    assert r.is_path and r.is_preview and not r.is_seed_only
    assert Recipe.from_json(r.key) == r
    assert r.key == Recipe.from_json(r.to_json()).key
    assert r.root == Recipe.from_seed(7)
    assert Recipe.from_seed(7).branch(4, 0.3, 11) != Recipe.from_seed(7).branch(4, 0.3, 12)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: Recipe.from_seed(1).branch(0, 0.3, 1), "branch step must be an int >= 1"),
    (lambda: Recipe.from_seed(1).branch(5, 0.3, 1).branch(5, 0.3, 2), "strictly increasing"),
    (lambda: Recipe.from_seed(1).branch(5, 0.0, 1), "theta must be in"),
    (lambda: Recipe.from_seed(1).branch(5, 0.3, 1).with_until(5), "not before until=5"),
    (lambda: Recipe.from_seed(1, steps=10).branch(10, 0.3, 1), "outside the schedule"),
    (lambda: Recipe(seed=1, until=0), "until must be an int >= 1"),
    (lambda: Recipe.from_json({"seed": 1, "branches": [{"step": 2, "op": "flip", "theta": 0.1, "seed": 1}]}),
     "unknown branch op"),
])
def test_bad_paths_are_refused_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_generator_refuses_paths_outside_its_schedule(gen):
    with pytest.raises(ValueError, match="outside the schedule"):
        gen.check([Recipe.from_seed(1).branch(T, 0.3, 1)])
    with pytest.raises(ValueError, match="outside the schedule"):
        gen.check([Recipe.from_seed(1).with_until(T)])
    gen.check([Recipe.from_seed(1).branch(T - 1, 0.3, 1)])  # the last branchable step


def test_non_stepping_generator_refuses_paths():
    with pytest.raises(ValueError, match="no stepping capability"):
        ToyGenerator().check([Recipe.from_seed(1).with_until(3)])


def test_shared_calls():
    a = Recipe.from_seed(1).branch(4, 0.3, 1)
    assert a.shared_calls(Recipe.from_seed(1)) == 4  # the same trajectory until the branch at 4
    assert a.shared_calls(a.branch(8, 0.2, 2)) == 8
    assert a.shared_calls(Recipe.from_seed(1).branch(4, 0.3, 2)) == 4  # siblings share the state at 4
    assert a.shared_calls(Recipe.from_seed(2)) == 0
    assert Recipe.from_seed(1).with_until(3).shared_calls(Recipe.from_seed(1)) == 3


# -- a stepping generator (the toy's exact sampler) ------------------------------------------------------------------
def test_paths_compute_the_exact_sampler(gen, cond):
    """Plain recipes through start -> advance -> decode end at the toy's closed-form image."""
    recipes = [Recipe.from_seed(s) for s in (1, 2, 3)]
    for r, g in zip(recipes, generate_paths(gen, recipes, cond), strict=True):
        assert np.allclose(g.image, exact(r), atol=1e-6)
    assert not np.allclose(exact(recipes[0]), exact(recipes[1]), atol=1e-3)


def test_marginal_reconstructs_the_state(gen, cond):
    """x_k = a·x0_hat + b·eps_hat with eps_hat the model's own prediction: a branch of angle ~0 is the identity."""
    traj = gen.advance(gen.start([Recipe.from_seed(9)], cond), cond, 6)
    same = renoise(traj, gen.marginal(traj), [Branch(6, 1e-9, 3)])
    assert torch.allclose(same.latents, traj.latents, atol=1e-5)
    moved = renoise(traj, gen.marginal(traj), [Branch(6, math.pi / 2, 3)])
    assert not torch.allclose(moved.latents, traj.latents, atol=1e-2)


def test_a_preview_decodes_the_clean_prediction(gen, cond):
    """A preview (``until``) is decode(x0) at its step, not decode(x_k): for the exact toy sampler, whose clean
    prediction is exact from the first call, that is the final image at every step."""
    r = Recipe.from_seed(21)
    final = generate_paths(gen, [r], cond)[0].image
    for k in (1, 7, T - 1):
        preview = generate_paths(gen, [r.with_until(k)], cond)[0].image
        assert np.allclose(preview, final, atol=1e-6), k
        state = gen.advance(gen.start([r], cond), cond, k)
        assert not np.allclose(gen.decode(state.latents, cond)[0].image, final, atol=1e-3)  # x_k is not x0


def test_prefix_is_reused_and_results_are_exact(gen, cond):
    parent = Recipe.from_seed(4).with_until(6)
    kids = [Recipe.from_seed(4).branch(6, 0.6, s) for s in (1, 2, 3)]
    cold = CountingGenerator(gen)
    cold_imgs = [generate_paths(cold, [k], cond, cache=StateCache())[0].image for k in kids]
    assert cold.calls == 3 * T
    warm, cache = CountingGenerator(gen), StateCache()
    generate_paths(warm, [parent], cond, cache=cache)
    assert warm.calls == 6
    warm_imgs = [g.image for g in generate_paths(warm, kids, cond, cache=cache)]
    assert warm.calls == 6 + 3 * (T - 6)  # the children continue from the parent's state
    for a, b in zip(cold_imgs, warm_imgs, strict=True):
        assert np.allclose(a, b, atol=1e-6)
        assert np.array_equal(quantize(a), quantize(b))  # the stored 8-bit image is the same
    again = [g.image for g in generate_paths(warm, kids, cond, cache=cache)]
    assert warm.calls == 6 + 3 * (T - 6)  # the children themselves are cached at their stop: nothing recomputed
    assert all(np.array_equal(a, b) for a, b in zip(again, warm_imgs, strict=True))
    assert not np.array_equal(warm_imgs[0], warm_imgs[1])  # different branch seeds, different images
    assert not np.allclose(warm_imgs[0], exact(Recipe.from_seed(4)), atol=1e-3)  # a branch moves off the plain path


def test_mixed_batch_equals_singles(gen, cond):
    recipes = [Recipe.from_seed(8).with_until(3), Recipe.from_seed(8).branch(5, 0.4, 1),
               Recipe.from_seed(9), Recipe.from_seed(10).branch(2, 1.0, 7).branch(11, 0.2, 8).with_until(13)]
    batch = generate_paths(gen, recipes, cond)
    for r, g in zip(recipes, batch, strict=True):
        single = generate_paths(gen, [r], cond)[0]
        assert np.allclose(g.image, single.image, atol=1e-6)


def test_cache_is_scoped_by_condition():
    """One cache across conditions of a condition-dependent model (``shift``: the data mean moves with the
    condition's offset): the second condition's state is computed, not taken from the first's."""
    shifted = ToyGenerator(ToyGeneratorParams(steps=T, stepping=True, shift=True))
    cache = StateCache()
    r = Recipe.from_seed(3).with_until(5)
    a = generate_paths(shifted, [r], Condition("a", extra={"offset": 0.0}), cache=cache)[0].image
    b = generate_paths(shifted, [r], Condition("b", extra={"offset": 1.0}), cache=cache)[0].image
    fresh = generate_paths(shifted, [r], Condition("b", extra={"offset": 1.0}), cache=StateCache())[0].image
    assert not np.array_equal(a, b) and np.array_equal(b, fresh)


def test_cache_is_bounded():
    cache = StateCache(max_states=2)
    st = Trajectory(torch.zeros(1, 1), None, 1, 5, (Recipe.from_seed(0),))
    for i in range(5):
        cache.put(str(i), st)
    assert len(cache) == 2 and cache.get("0") is None and cache.get("4") is st


# -- charging --------------------------------------------------------------------------------------------------------
def test_ledger_charges_a_shared_prefix_once():
    led = PathLedger(T)
    assert led.charge(Recipe.from_seed(1).with_until(3)) == 3
    assert led.charge(Recipe.from_seed(1)) == T - 3  # the preview's trajectory continues
    assert led.charge(Recipe.from_seed(1).branch(8, 0.3, 1)) == T - 8
    assert led.charge(Recipe.from_seed(1).branch(8, 0.3, 2).with_until(10)) == 2
    assert led.peek(Recipe.from_seed(2)) == T
    assert led.charge(Recipe.from_seed(1, steps=5)) == 5  # another schedule shares nothing


# -- the documented regeneration line works for every strategy's winner ----------------------------------------------
STRATEGIES = own_names(build_registry(), "strategy")  # the built-ins and this repository's strategy plugins


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_documented_line_regenerates_every_strategys_winner(strategy, gen, toy_potential):
    """README / docs: ``generator.generate([result.best.recipe], task)[0].image  # regenerate the winner exactly``,
    for path winners (tree-search, fk-steering: branches) as for noise recipes; equal to the stored 8-bit image."""
    import eacps

    task = Condition("task0", prompt="a toy")
    result = eacps.search(task, generator=gen, potential=toy_potential, strategy=strategy, budget=8, seed=0)
    image = gen.generate([result.best.recipe], task)[0].image  # the documented line
    assert np.array_equal(quantize(image), result.best.image), \
        f"{strategy}: {result.best.recipe.key} regenerates {np.abs(quantize(image) - result.best.image).max()} off"
    if strategy in ("tree-search", "fk-steering"):
        assert result.best.recipe.branches, "expected a branched winner (the case generate once ignored)"
