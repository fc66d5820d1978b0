"""Every strategy, scorer, generator and executor this repository registers passes its kind's conformance suite (plugins
installed beside it from elsewhere run the suites in their own repositories)."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import random
import re
import subprocess
import sys
import textwrap
import types
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import toy
from repo import OWN, own_names

from eacps import Condition, Generated, Generator, Recipe, Scorer, Status, Strategy, StrategyError, hookimpl
from eacps.engine.executor import InlineExecutor
from eacps.plugins import build_registry
from eacps.strategies.best_of_n import BestOfN
from eacps.strategies.multi_fidelity import MultiFidelity
from eacps.strategies.tree_search import TreeSearch
from eacps.testing import (
    ExecutorConformance,
    GeneratorCase,
    GeneratorConformance,
    ScorerCase,
    ScorerConformance,
    StrategyConformance,
)

REGISTRY = build_registry()
NAMES = own_names(REGISTRY, "strategy")


def test_builtins_are_covered() -> None:
    assert {"best-of-n", "eacps", "zero-order"} <= set(NAMES)
    ours = [p for p in REGISTRY.problems if "strateg" in p and any(f"({d})" in p or f"'{d}'" in p for d in OWN)]
    assert not ours, ours


#: the stop() reasons with which a registered strategy may leave budget unused (any other fails the suite)
EARLY_STOP = {"multi-fidelity": {"plan"}, "adaptive": {"predicted_gain", "inner:plan"},
              "tree-search": {"tree"}, "fk-steering": {"particles_finished"}, "optuna": {"exhausted"}}


class TestRegisteredStrategies(StrategyConformance):
    budget = 20

    def allowed_stop_reasons(self, strategy):
        return EARLY_STOP.get(strategy.name, set())

    @pytest.fixture(params=NAMES)
    def make_strategy(self, request):
        cls = REGISTRY.get("strategy", request.param)
        return lambda budget, seed: cls(budget=budget, seed=seed)


# -- the suite itself can fail: strategies that break one rule each are caught ---------------------------------------
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


class _PlansInStop(Strategy):
    name = "bad-plans-in-stop"

    def __init__(self, params=None, *, budget=20, seed=0):
        super().__init__(params, budget=budget, seed=seed)
        self.queue: list[Recipe] = []

    def _ask(self, n):
        out, self.queue = self.queue[:n], self.queue[n:]
        return out

    def _stop(self):  # plans the next recipe: each extra call draws another seed
        if self.asked + len(self.queue) < self.budget:
            self.queue += self.fresh_seeds(1)
        return {}


class _StopsDrawHiddenSeeds(Strategy):
    name = "bad-hidden-draws"

    def __init__(self, params=None, *, budget=20, seed=0):
        super().__init__(params, budget=budget, seed=seed)
        self.rng = random.Random(seed)  # another library's object: the state snapshot sees only its type

    def _ask(self, n):
        return [Recipe.from_seed(self.rng.randrange(2**32)) for _ in range(n)]

    def _stop(self):  # each call moves the stream the asks draw from: caught by the twin that never calls stop()
        self.rng.random()
        return {}


class _CountsStops(BestOfN):
    name = "bad-counts-stops"

    def __init__(self, params=None, *, budget=20, seed=0):
        super().__init__(params, budget=budget, seed=seed)
        self.stops = 0

    def _stop(self):  # the asks do not change, the state does
        self.stops += 1
        return {}


class _PlanningMultiFidelity(MultiFidelity):
    def _stop(self):  # multi-fidelity before issue 20: stop() planned the next rung
        if self.full_steps is not None:
            self._next_rung()
        return super()._stop()


class _PlanningTreeSearch(TreeSearch):
    def _stop(self):  # tree-search before issue 20: stop() placed the levels
        if not self.points:
            self.points = self.schedule_steps(self.params.levels)
        return super()._stop()


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
        (_PlansInStop, "test_stop_is_a_pure_read"),
        (_StopsDrawHiddenSeeds, "test_stop_is_a_pure_read"),
        (_CountsStops, "test_stop_is_a_pure_read"),
        (_PlanningMultiFidelity, "test_stop_is_a_pure_read"),
        (_PlanningTreeSearch, "test_stop_is_a_pure_read"),
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


# -- Strategy.optimize: the one driver loop --------------------------------------------------------------------------
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


# -- eacps.testing imports (and a suite runs) without pytest ---------------------------------------------------------
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


# ====================================================================================================
# the scorer, generator and executor suites: the toy plugin passes them, plugins that break one rule fail
# ====================================================================================================
TOY_IMAGES = [np.linspace(a, b, 16, dtype=np.float32).reshape(4, 4, 1) for a, b in ((0.1, 0.7), (0.9, 0.3), (0.5, 0.6))]
NAN_IMAGE = np.full((4, 4, 1), np.nan, np.float32)


def toy_scorer_case(cls: type[Scorer], **kw) -> ScorerCase:
    changes = {"pixel": 3} if cls.Params.model_fields else {}
    return ScorerCase(lambda **p: cls(cls.Params(**p)), Condition("t", prompt="a toy"), TOY_IMAGES,
                      changes=kw.pop("changes", changes), bad_images=[NAN_IMAGE], **kw)


class TestToyScorers(ScorerConformance):
    covers = ("toy-pixel", "toy-mean")

    @pytest.fixture(params=[toy.ToyScorer, toy.ToyMeanScorer])
    def scorer_case(self, request) -> ScorerCase:
        return toy_scorer_case(request.param)


def toy_generator_case(cls: type[Generator] = toy.ToyGenerator, **kw) -> GeneratorCase:
    return GeneratorCase(lambda **p: cls(cls.Params(**p)), Condition("t", prompt="a toy"),
                         changes={"steps": 5}, runtime={"sleep": 0.0001}, preview_steps=3, **kw)


def stepping_toy_case(cls: type[Generator] = toy.ToyGenerator) -> GeneratorCase:
    """The toy generator with ``stepping = true`` (an analytic sampler), or a subclass of it."""
    return GeneratorCase(lambda **p: cls(cls.Params(**{"stepping": True, **p})), Condition("t", prompt="a toy"),
                         changes={"steps": 5}, runtime={"sleep": 0.0001}, preview_steps=3)


class TestToyGenerator(GeneratorConformance):
    covers = ("toy",)

    @pytest.fixture(params=["plain", "stepping"])
    def generator_case(self, request) -> GeneratorCase:
        return toy_generator_case() if request.param == "plain" else stepping_toy_case()


class _Random(toy.ToyMeanScorer):
    def score(self, images, condition):
        return [float(np.random.default_rng().uniform(0, 10)) for _ in images]


class _BatchMean(toy.ToyMeanScorer):
    def score(self, images, condition):  # each value depends on the rest of the batch
        return [5.0 * float(np.mean(im) + np.mean(images)) for im in images]


class _Constant(toy.ToyMeanScorer):
    def score(self, images, condition):
        return [5.0 for _ in images]


class _OneShort(toy.ToyMeanScorer):
    def score(self, images, condition):
        return super().score(images, condition)[:-1] if len(images) > 1 else super().score(images, condition)


class _UndeclaredPrompt(toy.ToyMeanScorer):
    def score(self, images, condition):  # needs the prompt, does not say so
        return [min(10.0, len(condition.prompt)) * float(np.mean(im)) for im in images]


class _AcceptsAnything(toy.ToyMeanScorer):
    requires = ("reference",)

    def check_condition(self, condition):  # declares reference, never refuses a condition without it
        pass


class _PoisonedByOne(toy.ToyMeanScorer):
    def score(self, images, condition):  # one NaN image and every value is NaN
        return [float(np.mean(np.stack(images))) * 10.0 for _ in images]


class _SettingsIgnoreParams(toy.ToyScorer):
    def settings(self):
        return {}


class _ReadsTheSeed(toy.ToyGenerator):
    def noises(self, recipes, condition):  # the seed's draw, whatever the recipe says: pCN children = parents
        return torch.cat([Recipe.from_seed(r.seed if r.seed is not None else r.basis[0]).noise((1, 1, 4, 4))
                          for r in recipes])


class _UnseededGenerator(toy.ToyGenerator):
    def noises(self, recipes, condition):
        return torch.randn((len(recipes), 1, 4, 4))


class _BatchDependent(toy.ToyGenerator):
    def generate(self, recipes, condition, *, steps=None):
        out = super().generate(recipes, condition, steps=steps)
        for g in out:
            g.image = np.clip(g.image + 0.01 * len(recipes), 0, 1).astype(np.float32)
        return out


class _SaysSeedOnly(toy.ToyGenerator):
    supports_noise_recipes = False

    def check(self, recipes):  # says it takes seed-only recipes, refuses nothing
        pass


class _DefaultStepsLie(toy.ToyGenerator):
    @property
    def default_steps(self):
        return self.params.steps + 1

    def generate(self, recipes, condition, *, steps=None):  # steps=None is not default_steps
        return super().generate(recipes, condition, steps=steps or self.params.steps)


# -- stepping generators that break one rule each (the stepping toy, subclassed) -------------------------------------
class _SwappedMarginal(toy.ToyGenerator):
    def marginal(self, traj):  # (b, a): the coefficients of x0 and eps confused
        return self.coefficients(traj.step, traj.total)[::-1]


class _ConstantMarginal(toy.ToyGenerator):
    def marginal(self, traj):  # the same coefficients at every step
        return 0.5, 0.5


class _ScaledNoise(toy.ToyGenerator):
    def marginal(self, traj):  # b ten times too small: a branch would mix in ten times too much noise
        a, b = self.coefficients(traj.step, traj.total)
        return a, b / 10


class _IgnoresBranches(toy.ToyGenerator):
    def generate(self, recipes, condition, *, steps=None):  # start -> advance(T) -> decode of the root noise
        total = steps or self.default_steps
        traj = self.advance(self.start([r.root for r in recipes], condition, steps=total), condition, total)
        return self.decode(traj.latents, condition)


class _AdvanceFromZero(toy.ToyGenerator):
    def advance(self, traj, condition, until):  # runs the first until - step calls of the schedule
        x, x0 = traj.latents, traj.x0
        for k in range(until - traj.step):
            x, x0 = self.model_call(x, k, traj.total)
        return traj.moved(x, x0, until)


class _X0IsTheState(toy.ToyGenerator):
    def advance(self, traj, condition, until):  # the "clean prediction" is the noisy latent
        out = super().advance(traj, condition, until)
        return replace(out, x0=out.latents.clone())


class _MarginalOfTheLastCall(toy.ToyGenerator):
    """Keeps the schedule position on itself (as a pipeline's scheduler does), not in the trajectory: right when
    the branch follows its own advance, wrong for a state continued from the cache after other paths ran on."""

    last_step = 0

    def advance(self, traj, condition, until):
        self.last_step = until
        return super().advance(traj, condition, until)

    def marginal(self, traj):
        return self.coefficients(min(self.last_step, traj.total - 1), traj.total)


class _ClosedFormGenerate(toy.ToyGenerator):
    def generate(self, recipes, condition, *, steps=None):  # plain recipes by the sampler's closed form, not stepped
        if any(r.is_path for r in recipes):
            return super().generate(recipes, condition, steps=steps)
        s = (steps or self.default_steps) / 10.0
        z = (toy.MU + s * self.noises(recipes, condition)) * (1 + 1e-6)
        return self.decode(z, condition)


class _JitteredMarginal(toy.ToyGenerator):
    def marginal(self, traj):  # unseeded jitter: a branch is not reproducible from its recipe
        a, b = self.coefficients(traj.step, traj.total)
        return a, b * (1 + 1e-3 * random.random())


BROKEN_STEPPERS = [
    (_SwappedMarginal, "test_stepping_marginal_matches_the_schedule", "marginal: the noise-to-signal ratio b/a"),
    (_ConstantMarginal, "test_stepping_marginal_matches_the_schedule", "noise-to-signal ratio b/a does not fall"),
    (_ScaledNoise, "test_stepping_marginal_matches_the_schedule", "not the scale of the N(0, 1) noise"),
    (_IgnoresBranches, "test_path_recipes_are_followed_or_refused", "differs from eacps.stepping.generate_paths"),
    (_AdvanceFromZero, "test_stepping_advance_in_pieces", "advance must continue from traj.step"),
    (_X0IsTheState, "test_stepping_previews", "x0 equals the noisy state"),
    (_MarginalOfTheLastCall, "test_stepping_cache_hit_equals_miss", "continued from a cached state differs"),
    (_ClosedFormGenerate, "test_stepping_composes_generate", "differs from generate by"),
    (_JitteredMarginal, "test_stepping_branches", "regenerated differently (computed twice)"),
]


@pytest.mark.parametrize(("cls", "check", "message"), BROKEN_STEPPERS, ids=[c.__name__ for c, _, _ in BROKEN_STEPPERS])
def test_stepping_section_catches_broken_steppers(cls, check, message) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        getattr(GeneratorConformance(), check)(stepping_toy_case(cls))
    getattr(GeneratorConformance(), check)(stepping_toy_case())  # the stepper it was broken from passes


def test_the_broken_steppers_fail_only_where_broken() -> None:
    """Each broken stepper passes every other stepping check: the failing check is the one that names the fault."""
    checks = sorted({c for _, c, _ in BROKEN_STEPPERS})
    for cls, broken, _ in BROKEN_STEPPERS:
        failed = []
        for check in checks:
            try:
                getattr(GeneratorConformance(), check)(stepping_toy_case(cls))
            except AssertionError:
                failed.append(check)
        assert broken in failed, (cls.__name__, failed)


def test_a_generator_that_cannot_step_refuses_path_recipes() -> None:
    gen = toy.ToyGenerator()
    with pytest.raises(ValueError, match=r"cannot compute path recipes .* eacps\.stepping\.generate_paths"):
        gen.generate([Recipe.from_seed(1).branch(3, 1.0, 2)], Condition("t"))

    class Silent(toy.ToyGenerator):  # computes path recipes as plain ones: caught by the suite
        def check(self, recipes):
            pass

    with pytest.raises(AssertionError, match="followed whole or refused"):
        GeneratorConformance().test_path_recipes_are_followed_or_refused(toy_generator_case(Silent))


class _DropsScores(InlineExecutor):
    name = "bad-drops-scores"

    def submit(self, batch):
        fut = super().submit(batch)
        out: Future = Future()
        out.set_result([(g, None) for g, _ in fut.result()])
        return out


class _Reorders(InlineExecutor):
    name = "bad-reorders"

    def submit(self, batch):
        out: Future = Future()
        out.set_result(list(reversed(super().submit(batch).result())))
        return out


class _RetriesForever(InlineExecutor):
    name = "bad-retries"

    def submit(self, batch):  # retries a failing batch 3 times while declaring no retries
        for _ in range(3):
            fut = super().submit(batch)
            if fut.exception() is None:
                return fut
        return fut


class _SwallowsFailures(InlineExecutor):
    name = "bad-swallows"

    def submit(self, batch):  # a failing batch comes back as OK black images, unscored
        fut = super().submit(batch)
        if fut.exception() is None:
            return fut
        out: Future = Future()
        out.set_result([(Generated(np.zeros((4, 4, 1), np.float32)), None) for _ in batch.recipes])
        return out


BROKEN = [
    (ScorerConformance, toy_scorer_case(_Random), "test_deterministic_and_batch_independent"),
    (ScorerConformance, toy_scorer_case(_BatchMean), "test_deterministic_and_batch_independent"),
    (ScorerConformance, toy_scorer_case(_Constant), "test_one_valid_value_per_image"),
    (ScorerConformance, toy_scorer_case(_OneShort), "test_one_valid_value_per_image"),
    (ScorerConformance, toy_scorer_case(_UndeclaredPrompt), "test_requires_is_honest"),
    (ScorerConformance, toy_scorer_case(_AcceptsAnything), "test_requires_is_honest"),
    (ScorerConformance, toy_scorer_case(_PoisonedByOne), "test_failures_are_data"),
    (ScorerConformance, toy_scorer_case(_SettingsIgnoreParams), "test_settings_track_params"),
    (ScorerConformance, toy_scorer_case(toy.ToyScorer, changes={}), "test_settings_track_params"),
    (GeneratorConformance, toy_generator_case(_ReadsTheSeed), "test_noise_recipe_capability_is_honest"),
    (GeneratorConformance, toy_generator_case(_UnseededGenerator), "test_regeneration_is_bit_identical"),
    (GeneratorConformance, toy_generator_case(_BatchDependent), "test_batch_equals_singles"),
    (GeneratorConformance, toy_generator_case(_SaysSeedOnly), "test_noise_recipe_capability_is_honest"),
    (GeneratorConformance, toy_generator_case(_DefaultStepsLie), "test_default_steps"),
    (ExecutorConformance, _DropsScores, "test_same_results_as_inline"),
    (ExecutorConformance, _Reorders, "test_same_results_as_inline"),
    (ExecutorConformance, _RetriesForever, "test_a_failing_batch_fails_alone"),
    (ExecutorConformance, _SwallowsFailures, "test_a_failing_batch_fails_alone"),
]


@pytest.mark.parametrize(("suite", "fixture", "check"), BROKEN,
                         ids=[f"{getattr(f, '__name__', None) or f.make.__closure__[0].cell_contents.__name__}-{c}"
                              for _, f, c in BROKEN])
def test_suites_catch_broken_plugins(suite, fixture, check, tmp_path) -> None:
    method = getattr(suite(), check)
    kwargs = {"tmp_path": tmp_path} if "tmp_path" in inspect.signature(method).parameters else {}
    with pytest.raises(AssertionError):
        method(fixture, **kwargs)
    if suite is not ExecutorConformance:  # the same check passes on the plugin it was broken from
        good = toy_scorer_case(toy.ToyMeanScorer) if suite is ScorerConformance else toy_generator_case()
        getattr(suite(), check)(good, **kwargs)


# -- every registered plugin runs its kind's suite -------------------------------------------------------------------
SUITES = {"scorer": "ScorerConformance", "generator": "GeneratorConformance", "executor": "ExecutorConformance"}


def covered_names() -> dict[str, set[str]]:
    """The ``covers`` of every conformance test class under tests/ and plugins/*/tests."""
    root = Path(__file__).parents[1]
    files = [*root.glob("tests/test_*.py"), *root.glob("plugins/*/tests/test_*.py")]
    out: dict[str, set[str]] = {k: set() for k in SUITES}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
            for kind, suite in SUITES.items():
                if suite in bases:
                    for stmt in node.body:
                        if isinstance(stmt, ast.Assign) and [getattr(t, "id", "") for t in stmt.targets] == ["covers"]:
                            out[kind] |= set(ast.literal_eval(stmt.value))
    return out


def uncovered(registry) -> dict[str, list[str]]:
    """Per kind, the names this repository's distributions register that no test class of the kind's suite
    covers (what else is installed is not ours to test)."""
    covered = covered_names()
    return {kind: sorted(set(own_names(registry, kind)) - covered[kind]) for kind in SUITES}


def test_every_registered_plugin_runs_its_conformance_suite() -> None:
    """Strategies run through TestRegisteredStrategies (every name this repository registers); every scorer,
    generator and executor it registers is covered by a test class of its kind's suite (``covers``)."""
    for kind, missing in uncovered(REGISTRY).items():
        assert not missing, f"registered {kind}s without a {SUITES[kind]} test class: {missing}"


class _FakeEntryPoint:
    """An installed entry point of the ``eacps`` group, as ``importlib.metadata`` lists it."""

    group = "eacps"

    def __init__(self, name: str, dist: str, plugin) -> None:
        self.name, self.value, self.plugin = name, plugin.__name__, plugin
        self.dist = type("Dist", (), {"name": dist})()

    def load(self):
        return self.plugin


def _plugin_module(name: str, **hooks):
    module = types.ModuleType(name)
    for hook, classes in hooks.items():
        def impl(register, _classes=classes):
            for cls in _classes:
                register(cls)
        impl.__name__ = hook
        setattr(module, hook, hookimpl(impl))
    return module


def test_the_completeness_check_ignores_third_party_plugins(monkeypatch) -> None:
    """A third-party distribution (a stepping generator, a scorer and a strategy that would fail our suite) is
    listed by the registry but neither checked for a test class nor run through the strategy suite; one of
    this repository's distributions registering an uncovered scorer still fails the check."""
    class AcmeStepper(toy.ToyGenerator):
        name = "acme-stepper"

    class AcmeScorer(toy.ToyMeanScorer):
        name = "acme-scorer"

    class AcmeSearch(_QuitsEarly):
        name = "acme-search"

    class Uncovered(toy.ToyMeanScorer):
        name = "digits-uncovered"

    acme = _plugin_module("acme_eacps", register_generators=[AcmeStepper], register_scorers=[AcmeScorer],
                          register_strategies=[AcmeSearch])
    ours = _plugin_module("eacps_digits_extra", register_scorers=[Uncovered])
    real = importlib.metadata.entry_points

    def entry_points(**kw):
        eps = list(real(**kw))
        if kw.get("group") == "eacps":
            eps += [_FakeEntryPoint("acme", "Acme_EACPS.plugin", acme), _FakeEntryPoint("digits-extra", "eacps_digits",
                                                                                         ours)]
        return eps

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    reg = build_registry()
    assert reg.entries["generator"]["acme-stepper"].distribution == "Acme_EACPS.plugin"
    assert {"acme-stepper", "acme-scorer", "acme-search"} <= {n for k in SUITES | {"strategy": 0} for n in reg.names(k)}
    assert "acme-search" not in own_names(reg, "strategy") and "eacps" in own_names(reg, "strategy")
    assert uncovered(reg) == {"scorer": ["digits-uncovered"], "generator": [], "executor": []}
