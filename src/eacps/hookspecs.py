"""Hook specifications of the ``eacps`` plugin system.

A plugin is a module (or object) with ``@hookimpl`` functions; each hook receives a ``register``
callback, so a plugin that adds one scorer is three lines::

    from eacps import hookimpl

    @hookimpl
    def register_scorers(register):
        register(MyScorer)

A module that imports something heavy registers by reference instead, ``register("my_package.scorer:MyScorer",
name="my-scorer")``: the module is imported when a config first uses the name, so ``eacps --help`` and
``eacps plugins`` stay fast.

Third-party plugins are found through the ``eacps`` entry-point group
(``[project.entry-points.eacps] my-plugin = "my_package.plugin"``). A hook implementation may take
fewer arguments than its spec, so specs can grow.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("eacps")
hookimpl = pluggy.HookimplMarker("eacps")


@hookspec
def register_strategies(register):
    """Register strategy classes (subclasses of ``eacps.Strategy``): ``register(MyStrategy)``."""


@hookspec
def register_scorers(register):
    """Register scorer classes (subclasses of ``eacps.Scorer``): ``register(MyScorer)``."""


@hookspec
def register_generators(register):
    """Register generator classes (subclasses of ``eacps.Generator``): ``register(MyGenerator)``."""


@hookspec
def register_executors(register):
    """Register executor classes (subclasses of ``eacps.engine.executor.Executor``): ``register(MyExecutor)``."""


@hookspec
def register_value_models(register):
    """Register value models (subclasses of ``eacps.value_model.ValueModel``): ``register(MyValueModel)``. A value
    model predicts a partial trajectory's final potential, with an uncertainty; strategies that take a
    ``value_model`` parameter use it to skip judge calls whose outcome it settles (``eacps.screening``)."""


@hookspec
def register_task_sets(register):
    """Register task sets: ``register(fn, name="my-tasks")`` where ``fn(n: int, seed: int)`` returns a list of
    ``eacps.Condition``. A config can then say ``tasks = { name = "my-tasks", n = 30 }`` instead of listing
    conditions."""


@hookspec
def register_commands(register, cli):
    """Add commands to the ``eacps`` command line: ``register(cmd)`` adds a click command (``cli`` is the click
    group itself, for ``@cli.command()``; take either argument). Called only when the command line needs a
    command it does not know, or lists them (``eacps --help``); a name already taken is not replaced and the
    clash is reported. The built-in commands are added by the same hook (``eacps.commands.cli.register_commands``)."""


@hookspec
def register_demo_presets(register):
    """Register what ``eacps demo`` runs: ``register(eacps.plugins.DemoPreset(name=..., generator=...,
    criteria={criterion: (scorer, weight)}, tasks=...))``, every part by registered name. ``eacps demo --preset
    NAME`` picks one (default: the first by name); the core names no plugin itself."""


@hookspec
def register_generate_backends(register):
    """Teach ``eacps generate`` a model that is not a demo preset, and how to judge it:
    ``register(eacps.plugins.ModelFamily(name=..., generator=..., accepts=..., params=...))`` for the generator
    that loads ``--model`` (eacps-diffusers: a hub id or local folder), ``register(eacps.plugins.Judge(name=...,
    scorer=..., remote=..., params=...))`` for the scorer that judges each criterion (eacps-vlm: a local VLM, or
    an OpenAI-compatible server with ``--judge-url``). The core names no model, judge or plugin itself."""
