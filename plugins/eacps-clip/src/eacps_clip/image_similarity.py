"""The ``image-similarity`` scorer: identity as cosine similarity of image embeddings (CLIP vision, DINOv2)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from eacps.engine.checkpoints import to_pil
from eacps.scorer import Scorer
from eacps.types import Condition
from eacps_clip.common import ModelParams, load_model, pooled, settings


class ImageSimilarityParams(ModelParams):
    model: str = "facebook/dinov2-base"
    #: ``clip``: projected ``get_image_features`` (CLIP, SigLIP...); ``dinov2``: the backbone's CLS token (or
    #: the mean patch token); ``auto``: ``clip`` when the model has ``get_image_features``, else ``dinov2``
    backend: Literal["auto", "clip", "dinov2"] = "auto"
    pooling: Literal["cls", "mean"] = "cls"
    #: compare against the identity reference or the stage-0 prior
    against: Literal["reference", "prior"] = "reference"


class ImageSimilarityScorer(Scorer):
    """Cosine similarity between each candidate's embedding and the reference image's: raw values in [-1, 1],
    mapped to [0, 10] by the criterion's calibration, by default ``range`` lo = 0, hi = 1 (identical images
    score 10, orthogonal or opposite ones 0)."""

    name = "image-similarity"
    Params = ImageSimilarityParams
    requires = ("reference",)
    default_calibration: ClassVar[dict[str, Any]] = {"kind": "range", "lo": 0.0, "hi": 1.0}

    def __init__(self, params: ImageSimilarityParams | None = None) -> None:
        super().__init__(params)
        self.requires = (self.params.against,)
        self.model: Any = None
        self._refs: OrderedDict[str, torch.Tensor] = OrderedDict()

    def __repr__(self) -> str:
        return f"ImageSimilarityScorer(model={self.params.model!r}, backend={self.params.backend!r})"

    def settings(self) -> dict[str, Any]:
        return settings(self.params)

    def load(self) -> None:
        if self.model is not None:
            return
        self.model, self.processor, self.device, self.dtype = load_model(self.params)
        backend = self.params.backend
        has_clip = hasattr(self.model, "get_image_features")
        if backend == "auto":
            backend = "clip" if has_clip else "dinov2"
        if backend == "clip" and not has_clip:
            raise ValueError(f"{self.params.model}: backend 'clip' needs a model with get_image_features")
        self.backend = backend

    @torch.inference_mode()
    def embed(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """L2-normalized embeddings, shape [N, D] (float32)."""
        self.load()
        proc = getattr(self.processor, "image_processor", self.processor)
        out = []
        for i in range(0, len(images), self.params.batch_size):
            px = proc(images=[to_pil(im) for im in images[i : i + self.params.batch_size]], return_tensors="pt")
            px = px["pixel_values"].to(self.device, self.dtype)
            if self.backend == "clip":
                feats = pooled(self.model.get_image_features(pixel_values=px))
            else:
                o = self.model(pixel_values=px)
                if self.params.pooling == "cls":
                    feats = (
                        o.pooler_output if getattr(o, "pooler_output", None) is not None else o.last_hidden_state[:, 0]
                    )
                else:
                    feats = o.last_hidden_state[:, 1:].mean(1)
            out.append(F.normalize(feats.float(), dim=-1))
        return torch.cat(out)

    def _reference(self, ref: np.ndarray) -> torch.Tensor:
        a = np.ascontiguousarray(ref, dtype=np.float32)
        key = hashlib.sha256(a.tobytes() + str(a.shape).encode()).hexdigest()
        if key not in self._refs:
            self._refs[key] = self.embed([a])[0]
            while len(self._refs) > 16:
                self._refs.popitem(last=False)
        return self._refs[key]

    def score(self, images: Sequence[np.ndarray], condition: Condition) -> list[Any]:
        ref = getattr(condition, self.params.against)
        if ref is None:
            return [ValueError(f"image-similarity needs condition.{self.params.against}")] * len(images)
        cos = (self.embed(images) @ self._reference(ref)).tolist()
        return [c if np.isfinite(c) else ValueError("non-finite embedding") for c in cos]
