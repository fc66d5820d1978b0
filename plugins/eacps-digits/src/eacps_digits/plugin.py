"""Entry point of the ``eacps-digits`` plugin: the ``digits`` generator, its three scorers, task set and demo
preset."""

from __future__ import annotations

from eacps import hookimpl


@hookimpl
def register_generators(register):
    from eacps_digits.generator import DigitsGenerator

    register(DigitsGenerator)


@hookimpl
def register_scorers(register):
    from eacps_digits.scorers import DigitsConsistency, DigitsIdentity, DigitsRealism

    register(DigitsConsistency)
    register(DigitsRealism)
    register(DigitsIdentity)


@hookimpl
def register_task_sets(register):
    from eacps_digits.tasks import tasks

    register(tasks, name="digits")


@hookimpl
def register_demo_presets(register):
    from eacps_digits.tasks import demo_preset

    register(demo_preset())
