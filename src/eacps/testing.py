"""Conformance suites that every plugin passes, built-in or third-party: one per plugin kind.

Each suite is a plain class of ``test_*`` methods; a test module subclasses it and supplies one pytest fixture
(the way ``optuna.testing.pytest_samplers`` asks samplers for one fixture):

============================== ==================== ==================================================
suite                          fixture              returns
============================== ==================== ==================================================
:class:`StrategyConformance`   ``make_strategy``    ``(budget, seed) -> Strategy``
:class:`ScorerConformance`     ``scorer_case``      a :class:`ScorerCase`
:class:`GeneratorConformance`  ``generator_case``   a :class:`GeneratorCase`
:class:`ExecutorConformance`   ``make_executor``    ``() -> Executor``
:class:`ValueModelConformance` ``make_value_model`` ``() -> ValueModel``
============================== ==================== ==================================================

::

    import pytest
    from eacps.testing import StrategyConformance
    from my_plugin import MyStrategy

    class TestMyStrategy(StrategyConformance):
        budget = 20  # optional: the budget every check runs with

        @pytest.fixture
        def make_strategy(self):
            return lambda budget, seed: MyStrategy(budget=budget, seed=seed)

This module imports without pytest: parametrization goes through the class's ``pytest_generate_tests`` and
pytest itself is imported only to skip a check that does not apply. A suite's methods can also be called
directly with a factory (``StrategyConformance().test_deterministic_under_a_seed(make)``).

The strategy suite's objective is a fast numpy function of the candidate's noise (``recipe.noise((1, 1, 4,
4))``), so no model runs; a fixed, seeded fraction of candidates fails. It checks the ask/tell contract of
:class:`eacps.Strategy`: the budget is respected exactly (or the search says why it stopped early, with a
reason the test module declared), asks are deterministic under a seed and do not depend on how the engine
batches asks and tells (ask-ahead), failed candidates are handled and never best, a fresh instance replaying
stored results asks the same recipes (resume), no candidate noise is proposed twice, and ``stop()`` is a pure
read (calling it again changes neither its answer, the strategy's state nor the next asks).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from eacps.generator import Generator
from eacps.hookspecs import hookimpl
from eacps.params import Params
from eacps.recipe import Recipe
from eacps.scorer import Scorer
from eacps.strategy import Strategy, StrategyError
from eacps.types import Condition, Generated, Image, Result, Status

__all__ = [
    "NOISE_SHAPE",
    "ExecutorConformance",
    "GeneratorCase",
    "GeneratorConformance",
    "Objective",
    "ScorerCase",
    "ScorerConformance",
    "StrategyConformance",
    "ValueModelConformance",
    "drive",
    "fake_objective",
    "noise_digest",
    "path_noise",
    "replay",
    "state_snapshot",
]

NOISE_SHAPE = (1, 1, 4, 4)
_W = np.linspace(-1.0, 1.0, 16, dtype=np.float64)  # the fake objective's preferred direction

Objective = Callable[[Recipe], Result]
StrategyFactory = Callable[[int, int], Strategy]


def _skip(reason: str) -> None:
    """Skip the running check (pytest is imported only here, when a suite runs under it)."""
    import pytest

    pytest.skip(reason)


#: the fake generator's (and objective's) marginal: x = a·x0 + b·eps with x0 = x, so a branch of angle theta maps
#: z to a·z + b·(cos(theta)·z + sin(theta)·xi): a local move for small theta
_MARGINAL = (0.5, 0.5)


def path_noise(recipe: Recipe) -> torch.Tensor:
    """The fake generator's latent at the end of ``recipe``'s path: its initial noise with every branch move
    applied (what ``eacps.stepping`` computes on the fake stepping generator)."""
    from eacps.trajectory import Trajectory, renoise

    z = recipe.noise(NOISE_SHAPE)
    for b in recipe.branches:
        z = renoise(Trajectory(z, z, b.step, b.step + 1, (recipe,)), _MARGINAL, [b]).latents
    return z


def noise_digest(recipe: Recipe) -> str:
    """A digest of the candidate's small noise (its path's, for path recipes), its steps and where it stops:
    equal digests make the same image."""
    z = path_noise(recipe).numpy().astype(np.float32)
    data = np.round(z, 5).tobytes() + repr((recipe.steps, recipe.until)).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _uniform(recipe: Recipe, salt: bytes) -> float:
    z = path_noise(recipe).numpy().astype(np.float32)
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
        z = path_noise(recipe).numpy().astype(np.float64).ravel()
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
    """The engine's *asynchronous* schedule, checking the contract at every step; returns the asked recipes.

    (To run a search to its end with every result told before the next ask, use ``Strategy.optimize``.)
    Each round asks ``n``; without ``rng`` every pending result is told at once, in ask order. With ``rng`` a
    random non-empty subset of the pending results is told, in random order, while the rest stay in flight
    (only for strategies that declare ``ask_ahead = True``; the others are told every result, in random
    order, before the next ask, since the engine never asks them while results are in flight). ``until``
    stops the loop once that many recipes were asked and every one was told (for resume tests).
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
        if strategy.counts_steps:
            assert strategy.spent_steps <= strategy.step_budget, "charged more steps than the budget"
        else:
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


