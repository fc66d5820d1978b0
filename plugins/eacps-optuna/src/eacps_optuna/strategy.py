"""The ``optuna`` strategy: any Optuna sampler over the continuous noise parametrization."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import Trial, TrialState
from pydantic import Field, field_validator

from eacps import Result
from eacps.noise_space import ChartOptimizer, NoiseChart, NoiseParams

SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "cmaes": optuna.samplers.CmaEsSampler,  # needs the `cmaes` package (a dependency of this plugin)
    "gp": optuna.samplers.GPSampler,  # needs torch and scipy (dependencies of eacps)
    "random": optuna.samplers.RandomSampler,
    "qmc": optuna.samplers.QMCSampler,
}


class OptunaParams(NoiseParams):
    sampler: str = Field("tpe", description=f"sampler name, one of {', '.join(SAMPLERS)}")
    options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the sampler")
    batch_size: int = Field(8, ge=1, description="trials proposed together; their results are told together")
    storage: str | None = Field(None, description="Optuna storage URL mirroring the trials, e.g. sqlite:///optuna.db")
    study_name: str | None = Field(None, description="study name in `storage` (default: a fresh random name)")

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, v: str) -> str:
        if v not in SAMPLERS:
            raise ValueError(f"unknown optuna sampler {v!r}; known: {', '.join(sorted(SAMPLERS))}")
        return v

    @field_validator("options")
    @classmethod
    def _no_seed(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "seed" in v:
            raise ValueError("do not set the sampler's 'seed' in options: it is derived from the strategy seed")
        return v


def make_sampler(name: str, options: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """The sampler ``name`` built with ``options`` and ``seed``; an unknown name lists the known ones."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown optuna sampler {name!r}; known: {', '.join(sorted(SAMPLERS))}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return SAMPLERS[name](seed=seed, **options)


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Silence Optuna's INFO line for the private in-memory study (the global verbosity is left alone)."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


class _Mirror:
    """Copies finished trials into a persistent study (for optuna-dashboard); idempotent on resume."""

    def __init__(self, storage: str, study_name: str | None, attrs: dict[str, Any]) -> None:
        self.study = optuna.create_study(
            storage=storage, study_name=study_name, direction="maximize", load_if_exists=True
        )
        for k, v in attrs.items():
            self.study.set_user_attr(k, v)
        self.done = {t.user_attrs.get("recipe") for t in self.study.get_trials(deepcopy=False)}

    def add(self, trial: optuna.trial.FrozenTrial) -> None:
        key = trial.user_attrs.get("recipe")
        if key in self.done:
            return
        self.done.add(key)
        self.study.add_trial(
            optuna.trial.create_trial(
                params=trial.params,
                distributions=trial.distributions,
                value=trial.value if trial.state is TrialState.COMPLETE else None,
                state=trial.state,
                user_attrs=trial.user_attrs,
            )
        )


class OptunaStrategy(ChartOptimizer):
    """Optuna's ask/tell over ``x ∈ [-bound, bound]^dim`` (see ``eacps.noise_space``), maximizing the potential.

    Trials are proposed ``batch_size`` at a time and told together, in trial order, once every result
    of the batch is in: the asks then depend only on the results, not on how the engine batches its
    asks or when results arrive, so a run resumes by replaying its stored results. Failed or filtered
    candidates (and non-finite potentials) are told as ``TrialState.FAIL``. A proposal whose noise was
    already evaluated is not asked again: the trial is told the known result instead (or, while that
    result is pending, told together with it); if the sampler proposes nothing new in
    ``20·batch + 20`` tries the strategy stops with reason ``exhausted``.
    """

    name = "optuna"
    Params = OptunaParams

    def __init__(self, params: OptunaParams | None = None, *, budget: int = 20, seed: int = 0) -> None:
        super().__init__(params, budget=budget, seed=seed)
        p: OptunaParams = self.params
        self.chart = NoiseChart(self.global_seeds, dim=p.dim, bound=p.bound, chart=p.chart)
        sampler_seed = int(np.random.SeedSequence([self.seed, 2]).generate_state(1)[0])
        with _quiet_optuna():
            self.study = optuna.create_study(
                direction="maximize", sampler=make_sampler(p.sampler, p.options, sampler_seed)
            )
        self.distributions = {f"x{i}": FloatDistribution(-p.bound, p.bound) for i in range(p.dim)}
        self.mirror = (
            _Mirror(p.storage, p.study_name, {"eacps_basis": list(self.chart.basis), "eacps_chart": p.chart})
            if p.storage
            else None
        )

    def proposal_size(self) -> int:
        return self.params.batch_size

    def _propose_one(self) -> tuple[list[float], Trial]:
        trial = self.study.ask(self.distributions)
        x = [trial.params[f"x{i}"] for i in range(self.chart.dim)]
        trial.set_user_attr("recipe", self.chart.recipe(x).key)
        return x, trial

    def _tell_token(self, trial: Trial, res: Result) -> None:
        self._tell_trial(trial, res)

    def _tell_trial(self, trial: Trial, res: Result) -> None:
        trial.set_user_attr("status", res.status.value)
        if res.reason:
            trial.set_user_attr("reason", res.reason)
        if res.ok and math.isfinite(res.potential):
            frozen = self.study.tell(trial, float(res.potential))
        else:
            frozen = self.study.tell(trial, state=TrialState.FAIL)
        if self.mirror is not None:
            self.mirror.add(frozen)

