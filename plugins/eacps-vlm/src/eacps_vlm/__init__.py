"""eacps scorers backed by vision-language models: ``vlm`` (local transformers) and ``openai-judge``."""

from __future__ import annotations

from eacps.plugins import lazy_attributes

_LAZY = {
    "JudgeError": "eacps_vlm.errors",
    "injection_probe": "eacps_vlm.injection",
    "render_text": "eacps_vlm.injection",
    "JudgeParams": "eacps_vlm.judge",
    "JudgeScorer": "eacps_vlm.judge",
    "VLMParams": "eacps_vlm.local",
    "VLMScorer": "eacps_vlm.local",
    "OpenAIJudge": "eacps_vlm.openai_judge",
    "OpenAIJudgeParams": "eacps_vlm.openai_judge",
}
__all__ = sorted(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)  # submodules import on first use: no torch or transformers at import
