"""Capabilities: strategies declare what they need, generators what they offer; checked once, before compute.

* ``noise_recipes``: noise-space recipes (subspace roots, pCN moves) are honoured, i.e. the generator's
  ``latents=`` is the initial noise (``Generator.supports_noise_recipes``).
* ``stepping``: the generator can start, advance, preview and branch trajectories (``eacps.stepping``).

A strategy's ``requires`` is a class attribute or, when it depends on its params, a property (EACPS needs
noise recipes only with the pCN neighbourhood). A generator may compute ``capabilities`` per instance (e.g.
per pipeline family); by default it follows its class flags.
"""

from __future__ import annotations

from typing import Any

KNOWN = frozenset({"noise_recipes", "stepping"})


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
    """What ``strategy`` needs (``requires``; none by default)."""
    return frozenset(getattr(strategy, "requires", None) or ())


def problem(strategy: Any, generator: Any) -> str | None:
    """Why ``strategy`` cannot run on ``generator`` (one line), or None."""
    missing = sorted(required(strategy) - offered(generator))
    if not missing:
        return None
    have = ", ".join(sorted(offered(generator))) or "none"
    return (f"strategy {getattr(strategy, 'name', strategy)!r} needs {', '.join(missing)}, which generator "
            f"{getattr(generator, 'name', generator)!r} does not offer (it offers: {have})")
