"""The task set: deterministic, distinct reference points, classes cycling; refused by a smaller mixture."""

from __future__ import annotations

import pytest
from eacps_gaussian_mixture import tasks
from eacps_gaussian_mixture.generator import GaussianMixtureGenerator
from eacps_gaussian_mixture.scorers import GMIdentity

from eacps import Condition


def test_tasks_are_deterministic_and_distinct():
    a, b = tasks(25), tasks(25)
    assert [c.describe() for c in a] == [c.describe() for c in b]
    assert [c.class_label for c in a[:12]] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert len({c.extra["reference_seed"] for c in a}) == 25 and len({c.id for c in a}) == 25
    assert tasks(3, seed=1)[0].extra != a[0].extra
    assert [c.class_label for c in tasks(5, classes=2)] == [0, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="n must be"):
        tasks(-1)


def test_conditions_outside_the_mixture_are_refused_up_front():
    gen = GaussianMixtureGenerator(GaussianMixtureGenerator.Params(components=4))
    with pytest.raises(ValueError, match=r"class_label must be an int in 0..3"):
        gen.check_condition(tasks(5)[4])
    identity = GMIdentity()
    with pytest.raises(ValueError, match="reference_seed"):
        identity.check_condition(Condition("x", class_label=1))
    with pytest.raises(ValueError, match="class_label"):
        identity.check_condition(Condition("x", extra={"reference_seed": 1}))
