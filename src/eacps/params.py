"""Parameter models for plugins: every plugin class declares a pydantic ``Params`` model."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


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


class NoParams(Params):
    pass
