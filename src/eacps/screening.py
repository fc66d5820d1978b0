"""Judge screening: a value model decides which partial trajectories are worth another judge call.

fk-steering, tree-search and multi-fidelity take a ``value_model`` parameter (off by default). With it, before a
strategy continues a partial trajectory (and so pays the judge for its next preview and its final image), a
:class:`Screen` predicts the trajectory's final potential from what is known of it (:func:`features`: its
latest judged preview and how far along the schedule it is) and drops it when the prediction settles its fate:

* ``upper = mean + z·std`` below the bar, the bar being the best final the search has judged, or the ``rank``-th
  best lower bound ``mean - z·std`` among the trajectories competing with it: it cannot be the winner, so it is
  pruned, without another judge call or denoising step;
* otherwise it is contested and goes on as without screening (judged as usual).

The judge-call rule falls back to the judge when the model is poor. The screen acts only once it *trusts* its
model: at least ``min_pairs`` (preview, final) pairs, and, over a deterministic ``folds``-fold cross-validation
on them, finals above their held-out upper bound at most ``max_miss`` of the time and a held-out Spearman rank
correlation of at least ``min_rho``. A constant model, a noisy one or an overconfident one fails that check,
and the strategy then behaves exactly as without screening.

The final images are always judged by the real potential and only they can win: a value model never picks the
winner. Every decision depends only on the results told (in the order asked) and the warm-start file, so a
strategy rebuilt on resume by replaying its results makes the same decisions. The time spent fitting and
predicting is measured and reported in the search's diagnostics (``value_model``).

Pairs come from the search itself (a final image and the judged previews of its own path) and from a
*warm-start file* of earlier runs (:func:`export_warm_start`, ``eacps value-model export RUN_DIR``), which is
fingerprinted by the value model and its params, the features, and the generator, potential and preview
potential it was measured with: a file made for anything else, or damaged, is refused in one line (a
ConfigError: exit 2 on the command line).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from eacps import plugins
from eacps.config import ConfigError
from eacps.params import Params
from eacps.recipe import Recipe
from eacps.value_model import ValueModel

#: what a partial trajectory is described by (its version is part of every warm-start fingerprint)
FEATURES = ("preview", "fraction", "preview_x_fraction")
FEATURES_VERSION = "preview-fraction/1"
WARM_FORMAT = "eacps-value-warm-start/1"


def features(preview: float, step: int, total: int) -> list[float]:
    """Features of a trajectory whose preview after ``step`` of ``total`` model calls has potential ``preview``."""
    f = step / total
    return [float(preview), f, float(preview) * f]


class ScreenParams(Params):
    model: str = Field("bayes-ridge", description="the value model (a registered name, eacps plugins)")
    params: dict[str, Any] = Field(default_factory=dict, description="the value model's params")
    z: float = Field(2.0, gt=0, description="width of the bounds mean ± z·std")
    rank: int = Field(1, ge=1, description="prune below the rank-th best lower bound of the competitors")
    min_pairs: int = Field(8, ge=3, description="(preview, final) pairs before the screen acts")
    folds: int = Field(5, ge=2, description="cross-validation folds of the trust check")
    max_miss: float = Field(0.1, ge=0, le=1, description="largest share of finals above their held-out upper bound")
    min_rho: float = Field(0.3, ge=-1, le=1, description="smallest held-out Spearman correlation")
    warm_start: str | None = Field(None, description="a warm-start file of earlier runs (eacps value-model export)")


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def on_path(preview: Recipe, final: Recipe) -> bool:
    """Is ``preview`` a partial trajectory of ``final``'s path (same root noise, same branches before it)?"""
    if preview.until is None or final.until is not None or preview.root != final.root:
        return False
    return tuple(b for b in final.branches if b.step < preview.until) == preview.branches


def preview_of(final: Recipe, step: int) -> Recipe:
    """The partial trajectory of ``final``'s path after ``step`` model calls (its branches before that step)."""
    return replace(final, branches=tuple(b for b in final.branches if b.step < step), until=step)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0 or np.ptp(a) == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def make_model(params: ScreenParams) -> ValueModel:
    """The configured value model (ValueError naming ``value_model.model``/``.params`` when it cannot be)."""
    try:
        cls = plugins.get("value_model", params.model)
    except (plugins.UnknownPluginError, plugins.PluginLoadError) as exc:
        raise ValueError(f"value_model.model: {exc}") from None
    try:
        return cls(cls.Params(**params.params))
    except Exception as exc:  # pydantic's ValidationError, a constructor's own error
        raise ValueError(f"value_model.params: {' '.join(str(exc).split())}") from None


