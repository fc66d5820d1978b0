"""eacps scorers backed by vision-language models: ``vlm`` (local transformers) and ``openai-judge``."""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    """Import the submodule of ``name`` on first use (PEP 562): importing this package (the entry point does)
    must not import torch or transformers."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
