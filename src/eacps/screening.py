"""Judge screening: a value model decides which partial trajectories are worth another judge call.

fk-steering, tree-search and multi-fidelity take a ``value_model`` parameter (off by default). With it, before a
strategy continues a partial trajectory (and so pays the judge for its next preview and its final image), a
:class:`Screen` predicts the trajectory's final potential from what is known of it (:func:`features`: its
latest judged preview and how far along the schedule it is) and drops it when the prediction settles its fate:

* ``upper = mean + z·std`` below the bar, the bar being the best final the search has judged, or the ``rank``-th
  best lower bound ``mean - z·std`` among the trajectories competing with it: it cannot be the winner, so it is
  pruned, without another judge call or denoising step;
* otherwise it is contested and goes on as without screening (judged as usual).

What describes a partial trajectory is set by ``features``: ``"potential"`` (the default) uses only
:func:`features`; ``"generator"`` adds the vector the generator computes from the preview image (its clean-image
prediction at step k: ``Generator.preview_features``, pixels or latents for small models, an embedding for real
ones). The engine computes it from the stored preview image when the strategy is told the result
(``Result.features``, :func:`with_features`), so a resumed search sees the same vectors. A preview without one
(its features failed) is never pruned and trains nothing.

The judge-call rule falls back to the judge when the model is poor. The screen acts only once it *trusts* its
model: at least ``min_pairs`` (preview, final) pairs, and, over a deterministic ``folds``-fold cross-validation
on them, finals above their held-out upper bound at most ``max_miss`` of the time and a held-out Spearman rank
correlation of at least ``min_rho``. A constant model, a noisy one or an overconfident one fails that check,
and the strategy then behaves exactly as without screening.

The final images are always judged by the real potential and only they can win: a value model never picks the
winner. Every decision depends only on the results told (in the order asked) and the warm-start file, so a
strategy rebuilt on resume by replaying its results makes the same decisions. The time spent fitting and
predicting (and computing preview features) is measured, reported in the search's diagnostics
(``value_model``) and charged to the search's cost (``Cost.value_seconds``).

Pairs come from the search itself (a final image and the judged previews of its own path) and from a
*warm-start file* of earlier runs (:func:`export_warm_start`, ``eacps warm-start RUN_DIR``), which is
fingerprinted by the value model and its params, the features (with the generator's feature source), and the
generator, potential and preview potential it was measured with: a file made for anything else, or damaged, is
refused in one line (a ConfigError: exit 2 on the command line).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from eacps import plugins
from eacps.config import ConfigError
from eacps.params import Params
from eacps.recipe import Recipe
from eacps.types import Condition, Result
from eacps.value_model import ValueModel

#: what a partial trajectory is described by (its version is part of every warm-start fingerprint)
FEATURES = ("preview", "fraction", "preview_x_fraction")
FEATURES_VERSION = "preview-fraction/1"
WARM_FORMAT = "eacps-value-warm-start/1"
_CONDITION_FIELDS = ("id", "prompt", "negative_prompt", "class_label", "reference_path", "extra")


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
    warm_start: str | None = Field(None, description="a warm-start file of earlier runs (eacps warm-start)")
    features: Literal["potential", "generator"] = Field(
        "potential", description="what describes a partial trajectory: potential (its preview's potential and "
        "fraction), generator (those and the generator's preview features, Generator.preview_features)")


def features_id(source: str | None) -> str:
    """The features' identity in a warm-start file: ``FEATURES_VERSION``, plus the generator's feature source."""
    return FEATURES_VERSION if source is None else f"{FEATURES_VERSION}+{source}"


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


def load_warm_start(path: str | Path, model: ValueModel, features: str = "potential"
                    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(context, X, y) of a warm-start file made for ``model`` (its name and params) and this kind of ``features``
    (``ScreenParams.features``; the generator's feature source is checked by ``Screen.check_context``); ValueError
    in one line, naming the file, when it is damaged or made for another model or features."""
    context, _, X, y = _load_warm_start(path, model, features)
    return context, X, y


