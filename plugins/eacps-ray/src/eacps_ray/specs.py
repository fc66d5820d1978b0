"""Specs: what an actor needs to rebuild the engine's generator and potential in its own process.

Actors never receive pickled models. The driver turns the engine's live objects back into
``(kind, registered name, params)`` specs; each actor builds them once through the plugin registry
(``eacps.config.create``), and the executor checks that the rebuilt objects have the driver's
fingerprints, so what is stored under the driver's cache keys is what the actors computed.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any

from eacps import plugins
from eacps.config import create
from eacps.generator import Generator
from eacps.plugins import Entry, Kind
from eacps.potential import Calibration, Criterion, Potential
from eacps.scorer import Scorer

IN_PROCESS = "(registered in process)"


class SpecError(ValueError):
    """A live object cannot be described as a registered plugin spec."""


@dataclass(frozen=True)
class PluginSpec:
    """A registered plugin and its parameters: ``create(kind, name, params)`` rebuilds it."""

    kind: Kind
    name: str
    params: dict[str, Any]

    def build(self) -> Any:
        return create(self.kind, self.name, self.params, section=f"ray.{self.kind}")


@dataclass(frozen=True)
class CriterionSpec:
    name: str
    scorer: PluginSpec
    weight: float
    calibration: dict[str, Any]


@dataclass(frozen=True)
class PotentialSpec:
    criteria: tuple[CriterionSpec, ...]
    calibration_samples: int = 8

    def build(self) -> Potential:
        return Potential(
            [Criterion(c.name, c.scorer.build(), c.weight, Calibration(**c.calibration)) for c in self.criteria],
            calibration_samples=self.calibration_samples,
        )


@dataclass(frozen=True)
class WorkerSpec:
    """Everything an actor process needs: the specs and how to find their plugins."""

    generator: PluginSpec
    potential: PotentialSpec
    preview: PotentialSpec | None = None
    #: entry points to load (None: the actor's defaults); built-ins always load.
    entry_points: tuple[str, ...] | None = None
    plugin_modules: tuple[str, ...] = ()
    pythonpath: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    #: limit of each generator and scorer call in the actor (the driver's ``BatchComputer.timeout_s``)
    timeout_s: float | None = None

    def prepare(self) -> None:
        """In the actor, before building: sys.path, which plugins load, in-process plugin modules."""
        for p in reversed(self.pythonpath):
            if p not in sys.path:
                sys.path.insert(0, p)
        os.environ.update(self.env)
        if self.entry_points is not None:
            os.environ.pop("EACPS_DISABLE_PLUGIN_AUTOLOAD", None)
            os.environ.pop("EACPS_LOAD_PLUGINS", None)
            if self.entry_points:
                os.environ["EACPS_LOAD_PLUGINS"] = ",".join(self.entry_points)
            else:
                os.environ["EACPS_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        for name in self.plugin_modules:
            plugins.register_plugin(importlib.import_module(name))
        plugins.reset()


def _entry(kind: Kind, obj: Any) -> Entry:
    cls = type(obj)
    name = getattr(cls, "name", None)
    entry = plugins.get_registry().entries[kind].get(name) if isinstance(name, str) else None
    if entry is None or entry.cls is not cls:
        raise SpecError(
            f"the ray executor rebuilds the {kind} in each actor from the plugin registry, but "
            f"{cls.__module__}.{cls.__qualname__} (name {name!r}) is not a registered {kind}; install its plugin "
            "(entry point) or register its module in process and list it in plugin_modules"
        )
    return entry


def plugin_spec(kind: Kind, obj: Generator | Scorer) -> tuple[PluginSpec, Entry]:
    entry = _entry(kind, obj)
    return PluginSpec(kind, entry.name, obj.params.model_dump()), entry


def potential_spec(pot: Potential) -> tuple[PotentialSpec, list[Entry]]:
    crits, entries = [], []
    for c in pot.criteria:
        spec, entry = plugin_spec("scorer", c.scorer)
        crits.append(CriterionSpec(c.name, spec, c.weight, c.calibration.model_dump()))
        entries.append(entry)
    return PotentialSpec(tuple(crits), pot.calibration_samples), entries


def worker_spec(
    generator: Generator,
    potential: Potential,
    preview: Potential | None = None,
    *,
    plugin_modules: list[str] = (),
    pythonpath: list[str] = (),
    env: dict[str, str] | None = None,
    timeout_s: float | None = None,
) -> WorkerSpec:
    """Specs of an engine's objects, plus the entry points and in-process plugin modules that hold them."""
    gen, gen_entry = plugin_spec("generator", generator)
    pot, entries = potential_spec(potential)
    prev, prev_entries = potential_spec(preview) if preview is not None else (None, [])
    eps: list[str] = []
    modules = list(plugin_modules)
    for e in [gen_entry, *entries, *prev_entries]:
        if e.distribution == "eacps":
            continue  # built-in
        if e.distribution == IN_PROCESS:
            if not isinstance(sys.modules.get(e.plugin), types.ModuleType):
                raise SpecError(
                    f"{e.kind} {e.name!r} comes from an in-process plugin {e.plugin!r} that is not an "
                    "importable module; actors cannot load it"
                )
            if e.plugin not in modules:
                modules.append(e.plugin)
        elif e.plugin not in eps:
            eps.append(e.plugin)
    return WorkerSpec(gen, pot, prev, tuple(eps), tuple(modules), tuple(pythonpath), dict(env or {}), timeout_s)
