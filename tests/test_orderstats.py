"""eacps.orderstats: the expected maximum of n draws, exact for a standard normal (against known values and Monte
Carlo) and unbiased from a sample (``expected_max_empirical``), and how far the write-up's approximation strays."""

import math

import numpy as np
import pytest

from eacps.orderstats import (
    expected_improvement_normal,
    expected_max_curve,
    expected_max_empirical,
    expected_max_normal,
    expected_max_std_normal,
    invert_curves,
    prob_reach_normal,
    writeup_approximation,
)


def test_exact_expected_maximum_matches_known_values_and_monte_carlo():
    # the values quoted in the write-up's correction note
    assert [round(expected_max_std_normal(n), 2) for n in (2, 4, 8, 20)] == [0.56, 1.03, 1.42, 1.87]
    assert expected_max_std_normal(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-9)  # closed form
    rng = np.random.default_rng(0)
    mc = rng.standard_normal((200_000, 20)).max(axis=1).mean()
    assert expected_max_std_normal(20) == pytest.approx(mc, abs=0.01)
    # the approximation overstates small-N gains
    assert writeup_approximation(0, 1, 2) - expected_max_std_normal(2) > 0.6


def test_empirical_expected_maximum():
    xs = [3.0, 1.0, 2.0]
    assert expected_max_empirical(xs, 1) == pytest.approx(2.0)
    assert expected_max_empirical(xs, 2) == pytest.approx(8 / 3)  # subsets {1,2},{1,3},{2,3}
    assert expected_max_empirical(xs, 3) == pytest.approx(3.0)
    assert expected_max_empirical(xs, 2.5) == pytest.approx((8 / 3 + 3) / 2)
    # beyond the sample size: draws with replacement, P(max=1)=1/81, P(2)=15/81, P(3)=65/81 for n=4
    assert expected_max_empirical(xs, 4) == pytest.approx((1 + 30 + 195) / 81)
    # unbiased: averaged over many samples of size 10, it matches the exact normal value for n = 4
    rng = np.random.default_rng(1)
    est = np.mean([expected_max_empirical(rng.standard_normal(10), 4) for _ in range(4000)])
    assert est == pytest.approx(expected_max_std_normal(4), abs=0.02)


# -- the order statistics behind each decision -----------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("best", [-1.0, 0.0, 1.5])
def test_expected_improvement_matches_monte_carlo(k, best):
    rng = np.random.default_rng(0)
    draws = 2.0 + 3.0 * rng.standard_normal((400_000, k))
    mc = np.maximum(draws.max(axis=1) - best, 0.0).mean()
    assert expected_improvement_normal(2.0, 3.0, best, k) == pytest.approx(mc, rel=0.01)
    p = (draws.max(axis=1) >= best).mean()
    assert prob_reach_normal(2.0, 3.0, best, k) == pytest.approx(p, abs=0.003)


def test_the_curve_is_the_empirical_maximum_at_every_n():
    """``expected_max_curve`` is ``expected_max_empirical`` for n = 1..m in one product, whatever the input order."""
    xs = np.random.default_rng(2).normal(size=12)
    curve = expected_max_curve(xs[::-1])
    assert curve == pytest.approx([expected_max_empirical(xs, n) for n in range(1, 13)], rel=1e-12)
    assert curve[0] == pytest.approx(xs.mean()) and curve[-1] == pytest.approx(xs.max())
    assert np.all(np.diff(curve) >= 0)
    with pytest.raises(ValueError, match="no samples"):
        expected_max_curve([])


def test_invert_curves_reads_n_where_each_row_reaches_its_target():
    curves = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    got = invert_curves(curves, np.array([0.5, 2.0, 3.0, 5.0]))
    assert got[0] == 1.0  # at or below n = 1
    assert got[1] == pytest.approx(2.0) and got[2] == pytest.approx(2.5)  # linear between integers
    assert got[3] == np.inf  # beyond n = m


def test_normal_helpers_at_their_edges():
    assert expected_max_normal(3.0, 2.0, 2) == pytest.approx(3.0 + 2.0 / math.sqrt(math.pi))
    assert expected_max_std_normal(1) == 0.0 and writeup_approximation(1.5, 2.0, 1) == 1.5
    assert expected_improvement_normal(0.0, 1.0, 0.0, 1) == pytest.approx(1 / math.sqrt(2 * math.pi))  # classic EI
    assert expected_improvement_normal(5.0, 0.0, 2.0, 3) == 3.0 and expected_improvement_normal(1.0, 0.0, 2.0, 3) == 0
    assert expected_improvement_normal(0.0, 1.0, 1.0, 4, cap=1.0) == 0.0  # nothing to gain below the cap
    capped, free = expected_improvement_normal(0.0, 1.0, 0.0, 4, cap=0.5), expected_improvement_normal(0.0, 1.0, 0.0, 4)
    assert 0 < capped < 0.5 and capped < free
    assert prob_reach_normal(1.0, 0.0, 1.0, 2) == 1.0 and prob_reach_normal(0.9, 0.0, 1.0, 2) == 0.0
    assert prob_reach_normal(0.0, 1.0, 0.0, 3) == pytest.approx(1 - 0.5**3)
    for bad in (lambda: expected_max_std_normal(0), lambda: expected_max_empirical([1.0], 0.5),
                lambda: expected_max_empirical([], 1), lambda: expected_improvement_normal(0, 1, 0, 0),
                lambda: prob_reach_normal(0, 1, 0, 0)):
        with pytest.raises(ValueError):
            bad()