def _load_warm_start(path: str | Path, model: ValueModel, features: str
                     ) -> tuple[dict[str, Any], str, np.ndarray, np.ndarray]:
    """``load_warm_start``, and the file's features id."""
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
    made = body.get("features")
    if features == "potential" and made != FEATURES_VERSION:
        raise ValueError(f"{where}: made with features {made!r}, not {FEATURES_VERSION!r} (value_model.features)")
    if features == "generator" and not (isinstance(made, str) and made.startswith(FEATURES_VERSION + "+")):
        raise ValueError(f"{where}: made with features {made!r}, not with a generator's preview features "
                         "(value_model.features = 'generator'); export it with --features generator")
    if body.get("model") != {"name": model.name, "fingerprint": model.fingerprint()}:
        raise ValueError(f"{where}: made for another value model or params ({body.get('model')}); export it again")
    try:
        X = np.asarray(body["X"], dtype=float)
        y = np.asarray(body["y"], dtype=float)
        X = X.reshape(len(y), -1) if X.size or len(y) else X.reshape(0, len(FEATURES))
        if X.shape[1] < len(FEATURES) or (features == "potential" and X.shape[1] != len(FEATURES)):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: damaged (X/y are not pairs of features and a final)") from None
    if len(X) != len(y) or not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError(f"{where}: damaged (X/y differ in length or hold non-finite values)")
    return dict(body.get("context") or {}), made, X, y


class Screen:
    """A strategy's screen: its value model, the pairs it is fitted on, and the pruning rule."""

    def __init__(self, params: ScreenParams) -> None:
        self.params = params
        self.model = make_model(params)
        self.context: dict[str, Any] = {}
        self.warm_features: str | None = None  # the warm-start file's features id
        self.X: list[list[float]] = []
        self.y: list[float] = []
        self.warm = 0
        if params.warm_start is not None:
            self.context, self.warm_features, X, y = _load_warm_start(params.warm_start, self.model, params.features)
            self.X, self.y, self.warm = X.tolist(), y.tolist(), len(y)
        self._paired: set[tuple[Recipe, Recipe]] = set()
        self._trust: bool | None = None  # None: pairs changed since the last check
        self.pruned = 0
        self.fit_seconds = 0.0
        self.predict_seconds = 0.0
        self.feature_seconds = 0.0  # the engine's time computing preview features for this search
        self.checks: list[dict[str, Any]] = []

    def check_context(self, context: dict[str, Any], source: str | None = None) -> str | None:
        """Why this screen cannot run with a run of this identity (``eacps.api.identity``) and generator feature
        ``source`` (``Generator.feature_source``): generator features asked of a generator that supplies none, or a
        warm start measured with another generator, potential or feature source; None when it can."""
        if self.params.features == "generator" and source is None:
            return ("value_model.features: 'generator' needs a generator that supplies preview features "
                    "(Generator.feature_source / preview_features); this one supplies none: use 'potential'")
        if self.params.warm_start is None:
            return None
        made, now = self.warm_features, features_id(source if self.params.features == "generator" else None)
        if made != now:
            return (f"value_model.warm_start: {self.params.warm_start}: made with features {made!r}, this run's are "
                    f"{now!r}; export it again from a run of this config")
        for k in ("generator", "potential", "preview_potential"):
            if self.context.get(k) != context.get(k):
                what = k.replace("_", " ")
                return (f"value_model.warm_start: {self.params.warm_start}: made for another {what} "
                        f"({self.context.get(k)}, this run's is {context.get(k)}); export it again from a run of "
                        "this config")
        return None

    # -- pairs ------------------------------------------------------------------------------------
    def x(self, r: Result, step: int, total: int) -> list[float] | None:
        """What describes the partial trajectory of preview result ``r`` (OK, after ``step`` of ``total`` model
        calls): :func:`features`, and with ``features = "generator"`` its preview features (None when it has none)."""
        base = features(r.potential, step, total)  # type: ignore[arg-type]
        if self.params.features == "potential":
            return base
        return None if r.features is None else base + [float(v) for v in r.features]

    def add(self, preview: Recipe, x: Sequence[float] | None, final: Recipe, value: float) -> None:
        """A (preview, final) pair of one path (each pair once; none when the preview has no features ``x``)."""
        if x is None or (preview, final) in self._paired or not math.isfinite(value):
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
        mean, std = self.model.predict(np.asarray(X, dtype=float).reshape(len(X), -1))
        self.predict_seconds += time.perf_counter() - t0
        return mean - self.params.z * std, mean + self.params.z * std

    def prune(self, X: Sequence[Sequence[float] | None], best_final: float | None = None,
              competitors: Sequence[Sequence[float] | None] | None = None) -> list[bool]:
        """Which of the trajectories ``X`` can be dropped: their upper bound is below the best judged final, or below
        the ``rank``-th best lower bound of ``competitors`` (default: ``X`` itself). All False while the model is
        not trusted; False for a trajectory without features (None), which is no competitor either."""
        known = [i for i, x in enumerate(X) if x is not None]
        if not known or not self.trusted():
            return [False] * len(X)
        _, upper = self.bounds([X[i] for i in known])  # type: ignore[misc]
        bar = -math.inf if best_final is None else best_final
        comp = [x for x in (X if competitors is None else competitors) if x is not None]
        if len(comp) >= self.params.rank:
            lower, _ = self.bounds(comp)
            bar = max(bar, float(np.sort(lower)[::-1][self.params.rank - 1]))
        out = [False] * len(X)
        for i, u in zip(known, upper, strict=True):
            out[i] = bool(u < bar)
        self.pruned += sum(out)
        return out

    @property
    def seconds(self) -> float:
        """Measured time of this screen: fitting, predicting and computing preview features."""
        return self.fit_seconds + self.predict_seconds + self.feature_seconds

    def diagnostics(self) -> dict[str, Any]:
        """What the screen did, and its measured cost (stored with the search)."""
        last = self.checks[-1] if self.checks else None
        return {"model": self.params.model, "pairs": self.pairs, "warm_pairs": self.warm, "pruned": self.pruned,
                "trusted": bool(last and last["trusted"]), "last_check": last, "features": self.params.features,
                "fit_seconds": round(self.fit_seconds, 6), "predict_seconds": round(self.predict_seconds, 6),
                "feature_seconds": round(self.feature_seconds, 6)}


