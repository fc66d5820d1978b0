"""Every registered strategy (built-ins and installed plugins) passes the conformance suite."""

from __future__ import annotations

import random

import pytest

from eacps import Recipe, Strategy
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


# -- the suite itself can fail: strategies that break one rule each are caught ----------------------
class _Unseeded(Strategy):
    name = "bad-unseeded"

    def _ask(self, n):
        return [Recipe.from_seed(random.randrange(2**32)) for _ in range(n)]


class _ScheduleDependent(Strategy):
    name = "bad-schedule"
    ask_ahead = True  # claims it, but breaks it

    def _ask(self, n):  # the seeds depend on how many results have arrived: not ask-ahead safe
        return [Recipe.from_seed(1000 * len(self.history) + self.asked + i) for i in range(n)]


class _SameNoise(Strategy):
    name = "bad-same-noise"

    def _ask(self, n):  # different recipes, same noise: x and 2x on a subspace
        return [Recipe(basis=(7,), coeffs=(float(self.asked + i + 1),)) for i in range(n)]


class _Stalls(Strategy):
    name = "bad-stalls"

    def _ask(self, n):
        return [] if self.asked >= 5 else self.fresh_seeds(min(n, 5 - self.asked))


@pytest.mark.parametrize(
    ("cls", "check"),
    [
        (_Unseeded, "test_deterministic_under_a_seed"),
        (_ScheduleDependent, "test_schedule_contract"),
        (_SameNoise, "test_never_proposes_the_same_noise_twice"),
        (_Stalls, "test_respects_budget_with_any_batch_size"),
    ],
)
def test_suite_catches_broken_strategies(cls: type[Strategy], check: str) -> None:
    suite = StrategyConformance()
    kwargs = {"batch": 3} if check == "test_respects_budget_with_any_batch_size" else {}
    with pytest.raises(AssertionError):
        getattr(suite, check)(lambda budget, seed: cls(budget=budget, seed=seed), **kwargs)
