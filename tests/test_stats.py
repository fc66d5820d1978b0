"""Statistics of summaries and reports: the over-tasks mean with a paired task bootstrap CI."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eacps.analysis.stats import N_BOOT, percentile_interval, task_mean_ci, task_weights, weighted_mean


def test_task_mean_is_the_mean_of_task_means_with_a_ci_around_it():
    values = {"a": [1.0, 3.0], "b": [4.0], "c": [6.0, 6.0, 6.0]}
    mean, lo, hi = task_mean_ci(values)
    assert mean == pytest.approx((2.0 + 4.0 + 6.0) / 3)
    assert 2.0 <= lo <= mean <= hi <= 6.0
    assert task_mean_ci(values) == (mean, lo, hi)  # seeded: the same numbers carry the same CI
    assert task_mean_ci({"a": [5.0], "b": [5.0]}) == (5.0, 5.0, 5.0)


def test_no_task_gives_nans():
    assert all(math.isnan(x) for x in task_mean_ci({"a": []}))


def test_task_weights_draw_every_replicate_from_the_tasks():
    w = task_weights(4, n_boot=50, seed=1)
    assert w.shape == (50, 4) and np.all(w.sum(axis=1) == 4)
    assert np.array_equal(w, task_weights(4, n_boot=50, seed=1))
    assert task_weights(3).shape == (N_BOOT, 3)


def test_weighted_mean_skips_nan_tasks():
    w = np.array([[1.0, 1.0, 2.0], [0.0, 3.0, 1.0]])
    got = weighted_mean(w, np.array([1.0, np.nan, 4.0]))
    assert got == pytest.approx([(1 + 8) / 3, 4.0])


def test_percentile_interval_never_interpolates_an_infinity():
    x = [1.0, 2.0, 3.0, float("inf")] * 10 + [float("nan")]
    lo, hi = percentile_interval(x)
    assert lo == 1.0 and hi == float("inf")
    assert percentile_interval(np.arange(1001.0)) == (25.0, 975.0)
    assert all(math.isnan(v) for v in percentile_interval([float("nan")]))