def load_warm_start(path: str | Path, model: ValueModel) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(context, X, y) of a warm-start file made for ``model`` (its name and params) and these features; ValueError
    in one line, naming the file, when it is damaged or made for another model or features."""
    where = f"value_model.warm_start: {path}"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{where}: damaged, not a warm-start file ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or data.get("format") != WARM_FORMAT:
        raise ValueError(f"{where}: not a warm-start file (format must be {WARM_FORMAT!r})")
    body = {k: v for k, v in data.items() if k != "fingerprint"}
    if data.get("fingerprint") != _digest(body):
        raise ValueError(f"{where}: damaged (its contents do not match its fingerprint)")
    if body.get("features") != FEATURES_VERSION:
        raise ValueError(f"{where}: made with features {body.get('features')!r}, not {FEATURES_VERSION!r}")
    if body.get("model") != {"name": model.name, "fingerprint": model.fingerprint()}:
        raise ValueError(f"{where}: made for another value model or params ({body.get('model')}); export it again")
    try:
        X = np.asarray(body["X"], dtype=float).reshape(-1, len(FEATURES))
        y = np.asarray(body["y"], dtype=float)
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: damaged (X/y are not pairs of {len(FEATURES)} features and a final)") from None
    if len(X) != len(y) or not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError(f"{where}: damaged (X/y differ in length or hold non-finite values)")
    return dict(body.get("context") or {}), X, y


class Screen:
    """A strategy's screen: its value model, the pairs it is fitted on, and the pruning rule."""

    def __init__(self, params: ScreenParams) -> None:
        self.params = params
        self.model = make_model(params)
        self.context: dict[str, Any] = {}
        self.X: list[list[float]] = []
        self.y: list[float] = []
        self.warm = 0
        if params.warm_start is not None:
            self.context, X, y = load_warm_start(params.warm_start, self.model)
            self.X, self.y, self.warm = X.tolist(), y.tolist(), len(y)
        self._paired: set[tuple[Recipe, Recipe]] = set()
        self._trust: bool | None = None  # None: pairs changed since the last check
        self.pruned = 0
        self.fit_seconds = 0.0
        self.predict_seconds = 0.0
        self.checks: list[dict[str, Any]] = []

    def check_context(self, context: dict[str, Any]) -> str | None:
        """Why the warm start was measured with another generator or potential (``eacps.api.identity``), or None."""
        if self.params.warm_start is None:
            return None
        for k in ("generator", "potential", "preview_potential"):
            if self.context.get(k) != context.get(k):
                what = k.replace("_", " ")
                return (f"value_model.warm_start: {self.params.warm_start}: made for another {what} "
                        f"({self.context.get(k)}, this run's is {context.get(k)}); export it again from a run of "
                        "this config")
        return None

    # -- pairs ------------------------------------------------------------------------------------
    def add(self, preview: Recipe, x: Sequence[float], final: Recipe, value: float) -> None:
        """A (preview, final) pair of one path (each pair once)."""
        if (preview, final) in self._paired or not math.isfinite(value):
            return
        self._paired.add((preview, final))
        self.X.append([float(v) for v in x])
        self.y.append(float(value))
        self._trust = None

    @property
    def pairs(self) -> int:
        return len(self.y)

    # -- the rule ---------------------------------------------------------------------------------
    def trusted(self) -> bool:
        """Fit on every pair, after a cross-validation that says whether the model earns the right to prune."""
        if self._trust is not None:
            return self._trust
        n, p = self.pairs, self.params
        if n < p.min_pairs:
            self._trust = False
            return False
        X, y = np.asarray(self.X), np.asarray(self.y)
        t0 = time.perf_counter()
        mean, std = np.empty(n), np.empty(n)
        fold = np.arange(n) % p.folds
        for k in range(p.folds):
            test = fold == k
            if not test.any():
                continue
            self.model.fit(X[~test], y[~test])
            mean[test], std[test] = self.model.predict(X[test])
        self.model.fit(X, y)
        self.fit_seconds += time.perf_counter() - t0
        ok = np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)
        miss = float(np.mean(y > mean + p.z * std)) if ok else 1.0
        rho = _spearman(mean, y) if ok else 0.0
        self._trust = bool(ok and miss <= p.max_miss and rho >= p.min_rho)
        self.checks.append({"pairs": n, "miss": round(miss, 4), "rho": round(rho, 4), "trusted": self._trust})
        return self._trust

    def bounds(self, X: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of each trajectory's final potential (after ``trusted()``)."""
        t0 = time.perf_counter()
        mean, std = self.model.predict(np.asarray(X, dtype=float).reshape(-1, len(FEATURES)))
        self.predict_seconds += time.perf_counter() - t0
        return mean - self.params.z * std, mean + self.params.z * std

    def prune(self, X: Sequence[Sequence[float]], best_final: float | None = None,
              competitors: Sequence[Sequence[float]] | None = None) -> list[bool]:
        """Which of the trajectories ``X`` can be dropped: their upper bound is below the best judged final, or below
        the ``rank``-th best lower bound of ``competitors`` (default: ``X`` itself). All False while the model is
        not trusted."""
        if not len(X):
            return []
        if not self.trusted():
            return [False] * len(X)
        _, upper = self.bounds(X)
        bar = -math.inf if best_final is None else best_final
        comp = X if competitors is None else competitors
        if len(comp) >= self.params.rank:
            lower, _ = self.bounds(comp)
            bar = max(bar, float(np.sort(lower)[::-1][self.params.rank - 1]))
        out = [bool(u < bar) for u in upper]
        self.pruned += sum(out)
        return out

    def diagnostics(self) -> dict[str, Any]:
        """What the screen did, and its measured cost (stored with the search)."""
        last = self.checks[-1] if self.checks else None
        return {"model": self.params.model, "pairs": self.pairs, "warm_pairs": self.warm, "pruned": self.pruned,
                "trusted": bool(last and last["trusted"]), "last_check": last,
                "fit_seconds": round(self.fit_seconds, 6), "predict_seconds": round(self.predict_seconds, 6)}


def screen_of(params: ScreenParams | None) -> Screen | None:
    """The screen a strategy's ``value_model`` param asks for (None: off); a ConfigError naming
    ``params.value_model.*`` when its model or warm start cannot be used."""
    if params is None:
        return None
    try:
        return Screen(params)
    except ValueError as exc:
        raise ConfigError(f"params.{exc}") from None


def check_context(strategy: Any, context: dict[str, Any]) -> str | None:
    """Why ``strategy``'s warm start does not fit a run with this identity (``eacps.api.identity``), or None."""
    screen = getattr(strategy, "screen", None)
    return screen.check_context(context) if isinstance(screen, Screen) else None


# -- warm starts -------------------------------------------------------------------------------------
def pairs_of(cands: Sequence[Any], total: int) -> tuple[list[list[float]], list[float]]:
    """(features, final) pairs of stored candidates (``eacps.store.Candidate``, one store): every OK preview with
    every OK final image of its path (same condition), in store order."""
    finals: dict[tuple[str, Recipe], list[Any]] = {}
    for c in cands:
        if c.recipe.until is None and c.status.value == "OK" and c.potential is not None:
            finals.setdefault((c.condition, c.recipe.root), []).append(c)
    X, y, seen = [], [], set()
    for c in cands:
        if c.recipe.until is None or c.status.value != "OK" or c.potential is None:
            continue
        for f in finals.get((c.condition, c.recipe.root), []):
            key = (c.condition, c.recipe, f.recipe)
            if key in seen or not on_path(c.recipe, f.recipe):
                continue
            seen.add(key)
            X.append(features(c.potential, c.recipe.until, c.recipe.steps or total))
            y.append(float(f.potential))
    return X, y


def warm_start_data(model: ValueModel, context: dict[str, Any], X: Sequence[Sequence[float]],
                    y: Sequence[float]) -> dict[str, Any]:
    """The contents of a warm-start file (fingerprinted)."""
    body = {"format": WARM_FORMAT, "features": FEATURES_VERSION,
            "model": {"name": model.name, "fingerprint": model.fingerprint()}, "context": dict(context),
            "X": [list(map(float, x)) for x in X], "y": [float(v) for v in y]}
    return {**body, "fingerprint": _digest(body)}


def export_warm_start(run_dir: str | Path, out: str | Path, params: ScreenParams | None = None) -> int:
    """Write a warm-start file of the (preview, final) pairs in a run store, for ``params``' value model; returns
    the number of pairs."""
    from eacps.store import read_only

    params = params or ScreenParams()
    model = make_model(params)
    store = read_only(Path(run_dir))
    try:
        context = store.get_meta("identity")  # eacps.api.IDENTITY_META: the run's generator and potentials
        cands = store.candidates()
    finally:
        store.close()
    if not isinstance(context, dict):
        raise ValueError(f"RUN_DIR: {run_dir} records no generator and potential (not a run store of eacps)")
    steps = max((c.steps for c in cands if c.recipe.until is None and c.recipe.steps is None), default=None)
    if steps is None:
        raise ValueError(f"RUN_DIR: {run_dir} holds no finished image to learn from")
    X, y = pairs_of(cands, steps)
    data = warm_start_data(model, context, X, y)
    Path(out).write_text(json.dumps(data), encoding="utf-8")
    return len(y)
