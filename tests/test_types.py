"""eacps.types: the plain data shared by every part. A condition compares and describes itself without its arrays;
a generator's output carries its status and reason; a result is usable only when OK with a finite potential, and can
be the best only at full fidelity."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from eacps import Recipe
from eacps.types import Condition, Generated, Result, Status


def test_a_condition_is_compared_and_described_without_its_images():
    img = np.zeros((4, 4, 3), np.float32)
    a = Condition("c1", prompt="a cat", class_label=3, reference=img, reference_path="ref.png",
                  extra={"scale": 2.0})
    b = Condition("c1", prompt="a cat", class_label=3, reference=img + 1, reference_path="ref.png",
                  extra={"scale": 9.0})
    assert a == b and hash(a) == hash(b)  # reference, prior and extra do not take part in equality
    assert a != Condition("c1", prompt="a dog", class_label=3, reference_path="ref.png")
    assert a.describe() == {"id": "c1", "prompt": "a cat", "class_label": 3, "reference_path": "ref.png",
                            "extra": {"scale": 2.0}}
    assert json.loads(json.dumps(a.describe())) == a.describe()  # stored with every candidate: JSON as is
    assert Condition("c2").describe() == {"id": "c2"}  # unset fields are left out
    assert "reference=" not in repr(a) and "prior=" not in repr(a)  # no arrays in a repr


def test_with_prior_returns_a_copy_carrying_the_stage_0_image():
    c = Condition("c", prompt="p")
    prior = np.ones((2, 2, 3), np.float32)
    d = c.with_prior(prior)
    assert d.prior is prior and c.prior is None  # frozen: the original is untouched
    assert d == c and d.describe() == c.describe()  # the prior is never part of the description
    with pytest.raises(AttributeError):
        c.prompt = "q"  # type: ignore[misc]


def test_generated_says_why_it_is_not_ok():
    img = np.zeros((2, 2, 1), np.float32)
    assert Generated(img).status is Status.OK and Generated(img).reason is None
    failed = Generated.failed("CUDA out of memory")
    assert (failed.image, failed.status, failed.reason) == (None, Status.FAILED, "CUDA out of memory")
    filtered = Generated.filtered("all black", img)
    assert (filtered.image is img, filtered.status, filtered.reason) == (True, Status.FILTERED, "all black")
    assert Status("FILTERED") is Status.FILTERED and str(Status.OK) == "OK"  # stored by value


@pytest.mark.parametrize(("status", "potential", "ok"), [
    (Status.OK, 1.5, True), (Status.OK, -3.0, True), (Status.OK, None, False), (Status.OK, math.nan, False),
    (Status.OK, math.inf, False), (Status.FAILED, 1.5, False), (Status.FILTERED, 1.5, False),
])
def test_a_result_is_ok_only_with_a_finite_potential(status, potential, ok):
    r = Result(Recipe(seed=1), status, potential)
    assert r.ok is ok and r.eligible is ok  # a full-fidelity recipe: eligible exactly when ok


def test_previews_are_never_eligible_to_be_the_best():
    for preview in (Recipe(seed=1, until=3), Recipe(seed=1, steps=4), Recipe(seed=1).branch(2, 1.0, 5).with_until(4)):
        r = Result(preview, Status.OK, 10.0)
        assert r.ok and not r.eligible, preview
    assert Result(Recipe(seed=1).branch(2, 1.0, 5), Status.OK, 10.0).eligible  # a finished branched path can win
