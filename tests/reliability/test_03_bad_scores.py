"""Promise 3: bad scorer outputs (NaN, +-inf, None, a string, "8/10", 11, -1, an exception, a crash, and from
an HTTP judge an empty reply, a refusal, a timeout) each make that candidate FAILED with its reason, never
a score and never the best; the run goes on and reports the failure rate.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import pytest
from runs import rows, toy_config

from eacps.cli import main

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
    with sqlite3.connect(out / "store.sqlite") as db:
        for (search,) in db.execute("SELECT DISTINCT search FROM candidates WHERE role='search'"):
            best = db.execute(
                "SELECT status FROM candidates WHERE search=? AND potential IS NOT NULL "
                "ORDER BY potential DESC LIMIT 1",
                (search,),
            ).fetchone()
            assert best == ("OK",)
        n, bad = db.execute("SELECT COUNT(*), SUM(status != 'OK') FROM candidates WHERE role='search'").fetchone()
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
    path = Path(__file__).parents[1] / "plugins" / "eacps-vlm" / "tests" / "conftest.py"
    spec = importlib.util.spec_from_file_location("eacps_vlm_test_server", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
