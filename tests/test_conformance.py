"""Every registered strategy (built-ins and installed plugins) passes the conformance suite."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap

import pytest

from eacps import Recipe, Status, Strategy, StrategyError
from eacps.plugins import build_registry
from eacps.testing import StrategyConformance

REGISTRY = build_registry()
NAMES = REGISTRY.names("strategy")


def test_builtins_are_covered() -> None:
    assert {"best-of-n", "eacps", "zero-order"} <= set(NAMES)
    assert not [p for p in REGISTRY.problems if "strateg" in p], REGISTRY.problems


#: the stop() reasons with which a registered strategy may leave budget unused (any other fails the suite)
EARLY_STOP = {"multi-fidelity": {"plan"}, "adaptive": {"predicted_gain", "inner:plan"},
              "tree-search": {"tree"}, "fk-steering": {"particles_finished"}}


class TestRegisteredStrategies(StrategyConformance):
    budget = 20

    def allowed_stop_reasons(self, strategy):
        return EARLY_STOP.get(strategy.name, set())

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


class _QuitsEarly(Strategy):
    name = "bad-quits-early"

    def _ask(self, n):
        return self.fresh_seeds(min(n, 5 - self.asked)) if self.asked < 5 else []

    def _stop(self):  # a reason, but not one anybody declared: 15 of 20 candidates silently unused
        return {"bored": True} if self.asked >= 5 and not self.pending else {}


KWARGS = {"test_respects_budget_with_any_batch_size": {"batch": 3}, "test_handles_failed_candidates":
          {"status": Status.FAILED}}


@pytest.mark.parametrize(
    ("cls", "check"),
    [
        (_Unseeded, "test_deterministic_under_a_seed"),
        (_ScheduleDependent, "test_schedule_contract"),
        (_SameNoise, "test_never_proposes_the_same_noise_twice"),
        (_Stalls, "test_respects_budget_with_any_batch_size"),
        (_QuitsEarly, "test_respects_budget_with_any_batch_size"),
        (_QuitsEarly, "test_uses_the_whole_budget_or_says_why"),
        (_QuitsEarly, "test_handles_failed_candidates"),
    ],
)
def test_suite_catches_broken_strategies(cls: type[Strategy], check: str) -> None:
    suite = StrategyConformance()
    with pytest.raises(AssertionError):
        getattr(suite, check)(lambda budget, seed: cls(budget=budget, seed=seed), **KWARGS.get(check, {}))


def test_declared_early_stop_passes() -> None:
    suite = StrategyConformance()
    suite.early_stop_reasons = ("bored",)
    for check in ("test_respects_budget_with_any_batch_size", "test_uses_the_whole_budget_or_says_why"):
        getattr(suite, check)(lambda budget, seed: _QuitsEarly(budget=budget, seed=seed), **KWARGS.get(check, {}))


# -- Strategy.optimize: the one driver loop ----------------------------------------------------------
def test_optimize_runs_the_search_and_returns_the_best() -> None:
    s = REGISTRY.get("strategy", "eacps")(budget=20, seed=0)
    f = lambda r: float(r.noise((1, 1, 2, 2)).sum())  # noqa: E731
    best = s.optimize(f, batch_size=3)
    assert len(s.history) == 20 and s.stop() == {"budget": 20}
    assert best is s.best and best.potential == max(f(r.recipe) for r in s.history)


def test_optimize_fails_non_finite_values_and_refuses_a_stalled_search() -> None:
    s = REGISTRY.get("strategy", "best-of-n")(budget=6, seed=0)
    assert s.optimize(lambda r: float("nan") if r.seed % 2 else 1.0, batch_size=4).potential == 1.0
    assert {r.status for r in s.history} == {Status.OK, Status.FAILED}
    with pytest.raises(StrategyError, match="no stop reason"):
        _Stalls(budget=20).optimize(lambda r: 1.0, batch_size=3)
    with pytest.raises(ValueError, match="batch_size"):
        _Stalls(budget=20).optimize(lambda r: 1.0, batch_size=0)


# -- eacps.testing imports (and a suite runs) without pytest ------------------------------------------
def test_testing_module_imports_without_pytest() -> None:
    code = textwrap.dedent("""
        import sys
        class BlockPytest:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pytest", "_pytest"):
                    raise ImportError(f"blocked: {name}")
        sys.meta_path.insert(0, BlockPytest())
        import eacps.testing as t
        from eacps.strategies.best_of_n import BestOfN
        t.StrategyConformance().test_deterministic_under_a_seed(lambda b, s: BestOfN(budget=b, seed=s))
        try:
            import pytest
        except ImportError:
            print("ok", sorted(m for m in sys.modules if m.split(".")[0] in ("pytest", "_pytest")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok []"
