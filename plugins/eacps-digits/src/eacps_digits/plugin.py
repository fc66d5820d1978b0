"""Entry point of the ``eacps-digits`` plugin: the ``digits`` generator, its three scorers, task set and demo
preset. Everything is registered by reference or built without torch: listing plugins imports no model code."""

from __future__ import annotations

from eacps import hookimpl


@hookimpl
def register_generators(register):
    register("eacps_digits.generator:DigitsGenerator", name="digits")


@hookimpl
def register_scorers(register):
    for cls, name in (("DigitsConsistency", "digits-consistency"), ("DigitsRealism", "digits-realism"),
                      ("DigitsIdentity", "digits-identity")):
        register(f"eacps_digits.scorers:{cls}", name=name)


@hookimpl
def register_task_sets(register):
    register("eacps_digits.tasks:tasks", name="digits")


@hookimpl
def register_demo_presets(register):
    from eacps_digits.tasks import demo_preset

    register(demo_preset())
