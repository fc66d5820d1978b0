"""The digits generator and its three scorers pass the ``eacps.testing`` conformance suites."""

from __future__ import annotations

import numpy as np
import pytest
from eacps_digits import tasks
from eacps_digits.generator import DigitsGenerator
from eacps_digits.models import weights
from eacps_digits.scorers import DigitsConsistency, DigitsIdentity, DigitsRealism

from eacps import Recipe
from eacps.testing import GeneratorCase, GeneratorConformance, ScorerCase, ScorerConformance

TASK = tasks(4)[3]  # "a 3 in the style of this exemplar": class_label and reference
WEIGHTS = str(weights(None).root)  # the shipped weights, named by their path (the path is not their identity)


@pytest.fixture(scope="module")
def digits() -> list[np.ndarray]:
    """Three generated digits: the images a scorer sees in a run."""
    return [g.image for g in DigitsGenerator().generate([Recipe.from_seed(s) for s in (0, 1, 2)], TASK)]


class TestDigitsGenerator(GeneratorConformance):
    covers = ("digits",)

    @pytest.fixture
    def generator_case(self) -> GeneratorCase:
        return GeneratorCase(
            lambda **kw: DigitsGenerator(DigitsGenerator.Params(**kw)), TASK, seeds=(0, 1, 2),
            tolerance=1e-5,  # CPU convolutions of other batch sizes differ in the last bits (measured 8e-7)
            changes={"steps": 10, "guidance": 2.0},
            runtime={"weights_dir": WEIGHTS, "device": "cpu"},
            preview_steps=3,
        )


SCORERS = {"digits-consistency": (DigitsConsistency, {}), "digits-identity": (DigitsIdentity, {}),
           "digits-realism": (DigitsRealism, {"tau_scale": 2.0})}


class TestDigitsScorers(ScorerConformance):
    covers = ("digits-consistency", "digits-identity", "digits-realism")

    @pytest.fixture(params=list(SCORERS))
    def scorer_case(self, request, digits) -> ScorerCase:
        cls, changes = SCORERS[request.param]
        return ScorerCase(
            lambda **kw: cls(cls.Params(**kw)), TASK, digits,
            changes=changes, runtime={"weights_dir": WEIGHTS},
            bad_images=[np.full((8, 8, 1), np.nan, np.float32), np.zeros((16, 16, 1), np.float32)],
            tolerance=1e-5,
        )
