"""Capabilities: strategies declare what they need, generators what they offer; checked once, before compute.

* ``noise_recipes``: noise-space recipes (subspace roots, pCN moves) are honoured, i.e. the generator's
  ``latents=`` is the initial noise (``Generator.supports_noise_recipes``).
* ``stepping``: the generator can start, advance, preview and branch trajectories (``eacps.stepping``).

A strategy's ``requires`` is a class attribute; when what it needs depends on its params, it overrides
``needs()`` (EACPS needs noise recipes only with the pCN neighbourhood). A generator may compute
``capabilities`` per instance (e.g. per pipeline family); by default it follows its class flags.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path
from typing import Any

KNOWN = frozenset({"noise_recipes", "stepping"})

#: the ``Generator`` class flag behind each capability, and its default in ``eacps.Generator``
FLAGS: dict[str, tuple[str, bool]] = {"noise_recipes": ("supports_noise_recipes", True),
                                      "stepping": ("supports_stepping", False)}
#: the ``Generator`` method that says why an instance cannot offer a capability its class flag declares
#: (a generator whose support depends on the loaded model overrides it)
PROBLEMS: dict[str, str] = {"noise_recipes": "noise_recipes_problem", "stepping": "stepping_problem"}
YES, NO, DEPENDS, UNKNOWN = "yes", "no", "depends on params", "unknown"


def offered(generator: Any) -> frozenset[str]:
    """What ``generator`` offers: its ``capabilities`` when it declares them, else its class flags."""
    caps = getattr(generator, "capabilities", None)
    if caps is not None:
        return frozenset(caps)
    out = set()
    if getattr(generator, "supports_noise_recipes", True):
        out.add("noise_recipes")
    problem = getattr(generator, "stepping_problem", None)
    if callable(problem) and problem() is None:
        out.add("stepping")
    return frozenset(out)


def required(strategy: Any) -> frozenset[str]:
    """What ``strategy`` (an instance) needs: its ``needs()`` (``eacps.Strategy``), else its ``requires``."""
    needs = getattr(strategy, "needs", None)
    return frozenset(needs() if callable(needs) else getattr(strategy, "requires", None) or ())


def problem(strategy: Any, generator: Any) -> str | None:
    """Why ``strategy`` cannot run on ``generator`` (one line), or None."""
    missing = sorted(required(strategy) - offered(generator))
    if not missing:
        return None
    have = ", ".join(sorted(offered(generator))) or "none"
    return (f"strategy {getattr(strategy, 'name', strategy)!r} needs {', '.join(missing)}, which generator "
            f"{getattr(generator, 'name', generator)!r} does not offer (it offers: {have})")


def declared(target: Any) -> dict[str, str]:
    """What a generator class declares it offers, without instantiating it or loading a model: per capability
    ``"yes"``/``"no"`` from its class flag, ``"depends on params"`` where the flag is true and the class overrides
    the capability's problem method (``PROBLEMS``: the instance decides, by model, scheduler, params) or where the
    flag is a property, ``"unknown"`` where it cannot be told. ``target`` is the class, or a
    ``"module:Class"`` reference, then read from the module's source without importing it."""
    if isinstance(target, str):
        return _declared_in_source(target)
    out = {}
    for cap, (flag, _) in FLAGS.items():
        value = inspect.getattr_static(target, flag, None)
        out[cap] = (YES if value else NO) if isinstance(value, bool) else DEPENDS if value is not None else UNKNOWN
        if out[cap] == YES and _overrides(target, PROBLEMS[cap]):
            out[cap] = DEPENDS
    return out


def _overrides(cls: Any, method: str) -> bool:
    """Whether ``cls`` (a generator class) defines ``method`` below ``eacps.Generator``, which defines them all."""
    owner = next((c for c in getattr(cls, "__mro__", ()) if method in vars(c)), None)
    return owner is not None and owner.__module__ != "eacps.generator"


def _declared_in_source(ref: str) -> dict[str, str]:
    """``declared`` of a class named by ``"module:Class"``, from the class body in the module's source: a
    constant flag, a property, or (a direct ``Generator`` subclass) the base class's default."""
    module, _, name = ref.partition(":")
    try:
        spec = importlib.util.find_spec(module)
        tree = ast.parse(Path(spec.origin).read_text()) if spec is not None and spec.origin else None
    except (ImportError, OSError, SyntaxError, ValueError):
        tree = None
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None) if tree else None
    if node is None:
        return dict.fromkeys(FLAGS, UNKNOWN)
    found: dict[str, str] = {}
    for stmt in node.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) \
            else []
        value = getattr(stmt, "value", None)
        for t in targets:
            if isinstance(t, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, bool):
                found[t.id] = YES if value.value else NO
        if isinstance(stmt, ast.FunctionDef):
            found[stmt.name] = DEPENDS
    bases = [b.value if isinstance(b, ast.Subscript) else b for b in node.bases]  # Generator[MyParams]
    direct = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in bases] == ["Generator"]
    out = {cap: found.get(flag, (YES if default else NO) if direct else UNKNOWN)
           for cap, (flag, default) in FLAGS.items()}
    return {cap: DEPENDS if v == YES and found.get(PROBLEMS[cap]) == DEPENDS else v for cap, v in out.items()}


def describe(caps: dict[str, str]) -> str:
    """One short line: ``"noise_recipes, stepping (depends on params)"``; ``"-"`` when none is offered."""
    parts = [cap if v == YES else f"{cap} ({v})" for cap, v in caps.items() if v != NO]
    return ", ".join(parts) or "-"
