"""A conformance suite that every strategy passes, built-in or third-party.

Subclass :class:`StrategyConformance` in a test module and supply one fixture, ``make_strategy``,
returning a factory ``(budget, seed) -> Strategy`` (the way ``optuna.testing.pytest_samplers`` asks
samplers for one fixture)::

    import pytest
    from eacps.testing import StrategyConformance
    from my_plugin import MyStrategy

    class TestMyStrategy(StrategyConformance):
        budget = 20  # optional: the budget every check runs with

        @pytest.fixture
        def make_strategy(self):
            return lambda budget, seed: MyStrategy(budget=budget, seed=seed)

The objective is a fast numpy function of the candidate's noise (``recipe.noise((1, 1, 4, 4))``), so
no model runs; a fixed, seeded fraction of candidates fails. The checks are the ask/tell contract of
:class:`eacps.Strategy`: the budget is respected exactly, asks are deterministic under a seed and do
not depend on how the engine batches asks and tells (ask-ahead), failed candidates are handled and
never best, a fresh instance replaying stored results asks the same recipes (resume), and no
candidate noise is proposed twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch

from eacps.generator import Generator
from eacps.recipe import Recipe
from eacps.scorer import Scorer
from eacps.strategy import Strategy
from eacps.types import Condition, Generated, Result, Status

__all__ = [
    "NOISE_SHAPE",
    "Objective",
    "StrategyConformance",
    "drive",
    "fake_objective",
    "noise_digest",
    "replay",
]

NOISE_SHAPE = (1, 1, 4, 4)
_W = np.linspace(-1.0, 1.0, 16, dtype=np.float64)  # the fake objective's preferred direction

Objective = Callable[[Recipe], Result]
StrategyFactory = Callable[[int, int], Strategy]


def noise_digest(recipe: Recipe) -> str:
    """A digest of the candidate's small noise and its steps: equal digests make the same image."""
    z = recipe.noise(NOISE_SHAPE).numpy().astype(np.float32)
    data = np.round(z, 5).tobytes() + repr(recipe.steps).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _uniform(recipe: Recipe, salt: bytes) -> float:
    z = recipe.noise(NOISE_SHAPE).numpy().astype(np.float32)
    h = hashlib.blake2b(z.tobytes(), digest_size=8, person=salt.ljust(16, b"\0")[:16]).digest()
    return int.from_bytes(h, "little") / 2.0**64


def fake_objective(fail_rate: float = 0.0, *, ties: bool = False, status: Status = Status.FAILED) -> Objective:
    """A deterministic objective of the noise: potential ``10·sigmoid(w·z)`` in [0, 10].

    A candidate fails (``status``, potential None) when a hash of its noise falls below ``fail_rate``,
    so the same recipe always fails. ``ties=True`` rounds potentials to integers (many ties).
    """

    def objective(recipe: Recipe) -> Result:
        if _uniform(recipe, b"eacps-fail") < fail_rate:
            return Result(recipe, status, None, reason="fake failure")
        z = recipe.noise(NOISE_SHAPE).numpy().astype(np.float64).ravel()
        potential = 10.0 / (1.0 + np.exp(-float(z @ _W) / 2.0))
        if ties:
            potential = float(round(potential))
        return Result(recipe, Status.OK, float(potential), scores={"fake": float(potential)})

    return objective


def drive(
    strategy: Strategy,
    objective: Objective,
    *,
    n: int,
    rng: np.random.Generator | None = None,
    until: int | None = None,
    max_rounds: int = 100_000,
) -> list[Recipe]:
    """Run the engine's ask/tell loop and check the contract at every step; return the asked recipes.

    Each round asks ``n``; without ``rng`` every pending result is told at once, in ask order. With
    ``rng`` the loop behaves like an asynchronous engine: a random non-empty subset of the pending
    results is told, in random order, while the rest stay in flight (only for strategies that declare
    ``ask_ahead = True``; the others are told every result, in random order, before the next ask, since
    the engine never asks them while results are in flight). ``until`` stops the
    loop once that many recipes were asked and every one was told (for resume tests).
    """
    asked: list[Recipe] = []
    pending: list[Recipe] = []
    ahead = bool(getattr(strategy, "ask_ahead", False))
    for _ in range(max_rounds):
        if until is not None and strategy.asked >= until and not pending:
            break
        if strategy.stop():
            break
        batch = list(strategy.ask(n))
        assert len(batch) <= n, f"asked for {n}, got {len(batch)}"
        assert all(isinstance(r, Recipe) for r in batch), "ask must return Recipe objects"
        assert strategy.asked <= strategy.budget, "asked more than the budget"
        if not batch:
            assert pending or strategy.stop(), "ask returned [] with no pending recipe and no stop reason"
            if not pending:
                break
        asked += batch
        pending += batch
        if not pending:
            continue
        if rng is None or not ahead:  # the engine asks a non-ask-ahead strategy only when idle
            told, pending = pending, []
            if rng is not None and len(told) > 1:
                told = [told[i] for i in rng.permutation(len(told))]
        else:
            k = int(rng.integers(1, len(pending) + 1)) if batch else len(pending)
            idx = rng.permutation(len(pending))
            told = [pending[i] for i in idx[:k]]
            pending = [pending[i] for i in sorted(idx[k:])]
        strategy.tell([objective(r) for r in told])
    else:
        raise AssertionError(f"the search did not finish in {max_rounds} rounds")
    if pending:  # a strategy that stopped early still gets its in-flight results
        strategy.tell([objective(r) for r in pending])
    return asked


