"""The eacps plugin of this distribution: registers the ``vlm`` and ``openai-judge`` scorers by reference (their
modules, and torch, are imported when a config first uses them), and both as the judges ``eacps generate`` uses for
a model that is not a demo preset (``vlm`` by default, ``openai-judge`` with ``--judge-url``)."""

from __future__ import annotations

from typing import Any

from eacps.hookspecs import hookimpl
from eacps.plugins import Judge

DEFAULT_JUDGE = "Qwen/Qwen2.5-VL-7B-Instruct"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


@hookimpl
def register_scorers(register):
    register("eacps_vlm.local:VLMScorer", name="vlm")
    register("eacps_vlm.openai_judge:OpenAIJudge", name="openai-judge")


def local_params(criterion: str, req: Any) -> dict[str, Any]:
    """``vlm``'s params for one criterion of ``eacps generate`` (``--judge`` or the default model)."""
    params: dict[str, Any] = {"criterion": criterion, "use_prior": req.prior, "model": req.judge or DEFAULT_JUDGE}
    if req.allow_download:
        params["local_files_only"] = False
    return params


def served_params(criterion: str, req: Any) -> dict[str, Any]:
    """``openai-judge``'s params for one criterion of ``eacps generate --judge-url``."""
    return {"criterion": criterion, "use_prior": req.prior, "model": req.judge, "base_url": req.judge_url,
            "api_key_env": req.judge_key_env or DEFAULT_KEY_ENV}


@hookimpl
def register_generate_backends(register):
    register(Judge(name="vlm", scorer="vlm", remote=False, params=local_params, default_model=DEFAULT_JUDGE))
    register(Judge(name="openai-judge", scorer="openai-judge", remote=True, params=served_params,
                   key_env=DEFAULT_KEY_ENV))
