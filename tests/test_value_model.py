"""Value models and judge screening (eacps.value_model, eacps.screening): the built-in passes the conformance
suite; warm starts are fingerprinted and a damaged or mismatched one is refused (exit 2); a good model saves
judge calls on a constructed case; a useless one (constant, noise) changes nothing; kill -9 during a screened
search resumes to the same search."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import types
from pathlib import Path
from typing import ClassVar

import configs
import numpy as np
import pytest
from test_resume_kill import rows, wait_for_rows
from test_screening import warm_file

from eacps import Condition, Generator, Recipe, Result, Status, hookimpl, plugins
from eacps.config import ConfigError
from eacps.screening import Screen, ScreenParams, load_warm_start, pairs_of, warm_start_data
from eacps.strategies.fk_steering import FKParams, FKSteering
from eacps.strategies.multi_fidelity import MultiFidelity, MultiFidelityParams
from eacps.strategies.tree_search import TreeSearch, TreeSearchParams
from eacps.testing import StrategyConformance, ValueModelConformance, fake_objective, replay
from eacps.value_model import BayesRidge, ValueModel

T = 10


class TestBayesRidge(ValueModelConformance):
    param_change: ClassVar[dict] = {"alpha": 3.0}

    @pytest.fixture
    def make_value_model(self):
        return BayesRidge


# -- useless value models, registered like any plugin ---------------------------------------------------------
class Constant(ValueModel):
    """Predicts the mean of the finals, confidently: an overconfident model with no information."""

    name = "tv-constant"

    def fit(self, X, y):
        self.m = float(np.mean(y))

    def predict(self, X):
        return np.full(len(X), getattr(self, "m", 0.0)), np.full(len(X), 1e-3)

    def state(self):
        return {"m": getattr(self, "m", 0.0)}

    def load_state(self, state):
        self.m = state["m"]


class Noise(Constant):
    """Pure noise: a deterministic hash of the features, as confident as the finals' spread."""

    name = "tv-noise"

    def fit(self, X, y):
        self.m, self.s = float(np.mean(y)), float(np.std(y)) or 1.0

    def predict(self, X):
        h = [int(hashlib.sha256(np.asarray(x, float).tobytes()).hexdigest()[:8], 16) / 2**32 for x in X]
        return self.m + self.s * 2 * (np.array(h) - 0.5), np.full(len(X), 0.1 * self.s)


@pytest.fixture
def useless_models():
    mod = types.ModuleType("tv_useless")
    mod.register_value_models = hookimpl(lambda register: (register(Constant), register(Noise)))
    plugins.register_plugin(mod)
    try:
        yield
    finally:
        plugins.unregister_plugin(mod)


# -- a constructed case: a path's value is its root's, at every step, so previews predict finals exactly -------
def _value(recipe: Recipe) -> float:
    return int(hashlib.sha256(recipe.root.key.encode()).hexdigest()[:8], 16) / 2**32


def objective(recipe: Recipe) -> Result:
    return Result(recipe, Status.OK, _value(recipe))


STRATEGIES = [(FKSteering, FKParams), (MultiFidelity, MultiFidelityParams), (TreeSearch, TreeSearchParams)]


def run(cls, params_cls, value_model=None, budget=20, **params):
    s = cls(params_cls(value_model=value_model, **params), budget=budget, seed=0).bind(T)
    s.optimize(objective, batch_size=4)
    return s


@pytest.mark.parametrize(("cls", "params_cls"), STRATEGIES[:2])
def test_a_good_model_saves_judge_calls_and_keeps_the_winner(tmp_path, cls, params_cls):
    # multi-fidelity saves judge calls when a promoted path is dropped, not refilled: with promotion "branch" its
    # children go to the other promoted paths instead (the same calls)
    extra = {"promotion": "drop"} if cls is MultiFidelity else {}
    plain = run(cls, params_cls, **extra)
    screened = run(cls, params_cls, {"warm_start": warm_file(tmp_path)}, **extra)
    d = screened.diagnostics()["value_model"]
    assert d["trusted"] and d["pruned"] > 0 and d["warm_pairs"] == 60
    assert len(screened.history) <= len(plain.history) - d["pruned"]  # a told result is a judge call; a pruned
    # path saves at least its next one
    assert screened.spent_steps < plain.spent_steps
    assert screened.best.potential >= plain.best.potential  # the best path is never pruned
    assert all(r.recipe.until is None for r in [screened.best])


LEVELS4 = [0.2, 0.4, 0.6, 0.8]