def replay(strategy: Strategy, results: Sequence[Result]) -> None:
    """Resume: tell a fresh strategy the stored ``results`` by asking again and looking them up.

    Every recipe the fresh instance asks must be one of the stored ones (else it would not resume the
    same search); it asks in one large batch, since stored results are all available at once.
    """
    stored = {r.recipe: r for r in results}
    while len(strategy.history) < len(results):
        batch = strategy.ask(len(results) - strategy.asked) if strategy.asked < len(results) else []
        assert batch or strategy.pending, "replay stalled: the strategy asks nothing and waits for nothing"
        for r in batch:
            assert r in stored, f"replay diverged: asked {r.key}, which the original run never asked"
        strategy.tell([stored[r] for r in strategy.pending if r in stored])


class StrategyConformance:
    """Mixin of contract tests; subclasses provide the ``make_strategy`` fixture (see module doc)."""

    budget: int = 20

    @pytest.fixture
    def make_strategy(self) -> StrategyFactory:  # pragma: no cover - subclasses override
        raise NotImplementedError("define a `make_strategy` fixture returning (budget, seed) -> Strategy")

    # -- helpers ------------------------------------------------------------------------------
    def _run(self, make: StrategyFactory, seed: int = 0, **kw) -> tuple[Strategy, list[Recipe]]:
        s = make(self.budget, seed)
        kw.setdefault("n", 4)
        objective = kw.pop("objective", fake_objective())
        asked = drive(s, objective, **kw)
        return s, asked

    # -- budget -------------------------------------------------------------------------------
    @pytest.mark.parametrize("batch", [1, 2, 3, 7, 0])  # 0 stands for "the whole budget"
    def test_respects_budget_with_any_batch_size(self, make_strategy: StrategyFactory, batch: int) -> None:
        n = batch or self.budget
        s, asked = self._run(make_strategy, n=n)
        reasons = s.stop()
        assert reasons, "stop() must give a reason once the search is over"
        assert len(asked) == s.asked <= self.budget
        if "budget" in reasons:
            assert s.asked == self.budget
        else:
            assert set(reasons), "a strategy that leaves budget unused must say why"
        assert len(s.history) == len(asked)
        assert s.ask(3) == [] and not s.pending, "a finished strategy must not ask again"

    def test_uses_the_whole_budget_or_says_why(self, make_strategy: StrategyFactory) -> None:
        s, asked = self._run(make_strategy, n=5)
        reasons = s.stop()
        assert len(asked) == self.budget or (reasons and "budget" not in reasons)
        if len(asked) == self.budget:
            assert reasons.get("budget") == self.budget

    def test_ask_returns_empty_only_with_pending(self, make_strategy: StrategyFactory) -> None:
        # drive() asserts it on every round; here with a random, asynchronous schedule
        s, asked = self._run(make_strategy, n=3, rng=np.random.default_rng(7))
        assert asked and s.stop()

    # -- determinism --------------------------------------------------------------------------
    def test_deterministic_under_a_seed(self, make_strategy: StrategyFactory) -> None:
        _, a = self._run(make_strategy, seed=3, n=4)
        _, b = self._run(make_strategy, seed=3, n=4)
        _, c = self._run(make_strategy, seed=4, n=4)
        assert [r.key for r in a] == [r.key for r in b], "same seed and same results must give the same asks"
        assert [r.key for r in a] != [r.key for r in c], "a different seed must change the search"

    def test_schedule_contract(self, make_strategy: StrategyFactory) -> None:
        """Ask-ahead strategies (``ask_ahead = True``): how the engine batches asks and when results arrive
        must not change the recipes. Other strategies: the real engine, even with an executor that takes
        several batches in flight, never asks them while results are pending."""
        if getattr(make_strategy(self.budget, 0), "ask_ahead", False):
            _, sequential = self._run(make_strategy, n=1)
            _, whole = self._run(make_strategy, n=self.budget)
            _, asynchronous = self._run(make_strategy, n=3, rng=np.random.default_rng(1))
            keys = [r.key for r in sequential]
            assert [r.key for r in whole] == keys
            assert [r.key for r in asynchronous] == keys
            return
        asked_while_pending = run_in_engine(make_strategy(self.budget, 0), batch_size=3)
        assert asked_while_pending == 0, "the engine asked a strategy without ask_ahead while results were pending"

    # -- failures -----------------------------------------------------------------------------
    @pytest.mark.parametrize("status", [Status.FAILED, Status.FILTERED])
    def test_handles_failed_candidates(self, make_strategy: StrategyFactory, status: Status) -> None:
        objective = fake_objective(0.3, status=status)
        s, asked = self._run(make_strategy, n=3, rng=np.random.default_rng(2), objective=objective)
        failed = [r for r in s.history if not r.ok]
        assert failed, "the fake objective should have failed some candidates"
        assert len(asked) == self.budget or "budget" not in s.stop()
        best = s.best
        assert best is not None and best.ok and best.status is Status.OK
        assert best.potential == max(r.potential for r in s.history if r.ok)

    def test_survives_all_candidates_failing(self, make_strategy: StrategyFactory) -> None:
        s, asked = self._run(make_strategy, n=4, objective=fake_objective(1.0))
        assert asked and s.stop()
        assert s.best is None
        assert all(not r.ok for r in s.history)

    def test_deterministic_with_failures(self, make_strategy: StrategyFactory) -> None:
        objective = fake_objective(0.3)
        _, a = self._run(make_strategy, seed=5, n=2, objective=objective)
        _, b = self._run(make_strategy, seed=5, n=6, rng=np.random.default_rng(3), objective=objective)
        assert [r.key for r in a] == [r.key for r in b]

    # -- resume -------------------------------------------------------------------------------
    def test_resume_by_replay(self, make_strategy: StrategyFactory) -> None:
        objective = fake_objective(0.2)
        original = make_strategy(self.budget, 11)
        drive(original, objective, n=3, rng=np.random.default_rng(4), until=self.budget // 2)
        assert 0 < original.asked < self.budget or original.stop()
        resumed = make_strategy(self.budget, 11)
        replay(resumed, list(original.history))
        assert resumed.asked == original.asked
        assert resumed.seen == original.seen and len(resumed.history) == len(original.history)
        rest_a = drive(original, objective, n=2)
        rest_b = drive(resumed, objective, n=5, rng=np.random.default_rng(5))
        assert [r.key for r in rest_a] == [r.key for r in rest_b], "the resumed search diverged"

    def test_recipes_round_trip_through_json(self, make_strategy: StrategyFactory) -> None:
        _, asked = self._run(make_strategy, n=4)
        for r in asked:
            assert Recipe.from_json(r.key) == r

    # -- duplicates ---------------------------------------------------------------------------
    def test_never_proposes_the_same_noise_twice(self, make_strategy: StrategyFactory) -> None:
        objective = fake_objective(0.3, ties=True)  # many ties and failures: easy to fall into repeats
        _, asked = self._run(make_strategy, n=3, rng=np.random.default_rng(6), objective=objective)
        assert len({r.key for r in asked}) == len(asked), "a recipe was proposed twice"
        digests = [noise_digest(r) for r in asked]
        assert len(set(digests)) == len(digests), "two different recipes make the same noise (at the same steps)"


class _NoiseGenerator(Generator):
    """A numpy-fast generator for the conformance suite: image = sigmoid(noise), 4x4x1."""

    name = "conformance-noise"

    def noise_shape(self, condition: Condition) -> tuple[int, ...]:
        return NOISE_SHAPE

    @property
    def default_steps(self) -> int:
        return 1

    def settings(self) -> dict:
        return {}

    def generate(self, recipes, condition, *, steps=None):
        z = self.noises(recipes, condition)
        return [Generated(np.transpose(torch.sigmoid(x).numpy(), (1, 2, 0))) for x in z]


class _FakeScorer(Scorer):
    """Scores the fake objective of the noise behind each image (images are sigmoid(noise))."""

    name = "conformance-fake"

    def score(self, images, condition):
        out = []
        for img in images:
            p = np.clip(np.asarray(img, dtype=np.float64).reshape(-1), 1e-6, 1 - 1e-6)
            z = np.log(p / (1 - p))
            out.append(10.0 / (1.0 + np.exp(-float(z @ _W[: z.size]) / 2.0)))
        return out


def run_in_engine(strategy: Strategy, *, batch_size: int = 3) -> int:
    """Run ``strategy`` through the real engine with an overlapping executor; return how many times it was
    asked while some of its results were pending."""
    from eacps.engine import Engine
    from eacps.executor import LocalExecutor, LocalParams
    from eacps.potential import Criterion, Potential

    count = 0
    ask = strategy.ask

    def counting_ask(n: int) -> list[Recipe]:
        nonlocal count
        count += bool(strategy.pending)
        return ask(n)

    strategy.ask = counting_ask  # type: ignore[method-assign]
    engine = Engine(_NoiseGenerator(), Potential([Criterion("fake", _FakeScorer(), 1.0)]), batch_size=batch_size,
                    executor=LocalExecutor(LocalParams(max_inflight=4)))
    try:
        res = engine.run(Condition("conformance"), strategy)
    finally:
        engine.close()
    assert res.cost.candidates == strategy.asked
    return count
