"""Entry point of the ``eacps-gaussian-mixture`` plugin: the ``gaussian-mixture`` generator, its three scorers
and task set."""

from __future__ import annotations

from eacps import hookimpl


@hookimpl
def register_generators(register):
    from eacps_gaussian_mixture.generator import GaussianMixtureGenerator

    register(GaussianMixtureGenerator)


@hookimpl
def register_scorers(register):
    from eacps_gaussian_mixture.scorers import GMConsistency, GMIdentity, GMRealism

    register(GMConsistency)
    register(GMRealism)
    register(GMIdentity)


@hookimpl
def register_task_sets(register):
    from eacps_gaussian_mixture.tasks import tasks

    register(tasks, name="gaussian-mixture")
