"""A toy generator that ends its process on one seed (``os._exit(3)`` or a segfault), and the command line
that runs a config with it in a child process (the toy plugin and this one registered)."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Literal

import toy
from pydantic import Field

from eacps import hookimpl

HERE = Path(__file__).parent


class CrashParams(toy.ToyGeneratorParams):
    crash_seed: int = Field(-1, description="the seed whose generation ends the process")
    how: Literal["exit", "segfault"] = "exit"


class Crash(toy.ToyGenerator):
    name = "toy-crash"
    Params = CrashParams

    def generate(self, recipes, condition, *, steps=None):
        if any(r.seed == self.params.crash_seed for r in recipes):
            if self.params.how == "exit":
                os._exit(3)
            ctypes.string_at(0)  # a segfault
        return super().generate(recipes, condition, steps=steps)


@hookimpl
def register_generators(register):
    register(Crash)


def run_command(cfg: Path, out: Path) -> list[str]:
    """argv of a child ``eacps run CFG --out OUT --quiet`` in which ``toy-crash`` is registered."""
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import crashing, toy; from eacps import plugins; "
            "from eacps.commands.cli import main; plugins.register_plugin(toy); plugins.register_plugin(crashing); "
            f"sys.exit(main(['run', {str(cfg)!r}, '--out', {str(out)!r}, '--quiet']))")
    return [sys.executable, "-c", code]
