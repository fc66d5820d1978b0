"""Promise 20: a run that cannot produce anything says so. A run whose every candidate FAILED exits 1 with one
line (not 0 with an empty table); a judge without its API key, or whose endpoint cannot be reached, is a
configuration error (exit 2, one line) before the first batch: nothing is generated, nothing written."""

from __future__ import annotations

import socket

from runs import rows, toy_config

from eacps.cli import main


def test_every_candidate_failed_exits_1(tmp_path, toy_plugin, capsys, figures):
    cfg = toy_config(tmp_path, gen_params={"fail_all": True}, strategy="best-of-n", budget=6)
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert any("every candidate FAILED" in line for line in err) and not any("Traceback" in x for x in err)
    got = rows(out, "status, reason")
    assert len(got) == 2 * (1 + 6) and all(s == "FAILED" and "toy generator exploded" in r for s, r in got)
    figures("20-failed-runs", all_failed_runs=1, exit_code_1=1, candidates_checked=len(got))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the with block ends: nothing listens there


def test_a_judge_without_key_or_endpoint_is_refused_before_the_first_batch(tmp_path, toy_plugin, capsys,
                                                                           monkeypatch, figures):
    monkeypatch.delenv("EACPS_REL_MISSING_KEY", raising=False)
    monkeypatch.setenv("EACPS_REL_KEY", "k-not-secret")
    log = tmp_path / "gen.log"
    cases = {
        "missing key": ({"api_key_env": "EACPS_REL_MISSING_KEY", "max_retries": 0},
                        "openai-judge is not ready: RuntimeError: openai-judge: environment variable "
                        "EACPS_REL_MISSING_KEY is not set"),
        "unreachable": ({"base_url": f"http://127.0.0.1:{_closed_port()}/v1", "api_key_env": "EACPS_REL_KEY",
                         "timeout": 2.0, "max_retries": 0},
                        "openai-judge is not ready: RuntimeError: openai-judge: cannot reach http://127.0.0.1:"),
    }
    for i, (params, expect) in enumerate(cases.values()):
        cfg = toy_config(tmp_path, f"cfg{i}.toml", gen_params={"log": str(log)}, scorer="openai-judge",
                         scorer_params=params, strategy="best-of-n", budget=6)
        out = tmp_path / f"run{i}"
        assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("eacps: error: potential.criteria.consistency.params: "), err
        assert expect in err and "k-not-secret" not in err, err
        assert not out.exists() and not log.exists()  # nothing written, nothing generated
    figures("20-failed-runs", judges_refused_before_compute=len(cases), candidates_generated=0)
