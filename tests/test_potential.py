import json
import math
from pathlib import Path

import numpy as np
import pytest
from repo import ROOT, load_script
from runs import candidates, rows, toy_config
from toy import BadParams, BadScorer, ToyMeanScorer, ToyScorer

from eacps import Condition
from eacps.commands.cli import main
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

    from eacps import Condition, Recipe
    from eacps.engine.engine import Engine
    from eacps.store import Store
    from eacps.strategies.best_of_n import BestOfN

    std = Calibration(kind="standardize")
    pot = Potential([Criterion("realism", ToyScorer(), 4.0, std)], calibration_samples=16)
    gen = ToyGenerator()
    with Store.open(tmp_path) as store:
        eng = Engine(gen, pot, store)
        res = eng.run(cond, BestOfN(budget=10))
        mu, sd = eng.calibrator.stats[(cond.id, 0, "potential")]["realism"]
        rows = store.candidates(role="calibration")
        # conditions get their own statistics
        eng.prior(Condition("other", class_label=1))
        assert {k[0] for k in eng.calibrator.stats} == {cond.id, "other"}
        eng.close()
    # the calibration set is the prior's seed and 15 fixed seeds, scored raw
    raws = [r.scores["realism"] for r in rows]
    assert len(rows) == 16 and rows[0].recipe == Recipe.from_seed(0)
    assert mu == pytest.approx(np.mean(raws)) and sd == pytest.approx(np.std(raws, ddof=1))
    for c in res.history:
        raw = 10 * float(ToyGenerator().generate([c.recipe], cond)[0].image[0, 0, 0])
        assert c.scores["realism"] == pytest.approx(10 * norm.cdf((raw - mu) / sd), abs=0.05)
    assert 3.0 < np.mean([10 * norm.cdf((r - mu) / sd) for r in raws]) < 7.0  # "typical" is about 5
    # a resumed run reads the calibration set back instead of generating it again
    before = gen.generated
    pot2 = Potential([Criterion("realism", ToyScorer(), 4.0, std)], calibration_samples=16)
    with Store.open(tmp_path) as store:
        eng = Engine(gen, pot2, store)
        eng.run(cond, BestOfN(budget=10))
        assert eng.calibrator.stats[(cond.id, 0, "potential")]["realism"] == (mu, sd)
        eng.close()
    assert gen.generated == before


def test_a_potential_is_a_pure_function_of_images_condition_and_stats(cond):
    """No side channel: the statistics are an argument, nothing is kept between calls, costs come back
    with the scores."""
    std = Calibration(kind="standardize")
    pot = Potential([Criterion("realism", ToyScorer(), 4.0, std), Criterion("consistency", ToyMeanScorer(), 1.0)])
    img = np.full((4, 4, 1), 0.5, dtype=np.float32)
    (missing,) = pot.evaluate([img], cond)
    assert missing.potential is None and "no calibration statistics" in missing.reason
    a = pot.evaluate([img, img], cond, {"realism": (4.0, 1.0)})
    b = pot.evaluate([img, img], cond, {"realism": (6.0, 1.0)})
    assert a[0].scores["realism"] == pytest.approx(10 * 0.8413, abs=1e-3)  # 10·Phi(1)
    assert b[0].scores["realism"] == pytest.approx(10 * 0.1587, abs=1e-3)  # 10·Phi(-1): nothing carried over
    assert pot.evaluate([img], cond, {"realism": (4.0, 1.0)})[0].scores == a[0].scores
    assert set(a[0].criterion_seconds) == {"realism", "consistency"}
    assert a[0].seconds == pytest.approx(sum(a[0].criterion_seconds.values()))
    assert not hasattr(pot, "condition_stats") and not hasattr(pot, "calls") and not hasattr(pot, "preview")


def test_stats_from_raw_needs_two_valid_values():
    from eacps.potential import ScoreError, stats_from_raw

    mu, sd = stats_from_raw({"r": [1.0, 3.0, float("nan"), None]}, "c")["r"]
    assert (mu, sd) == (2.0, pytest.approx(np.sqrt(2.0)))
    with pytest.raises(ScoreError, match="fewer than 2 valid"):
        stats_from_raw({"r": [1.0, "x"]}, "c")


def test_a_scorer_that_never_returns_fails_its_candidates_after_the_time_limit(cond):
    import threading

    from eacps import Scorer

    release = threading.Event()

    class Hangs(Scorer):
        name = "hangs"

        def score(self, images, condition):
            release.wait()  # "forever": until the test ends
            return [1.0 for _ in images]

    pot = Potential([Criterion("realism", ToyScorer(), 4.0), Criterion("stuck", Hangs(), 1.0)])
    img = np.full((4, 4, 1), 0.5, dtype=np.float32)
    try:
        out = pot.evaluate([img, img], cond, timeout_s=0.2)
    finally:
        release.set()
    assert all(o.potential is None and "stuck (hangs): CallTimeout: scorer 'hangs' timed out after 0.2 s" in o.reason
               for o in out)
    assert all("realism" in o.scores for o in out)  # the other criteria are kept


