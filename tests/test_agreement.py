"""eacps.agreement: the posterior of the preview/final correlation from a search's own (preview, final) pairs."""

from __future__ import annotations

import numpy as np
import pytest

from eacps.agreement import RHO_GRID, SIMULATED_UP_TO, _spearman_draws, agreement_mean, agreement_posterior


def simulated(spearman: float, n: int) -> np.ndarray:
    """The simulated likelihood's posterior at any n (what agreement_posterior does up to SIMULATED_UP_TO)."""
    like = (np.abs(_spearman_draws(n) - spearman) <= 0.05 + 1e-9).mean(axis=1) + 1e-12
    return like / like.sum()


@pytest.mark.parametrize("spearman", [-0.3, 0.2, 0.6, 0.9])
def test_many_pairs_take_the_normal_approximation_which_matches_the_simulation(spearman):
    n = SIMULATED_UP_TO + 5
    approx, exact = agreement_posterior(spearman, n), simulated(spearman, n)
    assert approx.sum() == pytest.approx(1.0)
    assert approx @ RHO_GRID == pytest.approx(exact @ RHO_GRID, abs=0.03)
    assert approx[RHO_GRID > 0.5].sum() == pytest.approx(exact[RHO_GRID > 0.5].sum(), abs=0.06)


def test_the_posterior_narrows_with_more_pairs_and_stays_finite_at_a_perfect_order():
    sd = [np.sqrt(w @ RHO_GRID**2 - (w @ RHO_GRID) ** 2) for w in (agreement_posterior(0.6, n) for n in (5, 20, 80))]
    assert sd[0] > sd[1] > sd[2]
    perfect = agreement_posterior(1.0, 200)
    assert np.isfinite(perfect).all() and perfect @ RHO_GRID > 0.9


def test_agreement_mean_needs_three_pairs_with_an_order():
    assert agreement_mean([(1.0, 2.0), (2.0, 3.0)]) is None
    assert agreement_mean([(1.0, 2.0), (1.0, 3.0), (1.0, 1.0)]) is None  # the previews tied: no order to read
    ranked = agreement_mean([(float(i), float(i)) for i in range(6)])
    reversed_ = agreement_mean([(float(i), float(-i)) for i in range(6)])
    assert ranked is not None and reversed_ is not None and ranked > 0.5 > -0.5 > reversed_
