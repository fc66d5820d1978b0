import math

import numpy as np
import pytest
from toy import BadParams, BadScorer, ToyMeanScorer, ToyScorer

from eacps import Condition
from eacps.potential import Calibration, Criterion, Potential, PotentialConfigError, ScoreError, check_value

IMGS = [np.full((4, 4, 1), v, np.float32) for v in (0.1, 0.5, 0.9)]
COND = Condition("c")


def test_weighted_sum_and_every_sub_score_recorded():
    pot = Potential([Criterion("realism", ToyScorer(), 4.0), Criterion("consistency", ToyMeanScorer(), 1.0)])
    for img, s in zip(IMGS, pot.evaluate(IMGS, COND), strict=True):
        v = 10 * float(img[0, 0, 0])
        assert s.scores == pytest.approx({"realism": v, "consistency": v})
        assert s.potential == pytest.approx(5.0 * v)
        assert s.reason is None


@pytest.mark.parametrize("value, reason", [
    (float("nan"), "NaN"), (math.inf, "inf"), (-math.inf, "-inf"), (None, "None"), ("8/10", "not a number"),
    ("eight", "not a number"), (11.0, "out of range"), (-1.0, "out of range"), (True, "not a number"),
    (ValueError("refusal: I cannot judge this"), "refusal"),
])
def test_bad_values_are_failures_with_reasons(value, reason):
    with pytest.raises(ScoreError, match=reason):
        check_value(value)


@pytest.mark.parametrize("value", ["nan", "inf", "none", "string", "fraction", "eleven", "negative", "exception",
                                   "raise"])
def test_a_bad_candidate_fails_alone(value):
    pot = Potential([Criterion("realism", BadScorer(BadParams(value=value, every=2)), 1.0)])
    imgs = [np.full((4, 4, 1), v / 1000, np.float32) for v in (2, 3, 4, 5)]  # pixel*1000 % 2 == 0 -> bad
    out = pot.evaluate(imgs, COND)
    assert [o.potential is None for o in out] == [True, False, True, False]
    assert all(o.reason.startswith("realism (toy-bad): ") for o in out[::2])
    assert [o.potential for o in out[1::2]] == [5.0, 5.0]


def test_calibration_maps_to_0_10():
    assert Calibration(kind="range", lo=0.2, hi=0.4).apply(0.3) == pytest.approx(5.0)
    assert Calibration(kind="range", lo=0.2, hi=0.4).apply(9.0) == 10.0
    assert Calibration(kind="affine", scale=2, offset=1).apply(3.0) == 7.0
    assert Calibration(kind="affine", scale=2, offset=1).apply(-3.0) == 0.0
    assert check_value(0.3, Calibration(kind="range", lo=0.0, hi=1.0)) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="hi > lo"):
        Calibration(kind="range", lo=1, hi=1)


def test_potential_configuration_errors():
    with pytest.raises(PotentialConfigError, match="all zero"):
        Potential([Criterion("realism", ToyScorer(), 0.0)])
    with pytest.raises(PotentialConfigError, match="duplicate"):
        Potential([Criterion("a", ToyScorer(), 1.0), Criterion("a", ToyScorer(), 1.0)])
    p = Potential.from_scorers(consistency=ToyScorer(), realism=ToyScorer(), identity=ToyMeanScorer())
    assert [c.weight for c in p.criteria] == [1.0, 4.0, 1.5]  # the reference preset


def test_fingerprint_changes_with_weights_and_params():
    a = Potential([Criterion("realism", ToyScorer(), 4.0)]).fingerprint()
    b = Potential([Criterion("realism", ToyScorer(), 3.0)]).fingerprint()
    from toy import ToyScoreParams
    c = Potential([Criterion("realism", ToyScorer(ToyScoreParams(pixel=3)), 4.0)]).fingerprint()
    assert len({a, b, c}) == 3


def test_per_condition_standardization(tmp_path, cond):
    """calibration.kind = 'standardize': 10·Phi((raw - mu_c) / sigma_c) from the condition's calibration set."""
    from scipy.stats import norm
    from toy import ToyGenerator

    from eacps import Condition, Recipe, search
    from eacps.engine import Engine
    from eacps.store import Store

    std = Calibration(kind="standardize")
    pot = Potential([Criterion("realism", ToyScorer(), 4.0, std)], calibration_samples=16)
    gen = ToyGenerator()
    res = search(cond, generator=gen, potential=pot, strategy="best-of-n", budget=10, run_dir=tmp_path)
    mu, sd = pot.condition_stats[cond.id]["realism"]
    # the calibration set is the prior's seed and 15 fixed seeds, scored raw
    with Store.open(tmp_path) as store:
        rows = store.candidates(role="calibration")
    raws = [r.scores["realism"] for r in rows]
    assert len(rows) == 16 and rows[0].recipe == Recipe.from_seed(0)
    assert mu == pytest.approx(np.mean(raws)) and sd == pytest.approx(np.std(raws, ddof=1))
    for c in res.history:
        raw = 10 * float(ToyGenerator().generate([c.recipe], cond)[0].image[0, 0, 0])
        assert c.scores["realism"] == pytest.approx(10 * norm.cdf((raw - mu) / sd), abs=0.05)
    assert 3.0 < np.mean([10 * norm.cdf((r - mu) / sd) for r in raws]) < 7.0  # "typical" is about 5
    # conditions get their own statistics
    other = Condition("other", class_label=1)
    e = Engine(gen, pot)
    e.calibrate(other)
    assert set(pot.condition_stats) == {cond.id, "other"}
    e.close()
    # a resumed run reads the calibration set back instead of generating it again
    before = gen.generated
    pot2 = Potential([Criterion("realism", ToyScorer(), 4.0, std)], calibration_samples=16)
    search(cond, generator=gen, potential=pot2, strategy="best-of-n", budget=10, run_dir=tmp_path)
    assert gen.generated == before and pot2.condition_stats[cond.id]["realism"] == (mu, sd)
