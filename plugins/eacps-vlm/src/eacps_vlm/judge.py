"""``JudgeScorer``: what the local (``vlm``) and the HTTP (``openai-judge``) judges share.

Both judge one criterion of :mod:`eacps_vlm.criteria` (``JudgeParams``: criterion, custom prompt and images,
use of the prior, hardening), declare the condition fields it needs (``requires``), put the prompt version
in their settings and count their failures; they differ only in how a prompt reaches a model.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eacps.params import Params
from eacps.scorer import Scorer
from eacps.types import Condition
from eacps_vlm.criteria import PROMPT_VERSION, Criterion, CriterionName, ImageSource, resolve
from eacps_vlm.scoring import FailureStats


class JudgeParams(Params):
    """What the judge is asked."""

    criterion: CriterionName = "consistency"
    #: the instruction of a ``custom`` criterion; ``{prompt}`` is replaced by the condition's prompt
    prompt: str | None = None
    #: condition images a ``custom`` criterion shows before the candidate
    images: tuple[ImageSource, ...] = ()
    #: consistency also compares with ``condition.prior`` (the stage-0 image, always supplied by the engine)
    use_prior: bool = True
    #: tell the judge to ignore text inside images
    harden: bool = True


def required_fields(p: JudgeParams) -> tuple[str, ...]:
    """The condition fields the criterion cannot do without (the prior is always supplied by the engine)."""
    needs: list[str] = []
    custom_prompt = p.criterion == "custom" and "{prompt}" in (p.prompt or "")
    if (p.criterion == "consistency" and not p.use_prior) or custom_prompt:
        needs.append("prompt")
    if p.criterion == "identity" or (p.criterion == "custom" and "reference" in p.images):
        needs.append("reference")
    return tuple(needs)


class JudgeScorer(Scorer):
    """Base of the VLM judges: validates the criterion up front, sets ``requires``, and shares ``repr`` and
    ``settings`` (the params minus the runtime ones listed in ``_RUNTIME``, plus ``prompt_version``)."""

    Params = JudgeParams
    _RUNTIME: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: JudgeParams | None = None) -> None:
        super().__init__(params)
        p: JudgeParams = self.params
        resolve(p.criterion, Condition(id="-", prompt="x"), custom_prompt=p.prompt, custom_images=p.images)
        self.requires = required_fields(p)
        self.stats = FailureStats()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(criterion={self.params.criterion!r}, model={self.params.model!r})"

    def settings(self) -> dict[str, Any]:
        s = {k: v for k, v in self.params.model_dump(mode="json").items() if k not in self._RUNTIME}
        s["prompt_version"] = PROMPT_VERSION
        return s

    def criterion_for(self, condition: Condition) -> Criterion:
        """The criterion as it applies to ``condition`` (consistency changes with the prior)."""
        p: JudgeParams = self.params
        return resolve(p.criterion, condition, custom_prompt=p.prompt, custom_images=p.images, use_prior=p.use_prior)
