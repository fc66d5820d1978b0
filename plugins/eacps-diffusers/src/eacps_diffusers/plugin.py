"""The eacps plugin module (entry point ``eacps: diffusers``): registers the ``diffusers`` generator by reference,
so listing plugins imports neither torch nor diffusers."""

from __future__ import annotations

from eacps import hookimpl


@hookimpl
def register_generators(register):
    register("eacps_diffusers.generator:DiffusersGenerator", name="diffusers")
