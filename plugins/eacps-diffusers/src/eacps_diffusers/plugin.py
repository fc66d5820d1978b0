"""The eacps plugin module (entry point ``eacps: diffusers``): registers the ``diffusers`` generator."""

from __future__ import annotations

from eacps import hookimpl


@hookimpl
def register_generators(register):
    from eacps_diffusers.generator import DiffusersGenerator

    register(DiffusersGenerator)