def test_tree_search_learns_online_and_prunes_nodes():
    """The strategy suite's objective (a function of the path's noise; previews rank like finals, loosely): the tree
    learns from its own leaves, prunes nodes, and grows none below a pruned node."""
    def tree(value_model=None):
        # four levels: enough previews per leaf that the screen is trusted early and then withdrawn; nodes of a fixed
        # width (the scene this test measures was set before they widened by default)
        s = TreeSearch(TreeSearchParams(levels=LEVELS4, value_model=value_model, widen=0), budget=20,
                       seed=0).bind(T)
        s.optimize(fake_objective(), batch_size=4)
        return s

    s, plain = tree({"min_pairs": 8}), tree()
    d = s.diagnostics()["value_model"]
    assert d["pairs"] > 8 and d["warm_pairs"] == 0 and d["pruned"] > 0
    assert s.screen.checks[0]["trusted"] and not d["trusted"]  # trusted at first, withdrawn as pairs showed it weak
    assert len(s.ever_pruned) == d["pruned"] and not any(n.pruned for n in s.nodes.values())  # untrusted: lifted
    assert [r.recipe for r in s.history] != [r.recipe for r in plain.history]  # the budget went elsewhere
    assert s.best.potential >= plain.best.potential
    assert d["fit_seconds"] > 0 and d["predict_seconds"] > 0  # measured
    again = TreeSearch(TreeSearchParams(levels=LEVELS4, value_model={"min_pairs": 8}, widen=0), budget=20,
                       seed=0).bind(T)
    replay(again, s.history)  # resume: a fresh strategy replaying the told results asks the same recipes
    assert again.ever_pruned == s.ever_pruned


@pytest.mark.parametrize("model", ["tv-constant", "tv-noise"])
@pytest.mark.parametrize(("cls", "params_cls"), STRATEGIES)
def test_a_useless_model_falls_back_to_the_judge(tmp_path, useless_models, cls, params_cls, model):
    """Fitted on the same informative pairs, a constant or noise model never passes the trust check: the search asks
    exactly what it asks without screening (same judge calls, same winner)."""
    path = warm_file(tmp_path, plugins.get("value_model", model)())
    plain = run(cls, params_cls)
    screened = run(cls, params_cls, {"model": model, "warm_start": path, "min_pairs": 4})
    d = screened.diagnostics()["value_model"]
    assert d["pruned"] == 0 and not d["trusted"] and d["last_check"] is not None
    assert [r.recipe for r in screened.history] == [r.recipe for r in plain.history]
    assert screened.best.recipe == plain.best.recipe


