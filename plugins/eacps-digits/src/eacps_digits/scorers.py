"""Scorers of the digits testbed, all batched, all in [0, 10].

* ``digits-consistency`` = 10 · p_clf(class_label | image)
* ``digits-realism``     = 10 · exp(-d / τ), d = mean L2 distance (64 pixels in [0, 1]) to the k nearest
  training digits, τ = median of the same quantity over the training digits themselves (leave-one-out),
  times ``tau_scale``.
* ``digits-identity``    = 10 · max(0, cos(f(image) - μ, f(reference) - μ)) with f the classifier's
  penultimate features and μ their training mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from pydantic import Field

from eacps import Condition, Image, Params, Scorer
from eacps_digits import data
from eacps_digits.generator import class_label_of
from eacps_digits.models import Classifier, load_classifier, weights


class _Assets:
    """Classifier, training digits and calibration, loaded once per weights directory."""

    def __init__(self, root: str | None) -> None:
        self.weights = weights(root)
        self.config = self.weights.classifier_config()
        self.classifier: Classifier = load_classifier(self.weights.root)
        x, _ = data.train_data()
        self.train_flat = torch.from_numpy(np.ascontiguousarray(x.reshape(len(x), 64)))


@lru_cache(maxsize=4)
def _assets(root: str | None) -> _Assets:
    return _Assets(root)


def as_batch(images: Sequence[Image]) -> torch.Tensor:
    """A float32 (B, 64) tensor from (8, 8, 1) or (8, 8) images in [0, 1] (values clipped)."""
    arrs = []
    for i, im in enumerate(images):
        a = np.asarray(im, dtype=np.float32)
        if a.shape not in ((8, 8, 1), (8, 8)):
            raise ValueError(f"image {i}: expected shape (8, 8, 1), got {a.shape}")
        arrs.append(a.reshape(64))
    if not arrs:
        return torch.zeros((0, 64))
    return torch.from_numpy(np.clip(np.stack(arrs), 0.0, 1.0))


class DigitsScorerParams(Params):
    weights_dir: str | None = Field(None, description="weights directory; default: the weights shipped in the package")


PD = TypeVar("PD", bound=DigitsScorerParams)


class _DigitsScorer(Scorer[PD]):
    Params: ClassVar[type[Params]] = DigitsScorerParams

    @property
    def assets(self) -> _Assets:
        root = self.params.weights_dir
        return _assets(str(Path(root).resolve()) if root is not None else None)

    def settings(self) -> dict[str, Any]:
        a = self.assets
        s = self.params.model_dump(mode="json")
        s.pop("weights_dir", None)
        return {**s, "classifier_sha256": a.weights.classifier_sha256, "data_split_sha256": data.split_sha256()}


class DigitsConsistency(_DigitsScorer[DigitsScorerParams]):
    """10 x the classifier's probability of ``condition.class_label`` (requires class_label)."""

    name = "digits-consistency"
    requires = ("class_label",)

    @torch.inference_mode()
    def score(self, images: Sequence[Image], condition: Condition) -> list[float]:
        label = class_label_of(condition)
        x = as_batch(images)
        p = torch.softmax(self.assets.classifier(x), dim=1)[:, label]
        return [float(v) for v in (10.0 * p).clamp(0, 10)]


class RealismParams(DigitsScorerParams):
    k: int = Field(3, ge=1, le=50, description="nearest training digits averaged")
    tau_scale: float = Field(1.0, gt=0.0, description="multiplies the calibrated τ (larger = more lenient)")


class DigitsRealism(_DigitsScorer[RealismParams]):
    """Closeness to the data manifold: 10 · exp(-d / (tau_scale · τ)).

    d is the mean L2 distance (pixels in [0, 1]) from the image to its k nearest *training* digits;
    τ is the median of that distance over the training digits themselves (each excluding itself),
    computed by the training script with the same k (stored in ``classifier.json``). A typical real digit
    scores about 10/e ≈ 3.7; uniform noise scores ≈ 0. Ignores the condition.
    """

    name = "digits-realism"
    Params = RealismParams

    def tau(self) -> float:
        cfg = self.assets.config
        p = self.params
        if p.k != cfg["realism_k"]:
            raise ValueError(f"realism τ was calibrated with k={cfg['realism_k']}, not k={p.k}")
        return float(cfg["realism_tau"]) * p.tau_scale

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "tau": self.tau()}

    @torch.inference_mode()
    def score(self, images: Sequence[Image], condition: Condition) -> list[float]:
        x = as_batch(images)
        k = self.params.k
        d = torch.cdist(x, self.assets.train_flat).topk(k, dim=1, largest=False).values.mean(1)
        return [float(v) for v in (10.0 * torch.exp(-d / self.tau())).clamp(0, 10)]


def reference_of(condition: Condition) -> np.ndarray:
    """``condition.reference``, else the held-out digit ``condition.extra["reference_index"]``."""
    if condition.reference is not None:
        ref = np.asarray(condition.reference, dtype=np.float32)
        if ref.shape not in ((8, 8, 1), (8, 8)):
            raise ValueError(f"condition {condition.id!r}: reference must be an (8, 8, 1) image, got {ref.shape}")
        return ref.reshape(8, 8, 1)
    idx = (condition.extra or {}).get("reference_index")
    if idx is None:
        raise ValueError(
            f"condition {condition.id!r}: digits-identity needs condition.reference (an (8, 8, 1) image) "
            "or condition.extra['reference_index'] (a held-out digit index)"
        )
    return data.reference_image(idx)


class DigitsIdentity(_DigitsScorer[DigitsScorerParams]):
    """Similarity to the reference exemplar in the classifier's penultimate feature space.

    10 · max(0, cos(f(x) - μ, f(ref) - μ)), f = penultimate (ReLU) features, μ = their mean over the
    training digits (centring makes the cosine discriminative: raw ReLU features are all positive).
    The reference is ``condition.reference`` or the held-out digit ``condition.extra["reference_index"]``.
    """

    name = "digits-identity"

    def check_condition(self, condition: Condition) -> None:
        reference_of(condition)  # raises a clear ValueError when neither reference is given

    @torch.inference_mode()
    def score(self, images: Sequence[Image], condition: Condition) -> list[float]:
        ref = as_batch([reference_of(condition)])
        x = as_batch(images)
        clf = self.assets.classifier
        f = clf.features(torch.cat([ref, x])) - clf.feature_mean
        cos = torch.nn.functional.cosine_similarity(f[1:], f[:1], dim=1, eps=1e-8)
        return [float(v) for v in (10.0 * cos).clamp(0, 10)]