# -- promise 3: bad scorer outputs (moved from tests/reliability/test_03_bad_scores.py) ------------------------------
# Promise 3: bad scorer outputs (NaN, +-inf, None, a string, "8/10", 11, -1, an exception, a crash, and from
# an HTTP judge an empty reply, a refusal, a timeout) each make that candidate FAILED with its reason, never
# a score and never the best; the run goes on and reports the failure rate.


BAD = {  # toy-bad value -> the reason recorded
    "nan": "returned NaN",
    "inf": "returned inf",
    "-inf": "returned -inf",
    "none": "returned None",
    "string": "not a number: 'eight'",
    "fraction": "not a number: '8/10'",
    "eleven": "out of range [0, 10]: 11.0",
    "negative": "out of range [0, 10]: -1.0",
    "exception": "ValueError: judge refused",
    "raise": "RuntimeError: scorer crashed",
}
TOTAL = 2 * (1 + 20)


def check_run(out: Path, printed: str, expect: list[tuple[str, str]]) -> tuple[int, int]:
    """Every FAILED row has a reason and no potential; the best of each search is OK; the printed failure rate
    is the stored one. Returns (failed, candidates)."""
    all_rows = rows(out)
    assert len(all_rows) == TOTAL  # the run went on to the end
    failed = [r for r in all_rows if r[5] == "FAILED"]
    assert failed, "no fault was injected"
    for *_, potential, reason, scores in failed:
        assert potential is None and reason
        assert any(k in reason and v in reason for k, v in expect), reason
        assert "consistency" not in json.loads(scores)  # the bad value is never stored as a score
    ok = [r for r in all_rows if r[5] == "OK"]
    assert all(r[6] is not None and r[7] is None for r in ok)
    for search in {c.search for c in candidates(out, role="search")}:
        scored = [c for c in candidates(out, search=search) if c.potential is not None]
        best = (max(scored, key=lambda c: c.potential).status.value,) if scored else None
        assert best == ("OK",)
    searched = candidates(out, role="search")
    n, bad = len(searched), sum(c.status.value != "OK" for c in searched)
    assert f"{100 * bad / n:.1f}%" in printed  # the failure rate is reported
    return len(failed), len(all_rows)


@pytest.mark.parametrize("value", list(BAD))
def test_bad_scorer_values_fail_with_reasons(tmp_path, toy_plugin, capsys, figures, value):
    cfg = toy_config(tmp_path, scorer="toy-bad", scorer_params={"value": value, "every": 3})
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    failed, n = check_run(out, capsys.readouterr().out, [("consistency (toy-bad)", BAD[value])])
    figures("3-bad-scores", faults=failed, candidates_checked=n, scored_as_best=0)


def load_vlm_conftest():
    """The fake chat-completions server of plugins/eacps-vlm/tests (reused, not copied)."""
    return load_script(ROOT / "plugins" / "eacps-vlm" / "tests" / "conftest.py", "eacps_vlm_test_server")


@pytest.mark.slow
def test_http_judge_empty_refusal_timeout(tmp_path, toy_plugin, capsys, monkeypatch, figures):
    vlm = load_vlm_conftest()
    monkeypatch.setenv("EACPS_REL_KEY", "k-not-secret")
    server = vlm.FakeServer()

    def script(req, n):
        kind = n % 4
        if kind == 1:
            return 200, vlm.completion(""), 0.0
        if kind == 2:
            return 200, vlm.completion(None, refusal="I can't rate images of this kind."), 0.0
        if kind == 3:
            return 200, vlm.completion('{"explanation": "late", "score": 10}'), 1.5
        return 200, vlm.completion('{"explanation": "fine", "score": 6}'), 0.0

    server.script = script
    params = {"base_url": server.base_url, "api_key_env": "EACPS_REL_KEY", "max_retries": 0, "timeout": 0.5,
              "top_logprobs": 0, "concurrency": 4}
    try:
        cfg = toy_config(tmp_path, scorer="openai-judge", scorer_params=params, strategy="best-of-n", budget=20)
        out = tmp_path / "run"
        assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    finally:
        server.close()
    expect = {"unparseable": "no JSON object", "refusal": "I can't rate", "timeout": "no reply within 0.5 s"}
    failed, n = check_run(out, capsys.readouterr().out, [("consistency (openai-judge)", k) for k in expect])
    reasons = " ".join(r[7] or "" for r in rows(out))
    for kind, detail in expect.items():
        assert kind in reasons and detail in reasons, kind
    figures("3-bad-scores", faults=failed, candidates_checked=n, scored_as_best=0)