# ================================================================================================
# strategies
# ================================================================================================
class StrategyConformance:
    """Contract tests of a strategy; subclasses provide the ``make_strategy`` fixture (see module doc).

    A strategy that may stop before its budget lists the ``stop()`` reasons it does so with in
    ``early_stop_reasons`` (or overrides :meth:`allowed_stop_reasons`); stopping early for any other reason,
    or for none, fails the suite.
    """

    budget: int = 20
    early_stop_reasons: tuple[str, ...] = ()
    #: the schedule T every strategy is bound to (budget B = B·T denoising steps)
    full_steps: int = 10

    def pytest_generate_tests(self, metafunc: Any) -> None:
        if "batch" in metafunc.fixturenames:
            metafunc.parametrize("batch", [1, 2, 3, 7, 0])  # 0 stands for "the whole budget"
        if "status" in metafunc.fixturenames:
            metafunc.parametrize("status", [Status.FAILED, Status.FILTERED])

    def allowed_stop_reasons(self, strategy: Strategy) -> set[str]:
        """The reasons ``strategy`` may give for stopping before its budget is spent."""
        return set(self.early_stop_reasons)

    # -- helpers ------------------------------------------------------------------------------
    def _run(self, make: StrategyFactory, seed: int = 0, *, n: int = 4, objective: Objective | None = None,
             rng: np.random.Generator | None = None) -> tuple[Strategy, list[Recipe]]:
        """One whole search: ``Strategy.optimize`` (results told before each ask), or with ``rng`` the
        engine's asynchronous schedule (:func:`drive`)."""
        s = self._new(make, seed)
        objective = objective or fake_objective()
        if rng is not None:
            return s, drive(s, objective, n=n, rng=rng)
        try:
            s.optimize(objective, batch_size=n)
        except StrategyError as exc:  # optimize's own contract check: report it as a conformance failure
            raise AssertionError(str(exc)) from exc
        return s, [r.recipe for r in s.history]

    def _new(self, make: StrategyFactory, seed: int) -> Strategy:
        """A fresh strategy bound to ``full_steps`` (as the engine binds it)."""
        s = make(self.budget, seed)
        return s if s.full_steps is not None else s.bind(self.full_steps)

    def _check_stopped(self, s: Strategy, asked: Sequence[Recipe]) -> None:
        """The search is over: the whole budget was used, or the strategy said why not with a declared reason."""
        reasons = s.stop()
        assert reasons, "stop() must give a reason once the search is over"
        assert len(asked) == s.asked
        used, cap = (s.spent_steps, s.step_budget) if s.counts_steps else (s.asked, self.budget)
        assert used <= cap, f"{s.name} used {used} of a budget of {cap}"
        if used == cap:
            assert reasons.get("budget") == self.budget, f"budget spent but stop() says {reasons}"
            return
        assert "budget" not in reasons, f"stop() says budget with {s.asked} of {self.budget} asked"
        allowed = self.allowed_stop_reasons(s)
        undeclared = set(reasons) - allowed
        assert not undeclared, (
            f"{s.name} stopped after {s.asked} of {self.budget} candidates with undeclared reason(s) "
            f"{sorted(undeclared)}; a strategy that stops early declares its reasons (allowed: {sorted(allowed)})"
        )

    # -- budget -------------------------------------------------------------------------------
    def test_respects_budget_with_any_batch_size(self, make_strategy: StrategyFactory, batch: int) -> None:
        n = batch or self.budget
        s, asked = self._run(make_strategy, n=n)
        self._check_stopped(s, asked)
        assert len(s.history) == len(asked)
        assert s.ask(3) == [] and not s.pending, "a finished strategy must not ask again"

    def test_uses_the_whole_budget_or_says_why(self, make_strategy: StrategyFactory) -> None:
        for rng in (None, np.random.default_rng(8)):
            s, asked = self._run(make_strategy, n=5, rng=rng)
            self._check_stopped(s, asked)

    def test_ask_returns_empty_only_with_pending(self, make_strategy: StrategyFactory) -> None:
        # drive() asserts it on every round; here with a random, asynchronous schedule
        s, asked = self._run(make_strategy, n=3, rng=np.random.default_rng(7))
        assert asked
        self._check_stopped(s, asked)

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
        if getattr(self._new(make_strategy, 0), "ask_ahead", False):
            _, sequential = self._run(make_strategy, n=1)
            _, whole = self._run(make_strategy, n=self.budget)
            _, asynchronous = self._run(make_strategy, n=3, rng=np.random.default_rng(1))
            keys = [r.key for r in sequential]
            assert [r.key for r in whole] == keys
            assert [r.key for r in asynchronous] == keys
            return
        asked_while_pending = run_in_engine(self._new(make_strategy, 0), batch_size=3)
        assert asked_while_pending == 0, "the engine asked a strategy without ask_ahead while results were pending"

    # -- failures -----------------------------------------------------------------------------
    def test_handles_failed_candidates(self, make_strategy: StrategyFactory, status: Status) -> None:
        objective = fake_objective(0.3, status=status)
        s, asked = self._run(make_strategy, n=3, rng=np.random.default_rng(2), objective=objective)
        failed = [r for r in s.history if not r.ok]
        assert failed, "the fake objective should have failed some candidates"
        self._check_stopped(s, asked)
        best = s.best
        assert best is not None and best.ok and best.status is Status.OK
        assert best.potential == max(r.potential for r in s.history if r.eligible)

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
        original = self._new(make_strategy, 11)
        drive(original, objective, n=3, rng=np.random.default_rng(4), until=self.budget // 2)
        assert 0 < original.asked < self.budget or original.stop()
        resumed = self._new(make_strategy, 11)
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

    # -- stop() reads, never plans -------------------------------------------------------------
    def test_stop_is_a_pure_read(self, make_strategy: StrategyFactory) -> None:
        """Calling ``stop()`` any number of times between a tell and the next ask changes nothing: the same
        reasons each time, the strategy's state unchanged (:func:`state_snapshot`), and the same asks, round by
        round, as a twin that never calls ``stop()`` (planning belongs to ask and tell)."""
        objective = fake_objective(0.2)
        for n, rng_seed in ((3, None), (4, 9)):
            a, twin = self._new(make_strategy, 12), self._new(make_strategy, 12)
            ahead = bool(getattr(a, "ask_ahead", False))
            rng = np.random.default_rng(rng_seed) if rng_seed is not None and ahead else None
            pending: list[Recipe] = []
            for _ in range(10_000):
                before = state_snapshot(a)
                first = a.stop()
                for extra in range(2):
                    again = a.stop()
                    assert again == first, f"stop() gave {first}, then {again} (call {extra + 2}) with nothing between"
                changed = _first_change(before, state_snapshot(a))
                assert changed is None, f"{a.name}: stop() changed the strategy's state ({changed}): stop() must " \
                                        "only read; plan the next stage in ask or tell"
                if first and not pending:
                    break
                batch, twin_batch = list(a.ask(n)), list(twin.ask(n))
                assert [r.key for r in batch] == [r.key for r in twin_batch], (
                    f"{a.name} asked {[r.key for r in batch]} after calls to stop(), {[r.key for r in twin_batch]} "
                    "without them: stop() changed what ask returns")
                pending += batch
                if not pending:
                    assert first or a.stop(), "ask returned [] with no pending recipe and no stop reason"
                    break
                if rng is None:
                    told, pending = pending, []
                else:
                    k = int(rng.integers(1, len(pending) + 1))
                    told, pending = pending[:k], pending[k:]
                results = [objective(r) for r in told]
                a.tell(results)
                twin.tell(results)
            else:
                raise AssertionError("the search did not finish in 10000 rounds")
            assert a.stop() == twin.stop(), f"stop() says {a.stop()} after extra calls, {twin.stop()} without them"
            assert a.asked == twin.asked and [r.recipe for r in a.history] == [r.recipe for r in twin.history]

    # -- duplicates ---------------------------------------------------------------------------
    def test_never_proposes_the_same_noise_twice(self, make_strategy: StrategyFactory) -> None:
        objective = fake_objective(0.3, ties=True)  # many ties and failures: easy to fall into repeats
        _, asked = self._run(make_strategy, n=3, rng=np.random.default_rng(6), objective=objective)
        assert len({r.key for r in asked}) == len(asked), "a recipe was proposed twice"
        digests = [noise_digest(r) for r in asked]
        assert len(set(digests)) == len(digests), "two different recipes make the same noise (at the same steps)"


def state_snapshot(obj: Any, *, own: Sequence[str] = ()) -> Any:
    """A comparable picture of ``obj``'s state: its attributes, recursively through containers, dataclasses,
    pydantic models, numpy arrays and random generators (their bit-generator state), tensors and objects of
    ``eacps`` (or of a package in ``own``, default: ``obj``'s own package); objects of other libraries (an optuna
    study, a nevergrad optimizer) count by their type only. Cycles (a tree's parent links) are followed once."""
    roots = {"eacps", type(obj).__module__.split(".")[0], *own}
    seen: dict[int, int] = {}

    def walk(x: Any) -> Any:
        if x is None or isinstance(x, bool | int | float | str | bytes):
            return x
        if isinstance(x, np.ndarray):
            return ("ndarray", x.shape, str(x.dtype), x.tobytes())
        if isinstance(x, torch.Tensor):
            return ("tensor", tuple(x.shape), str(x.dtype), x.detach().cpu().contiguous().view(-1).tolist())
        if isinstance(x, np.random.Generator):
            return ("rng", json.dumps(x.bit_generator.state, sort_keys=True, default=str))
        if isinstance(x, np.generic):
            return x.item()
        if id(x) in seen:
            return ("seen", seen[id(x)])
        seen[id(x)] = len(seen)
        if isinstance(x, dict):
            return ("dict", [(walk(k), walk(v)) for k, v in x.items()])
        if isinstance(x, list | tuple) or type(x).__name__ == "deque":
            return (type(x).__name__, [walk(v) for v in x])
        if isinstance(x, set | frozenset):
            return ("set", sorted((walk(v) for v in x), key=repr))
        if hasattr(x, "model_dump") and hasattr(type(x), "model_fields"):
            return (type(x).__name__, x.model_dump(mode="json"))
        if type(x).__module__.split(".")[0] not in roots:
            return ("foreign", type(x).__qualname__)
        if hasattr(x, "__dataclass_fields__"):
            return (type(x).__qualname__, [(f, walk(getattr(x, f))) for f in x.__dataclass_fields__])
        attrs = getattr(x, "__dict__", None)
        if attrs is None:
            return ("opaque", type(x).__qualname__, repr(x))
        return (type(x).__qualname__, [(k, walk(v)) for k, v in attrs.items()])

    return walk(obj)


def _first_change(a: Any, b: Any, where: str = "") -> str | None:
    """Where two :func:`state_snapshot` pictures first differ (None: equal)."""
    if a == b:
        return None
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) == 2 and isinstance(a[1], list) \
            and isinstance(b[1], list) and a[0] == b[0]:
        if len(a[1]) != len(b[1]):
            return f"{where or 'the strategy'}: {len(a[1])} entries, then {len(b[1])}"
        for i, (x, y) in enumerate(zip(a[1], b[1], strict=True)):
            label = x[0] if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) and x[0] == y[0] else i
            if (got := _first_change(x[1] if label != i else x, y[1] if label != i else y,
                                     f"{where}.{label}" if where else str(label))) is not None:
                return got
    return where or "the strategy"