# -- warm starts: fingerprinted, refused in one line ----------------------------------------------------------
@pytest.mark.parametrize(("edit", "why"), [
    (lambda text: text[: len(text) // 2], "damaged, not a warm-start file"),
    (lambda text: text.replace('"y": [', '"y": [0.5, '), "damaged (its contents do not match its fingerprint)"),
    (lambda text: "[]", "not a warm-start file"),
])
def test_a_damaged_warm_start_is_refused(tmp_path, edit, why):
    path = Path(warm_file(tmp_path))
    path.write_text(edit(path.read_text()))
    with pytest.raises(ConfigError, match=r"^params\.value_model\.warm_start: .*" + why.replace("(", r"\(")
                       .replace(")", r"\)")):
        TreeSearch(TreeSearchParams(value_model={"warm_start": str(path)}), budget=4)


def test_cli_refuses_a_damaged_or_mismatched_warm_start_with_exit_2(tmp_path, capsys):
    from eacps.commands.cli import main

    damaged = tmp_path / "damaged.json"
    damaged.write_text('{"format": "eacps-value-warm-start/1", "X": [[1')
    other = warm_file(tmp_path, context={"generator": "g", "potential": "p", "preview_potential": None})
    for path, why in ((damaged, "damaged"), (other, "made for another generator")):
        cfg = configs.write(tmp_path / "c.toml", configs.digits("fk-steering", 4, params={
            "value_model": {"warm_start": str(path)}}))
        assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("eacps: error: search.params.value_model.warm_start: ")
        assert why in err
        assert not (tmp_path / "run" / "store.sqlite").exists()  # refused before anything is written


def test_warm_start_command_exports_the_pairs_of_a_run_and_a_search_uses_them(tmp_path, capsys):
    import eacps
    from eacps.api import identity
    from eacps.commands.cli import main
    from eacps.store import read_only

    cfg = configs.write(tmp_path / "c.toml", configs.digits("multi-fidelity", 6, batch_size=8))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["warm-start", str(tmp_path / "run"), "--output", str(tmp_path / "w.json")]) == 0
    n = int(capsys.readouterr().out.split(": ")[1].split()[0])
    store = read_only(tmp_path / "run")
    X, y = pairs_of(store.candidates(), 15)
    store.close()
    assert n == len(y) > 0
    context, X2, y2 = load_warm_start(tmp_path / "w.json", BayesRidge())
    assert np.allclose(X2, X) and np.allclose(y2, y)
    setup = eacps.api.load_run(cfg)
    assert context == identity(setup.generator, setup.potential)
    assert main(["warm-start", str(tmp_path / "run"), "--output", str(tmp_path / "w.json"), "--model", "nope"]) == 2
    assert "--model: unknown value_model 'nope'" in capsys.readouterr().err


# -- kill -9 during a value-screened search ------------------------------------------------------------------
@pytest.mark.slow
def test_kill_9_during_a_screened_search_resumes_to_the_same_search(tmp_path):
    import subprocess

    def start(cfg, out):
        return subprocess.Popen([sys.executable, "-m", "eacps", "run", str(cfg), "--out", str(out), "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    # a screen that trusts any model (the check is not under test here) and prunes readily
    screen = {"min_pairs": 4, "min_rho": -1.0, "max_miss": 1.0, "z": 0.5}
    cfg = configs.write(tmp_path / "cfg.toml", configs.digits("tree-search", 8, batch_size=4,
                                                              params={"value_model": screen}))
    ref = start(cfg, tmp_path / "ref")
    assert ref.wait(300) == 0, ref.stderr.read().decode()
    from eacps.store import read_only

    store = read_only(tmp_path / "ref")
    diag = [store.get_meta(k) for k in store.meta_keys("diagnostics/")]
    store.close()
    assert diag and diag[0]["value_model"]["pruned"] > 0  # the screen acted in this search
    reference = [r[1:5] for r in rows(tmp_path / "ref")]
    out = tmp_path / "run"
    proc = start(cfg, out)
    wait_for_rows(out, len(reference) // 2, proc, timeout=300)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = rows(out)
    assert 0 < len(before) < len(reference)
    again = start(cfg, out)
    assert again.wait(300) == 0, again.stderr.read().decode()
    after = rows(out)
    assert after[: len(before)] == before  # nothing finished was lost or rewritten
    assert [r[1:5] for r in after] == reference  # the same recipes in the same order: the same screening choices


# -- screened strategies keep the strategy contract (ask-ahead, resume, budget, determinism) ----------------------
class TestScreenedStrategies(StrategyConformance):
    """With a screen that acts on the suite's objective (tree-search online; all three with a warm start), each
    trajectory strategy still passes the strategy suite: batching-independent asks, resume by replay, budget."""

    budget = 20

    def allowed_stop_reasons(self, strategy):
        return {"tree-search": {"tree"}, "fk-steering": {"particles_finished"}, "multi-fidelity": {"plan"}}[
            strategy.name]

    @pytest.fixture(params=[cls.name for cls, _ in STRATEGIES])
    def make_strategy(self, request, tmp_path_factory):
        path = warm_file(tmp_path_factory.mktemp("warm"))
        cls, params_cls = next((c, p) for c, p in STRATEGIES if c.name == request.param)
        screen = {"min_pairs": 8, "warm_start": path}
        return lambda budget, seed: cls(params_cls(value_model=screen), budget=budget, seed=seed)


@pytest.mark.parametrize(("screen", "why"), [
    ({"model": "nope"}, "params.value_model.model: unknown value_model 'nope'; known: bayes-ridge"),
    ({"params": {"alpha": -1}}, "params.value_model.params: .*alpha"),
    ({"warm_start": "/nonexistent/warm.json"}, "params.value_model.warm_start: /nonexistent/warm.json: no such file"),
])
def test_a_bad_value_model_setting_is_a_config_error_naming_the_field(screen, why):
    with pytest.raises(ConfigError, match=why):
        MultiFidelity(MultiFidelityParams(value_model=screen), budget=4)


# -- preview features a generator supplies (value_model.features = "generator") ------------------------------------
def _screen_pairs(screen: Screen, gen, cond, k: int, n: int, blind: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``n`` real digits paths: each preview after ``k`` of 15 steps, judged by a blind preview potential (the same
    value for every preview: the potential alone cannot tell them apart), with its generator features; the finals
    judged by digits-realism. Returns (X, y) as the screen describes them."""
    scorer = plugins.get("scorer", "digits-realism")()
    roots = [Recipe.from_seed(i) for i in range(n)]
    previews = gen.generate([r.with_until(k) for r in roots], cond)
    finals = gen.generate(roots, cond)
    F = gen.preview_features([g.image for g in previews], cond)
    y = np.array(scorer.score([g.image for g in finals], cond))
    X = []
    for r, f, v in zip(roots, F, y, strict=True):
        told = Result(r.with_until(k), Status.OK, blind, features=tuple(f))
        x = screen.x(told, k, 15)
        screen.add(told.recipe, x, r, float(v))
        X.append(x)
    return np.array(X), y


def test_generator_features_predict_what_the_potential_alone_cannot_tell():
    """Previews a blind preview potential cannot tell apart: described by the potential alone the model learns
    nothing (held-out rank correlation 0, the screen never trusts it); with the digits plugin's pixel features it
    predicts the finals (held-out rank correlation > 0.5, lower error) and the screen trusts it."""
    from eacps_digits.generator import DigitsGenerator
    from scipy.stats import spearmanr

    gen, cond = DigitsGenerator(), Condition("three", class_label=3)
    with_f, without = Screen(ScreenParams(features="generator")), Screen(ScreenParams())
    Xf, y = _screen_pairs(with_f, gen, cond, 5, 120)
    Xp, _ = _screen_pairs(without, gen, cond, 5, 120)
    assert Xf.shape == (120, 3 + 16) and Xp.shape == (120, 3)
    held = {}
    for name, X in (("features", Xf), ("potential", Xp)):
        m = BayesRidge()
        m.fit(X[:80], y[:80])
        mean, _ = m.predict(X[80:])
        rho = spearmanr(mean, y[80:]).statistic if np.ptp(mean) > 0 else 0.0
        held[name] = (float(rho), float(np.mean(np.abs(mean - y[80:]))))
    assert held["features"][0] > 0.5 and held["potential"][0] == 0.0
    assert held["features"][1] < held["potential"][1]  # mean absolute error on the held-out finals
    assert with_f.trusted() and not without.trusted()


def test_a_preview_without_features_trains_nothing_and_is_never_pruned():
    s = Screen(ScreenParams(features="generator", min_pairs=4, min_rho=-1.0, max_miss=1.0))
    for i in range(12):
        told = Result(Recipe(seed=i, until=3), Status.OK, 0.5, features=(float(i),))
        s.add(told.recipe, s.x(told, 3, 10), Recipe(seed=i), float(i))
    bare = Result(Recipe(seed=99, until=3), Status.OK, 0.5)  # its features failed: None
    assert s.x(bare, 3, 10) is None
    s.add(bare.recipe, None, Recipe(seed=99), 100.0)
    assert s.pairs == 12 and s.trusted()
    assert s.prune([None, [0.5, 0.3, 0.15, 0.0], [0.5, 0.3, 0.15, 11.0]]) == [False, True, False]


def test_plugin_features_read_the_clean_prediction():
    """digits: the preview image's pixels, 2x2-pooled; gaussian-mixture: the preview's x0 (read back from its image
    to 16 bits), pooled per channel over a 2x2 grid: both the same on a regenerated preview (from its recipe)."""
    import torch
    from eacps_digits.generator import DigitsGenerator
    from eacps_gaussian_mixture.generator import GaussianMixtureGenerator

    d, cond = DigitsGenerator(), Condition("three", class_label=3)
    img = d.generate([Recipe(seed=4, until=6)], cond)[0].image
    f = d.preview_features([img], cond)
    assert f.shape == (1, 16) and np.allclose(f[0, 0], img[:2, :2].mean())
    assert np.array_equal(f, d.preview_features([d.generate([Recipe(seed=4, until=6)], cond)[0].image], cond))
    g = GaussianMixtureGenerator()
    gc = Condition("c0", class_label=0)
    traj = g.advance(g.start([Recipe(seed=4)], gc), gc, 20)
    img = g.generate([Recipe(seed=4, until=20)], gc)[0].image
    f = g.preview_features([img], gc)
    c, h, w = g.mixture.shape
    x0 = traj.x0.reshape(c, h, w)
    want = torch.stack([x0[:, :h // 2, :w // 2], x0[:, :h // 2, w // 2:], x0[:, h // 2:, :w // 2],
                        x0[:, h // 2:, w // 2:]], dim=1).mean(dim=(2, 3)).reshape(-1).numpy()
    assert f.shape == (1, c * 4) and np.allclose(f[0], want, atol=1e-3 * g.mixture.range)
    assert d.feature_source() != g.feature_source() and Generator.feature_source(d) is None  # the default: none


def _search(tmp_path, value_model, run_dir="run"):
    from eacps_digits.generator import DigitsGenerator

    import eacps
    from eacps.config import build_potential

    potential = build_potential(eacps.config.PotentialConfig(**configs.digits("fk-steering", 6)["potential"]))
    cond = Condition("three", class_label=3, extra={"reference_index": 59})
    params = None if value_model is None else {"value_model": value_model}
    return eacps.search(cond, generator=DigitsGenerator(), potential=potential, strategy="tree-search", params=params,
                        budget=8, batch_size=4, run_dir=tmp_path / run_dir)


def test_a_search_reads_the_generators_features_and_replays_them_the_same(tmp_path):
    """tree-search on digits with generator features: the engine gives every judged preview its features (from the
    stored image), the screen learns from them and acts; the same search again (every row served from the store)
    makes the same choices; its cost includes the screen's measured time."""
    screen = {"features": "generator", "min_pairs": 4, "min_rho": -1.0, "max_miss": 1.0, "z": 0.5}
    first = _search(tmp_path, screen)
    d = first.diagnostics["value_model"]
    assert d["features"] == "generator" and d["pairs"] > 4 and d["pruned"] > 0 and d["feature_seconds"] > 0
    assert first.cost.value_seconds == pytest.approx(d["fit_seconds"] + d["predict_seconds"] + d["feature_seconds"],
                                                     abs=1e-5)
    again = _search(tmp_path, screen)
    assert [c.recipe for c in again.history] == [c.recipe for c in first.history]
    assert again.diagnostics["value_model"]["pruned"] == d["pruned"]
    assert again.cost.reused == len(again.history)
    plain = _search(tmp_path, None, "plain")
    assert plain.cost.value_seconds == 0 and plain.cost.to_json()["value_seconds"] == 0


def test_generator_features_are_fingerprinted_into_warm_starts(tmp_path, capsys, toy_plugin):
    """A warm start exported with the digits plugin's features is refused, in one line with exit 2, by a screen that
    uses no features, and one made with another feature source by a screen that uses these; generator features on a
    generator that supplies none are refused the same way."""
    from eacps.commands.cli import main

    cfg = configs.write(tmp_path / "c.toml", configs.digits("multi-fidelity", 6, batch_size=8))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    w = tmp_path / "w.json"
    assert main(["warm-start", str(tmp_path / "run"), "--output", str(w), "--features", "generator"]) == 0
    capsys.readouterr()
    ctx, X, y = load_warm_start(w, BayesRidge(), "generator")
    assert X.shape[1] == 3 + 16 and len(y) > 0
    data = json.loads(w.read_text())
    assert data["features"] == "preview-fraction/1+digits-pixels/4x4/1"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(warm_start_data(BayesRidge(), ctx, X, y, source="digits-pixels/2x2/9")))
    cases = [({"warm_start": str(w)}, "made with features 'preview-fraction/1+digits-pixels/4x4/1', not"),
             ({"warm_start": str(other), "features": "generator"}, "made with features "
              "'preview-fraction/1+digits-pixels/2x2/9', this run's are 'preview-fraction/1+digits-pixels/4x4/1'")]
    for screen, why in cases:
        cfg = configs.write(tmp_path / "c2.toml", configs.digits("multi-fidelity", 6, batch_size=8,
                                                                 params={"value_model": screen}))
        assert main(["run", str(cfg), "--out", str(tmp_path / "run2"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("eacps: error: search.params.value_model.")
        assert why in err
        assert not (tmp_path / "run2" / "store.sqlite").exists()
    cfg = configs.write(tmp_path / "c3.toml", configs.toy_stepping("fk-steering", 4, params={
        "value_model": {"features": "generator"}}))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run3"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "value_model.features: 'generator' needs a generator that supplies" in err


def test_warm_start_with_generator_features_needs_the_runs_config(tmp_path, capsys):
    """A run of ``eacps.search`` records no config, so ``--features generator`` cannot rebuild its generator: one
    line, exit 2 (the Python API takes the generator instead)."""
    from eacps_digits.generator import DigitsGenerator

    from eacps.commands.cli import main
    from eacps.screening import export_warm_start

    _search(tmp_path, None, "plain")
    out = tmp_path / "w.json"
    assert main(["warm-start", str(tmp_path / "plain"), "--output", str(out), "--features", "generator"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("eacps: error: --features: generator features need")
    n = export_warm_start(tmp_path / "plain", out, ScreenParams(features="generator"), DigitsGenerator())
    _, X, y = load_warm_start(out, BayesRidge(), "generator")
    assert n == len(y) > 0 and X.shape[1] == 3 + 16
    with pytest.raises(ValueError, match="generator: not the generator of the run in"):  # another one's features
        export_warm_start(tmp_path / "plain", out, ScreenParams(features="generator"),
                          DigitsGenerator(DigitsGenerator.Params(steps=10)))
