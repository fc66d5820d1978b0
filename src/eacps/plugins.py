"""The one plugin manager: built-ins and entry-point plugins, registered the same way.

* ``EACPS_DISABLE_PLUGIN_AUTOLOAD=1`` turns entry-point loading off (built-ins still load).
* ``EACPS_LOAD_PLUGINS=a,b`` loads only the named entry points (by entry-point or distribution name).
* A plugin that fails to import, or whose hook raises, or that registers a name already taken, is
  reported by name in ``problems()``; the others keep working.
* Listing plugins runs no plugin code beyond import and the ``register_*`` hooks (classes are
  registered, never instantiated).
* Registration can be lazy: ``register("my_pkg.scorer:MyScorer", name="my-scorer")`` names a class by
  ``"module:attribute"``; the module is imported only when the plugin is first looked up (``get``), so
  ``eacps --help``, ``eacps plugins`` and config errors never import torch, diffusers or nevergrad. A
  lazily named module that fails to import (or exits, or is interrupted) is ``PluginLoadError``, naming it.
* A plugin that exits (``sys.exit``) or raises ``KeyboardInterrupt`` at import is a broken plugin like any
  other: reported by name, the command goes on.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from eacps import hookspecs

GROUP = "eacps"
Kind = Literal["strategy", "scorer", "generator", "executor", "tasks", "demo", "value_model", "generate"]
HOOKS: dict[Kind, str] = {
    "strategy": "register_strategies",
    "scorer": "register_scorers",
    "generator": "register_generators",
    "executor": "register_executors",
    "tasks": "register_task_sets",
    "demo": "register_demo_presets",
    "value_model": "register_value_models",
    "generate": "register_generate_backends",
}
BUILTINS = (
    "eacps.strategies.best_of_n",
    "eacps.strategies.eacps",
    "eacps.strategies.zero_order",
    "eacps.strategies.adaptive",
    "eacps.strategies.multi_fidelity",
    "eacps.strategies.fk_steering",
    "eacps.strategies.tree_search",
    "eacps.strategies.branched_best_of_n",
    "eacps.engine.executor",
    "eacps.value_model",
)


@dataclass(frozen=True)
class DemoPreset:
    """What ``eacps demo`` runs, every part by registered name: a generator, criteria (``{criterion: (scorer,
    weight)}``) and a task set (registered with ``register_task_sets``)."""

    name: str
    generator: str
    criteria: Mapping[str, tuple[str, float]]
    tasks: str
    title: str = ""


@dataclass(frozen=True)
class ModelFamily:
    """What ``eacps generate --model MODEL`` runs for a model that is not a demo preset: the registered
    ``generator`` that loads it, when ``accepts(MODEL)``; ``params(MODEL, allow_download)`` are the generator's
    params (``--steps`` is added by the core); ``described`` completes "known: <presets>, or ..." in errors."""

    name: str
    generator: str
    accepts: Callable[[str], bool]
    params: Callable[[str, bool], dict[str, Any]]
    described: str = ""
    distribution: str = ""  # what to install for it, named when it is missing


@dataclass(frozen=True)
class Judge:
    """How ``eacps generate`` judges a criterion of a model that is not a demo preset: the registered
    ``scorer`` with ``params(criterion, request)`` (``request``: the command's options as attributes: judge,
    judge_url, judge_key_env, prior, allow_download). ``remote``: used with ``--judge-url`` (the server's model
    named by ``--judge``, its key in ``key_env`` unless ``--judge-key-env``), else without it
    (``default_model`` when ``--judge`` is not given)."""

    name: str
    scorer: str
    remote: bool
    params: Callable[[str, Any], dict[str, Any]]
    default_model: str | None = None
    key_env: str | None = None


def did_you_mean(name: str, known: list[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest known name (difflib), or ``""``."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class UnknownPluginError(KeyError):
    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        hint = did_you_mean(name, known)
        super().__init__(f"unknown {kind} {name!r}{hint}{' ' if hint else '; '}known: {', '.join(known) or '(none)'}")

    def __str__(self) -> str:
        return self.args[0]


class PluginLoadError(LookupError):
    """A plugin registered by reference whose module fails when it is first used (one line, naming it)."""

    def __str__(self) -> str:
        return str(self.args[0])


#: what a plugin's import or hook may raise and still be reported as a broken plugin: exits and interrupts
#: included (a plugin calling sys.exit at import must not end ``eacps doctor`` silently)
PLUGIN_FAILURES = (Exception, SystemExit, KeyboardInterrupt)


def describe_failure(exc: BaseException) -> str:
    """One line for anything a plugin raised at import or in a hook, exits and interrupts included."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    if isinstance(exc, KeyboardInterrupt):
        return "it raised KeyboardInterrupt"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": ")