# ================================================================================================
# shared by the scorer and generator suites
# ================================================================================================
def _check_settings(make: Callable[..., Any], changes: Mapping[str, Any], runtime: Mapping[str, Any]) -> None:
    """``settings()`` is JSON, the fingerprint is stable across instances, every ``changes`` override
    changes it and no ``runtime`` override does."""
    a = make()
    json.dumps(a.settings(), sort_keys=True)  # plain JSON, no default=str needed
    assert a.fingerprint() == make().fingerprint(), "two instances with the same params differ in fingerprint"
    fields = set(type(a.params).model_fields) - set(runtime)
    if fields:
        assert changes, f"{type(a).__name__} has params {sorted(fields)}: declare in `changes` which ones change " \
                        "its output, so the suite checks that settings() tracks them"
    for k, v in changes.items():
        assert make(**{k: v}).fingerprint() != a.fingerprint(), f"params {k}={v!r} does not change the fingerprint"
    for k, v in runtime.items():
        assert make(**{k: v}).fingerprint() == a.fingerprint(), f"runtime param {k}={v!r} changes the fingerprint"


def _strip(condition: Condition, keep: Sequence[str]) -> Condition:
    """``condition`` without every optional field not in ``keep`` (``id``, ``prior`` and ``extra`` stay)."""
    from dataclasses import replace

    optional = ("prompt", "negative_prompt", "class_label", "reference", "reference_path")
    return replace(condition, **{f: None for f in optional if f not in keep})


# ================================================================================================
# scorers
# ================================================================================================
@dataclass
class ScorerCase:
    """What :class:`ScorerConformance` needs of one scorer."""

    #: ``make(**param_overrides)``: a fresh scorer
    make: Callable[..., Scorer]
    #: a condition holding everything the scorer ``requires``
    condition: Condition
    #: two or more distinct, valid images, each of which the scorer gives a valid score
    images: Sequence[Image]
    #: params overrides that must change ``settings()`` (every scorer with params declares at least one)
    changes: Mapping[str, Any] = field(default_factory=dict)
    #: params overrides that must not (device, batch size, timeouts...)
    runtime: Mapping[str, Any] = field(default_factory=dict)
    #: images the scorer must fail, as data (a non-score value, or an exception the potential isolates)
    bad_images: Sequence[Image] = ()
    #: params under which the scorer fails every image (e.g. an impossible threshold); None: none known
    failing: Mapping[str, Any] | None = None
    #: largest difference allowed between an image's score in a batch and alone
    tolerance: float = 1e-4
    #: the calibration a criterion applies to this scorer's raw values (None: the scorer's ``default_calibration``)
    calibration: Any = None
    #: False for a scorer that may give the same value to every case image (e.g. saturated at 10)
    varies: bool = True


class ScorerConformance:
    """Contract tests of a scorer; subclasses provide the ``scorer_case`` fixture returning a :class:`ScorerCase`.

    Checks: one valid value per image, in order; deterministic (same instance, fresh instance) and
    independent of batch composition and order; failures come back as data (FAILED with a reason, the other
    images of the batch keep their scores); ``settings()``/fingerprint follow the params; ``requires`` is
    honest (a condition lacking a required field is refused naming it, and one lacking every field the
    scorer does not require is scored).
    """

    def _values(self, case: ScorerCase, scorer: Scorer, images: Sequence[Image], condition: Condition | None = None
                ) -> list[float]:
        from eacps.potential import ScoreError, check_value

        values = list(scorer.score(list(images), condition or case.condition))
        assert len(values) == len(images), f"{len(values)} values for {len(images)} images"
        calibration = case.calibration
        if calibration is None and scorer.default_calibration:  # what its criterion applies by default
            from eacps.potential import Calibration

            calibration = Calibration(**scorer.default_calibration)
        out = []
        for i, v in enumerate(values):
            try:
                out.append(check_value(v, calibration))
            except ScoreError as exc:
                raise AssertionError(f"image {i} of the case got no valid score: {exc}") from exc
        return out

    #: the registered names this test class covers (the scorers its cases make)
    covers: tuple[str, ...] = ()

    def test_one_valid_value_per_image(self, scorer_case: ScorerCase) -> None:
        case = scorer_case
        assert len(case.images) >= 2, "give the suite at least two distinct images"
        s = case.make()
        assert isinstance(s, Scorer) and s.name
        assert not self.covers or s.name in self.covers, f"the case makes {s.name!r}, not one of {self.covers}"
        values = self._values(case, s, case.images)
        assert len(self._values(case, s, case.images[:1])) == 1
        if case.varies:
            assert len(set(values)) > 1, f"every image got {values[0]}: does {s.name} look at the image?"

    def test_deterministic_and_batch_independent(self, scorer_case: ScorerCase) -> None:
        case = scorer_case
        s = case.make()
        a = self._values(case, s, case.images)
        assert self._values(case, s, case.images) == a, "the same call twice gave different scores"
        assert self._values(case, case.make(), case.images) == a, "a fresh instance gave different scores"
        singles = [self._values(case, s, [im])[0] for im in case.images]
        backwards = self._values(case, s, case.images[::-1])[::-1]
        for other, what in ((singles, "one at a time"), (backwards, "in reverse order")):
            gap = max(abs(x - y) for x, y in zip(a, other, strict=True))
            assert gap <= case.tolerance, f"scores {what} differ from the batch's by {gap} > {case.tolerance}"

    def test_failures_are_data(self, scorer_case: ScorerCase) -> None:
        from eacps.potential import Criterion, Potential

        case = scorer_case
        if not case.bad_images and case.failing is None:
            _skip("the case declares no way to make this scorer fail (bad_images or failing params)")
        s = case.make()
        kw = {} if case.calibration is None else {"calibration": case.calibration}
        good = list(case.images[:2])
        alone = Potential([Criterion("c", s, 1.0, **kw)]).evaluate(good, case.condition)
        if case.bad_images:
            bad = list(case.bad_images)
            mixed = [good[0], *bad, good[1]]
            out = Potential([Criterion("c", s, 1.0, **kw)]).evaluate(mixed, case.condition)
            assert len(out) == len(mixed)
            for i, o in enumerate(out[1:-1]):
                assert o.potential is None and o.reason, f"bad image {i} was scored {o.scores} instead of failing"
            for o, ref in ((out[0], alone[0]), (out[-1], alone[1])):
                assert o.reason is None and abs(o.potential - ref.potential) <= case.tolerance, (
                    f"a failing image in the batch changed a good image's score ({ref.potential} -> {o.potential}, "
                    f"reason {o.reason})")
        if case.failing is not None:
            out = Potential([Criterion("c", case.make(**case.failing), 1.0, **kw)]).evaluate(good, case.condition)
            for o in out:
                assert o.potential is None and o.reason, f"params {dict(case.failing)} should fail every image"

    def test_settings_track_params(self, scorer_case: ScorerCase) -> None:
        _check_settings(scorer_case.make, scorer_case.changes, scorer_case.runtime)

    def test_requires_is_honest(self, scorer_case: ScorerCase) -> None:
        case = scorer_case
        s = case.make()
        s.check_condition(case.condition)
        for f in s.requires:
            if f == "prior":
                continue
            lacking = _strip(case.condition, [k for k in s.requires if k != f])
            try:
                s.check_condition(lacking)
            except ValueError as exc:
                assert f in str(exc), f"refusing a condition without {f}, the error does not name it: {exc}"
            else:
                raise AssertionError(f"{s.name} requires {f} but accepts a condition without it")
        bare = _strip(case.condition, s.requires)
        s.check_condition(bare)
        try:
            self._values(case, s, case.images, bare)  # scored without any field it did not declare
        except Exception as exc:
            raise AssertionError(f"{s.name} failed on a condition holding only what it requires {s.requires}: "
                                 f"{type(exc).__name__}: {exc}; declare the fields it needs in `requires`") from exc


