"""The eacps plugin module (entry point ``eacps: diffusers``): registers the ``diffusers`` generator by reference,
so listing plugins imports neither torch nor diffusers, and tells ``eacps generate`` which ``--model`` values it
loads (a hub id ``org/name`` or a local folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eacps import hookimpl
from eacps.plugins import ModelFamily


@hookimpl
def register_generators(register):
    register("eacps_diffusers.generator:DiffusersGenerator", name="diffusers")


def accepts(model: str) -> bool:
    """A hub id (``org/name``) or an existing local folder."""
    return "/" in model or Path(model).expanduser().is_dir()


def generator_params(model: str, allow_download: bool) -> dict[str, Any]:
    return {"model": model, **({"local_files_only": False} if allow_download else {})}


@hookimpl
def register_generate_backends(register):
    register(ModelFamily(name="diffusers", generator="diffusers", accepts=accepts, params=generator_params,
                         described="a diffusers hub id (org/name) or local folder", distribution="eacps-diffusers"))
