"""Fixtures of the core tests: the toy plugin (tests/toy.py), a toy potential and condition, and ``figures``.

Reliability tests record what they injected and checked with ``figures(promise, **numbers)``; the numbers are
written to ``$EACPS_RELIABILITY_FIGURES`` (default: ``<pytest tmp root>/reliability-figures.json``) and printed at
the end of the session, so ``docs/reliability.md`` can quote a real run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import toy

from eacps import Condition, plugins
from eacps.potential import Criterion, Potential


@pytest.fixture
def toy_plugin():
    """The toy plugin registered in-process for the duration of a test."""
    plugins.register_plugin(toy)
    try:
        yield toy
    finally:
        plugins.unregister_plugin(toy)


@pytest.fixture
def toy_potential() -> Potential:
    return Potential([Criterion("realism", toy.ToyScorer(), 4.0), Criterion("consistency", toy.ToyMeanScorer(), 1.0)])


@pytest.fixture
def cond() -> Condition:
    return Condition("task0", prompt="a toy")


_FIGURES: dict[str, dict] = {}


@pytest.fixture
def figures(request):
    """``figures(promise, **numbers)`` adds up the numbers of one promise for the report."""

    def record(promise: str, **numbers: float) -> None:
        cur = _FIGURES.setdefault(promise, {})
        for k, v in numbers.items():
            cur[k] = cur.get(k, 0) + v if isinstance(v, int | float) and not isinstance(v, bool) else v
        path = os.environ.get("EACPS_RELIABILITY_FIGURES") or str(
            request.config._tmp_path_factory.getbasetemp() / "reliability-figures.json"
        )
        Path(path).write_text(json.dumps(_FIGURES, indent=2, sort_keys=True))

    return record


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.write_sep("-", "eacps reliability figures")
        terminalreporter.write_line(json.dumps(_FIGURES, sort_keys=True))
