"""Value models: cheap predictors of a trajectory's final potential from what is known of it part way.

A value model maps features of a partial trajectory (``eacps.screening.FEATURES``: the potential of the
model's clean-image prediction at step k, and k as a fraction of the schedule) to a predicted final potential,
with an uncertainty: ``predict(X) -> (mean, std)``. It is fitted from (features, final) pairs: a search's own
(preview, final) pairs, and pairs of earlier runs for the same generator and potential (a warm start, see
``eacps.screening``). It is a plugin kind of its own (``register_value_models``); the conformance suite is
``eacps.testing.ValueModelConformance``.

A value model never picks the winner: strategies use it only to decide which partial trajectories need the
judge at all (``eacps.screening``).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from eacps.hookspecs import hookimpl
from eacps.params import NoParams, Params


class ValueModel(ABC):
    """Base class. Deterministic: the same pairs in the same order give the same predictions. ``fit`` replaces
    what was fitted before (it is given every pair each time); ``state``/``load_state`` round-trip a fit as
    JSON-serializable data."""

    name: ClassVar[str]
    Params: ClassVar[type[Params]] = NoParams

    def __init__(self, params: Params | None = None) -> None:
        self.params = params if params is not None else self.Params()

    def fingerprint(self) -> str:
        """Identifies the model and its params (a changed one never reuses a stale warm start)."""
        text = json.dumps({"name": self.name, "params": self.params.model_dump(mode="json")}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit on ``X`` (n, d) and finals ``y`` (n,), n >= 1."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted final potentials of ``X`` (m, d): mean and standard deviation (finite, > 0), each (m,)."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The fit as JSON-serializable data."""

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a fit from ``state()`` (ValueError naming what is wrong when it is not one)."""


class BayesRidgeParams(Params):
    alpha: float = Field(1.0, gt=0, description="prior precision of the standardized weights")
    noise_floor: float = Field(1e-3, gt=0, description="smallest noise std, in units of the finals' std")


class BayesRidge(ValueModel):
    """Bayesian linear regression on standardized features (and an intercept), noise variance estimated from the
    residuals: the posterior predictive mean and std. Closed form, a few microseconds per fit at these sizes."""

    name = "bayes-ridge"
    Params = BayesRidgeParams

    def __init__(self, params: BayesRidgeParams | None = None) -> None:
        super().__init__(params)
        self._fit: dict[str, Any] | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        if X.ndim != 2 or y.shape != (X.shape[0],) or X.shape[0] < 1:
            raise ValueError(f"fit needs X (n, d) and y (n,), n >= 1; got {X.shape} and {y.shape}")
        mu, sd = X.mean(axis=0), X.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        ym, ys = float(y.mean()), float(y.std()) or 1.0
        Z = np.hstack([np.ones((len(X), 1)), (X - mu) / sd])
        t = (y - ym) / ys
        prior = np.full(Z.shape[1], self.params.alpha)
        prior[0] = 1e-6  # the intercept is free
        A = Z.T @ Z + np.diag(prior)
        w = np.linalg.solve(A, Z.T @ t)
        resid = t - Z @ w
        dof = max(1, len(t) - Z.shape[1])
        noise = max(float(resid @ resid) / dof, self.params.noise_floor**2) if len(t) > Z.shape[1] else 1.0
        self._fit = {"mu": mu.tolist(), "sd": sd.tolist(), "ym": ym, "ys": ys, "w": w.tolist(),
                     "cov": np.linalg.inv(A).tolist(), "noise": noise}

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=float)
        f = self._fit
        if f is None:  # nothing known: the prior, wide
            return np.zeros(len(X)), np.full(len(X), 1e6)
        Z = np.hstack([np.ones((len(X), 1)), (X - np.array(f["mu"])) / np.array(f["sd"])])
        cov = np.array(f["cov"])
        var = f["noise"] * (1.0 + np.einsum("ij,jk,ik->i", Z, cov, Z))
        return f["ym"] + f["ys"] * (Z @ np.array(f["w"])), f["ys"] * np.sqrt(var)

    def state(self) -> dict[str, Any]:
        return {"fit": self._fit}

    def load_state(self, state: dict[str, Any]) -> None:
        fit = state.get("fit") if isinstance(state, dict) else None
        keys = {"mu", "sd", "ym", "ys", "w", "cov", "noise"}
        if fit is not None and (not isinstance(fit, dict) or set(fit) != keys):
            raise ValueError(f"bayes-ridge state: 'fit' must hold {sorted(keys)}")
        self._fit = fit


@hookimpl
def register_value_models(register):
    register(BayesRidge)
