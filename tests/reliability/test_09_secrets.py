"""Promise 9: with a canary API key in the environment, DEBUG logging of every library and a judge that answers
401 (echoing the key back in its error, as real APIs do with a prefix of it), the key appears in no log, no
file of the run directory, no report, no ``eacps show`` output and no config dump; the candidates are FAILED
with an http/401 reason.
"""

from __future__ import annotations

import json
import logging
import secrets

from runs import rows, toy_config, vlm_test_helpers

from eacps.cli import main
from eacps.config import load_config


def test_api_key_never_leaks(tmp_path, toy_plugin, capsys, monkeypatch, figures):
    vlm = vlm_test_helpers()
    key = f"sk-eacps-CANARY-{secrets.token_hex(12)}"
    needles = [key, key[-24:]]  # the whole key and its random part alone
    monkeypatch.setenv("EACPS_REL_SECRET", key)
    server = vlm.FakeServer()

    def unauthorized(req, n):
        auth = server.headers[n].get("authorization", "")
        body = {"error": {"message": f"Incorrect API key provided: {auth.removeprefix('Bearer ')}", "code": "401"}}
        return 401, body, 0.0

    server.script = unauthorized
    params = {"base_url": server.base_url, "api_key_env": "EACPS_REL_SECRET", "max_retries": 1, "backoff": 0.01,
              "timeout": 5, "top_logprobs": 0}
    cfg = toy_config(tmp_path, scorer="openai-judge", scorer_params=params, strategy="best-of-n", budget=6)
    out, log_file = tmp_path / "run", tmp_path / "debug.log"
    root = logging.getLogger()
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        # progress bars on: everything a user sees; every judged candidate FAILED, so the run exits 1
        assert main(["run", str(cfg), "--out", str(out)]) == 1
        assert main(["show", str(out)]) == 0
        assert main(["report", str(out)]) == 0
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
        server.close()
    printed = capsys.readouterr()
    assert server.requests and all(h.get("authorization") == f"Bearer {key}" for h in server.headers)  # it was sent

    # the candidates judged by the HTTP judge are FAILED with the 401, never scored
    all_rows = rows(out)
    judged = [r for r in all_rows if r[5] != "FILTERED"]
    assert len(judged) == 2 * 7
    for r in judged:
        assert r[5] == "FAILED" and r[6] is None and "http" in r[7] and "401" in r[7], r[7]

    # nowhere: the debug log, stdout/stderr, every file of the run (store, WAL, images, report, config), config dump
    log_text = log_file.read_text()
    assert "openai" in log_text and ("httpx" in log_text or "httpcore" in log_text)  # DEBUG reached them
    texts = {"debug log": log_text.encode(), "stdout": printed.out.encode(), "stderr": printed.err.encode()}
    files = [p for p in out.rglob("*") if p.is_file()]
    texts.update({str(p.relative_to(out)): p.read_bytes() for p in files})
    assert "report.html" in texts and "store.sqlite" in texts
    run_cfg, _ = load_config(cfg)
    texts["RunConfig.model_dump"] = json.dumps(run_cfg.model_dump(mode="json")).encode()
    texts["RunConfig.model_dump_json"] = run_cfg.model_dump_json().encode()
    for where, data in texts.items():
        for needle in needles:
            assert needle.encode() not in data, f"the API key leaked into {where}"
    assert "***" in " ".join(r[7] for r in judged)  # the key the server echoed was redacted, not dropped silently
    figures(
        "9-secrets",
        places_searched=len(texts),
        run_files_searched=len(files),
        debug_log_bytes=len(log_text),
        http_401_failed=len(judged),
        leaks=0,
    )
