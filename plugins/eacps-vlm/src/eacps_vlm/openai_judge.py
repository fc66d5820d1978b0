"""The ``openai-judge`` scorer: any OpenAI-compatible chat-completions server as a judge.

Works with vLLM, Ollama, llama.cpp server, SGLang and hosted APIs through the ``openai`` SDK. Each
candidate is one request (images as data URLs, a JSON answer with the explanation before the score);
requests run concurrently and every result is stored under its candidate's id. The score is the
expected value over the score alternatives when the server returns top logprobs, else the parsed integer.
Failures are data: a refusal, an unparseable or out-of-range answer, or an HTTP failure after the
bounded retries marks that candidate FAILED with the reason; nothing is ever scored 0 by default.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from eacps.types import Condition
from eacps_vlm.criteria import HARDENING, Part, build_prompt
from eacps_vlm.errors import JudgeError
from eacps_vlm.images import to_data_url
from eacps_vlm.judge import JudgeParams, JudgeScorer
from eacps_vlm.scoring import SCORES

log = logging.getLogger(__name__)

SYSTEM = "You are a careful and strict image judge. You rate one candidate image on one criterion from 0 to 10."
SCHEMA = {
    "type": "object",
    "properties": {
        "explanation": {"type": "string"},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["explanation", "score"],
    "additionalProperties": False,
}
_REFUSAL = re.compile(
    r"\b(I can(?:no|')t|I cannot|I'm sorry|I am sorry|I'm unable|I am unable|I won't|I will not|as an AI)\b", re.I
)


class OpenAIJudgeParams(JudgeParams):
    model: str = "gpt-4o-mini"
    #: None: the SDK default (``OPENAI_BASE_URL`` or api.openai.com)
    base_url: str | None = None
    #: the NAME of the environment variable holding the API key (None: no key, for local servers)
    api_key_env: str | None = "OPENAI_API_KEY"
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=20)
    #: retry n waits min(backoff_max, backoff * 2**n) seconds (or the server's Retry-After), +-25% jitter
    backoff: float = Field(1.0, ge=0)
    backoff_max: float = Field(30.0, ge=0)
    concurrency: int = Field(4, ge=1, le=256)
    temperature: float = Field(0.0, ge=0)
    #: 0 disables logprobs (servers that do not support them)
    top_logprobs: int = Field(10, ge=0, le=20)
    structured_output: Literal["json_schema", "json_object", "none"] = "json_schema"
    max_tokens: int = Field(400, ge=16)
    image_format: Literal["png", "jpeg"] = "png"
    #: send the instructions as a system message (some chat templates reject the system role)
    system_message: bool = True


class OpenAIJudge(JudgeScorer):
    """One criterion judged by an OpenAI-compatible chat-completions endpoint (see the module docstring)."""

    name = "openai-judge"
    Params = OpenAIJudgeParams
    _RUNTIME: ClassVar[tuple[str, ...]] = (
        "api_key_env",
        "timeout",
        "max_retries",
        "backoff",
        "backoff_max",
        "concurrency",
    )

    def __init__(self, params: OpenAIJudgeParams | None = None) -> None:
        super().__init__(params)
        self._client: Any = None
        self._secret: str | None = None
        self._lock = threading.Lock()

    # -- client -------------------------------------------------------------------------------------------
    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                p: OpenAIJudgeParams = self.params
                if p.api_key_env is None:
                    key = "not-needed"
                else:
                    key = os.environ.get(p.api_key_env)
                    if not key:
                        raise RuntimeError(f"openai-judge: environment variable {p.api_key_env} is not set")
                    self._secret = key
                self._client = openai.OpenAI(api_key=key, base_url=p.base_url, timeout=p.timeout, max_retries=0)
            return self._client

    def preflight(self) -> None:
        """Before the first batch: the key's environment variable is set, and the endpoint answers and
        accepts the key (a server without ``/models`` still counts as reachable)."""
        import openai

        p: OpenAIJudgeParams = self.params
        client = self._get_client()
        try:
            client.with_options(timeout=min(p.timeout, 10.0), max_retries=0).models.list()
        except openai.AuthenticationError as e:
            raise RuntimeError(f"openai-judge: the endpoint refused the key in {p.api_key_env}: "
                               f"{self._redact(str(e))[:200]}") from None
        except openai.APIConnectionError as e:
            where = p.base_url or "the OpenAI API"
            raise RuntimeError(f"openai-judge: cannot reach {where} ({type(e).__name__})") from None
        except openai.APIStatusError:
            pass  # it answered

    def _redact(self, text: str) -> str:
        s = self._secret
        return text.replace(s, "***") if s and len(s) >= 4 else text

    # -- scoring ------------------------------------------------------------------------------------------
    def score(self, images: Sequence[np.ndarray], condition: Condition) -> list[Any]:
        p: OpenAIJudgeParams = self.params
        crit = self.criterion_for(condition)
        ids = [f"{condition.id}#{i}" for i in range(len(images))]
        results: dict[str, Any] = {}
        todo: list[tuple[str, list[Part]]] = []
        for cid, img in zip(ids, images, strict=True):
            try:
                todo.append((cid, build_prompt(crit, condition, img, answer="json", harden=p.harden)))
            except JudgeError as e:
                results[cid] = e
        if todo:
            client = self._get_client()
            with ThreadPoolExecutor(max_workers=min(p.concurrency, len(todo))) as pool:
                futures = {cid: pool.submit(self._judge, client, cid, parts) for cid, parts in todo}
                for cid, fut in futures.items():
                    try:
                        results[cid] = fut.result()
                    except Exception as e:
                        results[cid] = JudgeError("error", self._redact(f"{type(e).__name__}: {e}"))
        out = [results[cid] for cid in ids]
        for v in out:
            self.stats.record(v)
        return out

    def messages(self, parts: Sequence[Part]) -> list[dict[str, Any]]:
        """The chat messages of one request."""
        p: OpenAIJudgeParams = self.params
        content: list[dict[str, Any]] = []
        for kind, value in parts:
            if kind == "image":
                url = to_data_url(value, p.image_format)
                content.append({"type": "image_url", "image_url": {"url": url}})
            else:
                content.append({"type": "text", "text": value})
        system = SYSTEM + (" " + HARDENING if p.harden else "")
        if p.system_message:
            return [{"role": "system", "content": system}, {"role": "user", "content": content}]
        return [{"role": "user", "content": [{"type": "text", "text": system}, *content]}]

    def request(self, parts: Sequence[Part]) -> dict[str, Any]:
        p: OpenAIJudgeParams = self.params
        req: dict[str, Any] = {
            "model": p.model,
            "messages": self.messages(parts),
            "temperature": p.temperature,
            "max_tokens": p.max_tokens,
        }
        if p.structured_output == "json_schema":
            req["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "judgement", "strict": True, "schema": SCHEMA},
            }
        elif p.structured_output == "json_object":
            req["response_format"] = {"type": "json_object"}
        if p.top_logprobs > 0:
            req["logprobs"] = True
            req["top_logprobs"] = p.top_logprobs
        return req

    def _judge(self, client: Any, cid: str, parts: Sequence[Part]) -> float | JudgeError:
        import openai

        p: OpenAIJudgeParams = self.params
        req = self.request(parts)
        attempts = p.max_retries + 1
        err: JudgeError = JudgeError("http", "no attempt made")
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                resp = client.chat.completions.create(**req, extra_headers={"X-Eacps-Candidate": cid})
                if isinstance(resp, str) or not getattr(resp, "choices", None):
                    raise JudgeError("malformed-response", "the server's reply has no choices")
                return self.read(resp.choices[0])
            except JudgeError as e:
                if e.kind != "malformed-response":
                    return e
                err = e
            except openai.APITimeoutError:
                err = JudgeError("timeout", f"no reply within {p.timeout:g} s")
            except openai.APIStatusError as e:
                detail = self._redact(f"HTTP {e.status_code}: {str(e)[:200]}")
                err = JudgeError("http", detail)
                if e.status_code not in (408, 409, 429) and e.status_code < 500:
                    return err  # 4xx: retrying the same request cannot help
                retry_after = _retry_after(e.response)
            except openai.APIConnectionError as e:
                err = JudgeError("http", self._redact(f"connection failed: {type(e).__name__}"))
            except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError, TypeError, KeyError) as e:
                err = JudgeError("malformed-response", self._redact(f"{type(e).__name__}: {str(e)[:200]}"))
            if attempt + 1 < attempts:
                wait = retry_after if retry_after is not None else p.backoff * 2**attempt
                wait = min(p.backoff_max, wait) * random.uniform(0.75, 1.25)
                log.warning(
                    "openai-judge %s: attempt %d/%d failed (%s); retrying in %.2fs",
                    cid,
                    attempt + 1,
                    attempts,
                    err,
                    wait,
                )
                time.sleep(wait)
        return JudgeError(err.kind, f"{err.detail} (after {attempts} attempt{'s' if attempts > 1 else ''})")

    def read(self, choice: Any) -> float | JudgeError:
        """One choice of a chat completion -> a score in [0, 10] or the failure."""
        msg = choice.message
        refusal = getattr(msg, "refusal", None)
        if refusal:
            return JudgeError("refusal", self._redact(str(refusal)[:200]))
        if getattr(choice, "finish_reason", None) == "content_filter":
            return JudgeError("refusal", "the server's content filter stopped the answer")
        content = msg.content or ""
        try:
            value = parse_judgement(content)
        except JudgeError as e:
            if e.kind == "unparseable":
                if _REFUSAL.search(content):
                    return JudgeError("refusal", self._redact(content[:200]))
                if getattr(choice, "finish_reason", None) == "length":
                    return JudgeError("unparseable", f"answer truncated at max_tokens: {content[:120]!r}")
            return JudgeError(e.kind, self._redact(e.detail))
        logprobs = getattr(getattr(choice, "logprobs", None), "content", None)
        if logprobs:
            expected = logprob_expected(logprobs)
            if expected is not None:
                return expected
        return float(value)


def _retry_after(response: Any) -> float | None:
    try:
        v = float(response.headers.get("retry-after"))
    except (AttributeError, TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v >= 0 else None


_OBJECT = re.compile(r"\{.*\}", re.S)


def parse_judgement(content: str) -> float:
    """The score of a ``{"explanation": ..., "score": n}`` answer (a JSON object, possibly fenced or with
    text around it). Raises ``JudgeError('unparseable' | 'out-of-range', ...)``."""
    obj: Any = None
    try:
        obj = json.loads(content)
    except json.JSONDecodeError:
        m = _OBJECT.search(content)
        if m:
            try:
                obj = json.loads(m.group(0))
            except json.JSONDecodeError:
                obj = None
    if not isinstance(obj, dict) or "score" not in obj:
        raise JudgeError("unparseable", f"no JSON object with a score in {content[:120]!r}")
    score = obj["score"]
    if isinstance(score, str):
        try:
            score = float(score.strip())
        except ValueError:
            raise JudgeError("unparseable", f"score is not a number: {obj['score']!r}") from None
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise JudgeError("unparseable", f"score is not a number: {obj['score']!r}")
    if not 0 <= score <= 10:
        raise JudgeError("out-of-range", f"score {score!r} is outside [0, 10]")
    return float(score)


_SCORE_FIELD = re.compile(r'"score"\s*:\s*"?(\d+)')


def logprob_expected(tokens: Sequence[Any]) -> float | None:
    """Expected score from the top logprobs at the token where the score's first digit was generated.

    The alternatives are the top logprobs of that token that read as 0..10 (after the same prefix, e.g.
    ``' '``), renormalized. When "10" is two tokens and the answer starts with "1", the probability of "0"
    after it splits the "1" mass between 1 and 10; for other answers an alternative "1" counts as 1.
    None when the score token cannot be located (the parsed score is used then).
    """
    texts = [t.token for t in tokens]
    full = "".join(texts)
    matches = list(_SCORE_FIELD.finditer(full))
    if not matches:
        return None
    start = matches[-1].start(1)
    pos, k = 0, None
    for i, t in enumerate(texts):
        if pos <= start < pos + len(t):
            k = i
            break
        pos += len(t)
    if k is None:
        return None
    prefix = full[pos:start]
    tok = tokens[k]
    own = texts[k][len(prefix) :]
    # P("0" | "1") when the answer's digit token is "1" followed by another token
    q = 0.0
    if own == "1" and k + 1 < len(tokens):
        nxt = tokens[k + 1]
        q = sum(math.exp(a.logprob) for a in (nxt.top_logprobs or []) if a.token == "0")
        if not q and nxt.token == "0":
            q = math.exp(nxt.logprob)
    mass = [0.0] * 11
    for alt in tok.top_logprobs or []:
        if not alt.token.startswith(prefix):
            continue
        rest = alt.token[len(prefix) :].strip()
        if rest not in SCORES:
            continue
        p = math.exp(alt.logprob)
        if rest == "1":
            mass[1] += p * (1 - q)
            mass[10] += p * q
        else:
            mass[int(rest)] += p
    total = sum(mass)
    if total <= 0:
        return None
    return sum(v * m for v, m in enumerate(mass)) / total
