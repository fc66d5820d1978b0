"""Small, dependency-light statistics used by summaries and reports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Bootstrap replicates of every over-tasks CI (``eacps compare`` and the summaries share it, and its seed 0).
N_BOOT = 2000


def task_mean_ci(values: dict[str, list[float]], *, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float, float]:
    """Mean over tasks of each task's mean value (its searches' bests, say), with the 95% percentile bootstrap CI
    that resamples tasks: ``task_weights`` on the sorted task ids, as ``eacps compare`` does, so the same numbers
    carry the same CI in every table. NaNs when there is no task."""
    tasks = sorted(t for t, v in values.items() if len(v))
    if not tasks:
        return (float("nan"), float("nan"), float("nan"))
    x = np.array([float(np.mean(values[t])) for t in tasks])
    w = task_weights(len(tasks), n_boot=n_boot, seed=seed)
    lo, hi = percentile_interval(weighted_mean(w, x))
    return (float(x.mean()), lo, hi)


def task_weights(n_tasks: int, *, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Paired bootstrap over tasks: row b counts how often each task is drawn in replicate b (n_tasks
    draws with replacement). One matrix for every strategy, so replicates resample tasks jointly."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_tasks, size=(n_boot, n_tasks))
    return np.stack([np.bincount(row, minlength=n_tasks) for row in draws]).astype(float)


def weighted_mean(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per replicate (row of ``w``), the weighted mean of ``v`` over its non-NaN tasks."""
    ok = ~np.isnan(v)
    wm = w * ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return (wm @ np.where(ok, v, 0.0)) / wm.sum(axis=1)


def percentile_interval(values: Sequence[float], *, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates that may hold ±inf (an unresolved replicate): the order
    statistics just outside the level, never an interpolation with an infinity. NaN replicates are dropped."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (float("nan"), float("nan"))
    a = (1 - level) / 2
    return (float(np.quantile(x, a, method="lower")), float(np.quantile(x, 1 - a, method="higher")))