def screen_of(params: ScreenParams | None) -> Screen | None:
    """The screen a strategy's ``value_model`` param asks for (None: off); a ConfigError naming
    ``params.value_model.*`` when its model or warm start cannot be used."""
    if params is None:
        return None
    try:
        return Screen(params)
    except ValueError as exc:
        raise ConfigError(f"params.{exc}") from None


def screen_in(strategy: Any) -> Screen | None:
    """``strategy``'s screen, if it has one."""
    screen = getattr(strategy, "screen", None)
    return screen if isinstance(screen, Screen) else None


def check_context(strategy: Any, context: dict[str, Any], generator: Any = None) -> str | None:
    """Why ``strategy``'s screen does not fit a run with this identity (``eacps.api.identity``) on ``generator``
    (its preview features), or None."""
    screen = screen_in(strategy)
    source = None if generator is None else generator.feature_source()
    return screen.check_context(context, source) if screen is not None else None


def preview_vectors(generator: Any, cands: Sequence[Any], condition: Any) -> list[tuple[float, ...] | None]:
    """Per stored candidate (``eacps.store.Candidate``), the generator's preview features of its stored image: for
    OK previews; None for the others, and for all of them when the generator fails (the screen then leaves them
    to the judge)."""
    idx = [i for i, c in enumerate(cands)
           if c.recipe.until is not None and c.status.value == "OK" and c.image_path is not None]
    out: list[tuple[float, ...] | None] = [None] * len(cands)
    if not idx:
        return out
    try:
        F = np.asarray(generator.preview_features([cands[i].image for i in idx], condition), dtype=float)
    except Exception:  # a failing feature source costs the screen these previews, never the run
        return out
    if F.ndim != 2 or len(F) != len(idx) or not np.all(np.isfinite(F)):
        return out
    for i, row in zip(idx, F, strict=True):
        out[i] = tuple(float(v) for v in row)
    return out


def with_features(strategy: Any, generator: Any, cands: Sequence[Any], condition: Any) -> list[Result]:
    """What ``strategy`` is told of ``cands``: their results, with the previews' features when its screen uses
    them (the time it takes is charged to the screen)."""
    results = [c.result for c in cands]
    screen = screen_in(strategy)
    if screen is None or screen.params.features != "generator":
        return results
    t0 = time.perf_counter()
    vectors = preview_vectors(generator, cands, condition)
    screen.feature_seconds += time.perf_counter() - t0
    return [r if v is None else replace(r, features=v) for r, v in zip(results, vectors, strict=True)]


def recorded_seconds(diagnostics: Any) -> float:
    """The value-model time a search's stored diagnostics record (``diagnostics/<search>``; 0 without a screen)."""
    vm = diagnostics.get("value_model") if isinstance(diagnostics, dict) else None
    if not isinstance(vm, dict):
        return 0.0
    return sum(float(vm.get(k) or 0.0) for k in ("fit_seconds", "predict_seconds", "feature_seconds"))


def value_seconds(strategy: Any) -> float:
    """The measured time of ``strategy``'s screen (0 without one): what its search is charged for it."""
    screen = screen_in(strategy)
    return 0.0 if screen is None else screen.seconds


