"""eacps.params: every plugin's ``Params`` refuses unknown fields, is immutable and takes numbers strictly (no
boolean for a number, no nan/inf); ``ScheduleFractions`` are non-empty increasing fractions in (0, 1)."""

from __future__ import annotations

import math
from typing import Any, Literal

import pytest
from pydantic import Field, ValidationError

from eacps.params import BranchFractions, NoParams, Params, ScheduleFractions, StrictNumbers


class P(Params):
    n: int = 3
    w: float = 1.0
    maybe: float | None = None
    flag: bool = False
    either: int | bool = 0
    anything: Any = None
    mode: Literal["a", "b"] = "a"
    at: ScheduleFractions = Field(default_factory=lambda: [0.5])


def test_unknown_fields_are_errors_and_values_are_frozen():
    with pytest.raises(ValidationError, match="nope"):
        P(nope=1)
    p = P(n=4)
    with pytest.raises(ValidationError, match="frozen"):
        p.n = 5
    assert NoParams() == NoParams() and NoParams.model_fields == {}
    with pytest.raises(ValidationError):
        NoParams(x=1)


@pytest.mark.parametrize("field", ["n", "w", "maybe"])
def test_a_boolean_is_not_a_number(field):
    with pytest.raises(ValidationError, match="must be a number, not a boolean \\(got true\\)"):
        P(**{field: True})


def test_a_boolean_is_taken_where_the_field_admits_one():
    p = P(flag=True, either=True, anything=False)
    assert p.flag is True and p.either is True and p.anything is False
    assert P(n=2, w=3).w == 3.0  # an int is a fine float


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_are_refused_for_every_float_field(value):
    with pytest.raises(ValidationError):
        P(w=value)
    with pytest.raises(ValidationError):
        P(maybe=value)


def test_strict_numbers_outside_plugin_params():
    """``StrictNumbers`` alone (config sections): strict numbers, while unknown fields stay the model's choice."""

    class Section(StrictNumbers):
        budget: int = 1

    with pytest.raises(ValidationError, match="not a boolean"):
        Section(budget=False)
    assert Section(budget=7).budget == 7


@pytest.mark.parametrize("bad", [[], [0.0], [1.0], [0.5, 0.5], [0.6, 0.3], [-0.1, 0.5]])
def test_schedule_fractions_are_increasing_fractions_in_the_open_unit_interval(bad):
    with pytest.raises(ValidationError, match="at must be a non-empty increasing list of fractions in \\(0, 1\\)"):
        P(at=bad)


def test_good_schedule_fractions_pass_unchanged():
    assert P(at=[0.25, 0.5, 0.75]).at == [0.25, 0.5, 0.75] and P().at == [0.5]


class Branched(Params):
    branch_at: BranchFractions = Field(default_factory=list)


@pytest.mark.parametrize("bad", [[0.0], [1.0], [0.5, 0.5], [0.6, 0.3]])
def test_branch_fractions_are_increasing_fractions_and_may_be_empty(bad):
    with pytest.raises(ValidationError, match="branch_at must be an increasing list of fractions in \\(0, 1\\)"):
        Branched(branch_at=bad)
    assert Branched().branch_at == [] and Branched(branch_at=[0.2, 0.8]).branch_at == [0.2, 0.8]
