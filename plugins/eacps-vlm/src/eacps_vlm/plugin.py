"""The eacps plugin of this distribution: registers the ``vlm`` and ``openai-judge`` scorers by reference (their
modules, and torch, are imported when a config first uses them)."""

from __future__ import annotations

from eacps.hookspecs import hookimpl


@hookimpl
def register_scorers(register):
    register("eacps_vlm.local:VLMScorer", name="vlm")
    register("eacps_vlm.openai_judge:OpenAIJudge", name="openai-judge")