# -- warm starts -------------------------------------------------------------------------------------
def pairs_of(cands: Sequence[Any], total: int, vectors: Sequence[tuple[float, ...] | None] | None = None
             ) -> tuple[list[list[float]], list[float]]:
    """(features, final) pairs of stored candidates (``eacps.store.Candidate``, one store): every OK preview with
    every OK final image of its path (same condition), in store order. With ``vectors`` (per candidate, its
    preview features: ``preview_vectors``) they are added to each preview's features; a preview without one
    pairs with nothing."""
    finals: dict[tuple[str, Recipe], list[Any]] = {}
    for c in cands:
        if c.recipe.until is None and c.status.value == "OK" and c.potential is not None:
            finals.setdefault((c.condition, c.recipe.root), []).append(c)
    X, y, seen = [], [], set()
    for i, c in enumerate(cands):
        if c.recipe.until is None or c.status.value != "OK" or c.potential is None:
            continue
        extra = [] if vectors is None else vectors[i]
        if extra is None:
            continue
        for f in finals.get((c.condition, c.recipe.root), []):
            key = (c.condition, c.recipe, f.recipe)
            if key in seen or not on_path(c.recipe, f.recipe):
                continue
            seen.add(key)
            X.append(features(c.potential, c.recipe.until, c.recipe.steps or total) + list(extra))
            y.append(float(f.potential))
    return X, y


def run_generator(run_dir: str | Path) -> Any:
    """The generator of the run in ``run_dir``, built from its stored config (what computes its previews' features
    for ``export_warm_start``); ValueError when the store records no config (a run of ``eacps.search``: pass its
    generator instead), ConfigError when the generator cannot be built here."""
    from eacps.config import create
    from eacps.store import read_only

    store = read_only(Path(run_dir))
    try:
        cfg = store.get_meta("config")
    finally:
        store.close()
    gen = cfg.get("generator") if isinstance(cfg, dict) else None
    if not isinstance(gen, dict) or "name" not in gen:
        raise ValueError(f"generator features need the run's generator, and {run_dir} records no config "
                         "(a run of eacps run)")
    return create("generator", gen["name"], gen.get("params") or {}, section="generator")


def warm_start_data(model: ValueModel, context: dict[str, Any], X: Sequence[Sequence[float]],
                    y: Sequence[float], source: str | None = None) -> dict[str, Any]:
    """The contents of a warm-start file (fingerprinted); ``source``: the generator's feature source when ``X``
    holds its preview features."""
    body = {"format": WARM_FORMAT, "features": features_id(source),
            "model": {"name": model.name, "fingerprint": model.fingerprint()}, "context": dict(context),
            "X": [list(map(float, x)) for x in X], "y": [float(v) for v in y]}
    return {**body, "fingerprint": _digest(body)}


def export_warm_start(run_dir: str | Path, out: str | Path, params: ScreenParams | None = None,
                      generator: Any = None) -> int:
    """Write a warm-start file of the (preview, final) pairs in a run store, for ``params``' value model; returns
    the number of pairs. With ``params.features = "generator"``, ``generator`` (the run's) computes each preview's
    features from its stored image."""
    from eacps.store import read_only

    params = params or ScreenParams()
    model = make_model(params)
    store = read_only(Path(run_dir))
    try:
        context = store.get_meta("identity")  # eacps.api.IDENTITY_META: the run's generator and potentials
        cands = store.candidates()
        conditions = {cid: store.condition_json(cid) for cid in dict.fromkeys(c.condition for c in cands)}
    finally:
        store.close()
    if not isinstance(context, dict):
        raise ValueError(f"RUN_DIR: {run_dir} records no generator and potential (not a run store of eacps)")
    steps = max((c.steps for c in cands if c.recipe.until is None and c.recipe.steps is None), default=None)
    if steps is None:
        raise ValueError(f"RUN_DIR: {run_dir} holds no finished image to learn from")
    vectors, source = None, None
    if params.features == "generator":
        source = None if generator is None else generator.feature_source()
        if source is None:
            raise ValueError("value_model.features: 'generator' needs the run's generator to supply preview features")
        if context.get("generator") != generator.fingerprint():
            raise ValueError(f"generator: not the generator of the run in {run_dir} (fingerprint "
                             f"{generator.fingerprint()}, the run's {context.get('generator')})")
        vectors = [None] * len(cands)
        for cid, desc in conditions.items():  # per condition (the features may read it)
            idx = [i for i, c in enumerate(cands) if c.condition == cid]
            cond = Condition(**{"id": cid, **{k: v for k, v in desc.items() if k in _CONDITION_FIELDS}})
            for i, v in zip(idx, preview_vectors(generator, [cands[i] for i in idx], cond), strict=True):
                vectors[i] = v
    X, y = pairs_of(cands, steps, vectors)
    data = warm_start_data(model, context, X, y, source)
    Path(out).write_text(json.dumps(data), encoding="utf-8")
    return len(y)

