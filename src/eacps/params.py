"""Parameter models for plugins: every plugin class declares a pydantic ``Params`` model."""

from __future__ import annotations

import itertools
import types
import typing
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator


def _leaf_types(annotation: Any) -> set[Any]:
    """The plain types a field annotation admits (through ``Annotated``, unions, ``Optional`` and ``Literal``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaf_types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_leaf_types(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return {type(a) for a in typing.get_args(annotation)}
    return {annotation}


def _bool_is_a_number_here(annotation: Any) -> bool:
    """True when a boolean would be silently read as a number: the field admits int/float but not bool."""
    leaves = _leaf_types(annotation)
    return bool(leaves & {int, float}) and not leaves & {bool, Any, object}


#: the largest budget (candidates, or B·T denoising steps) of one search: above it a strategy's first ask could hold
#: more than memory allows (fk-steering keeps B particles; 10^5 take about 2 s and 40 MB to draw) and a run more
#: than anyone waits for (10^5 images per condition); ``search.budget`` and the Python API refuse more
MAX_BUDGET = 100_000


class StrictNumbers(BaseModel):
    """No silent coercions of numbers: ``true`` is not 1 for an integer field, and ``nan``/``inf`` are refused
    for every float field (a weight of ``inf`` makes every best an arbitrary tie)."""

    model_config = ConfigDict(allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _bool_is_a_number_here(field.annotation):
            raise ValueError(f"must be a number, not a boolean (got {str(value).lower()})")
        return value


class Params(StrictNumbers):
    """Base for plugin parameters: unknown fields are errors, values are immutable, numbers strict."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    #: parameters added after the class's results may have been stored, each with the value that does what the
    #: strategy did before it existed: a stored search that lacks the parameter is the same search at that value
    #: (``eacps compare``'s run-directory check); at any other value, or for a new parameter not named here, it is
    #: another search
    added: ClassVar[dict[str, Any]] = {}


class NoParams(Params):
    pass


def _schedule_fractions(v: list[float], info: ValidationInfo) -> list[float]:
    if not v or any(not 0 < f < 1 for f in v) or any(b <= a for a, b in itertools.pairwise(v)):
        raise ValueError(f"{info.field_name} must be a non-empty increasing list of fractions in (0, 1)")
    return v


ScheduleFractions = Annotated[list[float], AfterValidator(_schedule_fractions)]
"""Points of a denoising schedule as fractions of it (preview rungs, resampling points, tree levels);
``Strategy.schedule_steps`` turns them into steps."""


def _branch_fractions(v: list[float], info: ValidationInfo) -> list[float]:
    if any(not 0 < f < 1 for f in v) or any(b <= a for a, b in itertools.pairwise(v)):
        raise ValueError(f"{info.field_name} must be an increasing list of fractions in (0, 1) (empty: none)")
    return v


BranchFractions = Annotated[list[float], AfterValidator(_branch_fractions)]
"""Branch (renoise) points as fractions of a denoising schedule, possibly none."""
