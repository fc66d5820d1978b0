"""Every registered strategy (built-ins and installed plugins) passes the conformance suite."""

from __future__ import annotations

import pytest

from eacps.plugins import build_registry
from eacps.testing import StrategyConformance

REGISTRY = build_registry()
NAMES = REGISTRY.names("strategy")


def test_builtins_are_covered() -> None:
    assert {"best-of-n", "eacps", "zero-order"} <= set(NAMES)
    assert not [p for p in REGISTRY.problems if "strateg" in p], REGISTRY.problems


class TestRegisteredStrategies(StrategyConformance):
    budget = 20

    @pytest.fixture(params=NAMES)
    def make_strategy(self, request):
        cls = REGISTRY.get("strategy", request.param)
        return lambda budget, seed: cls(budget=budget, seed=seed)
