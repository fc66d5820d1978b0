"""The eacps plugin of this distribution: registers the ``vlm`` and ``openai-judge`` scorers."""

from __future__ import annotations

from eacps.hookspecs import hookimpl
from eacps_vlm.local import VLMScorer
from eacps_vlm.openai_judge import OpenAIJudge


@hookimpl
def register_scorers(register):
    register(VLMScorer)
    register(OpenAIJudge)
