"""The calibrator: a condition's calibration set is the prior's seed plus ``calibration_samples - 1`` fixed seeds,
scored raw by every ``standardize`` criterion, stored as role ``calibration`` rows and read back on resume; the
potential and the preview potential each get their own statistics, per (condition, prior seed)."""

from __future__ import annotations

import numpy as np
import pytest
from toy import ToyGenerator, ToyMeanScorer, ToyScorer

from eacps import Condition, Recipe, Status
from eacps.engine.batch import Batch, BatchComputer
from eacps.engine.calibrator import CALIBRATION_SEED, CalibrationError, Calibrator
from eacps.engine.planner import Planner
from eacps.potential import Calibration, Criterion, Potential
from eacps.store import Store
from eacps.strategy import SeedStream

STANDARDIZE = Calibration(kind="standardize")


def calibrator(store: Store, potential: Potential, preview: Potential | None = None,
               generator: ToyGenerator | None = None) -> Calibrator:
    comp = BatchComputer(generator or ToyGenerator(), potential, preview)
    return Calibrator(comp, Planner(store, "gen", lambda r: ("pot", 10)))


def calibrate(cal: Calibrator, cond: Condition, prior_seed: int) -> int:
    """Compute every planned calibration batch in process; returns how many were computed."""
    planned = cal.plan(cond, prior_seed)
    for role, b in planned:
        results = cal.computer.compute(Batch(tuple(b.recipes[i] for i in b.todo), cond, calibrate=role))
        cal.finish(role, cond, prior_seed, b, results)
    return len(planned)


def raw_means(seeds: list[int], cond: Condition) -> list[float]:
    return [10.0 * float(np.mean(g.image)) for g in ToyGenerator().generate([Recipe.from_seed(s) for s in seeds], cond)]


def test_statistics_are_the_mean_and_std_of_the_prior_seed_and_fixed_seeds(tmp_path):
    pot = Potential([Criterion("consistency", ToyMeanScorer(), 1.0, STANDARDIZE),
                     Criterion("realism", ToyScorer(), 1.0)], calibration_samples=5)
    cond = Condition("c")
    with Store.open(tmp_path) as store:
        cal = calibrator(store, pot)
        (role, b), = cal.plan(cond, 7)
        assert role == "potential" and b.role == "calibration" and b.search == "calibration/c/7"
        seeds = [7, *SeedStream(CALIBRATION_SEED, 7).take(4)]
        assert b.recipes == [Recipe.from_seed(s) for s in seeds]
        cal.finish(role, cond, 7, b, cal.computer.compute(Batch(tuple(b.recipes), cond, calibrate=role)))
        stats, preview = cal.stats_for(cond, 7)
    vals = raw_means(seeds, cond)
    assert set(stats) == {"consistency"}  # only standardize criteria are calibrated
    assert stats["consistency"] == pytest.approx((np.mean(vals), np.std(vals, ddof=1)), rel=1e-2)
    assert preview == {}


def test_stored_sets_are_read_back_not_computed_again(tmp_path):
    pot = Potential([Criterion("consistency", ToyMeanScorer(), 1.0, STANDARDIZE)], calibration_samples=4)
    cond = Condition("c")
    with Store.open(tmp_path) as store:
        cal = calibrator(store, pot)
        assert calibrate(cal, cond, 0) == 1
        first = cal.stats_for(cond, 0)
        assert cal.plan(cond, 0) == []  # known in this process
        rows = store.candidates(role="calibration")
        assert len(rows) == 4 and all(r.status is Status.OK for r in rows)
    with Store.open(tmp_path) as store:  # a resumed run
        gen = ToyGenerator()
        cal = calibrator(store, pot, generator=gen)
        assert cal.plan(cond, 0) == [] and gen.generated == 0
        assert cal.stats_for(cond, 0) == first
        assert calibrate(cal, cond, 1) == 1  # another prior seed is another set
        assert cal.stats_for(cond, 1) != first


def test_the_preview_potential_gets_its_own_set_and_statistics(tmp_path):
    pot = Potential([Criterion("consistency", ToyMeanScorer(), 1.0, STANDARDIZE)], calibration_samples=3)
    preview = Potential([Criterion("pixel", ToyScorer(), 1.0, STANDARDIZE)], calibration_samples=3)
    cond = Condition("c")
    with Store.open(tmp_path) as store:
        cal = calibrator(store, pot, preview)
        planned = cal.plan(cond, 0)
        assert [(role, b.search) for role, b in planned] == [("potential", "calibration/c/0"),
                                                              ("preview", "calibration-preview/c/0")]
        calibrate(cal, cond, 0)
        stats, preview_stats = cal.stats_for(cond, 0)
    assert set(stats) == {"consistency"} and set(preview_stats) == {"pixel"}


def test_a_potential_without_standardized_criteria_needs_no_calibration(tmp_path):
    with Store.open(tmp_path) as store:
        cal = calibrator(store, Potential([Criterion("consistency", ToyMeanScorer(), 1.0)]))
        assert cal.plan(Condition("c"), 0) == []
        assert cal.stats_for(Condition("c"), 0) == ({}, {})
        assert store.candidates() == []


def test_too_few_valid_scores_is_an_error_naming_the_condition(tmp_path):
    class Failing(ToyGenerator):
        def generate(self, recipes, condition, *, steps=None):
            raise RuntimeError("no images today")

    pot = Potential([Criterion("consistency", ToyMeanScorer(), 1.0, STANDARDIZE)], calibration_samples=3)
    with Store.open(tmp_path) as store:
        cal = calibrator(store, pot, generator=Failing())
        with pytest.raises(CalibrationError, match=r"cannot calibrate the potential on condition 'c': criterion "
                                                   r"'consistency': fewer than 2 valid calibration scores"):
            calibrate(cal, Condition("c"), 0)
