"""The ``openai-judge`` scorer against a chat-completions server on 127.0.0.1 started by the test."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from eacps_vlm import JudgeError, OpenAIJudge
from eacps_vlm.criteria import HARDENING
from eacps_vlm.openai_judge import logprob_expected, parse_judgement
from PIL import Image

from eacps.types import Condition

from .conftest import completion

COND = Condition(id="c0", prompt="a red cube on a table")
SECRET = "sk-test-5ecret-do-not-leak-0123456789"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("EACPS_TEST_KEY", SECRET)


def judge(server, **kw) -> OpenAIJudge:
    kw = {
        "base_url": server.base_url,
        "api_key_env": "EACPS_TEST_KEY",
        "backoff": 0.001,
        "max_retries": 2,
        "timeout": 2.0,
        "model": "fake-judge",
        **kw,
    }
    return OpenAIJudge(OpenAIJudge.Params(**kw))


def flat(level: float, shape=(16, 16, 3)) -> np.ndarray:
    return np.full(shape, level, dtype=np.float32)


def request_images(req: dict) -> list[np.ndarray]:
    out = []
    for part in req["messages"][-1]["content"]:
        if part["type"] == "image_url":
            url = part["image_url"]["url"]
            assert url.startswith("data:image/png;base64,")
            out.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))) / 255.0)
    return out


def ok(score: int = 7) -> tuple[int, dict, float]:
    return 200, completion(json.dumps({"explanation": "looks fine", "score": score})), 0.0


def test_scores_and_sends_a_well_formed_request(server):
    server.script = lambda req, n: ok(7)
    j = judge(server)
    assert j.score([flat(0.2), flat(0.8)], COND) == [7.0, 7.0]
    req = server.requests[0]
    assert req["model"] == "fake-judge" and req["temperature"] == 0.0
    assert req["messages"][0]["role"] == "system" and HARDENING in req["messages"][0]["content"]
    user = req["messages"][1]["content"]
    assert any(p["type"] == "text" and COND.prompt in p["text"] and HARDENING in p["text"] for p in user)
    schema = req["response_format"]["json_schema"]["schema"]
    assert list(schema["properties"]) == ["explanation", "score"]  # explanation generated before the score
    assert req["logprobs"] is True and req["top_logprobs"] == 10
    levels = sorted(round(float(request_images(r)[0].mean()), 2) for r in server.requests)
    assert levels == [0.2, 0.8]
    assert {h.get("x-eacps-candidate") for h in server.headers} == {"c0#0", "c0#1"}
    assert j.stats.as_dict() == {"scored": 2, "failed": {}, "failure_rate": 0.0}


def test_identity_sends_reference_then_candidate(server):
    server.script = lambda req, n: ok(4)
    j = judge(server, criterion="identity")
    assert j.requires == ("reference",)
    assert j.score([flat(0.9)], Condition(id="i", reference=flat(0.1))) == [4.0]
    ref, cand = request_images(server.requests[0])
    assert ref.mean() == pytest.approx(0.1, abs=0.01) and cand.mean() == pytest.approx(0.9, abs=0.01)
    (missing,) = j.score([flat(0.9)], Condition(id="i2"))
    assert isinstance(missing, JudgeError) and missing.kind == "missing-input" and len(server.requests) == 1


def tok(token: str, logprob: float = 0.0, top: dict[str, float] | None = None) -> dict:
    top = top or {token: logprob}
    return {
        "token": token,
        "logprob": logprob,
        "bytes": None,
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()],
    }


def test_logprob_expected_score(server):
    ln = np.log
    content = [
        tok('{"'),
        tok("explanation"),
        tok('":"'),
        tok("ok"),
        tok('","'),
        tok("score"),
        tok('":'),
        tok(" 7", ln(0.6), {" 7": ln(0.6), " 8": ln(0.3), " 6": ln(0.1), ' "': ln(0.01)}),
        tok("}"),
    ]
    server.script = lambda req, n: (
        200,
        completion('{"explanation":"ok","score": 7}', logprobs={"content": content}),
        0.0,
    )
    assert judge(server).score([flat(0.5)], COND) == [pytest.approx(0.6 * 7 + 0.3 * 8 + 0.1 * 6)]
    # no logprobs from the server -> the parsed integer
    server.script = lambda req, n: ok(3)
    assert judge(server, top_logprobs=0).score([flat(0.5)], COND) == [3.0]
    assert "logprobs" not in server.requests[-1]


def test_logprob_expected_splits_1_between_1_and_10():
    ln = np.log
    toks = [
        tok('{"score":'),
        tok("1", ln(0.5), {"1": ln(0.5), "9": ln(0.5)}),
        tok("0", ln(0.8), {"0": ln(0.8), "}": ln(0.2)}),
        tok("}"),
    ]
    toks = [SimpleNamespace(**{**t, "top_logprobs": [SimpleNamespace(**a) for a in t["top_logprobs"]]}) for t in toks]
    # P(1) = .5 * .2, P(10) = .5 * .8, P(9) = .5
    assert logprob_expected(toks) == pytest.approx(0.1 * 1 + 0.4 * 10 + 0.5 * 9)
    assert logprob_expected(toks[:1]) is None


def test_429_then_ok_is_retried(server):
    replies = [(429, {"error": {"message": "slow down"}}, 0.0), ok(6)]
    server.script = lambda req, n: replies[min(n, 1)]
    assert judge(server).score([flat(0.5)], COND) == [6.0]
    assert len(server.requests) == 2


def test_500_exhausts_bounded_retries(server):
    server.script = lambda req, n: (500, {"error": {"message": "boom"}}, 0.0)
    (v,) = judge(server, max_retries=2).score([flat(0.5)], COND)
    assert isinstance(v, JudgeError) and v.kind == "http" and "500" in str(v) and "after 3 attempts" in str(v)
    assert len(server.requests) == 3


def test_4xx_is_not_retried(server):
    server.script = lambda req, n: (400, {"error": {"message": "bad request"}}, 0.0)
    (v,) = judge(server).score([flat(0.5)], COND)
    assert isinstance(v, JudgeError) and "400" in str(v) and len(server.requests) == 1


def test_timeout_fails_after_retries(server):
    server.script = lambda req, n: (*ok(5)[:2], 0.6)
    (v,) = judge(server, timeout=0.15, max_retries=1).score([flat(0.5)], COND)  # the server answers after 0.6 s
    assert isinstance(v, JudgeError) and v.kind == "timeout" and "after 2 attempts" in str(v)
    assert len(server.requests) == 2


def test_malformed_http_body_fails(server):
    server.script = lambda req, n: (200, b'{"id": "x", "choices": [', 0.0)
    (v,) = judge(server, max_retries=1).score([flat(0.5)], COND)
    assert isinstance(v, JudgeError) and v.kind == "malformed-response"
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (completion("The image shows a cube. Score: seven"), "unparseable"),
        (completion('{"explanation": "fine", "score": "high"}'), "unparseable"),
        (completion('{"explanation": "fine", "score": 12}'), "out-of-range"),
        (completion('{"explanation": "fine", "score": -1}'), "out-of-range"),
        (completion(None, refusal="I can't help with that."), "refusal"),
        (completion("I'm sorry, but I cannot rate this image."), "refusal"),
        (completion("", finish="content_filter"), "refusal"),
        (completion('{"explanation": "the image shows a very long'), "unparseable"),
    ],
)
def test_bad_answers_are_failures_not_zeros(server, reply, kind):
    server.script = lambda req, n: (200, reply, 0.0)
    j = judge(server)
    (v,) = j.score([flat(0.5)], COND)
    assert isinstance(v, JudgeError) and v.kind == kind
    assert len(server.requests) == 1  # a deterministic bad answer is not retried
    assert j.stats.failure_rate == 1.0


def test_fenced_json_is_read():
    assert parse_judgement('Sure:\n```json\n{"explanation": "ok", "score": 8}\n```') == 8.0
    assert parse_judgement('{"explanation": "ok", "score": "9"}') == 9.0


def test_out_of_order_completion_is_matched_by_candidate_id(server):
    """Later candidates are answered first; every score must still land on its own candidate."""
    done: list[float] = []
    lock = threading.Lock()

    def script(req, n):
        level = float(request_images(req)[-1].mean())
        time.sleep(0.05 + 0.25 * level)  # brighter images take longer; sleep here so completion order is known
        with lock:
            done.append(round(level, 1))
        return ok(round(10 * level))

    server.script = script
    levels = [0.9, 0.7, 0.5, 0.3, 0.1, 0.0]
    j = judge(server, concurrency=6)
    out = j.score([flat(v) for v in levels], COND)
    assert out == [round(10 * v) for v in levels]
    assert done == sorted(levels)  # completion order was the reverse of submission order
    assert len(server.requests) == 6


def test_mixed_batch_reports_failure_rate(server):
    def script(req, n):
        level = float(request_images(req)[-1].mean())
        return (200, completion("no json here"), 0.0) if level > 0.5 else ok(2)

    server.script = script
    j = judge(server, concurrency=3)
    out = j.score([flat(0.1), flat(0.9), flat(0.2), flat(0.8)], COND)
    assert out[0] == 2.0 and out[2] == 2.0
    assert isinstance(out[1], JudgeError) and isinstance(out[3], JudgeError)
    assert j.stats.failure_rate == 0.5 and j.stats.failed == {"unparseable": 2}


def test_api_key_never_leaks(server, caplog, monkeypatch):
    server.script = lambda req, n: (500, {"error": {"message": f"invalid key {SECRET}"}}, 0.0)
    j = judge(server, max_retries=1)
    with caplog.at_level(logging.DEBUG):
        (v,) = j.score([flat(0.5)], COND)
    assert isinstance(v, JudgeError)
    assert server.headers[0]["authorization"] == f"Bearer {SECRET}"  # the server did get the key
    texts = [str(v), repr(v), repr(j), json.dumps(j.settings()), j.fingerprint(), caplog.text, str(j.stats.as_dict())]
    assert "***" in str(v) and not [t for t in texts if SECRET in t]
    assert "api_key_env" not in j.settings() and "EACPS_TEST_KEY" not in json.dumps(j.settings())
    monkeypatch.delenv("EACPS_TEST_KEY")
    with pytest.raises(RuntimeError, match="EACPS_TEST_KEY is not set"):
        judge(server).score([flat(0.5)], COND)


def test_settings_exclude_operational_knobs(server):
    a, b = judge(server), judge(server, concurrency=9, timeout=30.0, max_retries=0)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != judge(server, criterion="realism").fingerprint()
    assert a.fingerprint() != judge(server, model="other").fingerprint()


def test_failures_reach_the_potential_as_reasons(server):
    from eacps.potential import Potential

    def script(req, n):
        level = float(request_images(req)[-1].mean())
        return (200, completion(None, refusal="I can't judge this"), 0.0) if level > 0.5 else ok(8)

    server.script = script
    pot = Potential.from_scorers(consistency=judge(server))
    good, bad = pot.evaluate([flat(0.2), flat(0.9)], COND)
    assert good.potential == pytest.approx(8.0) and good.reason is None
    assert bad.potential is None and "refusal: I can't judge this" in bad.reason
