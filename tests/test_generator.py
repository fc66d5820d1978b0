"""eacps.generator: the generator interface. The generator owns the seed -> noise mapping (a seed-only recipe is the
model's own ``manual_seed`` draw, batch dimension included), its fingerprint follows everything that changes the
images, ``check`` refuses before any compute the recipes it cannot honour, and the stepping methods are either all
there (``generate_stepwise`` then equals ``generate``) or refused by name."""

from __future__ import annotations

import pytest
import torch
import toy

from eacps import Condition, Generator, Params, Recipe
from eacps.trajectory import Trajectory

COND = Condition("c", prompt="p")


class Half(Generator):
    """The smallest generator: a 2x3 half-precision noise, one flat image per recipe."""

    name = "half"

    def noise_shape(self, condition):
        return (1, 2, 3)

    @property
    def noise_dtype(self):
        return torch.float16

    @property
    def default_steps(self):
        return 4

    def settings(self):
        return {"model": "half/1"}

    def generate(self, recipes, condition, *, steps=None):
        raise AssertionError("not called")


def test_noises_are_the_models_own_seeded_draws_in_its_shape_and_dtype():
    gen = Half()
    z = gen.noises([Recipe.from_seed(7), Recipe.from_seed(8)], COND)
    assert z.shape == (2, 2, 3) and z.dtype == torch.float16 and z.device.type == "cpu"
    own = torch.randn((1, 2, 3), generator=torch.Generator("cpu").manual_seed(7), dtype=torch.float16)
    assert torch.equal(z[:1], own)  # bit-equal to generator=manual_seed(seed)
    pcn = Recipe.from_seed(7).pcn(0.5, 9)
    assert torch.equal(gen.noises([pcn], COND), pcn.noise((1, 2, 3), torch.float16))  # composite: the recipe's


def test_the_fingerprint_follows_name_and_settings():
    a, b = toy.ToyGenerator(), toy.ToyGenerator()
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 16
    assert toy.ToyGenerator(toy.ToyGeneratorParams(steps=11)).fingerprint() != a.fingerprint()
    assert toy.ToyGenerator(toy.ToyGeneratorParams(sleep=1.0)).fingerprint() == a.fingerprint()  # not in settings()
    renamed = type("Renamed", (toy.ToyGenerator,), {"name": "renamed"})
    assert renamed().fingerprint() != a.fingerprint()


def test_params_default_to_the_class_params():
    assert isinstance(Half().params, Params) and Half().params == Half.Params()
    p = toy.ToyGeneratorParams(steps=3)
    assert toy.ToyGenerator(p).params is p and toy.ToyGenerator().params.steps == 10


def test_check_refuses_path_recipes_without_stepping_and_noise_recipes_without_them():
    plain = toy.ToyGenerator()
    with pytest.raises(ValueError, match=r"has no stepping capability .*cannot compute path recipes"):
        plain.check([Recipe.from_seed(1), Recipe.from_seed(1, steps=None).with_until(3)])
    plain.check([Recipe.from_seed(1), Recipe.from_seed(2).pcn(0.3, 4)])  # both kinds of noise: fine

    class SeedOnly(toy.ToyGenerator):
        supports_noise_recipes = False

    with pytest.raises(ValueError, match=r"generator 'toy' accepts seed-only recipes .*got noise-space recipe"):
        SeedOnly().check([Recipe.from_seed(2).pcn(0.3, 4)])
    SeedOnly().check([Recipe.from_seed(2)])
    assert SeedOnly().capabilities == frozenset() and plain.capabilities == {"noise_recipes"}


def test_check_refuses_a_path_outside_the_schedule():
    stepping = toy.ToyGenerator(toy.ToyGeneratorParams(stepping=True, steps=10))
    assert stepping.capabilities == {"noise_recipes", "stepping"}
    stepping.check([Recipe.from_seed(1).with_until(9), Recipe.from_seed(1).branch(5, 1.0, 2)])
    with pytest.raises(ValueError, match="until=10 is outside the schedule"):
        stepping.check([Recipe.from_seed(1).with_until(10)])
    stepping.check([Recipe(seed=1, steps=20, until=15)])  # a recipe's own steps are its schedule
    with pytest.raises(ValueError, match="outside the schedule"):
        stepping.check([Recipe(seed=1, steps=4, until=6)])


def test_stepping_methods_are_refused_by_name_unless_implemented():
    gen = Half()
    traj = Trajectory(torch.zeros(1, 2, 3), None, 0, 4, (Recipe.from_seed(1),))
    for call in (lambda: gen.start([Recipe.from_seed(1)], COND), lambda: gen.advance(traj, COND, 2),
                 lambda: gen.decode(torch.zeros(1, 2, 3), COND), lambda: gen.marginal(traj)):
        with pytest.raises(NotImplementedError, match="generator 'half' cannot step"):
            call()
    assert gen.stepping_problem() == "generator 'half' has no stepping capability"
    assert gen.optimum(COND, object()) is None  # no known optimum by default


def test_generate_stepwise_is_generate_built_from_the_stepping_methods():
    gen = toy.ToyGenerator(toy.ToyGeneratorParams(stepping=True, steps=6))
    recipes = [Recipe.from_seed(3), Recipe.from_seed(3).branch(2, 0.7, 11), Recipe.from_seed(4).with_until(3)]
    stepwise = gen.generate_stepwise(recipes, COND)
    traj = gen.advance(gen.start(recipes[:1], COND), COND, 6)
    assert traj.origins == (recipes[0],)  # each row keeps its recipe
    by_hand = gen.decode(traj.latents, COND)[0].image
    assert (stepwise[0].image == by_hand).all()  # a plain recipe: start -> advance(T) -> decode
    assert not (stepwise[1].image == stepwise[0].image).all()  # the branch departs from its parent
    again = gen.generate_stepwise(recipes, COND)
    assert all((a.image == b.image).all() for a, b in zip(stepwise, again, strict=True))  # reproducible