# ================================================================================================
# generators
# ================================================================================================
@dataclass
class GeneratorCase:
    """What :class:`GeneratorConformance` needs of one generator."""

    #: ``make(**param_overrides)``: a fresh generator
    make: Callable[..., Generator]
    condition: Condition
    #: seeds of the recipes generated (three at least: one batch, and each alone)
    seeds: Sequence[int] = (0, 1, 2)
    #: largest pixel difference allowed between a recipe's image in a batch and alone (CPU convolutions of
    #: different batch sizes may differ in the last bits); regeneration in the same batch is always exact
    tolerance: float = 0.0
    #: params overrides that must change ``settings()`` (every generator with params declares at least one)
    changes: Mapping[str, Any] = field(default_factory=dict)
    #: params overrides that must not
    runtime: Mapping[str, Any] = field(default_factory=dict)
    #: a reduced fidelity (denoising steps) to try; None: skip
    preview_steps: int | None = None
    #: stepping generators: largest pixel difference allowed between start -> advance (at once or in pieces) ->
    #: decode and ``generate`` of the same batch; 0: bit for bit (what an exact stepper gives)
    stepping_tolerance: float = 0.0
    #: stepping generators that keep a cache of their own between calls (noise streams, encoded prompts): drops it,
    #: and the suite checks that what it computes after a drop equals what it computed with the cache warm
    forget: Callable[[Generator], None] | None = None


def _images(outs: Sequence[Generated], n: int) -> list[np.ndarray]:
    assert len(outs) == n, f"{len(outs)} outputs for {n} recipes"
    images = []
    for i, g in enumerate(outs):
        assert isinstance(g, Generated), f"output {i} is a {type(g).__name__}, not Generated"
        assert g.status is Status.OK, f"recipe {i} came back {g.status}: {g.reason}"
        img = np.asarray(g.image)
        assert img.ndim == 3 and img.dtype == np.float32, f"image {i}: shape {img.shape}, dtype {img.dtype}"
        assert np.isfinite(img).all() and img.min() >= 0.0 and img.max() <= 1.0, f"image {i} is not in [0, 1]"
        images.append(img)
    return images