def lazy_attributes(package: str, names: Mapping[str, str]) -> Any:
    """A package's module ``__getattr__`` (PEP 562) that imports the submodule holding ``name`` on first use
    (``names``: attribute -> module), so importing a plugin package (its entry point does) imports no model
    library: ``__getattr__ = lazy_attributes(__name__, _LAZY)``."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__


def resolve(ref: str) -> Any:
    """The object named by ``"module:attribute"`` (or ``"module"``)."""
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


@dataclass
class Entry:
    """A registered plugin. ``target`` is the class (task-set function, demo preset) itself, or a
    ``"module:attribute"`` string imported on the first use of ``cls``."""

    kind: Kind
    name: str
    target: Any
    plugin: str  # the plugin (module / entry point) that registered it
    distribution: str  # the installed distribution that ships it

    @property
    def loaded(self) -> bool:
        return not isinstance(self.target, str)

    @property
    def cls(self) -> Any:
        """The registered object, imported now if it was registered by reference."""
        if isinstance(self.target, str):
            try:
                self.target = resolve(self.target)
            except PLUGIN_FAILURES as exc:
                raise PluginLoadError(f"{self.kind} {self.name!r} (plugin {self.plugin!r}, {self.distribution}) "
                                      f"cannot be imported from {self.target}: {describe_failure(exc)}") from None
        return self.target


@dataclass
class Registry:
    pm: pluggy.PluginManager
    entries: dict[Kind, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in HOOKS})
    problems: list[str] = field(default_factory=list)
    dist_of: dict[str, str] = field(default_factory=dict)

    def get(self, kind: Kind, name: str) -> type:
        entry = self.entries[kind].get(name)
        if entry is None:
            raise UnknownPluginError(kind, name, sorted(self.entries[kind]))
        return entry.cls  # imported now when registered by reference (PluginLoadError if it cannot be)

    def names(self, kind: Kind) -> list[str]:
        return sorted(self.entries[kind])

    def collect(self) -> None:
        for kind, hook in HOOKS.items():
            for impl in getattr(self.pm.hook, hook).get_hookimpls():  # registration order
                plugin = impl.plugin_name

                def register(cls: Any, name: str | None = None, *, _kind: Kind = kind, _plugin: str = plugin) -> None:
                    self._add(_kind, cls, _plugin, name)

                try:
                    impl.function(**{a: register for a in impl.argnames})
                except PLUGIN_FAILURES as exc:
                    why = describe_failure(exc)
                    why = f"raised {why}" if isinstance(exc, Exception) else why.removeprefix("it ")
                    self.problems.append(f"plugin {plugin!r}: {hook} {why}")

    def _add(self, kind: Kind, cls: Any, plugin: str, name: str | None = None) -> None:
        if isinstance(cls, str) and not name:
            self.problems.append(f"plugin {plugin!r}: registered a {kind} by reference ({cls!r}) without name=")
            return
        name = name or getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            self.problems.append(f"plugin {plugin!r}: registered a {kind} without a 'name' ({cls!r})")
            return
        if name in self.entries[kind]:
            first = self.entries[kind][name]
            self.problems.append(
                f"plugin {plugin!r}: {kind} name {name!r} is already registered by {first.plugin!r}; ignored"
            )
            return
        self.entries[kind][name] = Entry(kind, name, cls, plugin, self.dist_of.get(plugin, plugin))


def _autoload_allowed() -> tuple[bool, set[str] | None]:
    if os.environ.get("EACPS_DISABLE_PLUGIN_AUTOLOAD", "").strip() not in ("", "0"):
        return False, None
    allow = os.environ.get("EACPS_LOAD_PLUGINS")
    if allow is None:
        return True, None
    return True, {a.strip() for a in allow.split(",") if a.strip()}


def build_registry(extra_plugins: list[Any] | None = None, *, autoload: bool | None = None) -> Registry:
    """A fresh registry: built-ins, then entry points (unless disabled), then ``extra_plugins``."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    reg = Registry(pm)
    for modname in BUILTINS:
        pm.register(importlib.import_module(modname), name=modname)
        reg.dist_of[modname] = "eacps"
    allowed, allow = _autoload_allowed()
    if autoload is None:
        autoload = allowed
    if autoload:
        for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "?"
            if allow is not None and ep.name not in allow and dist not in allow:
                continue
            if pm.get_plugin(ep.name) is not None:
                reg.problems.append(f"plugin {ep.name!r} ({dist}): entry-point name already loaded; ignored")
                continue
            try:
                obj = ep.load()
                pm.register(obj, name=ep.name)
            except PLUGIN_FAILURES as exc:
                reg.problems.append(f"plugin {ep.name!r} ({dist}) failed to load: {describe_failure(exc)}")
                continue
            reg.dist_of[ep.name] = dist
    for obj in extra_plugins or []:
        name = getattr(obj, "__name__", None) or repr(obj)
        pm.register(obj, name=name)
        reg.dist_of.setdefault(name, "(registered in process)")
    reg.collect()
    return reg


_registry: Registry | None = None
_extra: list[Any] = []


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    if _registry is None:
        _registry = build_registry(list(_extra))
    return _registry


def register_plugin(obj: Any) -> None:
    """Register an in-process plugin (module or object with hookimpls); rebuilds the registry."""
    _extra.append(obj)
    reset()


def unregister_plugin(obj: Any) -> None:
    _extra.remove(obj)
    reset()


def reset() -> None:
    global _registry
    _registry = None


def get(kind: Kind, name: str) -> type:
    return get_registry().get(kind, name)


def report_problems(stream=sys.stderr) -> None:
    for p in get_registry().problems:
        print(f"eacps: warning: {p}", file=stream)
