"""The gaussian-mixture generator and its three scorers pass the ``eacps.testing`` conformance suites (its stepping
section: in pieces equals ``generate`` bit for bit, previews decode x0, branched paths regenerate exactly from their
recipes, a cached state continues as a fresh one); its marginal reconstructs the state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eacps_gaussian_mixture import tasks
from eacps_gaussian_mixture.generator import GaussianMixtureGenerator
from eacps_gaussian_mixture.scorers import GMConsistency, GMIdentity, GMRealism

from eacps import Condition, Recipe
from eacps.store import quantize
from eacps.testing import GeneratorCase, GeneratorConformance, ScorerCase, ScorerConformance

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
