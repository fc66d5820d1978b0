"""eacps.screening: the judge screen alone. A partial trajectory's features; pairs only of one path; the trust check
(enough pairs, held-out misses and rank correlation) before the screen prunes anything; the pruning bar (the best
judged final, or the rank-th best lower bound of the competitors); warm-start files fingerprinted and refused in one
line when damaged or made for another model, features, generator or potential. Strategies using the screen are
tested in tests/test_value_model.py and their own test files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from eacps import Recipe, Status, screening
from eacps.config import ConfigError
from eacps.screening import (
    FEATURES,
    Screen,
    ScreenParams,
    check_context,
    features,
    load_warm_start,
    on_path,
    pairs_of,
    preview_of,
    screen_of,
    warm_start_data,
)
from eacps.strategies.fk_steering import FKParams, FKSteering
from eacps.testing import value_pairs
from eacps.value_model import BayesRidge, BayesRidgeParams, ValueModel

T = 10


def warm_file(tmp_path: Path, model: ValueModel | None = None, context: dict | None = None, n: int = 60) -> str:
    """Pairs of the constructed case (previews at 0.2..0.8 of the schedule, the final equal to the preview)."""
    rng = np.random.default_rng(3)
    v, f = rng.random(n), rng.choice([0.2, 0.4, 0.5, 0.6, 0.8], n)
    data = warm_start_data(model or BayesRidge(), context or {}, [features(a, round(b * T), T) for a, b in
                                                                 zip(v, f, strict=True)], v)
    path = tmp_path / "warm.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_the_trust_check_accepts_a_learnable_signal_and_refuses_none():
    good, flat = Screen(ScreenParams()), Screen(ScreenParams())
    X, y = value_pairs(60)
    for i, (x, v) in enumerate(zip(X, y, strict=True)):
        good.add(Recipe(seed=i, until=2), x, Recipe(seed=i), float(v))
        flat.add(Recipe(seed=i, until=2), x, Recipe(seed=i), float(np.random.default_rng(i).normal()))
    assert good.trusted() and not flat.trusted()
    assert flat.prune(X[:5].tolist()) == [False] * 5  # untrusted: nothing is pruned
    lower, upper = good.bounds(X[:5])
    assert np.all(lower < upper)
    assert good.prune([[3.0, 0.8, 2.4], [-3.0, 0.8, -2.4]]) == [False, True]
    few = Screen(ScreenParams(min_pairs=8))
    few.add(Recipe(seed=1, until=2), X[0], Recipe(seed=1), 1.0)
    few.add(Recipe(seed=1, until=2), X[0], Recipe(seed=1), 1.0)  # the same pair once
    assert few.pairs == 1 and not few.trusted()


def test_pairs_are_of_one_path():
    final = Recipe(seed=1).branch(4, 1.0, 7)
    assert preview_of(final, 3) == Recipe(seed=1, until=3) and on_path(Recipe(seed=1, until=3), final)
    assert preview_of(final, 6) == final.with_until(6) and on_path(final.with_until(6), final)
    assert not on_path(Recipe(seed=1).branch(4, 1.0, 8).with_until(6), final)
    assert not on_path(Recipe(seed=2, until=3), final)


# -- warm starts: fingerprinted, refused in one line ------------------------------------------------------------
def test_warm_start_round_trip_and_fingerprints(tmp_path):
    ctx = {"generator": "g1", "potential": "p1", "preview_potential": None}
    path = warm_file(tmp_path, context=ctx)
    got, X, y = load_warm_start(path, BayesRidge())
    assert got == ctx and X.shape == (60, 3) and y.shape == (60,)
    assert BayesRidge().fingerprint() != BayesRidge(BayesRidgeParams(alpha=2.0)).fingerprint()
    with pytest.raises(ValueError, match="another value model or params"):
        load_warm_start(path, BayesRidge(BayesRidgeParams(alpha=2.0)))
    s = FKSteering(FKParams(value_model={"warm_start": path}), budget=4)
    assert check_context(s, ctx) is None
    assert "made for another potential" in check_context(s, {**ctx, "potential": "p2"})
    assert check_context(FKSteering(budget=4), {}) is None


def trained(n: int = 60, **params) -> Screen:
    """A screen fitted on a learnable signal (``eacps.testing.value_pairs``)."""
    screen = Screen(ScreenParams(**params))
    X, y = value_pairs(n)
    for i, (x, v) in enumerate(zip(X, y, strict=True)):
        screen.add(Recipe(seed=i, until=2), x, Recipe(seed=i), float(v))
    return screen


def test_features_of_a_partial_trajectory():
    assert features(0.5, 3, 10) == pytest.approx([0.5, 0.3, 0.15]) and len(FEATURES) == 3


def test_the_bar_is_the_best_final_or_the_rank_th_best_lower_bound():
    screen = trained()
    assert screen.trusted()
    X = [[2.0, 0.5, 1.0], [1.0, 0.5, 0.5], [-2.0, 0.5, -1.0]]
    lower, upper = screen.bounds(X)
    assert screen.prune(X) == [bool(u < lower.max()) for u in upper] == [False, False, True]  # rank 1: the best
    assert screen.prune(X, best_final=float(upper.max()) + 1) == [True, True, True]  # none can beat the judged best
    assert screen.prune(X, competitors=[[5.0, 0.9, 4.5]]) == [True, True, True]  # a far better competitor
    wide = trained(rank=3)  # the 3rd best lower bound of X: only what cannot reach the worst is dropped
    assert wide.prune(X) == [bool(u < np.sort(lower)[0]) for u in upper]
    assert trained(rank=4).prune(X) == [False, False, False]  # fewer competitors than the rank: no bar
    assert screen.prune([]) == []
    assert screen.pruned == 1 + 3 + 3  # counted across calls


def test_the_trust_check_runs_once_per_change_of_the_pairs():
    screen = trained()
    assert screen.trusted() and screen.trusted() and len(screen.checks) == 1  # cached while the pairs stand
    screen.add(Recipe(seed=99, until=2), [0.1, 0.2, 0.02], Recipe(seed=99), math.nan)  # a non-finite final: ignored
    assert screen.pairs == 60 and screen.trusted() and len(screen.checks) == 1
    screen.add(Recipe(seed=99, until=2), [0.1, 0.2, 0.02], Recipe(seed=99), 0.1)
    assert screen.trusted() and len(screen.checks) == 2 and screen.checks[-1]["pairs"] == 61
    d = screen.diagnostics()
    assert (d["model"], d["pairs"], d["warm_pairs"], d["pruned"], d["trusted"]) == ("bayes-ridge", 61, 0, 0, True)
    assert d["last_check"] == screen.checks[-1] and 0 <= d["last_check"]["miss"] <= 0.1 and d["last_check"]["rho"] > 0.3
    assert json.loads(json.dumps(d)) == d  # stored with the search


def test_pairs_of_stored_candidates_are_ok_previews_with_ok_finals_of_their_path():
    def cand(recipe, potential, condition="a", status=Status.OK):
        return SimpleNamespace(recipe=recipe, potential=potential, condition=condition, status=status)

    final = Recipe(seed=1).branch(4, 1.0, 7)
    cands = [cand(Recipe(seed=1, until=3), 0.2), cand(final.with_until(6), 0.4), cand(final, 0.9),
             cand(Recipe(seed=1).branch(4, 1.0, 8), 0.1),  # another branch: pairs only with the shared preview
             cand(Recipe(seed=1, until=3), 0.2, condition="b"),  # another condition: no final of its own
             cand(Recipe(seed=2, until=3), None, status=Status.FAILED), cand(Recipe(seed=2), 0.5)]
    assert pairs_of(cands, T) == ([features(0.2, 3, T), features(0.2, 3, T), features(0.4, 6, T)], [0.9, 0.1, 0.9])


def test_screen_of_is_off_by_default_and_names_the_field():
    assert screen_of(None) is None and isinstance(screen_of(ScreenParams()), Screen)
    with pytest.raises(ConfigError, match=r"^params\.value_model\.model: unknown value_model 'nope'"):
        screen_of(ScreenParams(model="nope"))
    with pytest.raises(ConfigError, match=r"^params\.value_model\.params: "):
        screen_of(ScreenParams(params={"alpha": "x"}))


def test_a_warm_start_is_refused_for_other_features_or_damaged_pairs(tmp_path, monkeypatch):
    monkeypatch.setattr(screening, "FEATURES_VERSION", "other/0")
    other = warm_file(tmp_path)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"warm.json: made with features 'other/0', not 'preview-fraction/1'"):
        load_warm_start(other, BayesRidge())
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(warm_start_data(BayesRidge(), {}, [[0.1, 0.2, 0.02]], [math.nan])))
    with pytest.raises(ValueError, match=r"damaged \(X/y differ in length or hold non-finite values\)"):
        load_warm_start(path, BayesRidge())
    with pytest.raises(ValueError, match=r"^value_model\.warm_start: .*missing\.json: no such file$"):
        load_warm_start(tmp_path / "missing.json", BayesRidge())
    screen = Screen(ScreenParams(warm_start=warm_file(tmp_path), min_pairs=8))
    assert screen.warm == screen.pairs == 60 and screen.trusted()  # a warm start alone earns trust
    assert screen.diagnostics()["warm_pairs"] == 60
