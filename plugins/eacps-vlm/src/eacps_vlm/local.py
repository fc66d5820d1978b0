"""The ``vlm`` scorer: a local transformers vision-language model read as a G-Eval style judge."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from eacps.engine.checkpoints import (
    CheckpointParams,
    refuse_pickled_only,
    require_local,
    resolve_device,
    resolve_dtype,
    weights_fingerprint,
)
from eacps.types import Condition
from eacps_vlm.criteria import Part, build_prompt
from eacps_vlm.errors import JudgeError
from eacps_vlm.images import to_pil
from eacps_vlm.judge import JudgeParams, JudgeScorer
from eacps_vlm.scoring import ScoreTokens, expected_score, score_distribution, score_mass

log = logging.getLogger(__name__)

#: how the score is read from the model (part of the settings): 2 = after a split-off leading space
READER_VERSION = "2"


class VLMParams(JudgeParams, CheckpointParams):
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    batch_size: int = Field(4, ge=1)
    #: candidates whose score tokens hold less of the next-token probability are FAILED (off-format/refusal)
    min_score_mass: float = Field(0.05, ge=0.0, le=1.0)


class VLMScorer(JudgeScorer):
    """Any ``AutoModelForImageTextToText`` + ``AutoProcessor`` checkpoint (Qwen2/2.5-VL, SmolVLM/Idefics3,
    LLaVA...) scoring one criterion. The score is the expected value of the next-token distribution over
    the tokens "0".."10" after the chat's generation prompt, computed in one batched forward pass (plus one
    when the tokenizer splits "10" into "1", "0"); nothing is generated or parsed."""

    name = "vlm"
    Params = VLMParams
    _RUNTIME: ClassVar[tuple[str, ...]] = ("device", "batch_size", "local_files_only")

    def __init__(self, params: VLMParams | None = None) -> None:
        super().__init__(params)
        self.model: Any = None
        self.processor: Any = None
        self.tokens: ScoreTokens | None = None
        self.answer_prefix = ""

    def settings(self) -> dict[str, Any]:
        s = super().settings()
        s["reader_version"] = READER_VERSION
        fp = weights_fingerprint(self.params.model)
        if fp is not None:
            s["weights"] = fp
        return s

    # -- loading ------------------------------------------------------------------------------------------
    def load(self) -> None:
        """Load model and processor (safetensors only; remote code only when ``trust_remote_code``)."""
        if self.model is not None:
            return
        from transformers import AutoModelForImageTextToText, AutoProcessor

        p: VLMParams = self.params
        require_local(p)
        refuse_pickled_only(p.model)
        device = resolve_device(p.device)
        dtype = resolve_dtype(p.dtype, device)
        common = dict(revision=p.revision, local_files_only=p.local_files_only, trust_remote_code=p.trust_remote_code)
        processor = AutoProcessor.from_pretrained(p.model, **common)
        model = AutoModelForImageTextToText.from_pretrained(p.model, dtype=dtype, use_safetensors=True, **common)
        model.to(device).eval()
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "right"  # positions of real tokens unaffected; we gather each row's last one
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokens = ScoreTokens.from_tokenizer(tokenizer)
        self.processor, self.model, self.device, self.dtype = processor, model, device, dtype
        self.answer_prefix = answer_prefix(processor, tokenizer, self.tokens)
        self._keep = "logits_to_keep" in inspect.signature(model.forward).parameters

    # -- scoring ------------------------------------------------------------------------------------------
    def score(self, images: Sequence[np.ndarray], condition: Condition) -> list[Any]:
        p: VLMParams = self.params
        crit = self.criterion_for(condition)
        out: list[Any] = [None] * len(images)
        todo: list[tuple[int, list[Part]]] = []
        for i, img in enumerate(images):
            try:
                todo.append((i, build_prompt(crit, condition, img, answer="integer", harden=p.harden)))
            except JudgeError as e:
                out[i] = e
        if todo:
            self.load()
        for start in range(0, len(todo), p.batch_size):
            chunk = todo[start : start + p.batch_size]
            for (i, _), value in zip(chunk, self._score_batch([parts for _, parts in chunk]), strict=True):
                out[i] = value
        for v in out:
            self.stats.record(v)
        return out

    def encode(self, prompts: Sequence[list[Part]]) -> dict[str, torch.Tensor]:
        """Chat-template and process a batch of prompts (right-padded), on the model's device."""
        texts, imgs = [], []
        for parts in prompts:
            content = [{"type": "image"} if k == "image" else {"type": "text", "text": v} for k, v in parts]
            chat = [{"role": "user", "content": content}]
            texts.append(
                self.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
                + self.answer_prefix
            )
            imgs.append([to_pil(v) for k, v in parts if k == "image"])
        enc = self.processor(text=texts, images=imgs, padding=True, return_tensors="pt")
        return {
            k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
            for k, v in enc.items()
            if isinstance(v, torch.Tensor)
        }

    def _last_logits(self, enc: dict[str, torch.Tensor], last: torch.Tensor) -> torch.Tensor:
        """The logits at position ``last[b]`` of each row b, shape [B, V] (float32)."""
        kwargs: dict[str, Any] = {}
        uniq = torch.unique(last)
        if self._keep:
            kwargs["logits_to_keep"] = uniq
        with torch.inference_mode():
            logits = self.model(**enc, **kwargs).logits
        col = torch.searchsorted(uniq, last) if self._keep else last
        return logits[torch.arange(len(last), device=logits.device), col.to(logits.device)].float()

    def _score_batch(self, prompts: Sequence[list[Part]]) -> list[Any]:
        enc = self.encode(prompts)
        mask = enc["attention_mask"]
        last = mask.shape[1] - 1 - mask.flip(1).argmax(1)
        logits = self._last_logits(enc, last)
        tokens = self.tokens
        q = self._p_ten_given_one(enc, last, logits) if tokens.ten_split else None
        dist = score_distribution(logits, tokens, q)
        values, mass = expected_score(dist), score_mass(logits, tokens)
        out: list[Any] = []
        for b in range(len(prompts)):
            if not torch.isfinite(logits[b]).all() or not torch.isfinite(values[b]):
                out.append(JudgeError("non-finite", "the model produced non-finite logits"))
            elif float(mass[b]) < self.params.min_score_mass:
                out.append(
                    JudgeError(
                        "off-format",
                        f"score tokens hold {float(mass[b]):.1%} of the next-token probability "
                        f"(min_score_mass={self.params.min_score_mass}); the model is not answering with a score",
                    )
                )
            else:
                out.append(float(values[b]))
        return out

    def _p_ten_given_one(self, enc: dict[str, torch.Tensor], last: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """P("0" | prompt, "1") per row: one more forward pass with each row's likeliest "1" token appended."""
        ones = torch.tensor(self.tokens.ids[1], device=logits.device)
        one = ones[logits[:, ones].argmax(-1)]
        ids = enc["input_ids"]
        pad_id = getattr(getattr(self.processor, "tokenizer", self.processor), "pad_token_id", 0) or 0
        ext: dict[str, torch.Tensor] = {}
        for k, v in enc.items():
            if v.dim() >= 2 and v.shape[:2] == ids.shape:
                fill = pad_id if k == "input_ids" else 0
                ext[k] = torch.cat([v, torch.full_like(v[:, :1], fill)], dim=1)
            else:
                ext[k] = v
        rows = torch.arange(ids.shape[0], device=ids.device)
        pos = last + 1
        ext["input_ids"][rows, pos] = one.to(ids.device)
        ext["attention_mask"][rows, pos] = 1
        nxt = self._last_logits(ext, pos)
        return torch.softmax(nxt, dim=-1)[:, list(self.tokens.zero_ids)].sum(-1)


def answer_prefix(processor: Any, tokenizer: Any, tokens: ScoreTokens) -> str:
    """A space when the answer starts with a space that the tokenizer keeps as a token of its own, else "".

    Templates whose generation prompt ends without whitespace ("Assistant:" in SmolVLM/Idefics3,
    "ASSISTANT:" in LLaVA-1.5) are answered " 7"; a tokenizer that splits digits off (SmolLM2, Llama 2) makes
    that a space token then "7", so the score is the token *after* the space and the space must be part of
    the prompt. Tokenizers that merge the space into the digit ("Ġ7") need nothing: those are score tokens.
    """
    chat = [{"role": "user", "content": [{"type": "text", "text": "x"}]}]
    try:
        text = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    except Exception:  # a template that cannot render this probe: keep the plain prompt
        return ""
    if not text or text[-1].isspace():
        return ""
    base = tokenizer(text, add_special_tokens=False)["input_ids"]
    answer = tokenizer(text + " 7", add_special_tokens=False)["input_ids"]
    spaced = tokenizer(text + " ", add_special_tokens=False)["input_ids"]
    extra = answer[len(base) :]
    if (
        answer[: len(base)] == base
        and len(extra) == 2
        and tokenizer.decode(extra[:1]).strip() == ""
        and extra[1] in tokens.ids[7]
        and spaced == base + extra[:1]
    ):
        return " "
    return ""