class GeneratorConformance:
    """Contract tests of a generator; subclasses provide the ``generator_case`` fixture returning a
    :class:`GeneratorCase`.

    Checks: one float image in [0, 1] per recipe; a recipe (through its JSON) regenerates bit-identically in
    a fresh instance; batch equals singles within the declared tolerance; ``noises()`` has the declared
    shape; the noise-recipe capability is honest (a generator that takes noise recipes draws its image from
    ``noises()``: a pCN child differs from its parent and the same noise gives the same image; one that does
    not refuses them in ``check`` before any compute); ``steps=None`` is ``default_steps``;
    ``settings()``/fingerprint follow the params; path recipes are computed exactly or refused; and, for
    generators that declare stepping, the stepping section (``test_stepping_*``): start -> advance (at once and in
    uneven pieces) -> decode is ``generate`` (bit for bit unless ``stepping_tolerance``), advancing in pieces is
    advancing at once (bit for bit), ``marginal`` follows a denoising schedule and implies unit-scale noise, the
    clean prediction is not the noisy state and a preview (branched or not) is its decoding, branched paths
    (nested too) regenerate exactly from their recipes and are honoured by ``generate``, and a path continued from
    a cached state is the path computed from step 0 (with ``forget``: the generator's own cache dropped too).
    """

    def _recipes(self, case: GeneratorCase) -> list[Recipe]:
        assert len(case.seeds) >= 3, "give the suite three seeds at least"
        return [Recipe.from_seed(s) for s in case.seeds]

    #: the registered names this test class covers (the generators its cases make)
    covers: tuple[str, ...] = ()

    def test_one_image_per_recipe(self, generator_case: GeneratorCase) -> None:
        case = generator_case
        gen = case.make()
        assert not self.covers or gen.name in self.covers, f"the case makes {gen.name!r}, not one of {self.covers}"
        gen.check_condition(case.condition)
        recipes = self._recipes(case)
        images = _images(gen.generate(recipes, case.condition), len(recipes))
        assert len({im.shape for im in images}) == 1, "images of one batch differ in shape"
        assert not np.array_equal(images[0], images[1]), "two seeds gave the same image"

    def test_regeneration_is_bit_identical(self, generator_case: GeneratorCase) -> None:
        case = generator_case
        recipes = self._recipes(case)
        a = _images(case.make().generate(recipes, case.condition), len(recipes))
        again = [Recipe.from_json(r.key) for r in recipes]
        b = _images(case.make().generate(again, case.condition), len(recipes))
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert np.array_equal(x, y), f"recipe {recipes[i].key} regenerated differently (fresh instance, " \
                                         f"same batch): max diff {np.abs(x - y).max()}"

    def test_batch_equals_singles(self, generator_case: GeneratorCase) -> None:
        case = generator_case
        gen = case.make()
        recipes = self._recipes(case)
        batch = _images(gen.generate(recipes, case.condition), len(recipes))
        for r, img in zip(recipes, batch, strict=True):
            alone = _images(gen.generate([r], case.condition), 1)[0]
            gap = float(np.abs(alone - img).max())
            assert gap <= case.tolerance, f"{r.key} alone differs from its batch image by {gap} > {case.tolerance}"

    def test_noise_shape(self, generator_case: GeneratorCase) -> None:
        case = generator_case
        gen = case.make()
        if "noise_recipes" not in gen.capabilities:
            _skip(f"{gen.name} takes seed-only recipes: it draws its own noise")
        shape = tuple(gen.noise_shape(case.condition))
        assert shape[0] == 1, f"noise_shape {shape} must include the leading batch dimension of 1"
        recipes = self._recipes(case)
        z = gen.noises(recipes, case.condition)
        assert tuple(z.shape) == (len(recipes), *shape[1:]) and z.dtype == gen.noise_dtype
        assert torch.equal(z, gen.noises(recipes, case.condition)), "noises() is not deterministic"

    def test_noise_recipe_capability_is_honest(self, generator_case: GeneratorCase) -> None:
        case = generator_case
        gen = case.make()
        parent = Recipe.from_seed(case.seeds[0])
        child = parent.pcn(0.5, case.seeds[1])
        gen.check([parent])
        if "noise_recipes" not in gen.capabilities:
            try:
                gen.check([parent, child])
            except ValueError:
                return
            raise AssertionError(f"{gen.name} says it takes seed-only recipes but check() accepts {child.key}")
        gen.check([child])
        same = Recipe(basis=(case.seeds[0],), coeffs=(1.0,))  # the parent's noise, reached another way
        images = _images(gen.generate([parent, child, same], case.condition), 3)
        assert not np.array_equal(images[0], images[1]), "a pCN child gave its parent's image: the generator " \
                                                         "reads the seed, not noises()"
        if torch.equal(*gen.noises([parent, same], case.condition)):
            gap = float(np.abs(images[0] - images[2]).max())
            assert gap <= case.tolerance, f"the same initial noise gave a different image (by {gap})"

    def test_default_steps(self, generator_case: GeneratorCase) -> None:
        case = generator_case
        gen = case.make()
        recipes = self._recipes(case)
        a = _images(gen.generate(recipes, case.condition), len(recipes))
        b = _images(gen.generate(recipes, case.condition, steps=gen.default_steps), len(recipes))
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), "steps=None is not default_steps"
        if case.preview_steps is not None:
            c = _images(gen.generate(recipes, case.condition, steps=case.preview_steps), len(recipes))
            assert c[0].shape == a[0].shape
            assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True)), "steps has no effect"

    def test_settings_track_params(self, generator_case: GeneratorCase) -> None:
        _check_settings(generator_case.make, generator_case.changes, generator_case.runtime)

    # -- path recipes: followed whole or refused ---------------------------------------------------
    def _paths(self, case: GeneratorCase, total: int) -> list[Recipe]:
        """Two branches of one parent at mid-schedule, a preview there, and a plain recipe: one mixed batch."""
        k = max(1, total // 2)
        a, b, c = (Recipe.from_seed(s) for s in case.seeds[:3])
        return [a.branch(k, 1.0, 101), a.branch(k, 1.0, 102), b.with_until(k), c]

    def test_path_recipes_are_followed_or_refused(self, generator_case: GeneratorCase) -> None:
        """``generate`` given path recipes (branches, ``until``) computes them as ``eacps.stepping.generate_paths``
        does, in a batch and alone (stepping generators), or refuses them with a ValueError (the others:
        ``Generator.check``)."""
        from eacps.stepping import StateCache, generate_paths

        case = generator_case
        gen = case.make()
        if _steps(gen):
            paths = self._paths(case, gen.default_steps)
            ref = _images(generate_paths(gen, paths, case.condition, cache=StateCache()), len(paths))
            got = _images(gen.generate(paths, case.condition), len(paths))
            for i, r in enumerate(paths):
                (alone,) = _images(gen.generate([r], case.condition), 1)
                for what, img in (("in a batch", got[i]), ("alone", alone)):
                    gap = float(np.abs(img - ref[i]).max())
                    assert gap <= case.tolerance, (
                        f"generate() {what} differs from eacps.stepping.generate_paths on {r.key} by {gap}: a recipe "
                        "is followed whole (route path recipes: Generator.generate_stepwise or "
                        "eacps.stepping.route_paths)")
            return
        paths = self._paths(case, gen.default_steps)[:3]
        try:
            outs = gen.generate(paths, case.condition)
        except ValueError:
            return
        raise AssertionError(
            f"{gen.name} cannot step but generate() returned {len(outs)} outputs for path recipes such as "
            f"{paths[0].key}: a recipe is followed whole or refused (call self.check(recipes) in generate)")

    # -- stepping: runs only for generators that declare it (``supports_stepping``, no ``stepping_problem``) --------
    def _stepper(self, case: GeneratorCase) -> Generator:
        gen = case.make()
        if not _steps(gen):
            problem = gen.stepping_problem() if hasattr(gen, "stepping_problem") else "no stepping interface"
            _skip(f"{gen.name} does not step ({problem})")
        return gen

    def test_stepping_composes_generate(self, generator_case: GeneratorCase) -> None:
        """start -> advance -> decode is ``generate``, advancing at once and in uneven pieces (1, k, k+1, T-1, T),
        within ``stepping_tolerance`` (default: bit for bit)."""
        case = generator_case
        gen = self._stepper(case)
        recipes = self._recipes(case)
        traj = gen.start(recipes, case.condition)
        total = gen.default_steps
        assert (traj.step, traj.total, len(traj), traj.x0) == (0, total, len(recipes), None), \
            f"start() returned step {traj.step} of {traj.total} for {len(traj)} states (x0 {type(traj.x0).__name__})"
        direct = _images(gen.generate(recipes, case.condition), len(recipes))
        cuts = sorted({1, max(1, total // 3), min(total, total // 3 + 1), max(1, total - 1), total})
        pieces = traj
        for until in cuts:
            pieces = gen.advance(pieces, case.condition, until)
        for how, done in (("at once", gen.advance(traj, case.condition, total)), (f"in pieces {cuts}", pieces)):
            stepwise = _images(gen.decode(done.latents, case.condition), len(recipes))
            for r, x, y in zip(recipes, direct, stepwise, strict=True):
                gap = float(np.abs(x - y).max())
                assert gap <= case.stepping_tolerance, (
                    f"{r.key}: start, advance {how}, decode differs from generate by {gap} (stepping_tolerance "
                    f"{case.stepping_tolerance})")

    def test_stepping_advance_in_pieces(self, generator_case: GeneratorCase) -> None:
        """Advancing 0 -> 1 -> T/2 -> T is advancing 0 -> T, bit for bit (advance starts at ``traj.step``)."""
        case = generator_case
        gen = self._stepper(case)
        total = gen.default_steps
        start = gen.start(self._recipes(case), case.condition)
        once = gen.advance(start, case.condition, total)
        assert once.step == total and len(once) == len(start), f"advance to {total} returned step {once.step}"
        pieces = start
        for until in sorted({1, max(1, total // 2), total}):
            pieces = gen.advance(pieces, case.condition, until)
            assert pieces.step == until, f"advance to step {until} returned a trajectory at step {pieces.step}"
        gap = float((pieces.latents.float() - once.latents.float()).abs().max())
        assert torch.equal(pieces.latents, once.latents), (
            f"advancing 0 -> 1 -> {max(1, total // 2)} -> {total} differs from 0 -> {total} by {gap}: advance must "
            "continue from traj.step (model calls traj.step .. until-1), not from the start of the schedule")
        assert pieces.x0 is not None and torch.equal(pieces.x0, once.x0), "the clean prediction differs in pieces"

    def test_stepping_marginal_matches_the_schedule(self, generator_case: GeneratorCase) -> None:
        """``marginal`` at steps 1 .. T-1: finite with b > 0, a noise-to-signal ratio b/a that falls step by step
        (a denoising schedule), and an implied noise (x_k - a·x0)/b on the scale of the standard normal noise a
        branch mixes in (per-element std within [1/5, 5]) in the first half of the schedule (later, the implied noise
        E[eps | x_k] of an exact model legitimately shrinks: an exact Gaussian-mixture denoiser reaches 0.19)."""
        case = generator_case
        gen = self._stepper(case)
        total = gen.default_steps
        traj = gen.start(self._recipes(case), case.condition)
        ratios = []
        for k in range(1, total):
            traj = gen.advance(traj, case.condition, k)
            a, b = (float(v) for v in gen.marginal(traj))
            assert np.isfinite([a, b]).all() and a >= 0 and b > 0, f"marginal at step {k} of {total}: a={a}, b={b}"
            ratios.append(b / a if a > 0 else float("inf"))
            if k > total // 2:  # late, E[eps | x_k] of a good model shrinks below the noise's scale: not checked
                continue
            eps = (traj.latents.float() - a * traj.x0.float()) / b  # type: ignore[union-attr]
            spread = float(eps.std())
            assert 0.2 <= spread <= 5.0, (
                f"marginal at step {k} of {total} is (a={a:.4g}, b={b:.4g}): the noise it implies, (x_k - a·x0)/b, "
                f"has std {spread:.3g}, not the scale of the N(0, 1) noise a branch mixes in")
        for k, (r0, r1) in enumerate(itertools.pairwise(ratios), start=1):
            assert r1 < r0, (f"marginal: the noise-to-signal ratio b/a does not fall from step {k} ({r0:.4g}) to "
                             f"step {k + 1} ({r1:.4g}); a·x0 + b·eps at step k must follow the schedule")

    def test_stepping_previews(self, generator_case: GeneratorCase) -> None:
        """After k < T model calls the clean prediction x0 is not the noisy state, and a preview (``until=k``) is
        the decoded x0, through ``generate_paths`` and through ``generate``; a branched preview is the decoded x0
        of its path computed by hand from the generator's own pieces."""
        from eacps.stepping import StateCache, generate_paths, renoise

        case = generator_case
        gen = self._stepper(case)
        k = max(1, gen.default_steps // 2)
        root = Recipe.from_seed(case.seeds[0])
        traj = gen.advance(gen.start([root], case.condition), case.condition, k)
        assert traj.x0 is not None and traj.x0.shape == traj.latents.shape, f"no clean prediction x0 at step {k}"
        assert not torch.allclose(traj.x0.float(), traj.latents.float(), rtol=1e-3, atol=1e-5), (
            f"x0 equals the noisy state x_{k} at step {k} of {gen.default_steps}: x0 must be the model's prediction "
            "of the clean latent (previews and branch moves read it)")
        (decoded,) = _images(gen.decode(traj.x0, case.condition), 1)
        preview = root.with_until(k)
        (via_paths,) = _images(generate_paths(gen, [preview], case.condition, cache=StateCache()), 1)
        (via_generate,) = _images(gen.generate([preview], case.condition), 1)
        assert np.array_equal(via_paths, decoded), f"the preview {preview.key} is not decode(x0) at step {k}"
        gap = float(np.abs(via_generate - decoded).max())
        assert gap <= case.tolerance, f"generate() of the preview {preview.key} is not decode(x0) (by {gap})"
        # a branched preview: the generator's own pieces, by hand (start, advance, renoise by its marginal, advance)
        if gen.default_steps < 3:
            return  # no step left between a branch and a preview before the end
        k = max(2, k)
        j = max(1, k // 2)
        branched = root.branch(j, 0.7, 5).with_until(k)
        by_hand = gen.advance(gen.start([root], case.condition), case.condition, j)
        by_hand = renoise(by_hand, gen.marginal(by_hand), branched.branches)
        by_hand = gen.advance(by_hand, case.condition, k)
        (decoded,) = _images(gen.decode(by_hand.x0, case.condition), 1)  # type: ignore[arg-type]
        (via_paths,) = _images(generate_paths(gen, [branched], case.condition, cache=StateCache()), 1)
        assert np.array_equal(via_paths, decoded), f"the branched preview {branched.key} is not decode(x0) of its path"

    def _branched(self, case: GeneratorCase, total: int) -> list[Recipe]:
        """The mixed batch of :meth:`_paths` and a path with two branches (nested: the second on the first's path)."""
        a = Recipe.from_seed(case.seeds[0])
        nested = a.branch(max(1, total // 3), 0.8, 103).branch(max(1, total // 3) + 1, 1.2, 104) \
            if total >= 3 else a.branch(1, 0.8, 103)
        return [*self._paths(case, total), nested]

    def test_stepping_branches(self, generator_case: GeneratorCase) -> None:
        """Branched paths (nested ones too) are reproducible from their recipes: computed twice, by a fresh instance,
        and from their JSON keys, bit for bit; and a branch changes the image (that ``generate`` computes them
        too: :meth:`test_path_recipes_are_followed_or_refused`)."""
        from eacps.stepping import StateCache, generate_paths

        case = generator_case
        gen = self._stepper(case)
        paths = self._branched(case, gen.default_steps)
        ref = _images(generate_paths(gen, paths, case.condition, cache=StateCache()), len(paths))
        twice = _images(generate_paths(gen, paths, case.condition, cache=StateCache()), len(paths))
        fresh = _images(generate_paths(case.make(), paths, case.condition, cache=StateCache()), len(paths))
        keys = [Recipe.from_json(r.key) for r in paths]
        from_keys = _images(generate_paths(case.make(), keys, case.condition, cache=StateCache()), len(paths))
        for how, other in (("computed twice", twice), ("by a fresh instance", fresh), ("from its key", from_keys)):
            for r, x, y in zip(paths, ref, other, strict=True):
                assert np.array_equal(x, y), f"{r.key} regenerated differently ({how}): max diff {np.abs(x - y).max()}"
        (plain,) = _images(gen.generate([paths[0].root], case.condition), 1)
        assert not np.array_equal(ref[0], plain), f"the branch of {paths[0].key} does not change the image"
        assert not np.array_equal(ref[0], ref[1]), "two branch seeds gave the same image"
        assert not np.array_equal(ref[-1], plain), f"the branches of {paths[-1].key} do not change the image"

    def test_stepping_cache_hit_equals_miss(self, generator_case: GeneratorCase) -> None:
        """A path continued from a cached state (``eacps.stepping.StateCache``, after other paths ran to the end)
        is the path computed from step 0 (within the batch tolerance: the two are computed in other batches); and,
        for a generator with a cache of its own (``GeneratorCase.forget``), what it computes after dropping that
        cache is what it computed with it warm."""
        from eacps.stepping import StateCache, generate_paths

        case = generator_case
        gen = self._stepper(case)
        total = gen.default_steps
        k = max(1, total // 2)
        a, b = (Recipe.from_seed(s) for s in case.seeds[:2])
        cache = _counting_cache()
        generate_paths(gen, [a.with_until(k), b], case.condition, cache=cache)  # a stops at k; b runs to the end
        later = [a.branch(k, 0.9, 7), a, a.with_until(k)]
        hits = cache.hits
        hit = _images(generate_paths(gen, later, case.condition, cache=cache), len(later))
        assert cache.hits > hits, "generate_paths found no cached state to continue from"
        miss = _images(generate_paths(case.make(), later, case.condition, cache=StateCache()), len(later))
        for r, x, y in zip(later, hit, miss, strict=True):  # the same paths, other batches: the batch tolerance
            gap = float(np.abs(x - y).max())
            assert gap <= case.tolerance, (
                f"{r.key} continued from a cached state differs from the path computed from step 0 by {gap} > "
                f"{case.tolerance}: advance and marginal must read the trajectory, not what the generator did last")
        if case.forget is None:
            return
        part = gen.advance(gen.start([a, b], case.condition), case.condition, k)
        warm = gen.advance(part, case.condition, total)
        case.forget(gen)
        cold = gen.advance(part, case.condition, total)
        assert torch.equal(warm.latents, cold.latents), "continuing a trajectory after forget() differs from " \
                                                        "continuing it with the generator's cache warm"
        case.forget(gen)
        again = _images(generate_paths(gen, later, case.condition, cache=StateCache()), len(later))
        for r, x, y in zip(later, miss, again, strict=True):
            assert np.array_equal(x, y), f"{r.key} differs after forget() (by {np.abs(x - y).max()})"


def _counting_cache() -> Any:
    """A ``StateCache`` that counts the states it hands back (``hits``); ``eacps.stepping`` is imported on use."""
    from eacps.stepping import StateCache

    class CountingCache(StateCache):
        hits = 0

        def get(self, key: str) -> Any:
            got = super().get(key)
            self.hits += got is not None
            return got

    return CountingCache()


def _steps(gen: Generator) -> bool:
    """Whether ``gen`` declares stepping and can step as configured."""
    problem = gen.stepping_problem() if hasattr(gen, "stepping_problem") else "no stepping interface"
    return bool(getattr(gen, "supports_stepping", False)) and problem is None


# ================================================================================================
# executors
# ================================================================================================
class ExecutorConformance:
    """Contract tests of an executor; subclasses provide the ``make_executor`` fixture, ``() -> Executor`` (a
    fresh, unstarted executor).

    The executor computes batches of the suite's own numpy plugin (``conformance-noise`` generator,
    ``conformance-fake`` and ``conformance-flaky`` scorers), registered in process while a check runs so that
    executors computing in other processes rebuild them from the registry. Checks: every batch comes back
    exactly as the ``inline`` executor computes it (images, scores, FAILED reasons), at capacity; a batch
    whose computation raises comes back failed (the future raises or every candidate is FAILED) without
    losing the others; ``start`` works again after ``shutdown``; and for executors that isolate process
    crashes (``isolates_crashes = True``), a batch that kills its process on every attempt is FAILED after
    at most ``1 + retries`` attempts.
    """

    #: how many times the executor re-runs a batch whose process died (its retry bound)
    retries: int = 0
    #: True when batches run in processes whose death the executor survives (e.g. Ray actors)
    isolates_crashes: bool = False
    #: seconds to wait for one batch
    timeout_s: float = 300.0
    #: the registered names this test class covers (the executors its fixture makes)
    covers: tuple[str, ...] = ()

    def _computer(self, **gen_params: Any) -> Any:
        from eacps.engine.batch import BatchComputer
        from eacps.potential import Criterion, Potential

        potential = Potential([Criterion("fake", _FakeScorer(), 1.0), Criterion("flaky", _FlakyScorer(), 0.5)])
        return BatchComputer(_NoiseGenerator(_NoiseParams(**gen_params)), potential)

    @staticmethod
    def _batches(seeds: Sequence[int] = (1, 2, 3, 4), size: int = 3) -> list[Any]:
        from eacps.engine.batch import Batch

        out = []
        for k, s in enumerate(seeds):
            recipes = [Recipe.from_seed(s * 100 + i) for i in range(size - 1)]
            recipes.append(Recipe.from_seed(s * 100).pcn(0.3, s) if k % 2 else Recipe.from_seed(s * 100 + 99, steps=4))
            out.append(Batch(tuple(recipes), Condition(f"conformance-{k % 2}")))
        return out

    def _run(self, executor: Any, computer: Any, batches: Sequence[Any], *, restart: bool = False) -> list[Any]:
        """Submit ``batches`` keeping ``capacity`` in flight; each batch's pairs, or the exception its future
        raised. ``restart``: shut down and start again half way."""
        from eacps import plugins

        module = sys.modules[__name__]
        plugins.register_plugin(module)
        try:
            executor.start(computer)
            out: list[Any] = [None] * len(batches)
            futures: dict[int, Any] = {}
            nxt = 0
            while nxt < len(batches) or futures:
                while nxt < len(batches) and len(futures) < max(1, executor.capacity):
                    if restart and nxt == len(batches) // 2 and not futures:
                        executor.shutdown()
                        executor.start(computer)
                    futures[nxt] = executor.submit(batches[nxt])
                    nxt += 1
                k = min(futures)
                try:
                    out[k] = futures.pop(k).result(timeout=self.timeout_s)
                except Exception as exc:  # a failed batch is data; a timeout is a hang, reported as such
                    assert not isinstance(exc, TimeoutError), f"batch {k} did not finish in {self.timeout_s}s"
                    out[k] = exc
            return out
        finally:
            executor.shutdown()
            plugins.unregister_plugin(module)

    @staticmethod
    def _comparable(result: Any) -> Any:
        """What must agree across executors: images (bytes), statuses, reasons, scores; not timings."""
        if isinstance(result, BaseException):
            return ("raised", str(result))
        rows = []
        for g, sc in result:
            image = None if g.image is None else hashlib.blake2b(np.ascontiguousarray(g.image).tobytes()).hexdigest()
            score = None if sc is None else (dict(sc.scores), sc.potential, sc.reason)
            rows.append((g.status, g.reason, image, score))
        return rows

    @staticmethod
    def _failed(result: Any) -> bool:
        if isinstance(result, BaseException):
            return True
        return all(g.status is not Status.OK or (sc is not None and sc.potential is None) for g, sc in result)

    def _reference(self, batches: Sequence[Any], **gen_params: Any) -> list[Any]:
        from eacps.engine.executor import InlineExecutor

        return self._run(InlineExecutor(), self._computer(**gen_params), batches)

    def test_same_results_as_inline(self, make_executor: Callable[[], Any]) -> None:
        batches = self._batches()
        expected = [self._comparable(r) for r in self._reference(batches)]
        assert not any(isinstance(r, tuple) for r in expected), "the inline reference failed a batch"
        executor = make_executor()
        assert not self.covers or executor.name in self.covers, f"{executor.name!r} is not one of {self.covers}"
        got = [self._comparable(r) for r in self._run(executor, self._computer(), batches)]
        for k, (a, b) in enumerate(zip(expected, got, strict=True)):
            assert a == b, f"batch {k} differs from inline:\n inline {a}\n got    {b}"

    def test_a_failing_batch_fails_alone(self, make_executor: Callable[[], Any], tmp_path: Any) -> None:
        batches = self._batches()
        log = tmp_path / "attempts.log"
        bad = batches[1].recipes[0].seed
        results = self._run(make_executor(), self._computer(fail_seeds=[bad], log=str(log)), batches)
        reference = self._reference(batches)
        for k, (got, ref) in enumerate(zip(results, reference, strict=True)):
            if k == 1:
                assert self._failed(got), f"the failing batch came back {self._comparable(got)}"
            else:
                assert self._comparable(got) == self._comparable(ref), f"batch {k} changed beside a failing one"
        attempts = log.read_text().split().count(str(bad))
        assert 1 <= attempts <= 1 + self.retries, f"the failing batch was attempted {attempts} times"

    def test_restarts_after_shutdown(self, make_executor: Callable[[], Any]) -> None:
        batches = self._batches((5, 6))
        expected = [self._comparable(r) for r in self._reference(batches)]
        got = [self._comparable(r) for r in self._run(make_executor(), self._computer(), batches, restart=True)]
        assert got == expected

    def test_a_crashing_batch_is_failed_after_the_retry_bound(self, make_executor: Callable[[], Any],
                                                              tmp_path: Any) -> None:
        if not self.isolates_crashes:
            _skip("this executor computes in the test's own process (isolates_crashes = False)")
        batches = self._batches((7, 8))
        log = tmp_path / "attempts.log"
        bad = batches[0].recipes[0].seed
        results = self._run(make_executor(), self._computer(crash_seeds=[bad], log=str(log)), batches)
        assert self._failed(results[0]), f"a batch that kills its process came back {self._comparable(results[0])}"
        assert self._comparable(results[1]) == self._comparable(self._reference(batches[1:])[0])
        attempts = log.read_text().split().count(str(bad))
        assert 1 <= attempts <= 1 + self.retries, f"attempted {attempts} times with retries = {self.retries}"


# ================================================================================================
# the numpy-fast generator and scorer the strategy suite runs in the real engine
# ================================================================================================
class _NoiseParams(Params):
    fail_seeds: list[int] = Field(default_factory=list, description="batches holding these seeds raise")
    crash_seeds: list[int] = Field(default_factory=list, description="batches holding these seeds os._exit")
    log: str | None = Field(None, description="append each batch's seeds here (attempts, across processes)")


class _NoiseGenerator(Generator["_NoiseParams"]):
    """A numpy-fast generator for the conformance suite: image = sigmoid(noise), 4x4x1. It steps: the latent is
    the noise, its clean prediction the latent itself, and branches move it (``path_noise``). Its params make a
    batch raise or kill its process (for the executor suite). A fake for the strategy and executor suites, not a
    sampler: its clean prediction is the noisy state, so it would fail :class:`GeneratorConformance`'s stepping
    section (the stepping toy of ``tests/toy.py`` is the analytic sampler that passes it)."""

    name = "conformance-noise"
    Params = _NoiseParams
    supports_stepping = True

    def check(self, recipes: Sequence[Recipe]) -> None:
        p = self.params
        seeds = {r.seed for r in recipes}
        if p.log:
            with open(p.log, "a") as f:
                f.write(" ".join(str(s) for s in sorted(seeds, key=str)) + "\n")
        if seeds & set(p.crash_seeds):
            import os

            os._exit(3)
        if seeds & set(p.fail_seeds):
            raise RuntimeError("conformance-noise: this batch fails on purpose")
        super().check(recipes)

    def noise_shape(self, condition: Condition) -> tuple[int, ...]:
        return NOISE_SHAPE

    @property
    def default_steps(self) -> int:
        return 10

    def settings(self) -> dict:
        return {}

    def generate(self, recipes, condition, *, steps=None):
        return self.generate_stepwise(recipes, condition, steps=steps)

    def start(self, recipes, condition, *, steps=None):
        from eacps.trajectory import Trajectory

        return Trajectory(self.noises(recipes, condition), None, 0, steps or self.default_steps, tuple(recipes))

    def advance(self, traj, condition, until):
        return traj.moved(traj.latents, traj.latents, until)

    def decode(self, latents, condition):
        return [Generated(np.transpose(torch.sigmoid(x).numpy(), (1, 2, 0))) for x in latents]

    def marginal(self, traj):
        return _MARGINAL


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


class _FlakyScorer(Scorer):
    """Fails (as data) the images whose mean is below 0.45, scores the others by their mean."""

    name = "conformance-flaky"

    def score(self, images, condition):
        means = [float(np.mean(img)) for img in images]
        return [ValueError(f"too dark: {m:.3f}") if m < 0.45 else 10.0 * m for m in means]


@hookimpl
def register_generators(register: Callable[[type], None]) -> None:
    """The suites' own plugin, registered in process by the executor suite (``plugins.register_plugin``)."""
    register(_NoiseGenerator)


@hookimpl
def register_scorers(register: Callable[[type], None]) -> None:
    register(_FakeScorer)
    register(_FlakyScorer)


def run_in_engine(strategy: Strategy, *, batch_size: int = 3) -> int:
    """Run ``strategy`` through the real engine with an overlapping executor; return how many times it was
    asked while some of its results were pending."""
    from eacps.engine.engine import Engine
    from eacps.engine.executor import LocalExecutor, LocalParams
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




# ================================================================================================
# value models
# ================================================================================================
def value_pairs(n: int, seed: int = 0, *, signal: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (features, final) pairs in the shape of ``eacps.screening.features`` (preview, fraction,
    preview·fraction): the final is ``signal``·(the preview, more so later in the schedule) plus noise."""
    rng = np.random.default_rng([seed, 0x7A])
    preview = rng.normal(0.0, 1.0, n)
    frac = rng.choice([0.2, 0.4, 0.6, 0.8], n)
    final = signal * preview * (0.5 + frac) + rng.normal(0.0, 0.3, n)
    return np.stack([preview, frac, preview * frac], axis=1), final


class ValueModelConformance:
    """Contract tests of a value model (``eacps.value_model.ValueModel``); subclasses provide the
    ``make_value_model`` fixture, ``() -> ValueModel``. ``param_change`` (params differing from the fixture's) checks
    that the fingerprint follows the params; a model without params leaves it empty."""

    param_change: ClassVar[dict[str, Any]] = {}

    def test_predictions_are_finite_with_positive_std_fitted_or_not(self, make_value_model):
        X, y = value_pairs(40)
        model = make_value_model()
        for fitted in (False, True):
            if fitted:
                model.fit(X[:30], y[:30])
            mean, std = model.predict(X[30:])
            assert np.shape(mean) == (10,) and np.shape(std) == (10,)
            assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(np.asarray(std) > 0)

    def test_deterministic(self, make_value_model):
        X, y = value_pairs(40)
        a, b = make_value_model(), make_value_model()
        a.fit(X, y)
        b.fit(X, y)
        assert all(np.array_equal(p, q) for p, q in zip(a.predict(X), b.predict(X), strict=True))
        assert a.fingerprint() == b.fingerprint()

    def test_fit_improves_on_a_learnable_signal(self, make_value_model):
        X, y = value_pairs(200)
        model = make_value_model()
        model.fit(X[:150], y[:150])
        mean, _ = model.predict(X[150:])
        baseline = float(np.mean((y[150:] - y[:150].mean()) ** 2))
        assert float(np.mean((y[150:] - mean) ** 2)) < 0.5 * baseline

    def test_fits_previews_described_by_generator_features_too(self, make_value_model):
        """With ``value_model.features = "generator"`` a row is the three features then the generator's vector (any
        width): the model fits and predicts such rows, finite, with std > 0, and learns a signal only they carry."""
        X, _ = value_pairs(200)
        extra = np.random.default_rng(7).normal(size=(200, 5))
        y = extra[:, 2] + 0.1 * np.random.default_rng(8).normal(size=200)  # the previews' potentials say nothing
        W = np.hstack([X, extra])
        model = make_value_model()
        model.fit(W[:150], y[:150])
        mean, std = model.predict(W[150:])
        assert np.shape(mean) == (50,) and np.shape(std) == (50,)
        assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(np.asarray(std) > 0)
        assert float(np.mean((y[150:] - mean) ** 2)) < 0.5 * float(np.var(y[150:]))

    def test_fingerprint_follows_the_params(self, make_value_model):
        model = make_value_model()
        if not self.param_change:
            return
        other = type(model)(model.params.model_copy(update=self.param_change))
        assert other.fingerprint() != model.fingerprint()

    def test_state_round_trips_through_json(self, make_value_model):
        X, y = value_pairs(60)
        model = make_value_model()
        model.fit(X, y)
        again = make_value_model()
        again.load_state(json.loads(json.dumps(model.state())))
        for p, q in zip(model.predict(X), again.predict(X), strict=True):
            assert np.allclose(p, q, rtol=1e-12, atol=1e-12)
