"""The ``nevergrad`` strategy: any optimizer of ``nevergrad.optimizers.registry`` over the noise."""

from __future__ import annotations

import difflib
import math
import threading
import warnings
import weakref
from typing import Any

import nevergrad as ng
import numpy as np
from pydantic import Field, field_validator

from eacps import Result
from eacps.noise_space import ChartOptimizer, NoiseChart, NoiseParams

# How a failed candidate is told: its loss is documented below; ``constraint_violation=1`` marks it
# infeasible (nevergrad keeps it out of its archive and recommendations) and this penalty style
# (b = 0) makes nevergrad add nothing on top of that loss.
FAILURE_PENALTY_STYLE = (0.0, 0.0, 1.0, 1.0, 0.0, 1.0)


def _known(name: str) -> str:
    names = sorted(ng.optimizers.registry)
    close = difflib.get_close_matches(name, names, n=8, cutoff=0.5)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    return (
        f"unknown nevergrad optimizer {name!r}{hint}; known ({len(names)}): "
        f"{', '.join(names[:40])}, ... (all in nevergrad.optimizers.registry)"
    )


class NevergradParams(NoiseParams):
    optimizer: str = Field("NGOpt", description="a name in nevergrad.optimizers.registry")
    num_workers: int = Field(8, ge=1, description="candidates asked together; their results are told together")

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, v: str) -> str:
        if v not in ng.optimizers.registry:
            raise ValueError(_known(v))
        return v


def _stop_threads(optimizer: Any) -> None:
    """Stop the background threads of recast optimizers (Cobyla, SQP, ...), nested ones included.

    Nevergrad runs such optimizers in a non-daemon thread that waits for the next ``tell``; left
    alive it keeps the interpreter from exiting.
    """
    todo, seen = [optimizer], set()
    while todo:
        opt = todo.pop()
        if id(opt) in seen:
            continue
        seen.add(id(opt))
        thread = getattr(opt, "_messaging_thread", None)
        if thread is not None:
            thread.stop()
        for v in vars(opt).values():
            items = v if isinstance(v, list | tuple) else [v]
            todo += [o for o in items if isinstance(o, ng.optimizers.base.Optimizer)]


def _stop_later(ref: weakref.ref) -> None:
    strategy = ref()
    if strategy is not None:
        _stop_threads(strategy.optimizer)


class NevergradStrategy(ChartOptimizer):
    """Nevergrad's ask/tell over ``x ∈ [-bound, bound]^dim`` (see ``eacps.noise_space``); it minimizes
    ``-potential``.

    ``num_workers`` candidates are asked together and told together, in ask order, once every result
    of the batch is in, so the asks depend only on the results (resume by replay works whatever the
    engine's batching). A proposal whose noise was already evaluated is told the known result and not
    asked again; if the optimizer proposes nothing new in ``20·batch + 20`` tries the strategy stops
    with reason ``exhausted``.

    Failed, filtered or non-finite candidates are told, never dropped: every ask is answered, so
    population-based optimizers complete their generations and sequential (recast) ones do not wait
    forever. Each is told the loss ``-(lowest OK potential told so far)`` (``0.0`` before any success:
    potentials are >= 0 for [0, 10] scorers) with ``constraint_violation=1``, which makes nevergrad
    treat it as infeasible: it never enters the archive or the recommendation, and the optimizer
    learns that the region is no better than the worst success.
    """

    name = "nevergrad"
    Params = NevergradParams

    def __init__(self, params: NevergradParams | None = None, *, budget: int = 20, seed: int = 0) -> None:
        super().__init__(params, budget=budget, seed=seed)
        p: NevergradParams = self.params
        self.chart = NoiseChart(self.global_seeds, dim=p.dim, bound=p.bound, chart=p.chart)
        parametrization = ng.p.Array(shape=(p.dim,), lower=-p.bound, upper=p.bound)
        parametrization.random_state = np.random.RandomState(np.random.SeedSequence([self.seed, 3]).generate_state(1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "bounds are 2 sigma away": the box is the search space
            self.optimizer = ng.optimizers.registry[p.optimizer](
                parametrization=parametrization, budget=budget, num_workers=p.num_workers
            )
        self.worst_ok: float | None = None
        self.failures_told = 0
        # stop recast threads at exit even if this strategy is still referenced (runs before joining threads)
        register_atexit = getattr(threading, "_register_atexit", None)
        if register_atexit is not None:
            register_atexit(_stop_later, weakref.ref(self))

    def proposal_size(self) -> int:
        return self.params.num_workers

    def _propose_one(self) -> tuple[list[float], Any]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cand = self.optimizer.ask()
        return np.asarray(cand.value, dtype=float).tolist(), cand

    def _on_exhausted(self) -> None:
        self.close()

    def _on_batch_told(self) -> None:
        if self.asked >= self.budget:
            self.close()

    def failure_loss(self) -> float:
        """The loss told for a failed candidate: as bad as the worst success so far (0.0 before any)."""
        return -(self.worst_ok if self.worst_ok is not None else 0.0)

    def _tell_token(self, cand: Any, res: Result) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if res.ok and math.isfinite(res.potential):
                self.worst_ok = res.potential if self.worst_ok is None else min(self.worst_ok, res.potential)
                self.optimizer.tell(cand, -float(res.potential))
            else:
                self.failures_told += 1
                self.optimizer.tell(
                    cand, self.failure_loss(), constraint_violation=1.0, penalty_style=FAILURE_PENALTY_STYLE
                )

    def close(self) -> None:
        """Stop nevergrad's background threads (called when the search ends; safe to call twice)."""
        _stop_threads(self.optimizer)

