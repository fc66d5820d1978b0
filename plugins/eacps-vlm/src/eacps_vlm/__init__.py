"""eacps scorers backed by vision-language models: ``vlm`` (local transformers) and ``openai-judge``."""

from eacps_vlm.errors import JudgeError
from eacps_vlm.injection import injection_probe, render_text
from eacps_vlm.judge import JudgeParams, JudgeScorer
from eacps_vlm.local import VLMParams, VLMScorer
from eacps_vlm.openai_judge import OpenAIJudge, OpenAIJudgeParams

__all__ = [
    "JudgeError",
    "JudgeParams",
    "JudgeScorer",
    "OpenAIJudge",
    "OpenAIJudgeParams",
    "VLMParams",
    "VLMScorer",
    "injection_probe",
    "render_text",
]
