"""Both judges pass ``eacps.testing.ScorerConformance``: ``vlm`` on tiny random LLaVA and Idefics3 checkpoints,
``openai-judge`` against a chat-completions server on 127.0.0.1 that scores the candidate image it is sent."""

from __future__ import annotations

import numpy as np
import pytest
from eacps_vlm import OpenAIJudge, VLMScorer

from eacps.testing import ScorerCase, ScorerConformance
from eacps.types import Condition

from .conftest import completion
from .test_openai_judge import request_images


def images(n: int, seed: int = 0, shape=(40, 36, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(shape, dtype=np.float32) * (0.5 + i / (2 * n)) for i in range(n)]


#: a condition as the engine passes it: prompt, reference and the stage-0 prior
COND = Condition("c0", prompt="a red cube on a table", reference=images(1, seed=8)[0], prior=images(1, seed=9)[0])


class TestVLMConformance(ScorerConformance):
    covers = ("vlm",)

    @pytest.fixture(params=[("llava", "consistency"), ("idefics3", "identity")], ids=lambda p: "-".join(p))
    def scorer_case(self, request, tiny_vlm, tiny_idefics3) -> ScorerCase:
        arch, criterion = request.param
        path = {"llava": tiny_vlm, "idefics3": tiny_idefics3}[arch]

        def make(**kw) -> VLMScorer:
            params = {"model": str(path), "criterion": criterion, "min_score_mass": 0.0, "device": "cpu",
                      "dtype": "float32", **kw}
            return VLMScorer(VLMScorer.Params(**params))

        other = "realism" if criterion != "realism" else "consistency"
        return ScorerCase(
            make, COND, images(3),
            changes={"criterion": other, "harden": False, "min_score_mass": 0.5},
            runtime={"batch_size": 1, "local_files_only": True},
            failing={"min_score_mass": 1.0},  # no model puts all its next-token mass on score tokens
        )


def _brightness_judge(req: dict, n: int):
    """Scores the candidate (the last image sent) by its brightness; refuses a black candidate or model 'refuser'."""
    level = float(np.mean(request_images(req)[-1]))
    if req["model"] == "refuser" or level < 0.02:
        return 200, completion(None, refusal="I can't help with that."), 0.0
    return 200, completion(f'{{"explanation": "brightness", "score": {round(10 * level)}}}'), 0.0


class TestOpenAIJudgeConformance(ScorerConformance):
    covers = ("openai-judge",)

    @pytest.fixture(params=["consistency", "identity"])
    def scorer_case(self, request, server, monkeypatch) -> ScorerCase:
        monkeypatch.setenv("EACPS_TEST_KEY", "sk-conformance-0123456789")
        server.script = _brightness_judge

        def make(**kw) -> OpenAIJudge:
            params = {"base_url": server.base_url, "api_key_env": "EACPS_TEST_KEY", "backoff": 0.001,
                      "max_retries": 0, "timeout": 5.0, "model": "fake-judge", "criterion": request.param,
                      "top_logprobs": 0, **kw}
            return OpenAIJudge(OpenAIJudge.Params(**params))

        flat = [np.full((16, 16, 3), v, np.float32) for v in (0.2, 0.5, 0.9)]
        return ScorerCase(
            make, COND, flat,
            changes={"criterion": "realism", "model": "other-judge", "harden": False},
            runtime={"timeout": 9.0, "concurrency": 1, "max_retries": 1},
            bad_images=[np.zeros((16, 16, 3), np.float32)],
            failing={"model": "refuser"},
            tolerance=0.0,
        )


def test_repr_names_the_judge_its_criterion_and_model(tiny_vlm):
    s = VLMScorer(VLMScorer.Params(model=str(tiny_vlm), criterion="realism"))
    assert repr(s) == f"VLMScorer(criterion='realism', model={str(tiny_vlm)!r})"
    assert repr(OpenAIJudge()) == "OpenAIJudge(criterion='consistency', model='gpt-4o-mini')"


def test_requires_follow_the_criterion():
    def requires(**kw) -> tuple[str, ...]:
        return OpenAIJudge(OpenAIJudge.Params(**kw)).requires

    assert requires() == ()  # consistency with the prior (always supplied by the engine) needs no prompt
    assert requires(use_prior=False) == ("prompt",)
    assert requires(criterion="identity") == ("reference",)
    assert requires(criterion="custom", prompt="is it {prompt}?", images=("reference", "prior")) == ("prompt",
                                                                                                    "reference")
    with pytest.raises(ValueError, match="lacks prompt"):
        OpenAIJudge(OpenAIJudge.Params(use_prior=False)).check_condition(Condition("c"))
