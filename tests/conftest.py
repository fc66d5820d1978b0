from __future__ import annotations

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
