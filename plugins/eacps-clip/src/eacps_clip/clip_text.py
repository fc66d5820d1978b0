"""The ``clip-text`` scorer: CLIP image-prompt cosine similarity (calibrated to [0, 10] by its criterion)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from eacps.engine.checkpoints import to_pil
from eacps.scorer import Scorer
from eacps.types import Condition
from eacps_clip.common import ModelParams, load_model, pooled, settings


class ClipTextParams(ModelParams):
    model: str = "openai/clip-vit-large-patch14"


class ClipTextScorer(Scorer):
    """Cosine similarity of the CLIP (or SigLIP: any model with ``get_text_features`` /
    ``get_image_features``) embeddings of each image and ``condition.prompt``: raw values in [-1, 1], mapped to
    [0, 10] by the criterion's calibration, by default CLIPScore x 4 (Hessel et al. 2021: ``2.5 * max(c, 0)``,
    times 4), i.e. ``affine`` with scale 10 clipped to [0, 10]."""

    name = "clip-text"
    Params = ClipTextParams
    requires = ("prompt",)
    default_calibration: ClassVar[dict[str, Any]] = {"kind": "affine", "scale": 10.0}

    def __init__(self, params: ClipTextParams | None = None) -> None:
        super().__init__(params)
        self.model: Any = None

    def __repr__(self) -> str:
        return f"ClipTextScorer(model={self.params.model!r})"

    def settings(self) -> dict[str, Any]:
        return settings(self.params)

    def load(self) -> None:
        if self.model is None:
            self.model, self.processor, self.device, self.dtype = load_model(self.params)

    @torch.inference_mode()
    def cosines(self, images: Sequence[np.ndarray], prompt: str) -> list[float]:
        """Raw cosine similarities between each image and the prompt."""
        self.load()
        tok = getattr(self.processor, "tokenizer", self.processor)
        max_len = getattr(getattr(self.model.config, "text_config", None), "max_position_embeddings", 77)
        t = tok([prompt], padding=True, truncation=True, max_length=max_len, return_tensors="pt").to(self.device)
        text = F.normalize(pooled(self.model.get_text_features(**t)).float(), dim=-1)
        out: list[float] = []
        bs = self.params.batch_size
        for i in range(0, len(images), bs):
            px = self.processor(images=[to_pil(im) for im in images[i : i + bs]], return_tensors="pt")["pixel_values"]
            feats = pooled(self.model.get_image_features(pixel_values=px.to(self.device, self.dtype)))
            out += (F.normalize(feats.float(), dim=-1) @ text[0]).tolist()
        return out

    def score(self, images: Sequence[np.ndarray], condition: Condition) -> list[Any]:
        if not condition.prompt:
            return [ValueError("clip-text needs condition.prompt")] * len(images)
        cosines = self.cosines(images, condition.prompt)
        return [c if np.isfinite(c) else ValueError("non-finite CLIP embedding") for c in cosines]
