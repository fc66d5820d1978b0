"""Small, dependency-light statistics used by summaries and reports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bootstrap_ci(
    values: Sequence[float], *, level: float = 0.95, n_boot: int = 4000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (seeded, so reports are reproducible)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"))
    if x.size == 1:
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    a = (1 - level) / 2
    return (float(np.quantile(means, a)), float(np.quantile(means, 1 - a)))


def summarize(values: Sequence[float]) -> dict[str, float | list[float]]:
    lo, hi = bootstrap_ci(values)
    return {"mean": float(np.mean(values)) if len(values) else float("nan"), "ci95": [lo, hi], "n": len(values)}


def task_weights(n_tasks: int, *, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """Paired bootstrap over tasks: row b counts how often each task is drawn in replicate b (n_tasks
    draws with replacement). One matrix for every strategy, so replicates resample tasks jointly."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_tasks, size=(n_boot, n_tasks))
    return np.stack([np.bincount(row, minlength=n_tasks) for row in draws]).astype(float)


def percentile_interval(values: Sequence[float], *, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates that may hold ±inf (an unresolved replicate): the order
    statistics just outside the level, never an interpolation with an infinity. NaN replicates are dropped."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (float("nan"), float("nan"))
    a = (1 - level) / 2
    return (float(np.quantile(x, a, method="lower")), float(np.quantile(x, 1 - a, method="higher")))
