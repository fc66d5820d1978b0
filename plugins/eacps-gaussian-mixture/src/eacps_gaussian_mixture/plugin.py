"""Entry point of the ``eacps-gaussian-mixture`` plugin: the ``gaussian-mixture`` generator, its three scorers
and task set. Registered by reference: listing plugins imports no torch."""

from __future__ import annotations

from eacps import hookimpl


@hookimpl
def register_generators(register):
    register("eacps_gaussian_mixture.generator:GaussianMixtureGenerator", name="gaussian-mixture")


@hookimpl
def register_scorers(register):
    for cls, name in (("GMConsistency", "gm-consistency"), ("GMRealism", "gm-realism"),
                      ("GMIdentity", "gm-identity")):
        register(f"eacps_gaussian_mixture.scorers:{cls}", name=name)


@hookimpl
def register_task_sets(register):
    register("eacps_gaussian_mixture.tasks:tasks", name="gaussian-mixture")
