"""The gaussian-mixture generator and its three scorers pass the ``eacps.testing`` conformance suites; stepping
in pieces equals ``generate`` bit for bit, and a branched path regenerates exactly from its recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eacps_gaussian_mixture import tasks
from eacps_gaussian_mixture.generator import GaussianMixtureGenerator
from eacps_gaussian_mixture.scorers import GMConsistency, GMIdentity, GMRealism

from eacps import Condition, Recipe, Status
from eacps.recipe import Branch
from eacps.stepping import StateCache, generate_paths
from eacps.store import quantize
from eacps.testing import GeneratorCase, GeneratorConformance, ScorerCase, ScorerConformance
from eacps.trajectory import renoise

TASK = tasks(4)[3]  # component 3 near the reference point of its reference_seed


def make_gen(**kw) -> GaussianMixtureGenerator:
    return GaussianMixtureGenerator(GaussianMixtureGenerator.Params(**kw))


@pytest.fixture(scope="module")
def samples() -> list[np.ndarray]:
    """Three generated samples, as a scorer sees them in a run (8-bit images)."""
    return [quantize(g.image) for g in make_gen().generate([Recipe.from_seed(s) for s in (0, 1, 2)], TASK)]


class TestGaussianMixtureGenerator(GeneratorConformance):
    covers = ("gaussian-mixture",)

    @pytest.fixture(params=["ddim", "flow"])
    def generator_case(self, request) -> GeneratorCase:
        return GeneratorCase(
            lambda **kw: make_gen(**{"sampler": request.param, **kw}), TASK, seeds=(0, 1, 2),
            changes={"steps": 10, "guidance": 2.0, "separation": 2.0, "shape": (4, 8, 8), "sampler":
                     "flow" if request.param == "ddim" else "ddim", "sigma_spread": 2.0, "mixture_seed": 1},
            runtime={"device": "cpu"}, preview_steps=5,
        )


@pytest.mark.parametrize("sampler", ["ddim", "flow"])
def test_pieces_and_nested_branches(sampler):
    """Beyond the core suite: uneven pieces (1, 7, 8, 30, T) decode to ``generate`` bit for bit; a path with two
    branches regenerates from its JSON key, in ``generate`` and in ``generate_paths``; a branched preview is the
    x0 at its step, by hand (renoise)."""
    gen, cond = make_gen(sampler=sampler), TASK
    recipes = [Recipe.from_seed(s) for s in (5, 6, 7)]
    direct = [g.image for g in gen.generate(recipes, cond)]
    traj = gen.start(recipes, cond)
    for until in (1, 7, 8, 30, gen.default_steps):  # advance in uneven pieces
        traj = gen.advance(traj, cond, until)
    pieces = [g.image for g in gen.decode(traj.latents, cond)]
    assert all(np.array_equal(x, y) for x, y in zip(direct, pieces, strict=True)), "pieces differ from generate"
    path = Recipe.from_seed(5).branch(10, 0.4, 99).branch(30, 1.2, 3)
    preview = Recipe.from_seed(6).branch(4, 0.3, 1).with_until(20)
    out = gen.generate([path, preview, recipes[0]], cond)
    assert all(g.status is Status.OK for g in out)
    again = gen.generate([Recipe.from_json(path.key)], cond)[0].image
    assert np.array_equal(out[0].image, again), "a branched path did not regenerate from its recipe"
    assert not np.array_equal(out[0].image, out[2].image), "the branch changed nothing"
    via_core = generate_paths(gen, [path, preview], cond, cache=StateCache())
    assert np.array_equal(via_core[0].image, out[0].image) and np.array_equal(via_core[1].image, out[1].image)
    manual = gen.advance(gen.start([Recipe.from_seed(6)], cond), cond, 4)
    manual = renoise(manual, gen.marginal(manual), [Branch(4, 0.3, 1)])
    manual = gen.advance(manual, cond, 20)
    assert np.array_equal(gen.decode(manual.x0, cond)[0].image, out[1].image), "preview is not the x0 at step 20"


def test_marginal_reconstructs_the_state():
    """x_k = a_k·x0_hat + b_k·eps_hat, with eps_hat the noise the last model call implied at step k - 1."""
    gen, cond = make_gen(steps=12), TASK
    before = gen.advance(gen.start([Recipe.from_seed(1), Recipe.from_seed(2)], cond), cond, 4)
    traj = gen.advance(before, cond, 5)
    a4, b4 = gen.marginal(before)
    eps = (before.latents - a4 * traj.x0) / b4
    a, b = gen.marginal(traj)
    assert (a, b) == gen.coefficients(5, 12) and b > 0
    assert torch.allclose(traj.latents, a * traj.x0 + b * eps, atol=1e-12)
    with pytest.raises(ValueError, match="no branch"):
        gen.marginal(gen.start([Recipe.from_seed(1)], cond))


@pytest.mark.parametrize("label", [None, 10, -1, 2.5, True])
def test_bad_class_label_is_refused(label):
    with pytest.raises(ValueError, match="class_label"):
        make_gen().generate([Recipe.from_seed(0)], Condition("x", class_label=label))


SCORERS = {"gm-consistency": (GMConsistency, {"separation": 2.0}),
           "gm-realism": (GMRealism, {"sharpness": 2.0, "sigma": 0.9}),
           "gm-identity": (GMIdentity, {"sharpness": 3.0, "threshold": 1.0, "sigma_spread": 1.5})}


class TestGaussianMixtureScorers(ScorerConformance):
    covers = ("gm-consistency", "gm-realism", "gm-identity")

    @pytest.fixture(params=list(SCORERS))
    def scorer_case(self, request, samples) -> ScorerCase:
        cls, changes = SCORERS[request.param]
        other = quantize(make_gen(separation=2.0).generate([Recipe.from_seed(0)], TASK)[0].image)
        return ScorerCase(
            lambda **kw: cls(cls.Params(**kw)), TASK, samples, changes=changes,
            bad_images=[np.full(samples[0].shape, np.nan, np.float32), np.zeros((16, 16, 1), np.float32), other],
            tolerance=1e-9)
