"""Model definitions and safetensors loading for the digits testbed.

Weights directory layout (written by ``python -m eacps_digits.train``)::

    weights/unet/config.json                        diffusers UNet2DModel config
    weights/unet/diffusion_pytorch_model.safetensors
    weights/scheduler/scheduler_config.json         the DDPM training noise schedule
    weights/classifier.json                         classifier config + scorer calibration
    weights/classifier.safetensors
    weights/training.json                           seeds, iterations, timings, data/split hashes

Only safetensors are ever read (never pickles).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

WEIGHTS_DIR = Path(__file__).parent / "weights"
UNET_FILE = "unet/diffusion_pytorch_model.safetensors"
CLASSIFIER_FILE = "classifier.safetensors"
NULL_CLASS = 10  # the label-dropout class used for classifier-free guidance

UNET_CONFIG: dict[str, Any] = {
    "sample_size": 8,
    "in_channels": 1,
    "out_channels": 1,
    "block_out_channels": (32,),
    "layers_per_block": 1,
    "down_block_types": ("DownBlock2D",),
    "up_block_types": ("UpBlock2D",),
    "norm_num_groups": 8,
    "num_class_embeds": 11,  # 10 digits + the null class
    "add_attention": False,
}
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "epsilon",
    "clip_sample": True,
}


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_unet(config: dict[str, Any] | None = None):
    """A freshly initialized UNet2DModel (seed torch first for reproducible init)."""
    from diffusers import UNet2DModel

    return UNet2DModel(**(config or UNET_CONFIG))


class Classifier(nn.Module):
    """MLP 64 -> hidden -> features -> 10 on [0, 1] pixels; ``features`` is the penultimate (ReLU) layer.

    ``feature_mean`` (a buffer) is the mean training feature, subtracted before cosine similarities.
    """

    def __init__(self, hidden: int = 256, features: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, features), nn.ReLU())
        self.head = nn.Linear(features, 10)
        self.register_buffer("feature_mean", torch.zeros(features))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(x.shape[0], 64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass(frozen=True)
class Weights:
    """Where the weights live, with their sha256 fingerprints."""

    root: Path

    @property
    def unet_sha256(self) -> str:
        return _sha(self.root / UNET_FILE)

    @property
    def classifier_sha256(self) -> str:
        return _sha(self.root / CLASSIFIER_FILE)

    def classifier_config(self) -> dict[str, Any]:
        return json.loads((self.root / "classifier.json").read_text())

    def scheduler_config(self) -> dict[str, Any]:
        return json.loads((self.root / "scheduler" / "scheduler_config.json").read_text())

    def training(self) -> dict[str, Any]:
        return json.loads((self.root / "training.json").read_text())


@lru_cache(maxsize=8)
def _sha_cached(path: str, mtime_ns: int, size: int) -> str:
    return sha256_file(path)


def _sha(path: Path) -> str:
    st = path.stat()
    return _sha_cached(str(path), st.st_mtime_ns, st.st_size)


def weights(root: str | Path | None = None) -> Weights:
    r = Path(root) if root is not None else WEIGHTS_DIR
    if not (r / UNET_FILE).is_file():
        raise FileNotFoundError(f"no digits weights under {r}; run `python -m eacps_digits.train`")
    return Weights(r)


def load_unet(root: str | Path | None = None, device: str = "cpu"):
    """The trained UNet2DModel, loaded from safetensors only, in eval mode."""
    from diffusers import UNet2DModel

    w = weights(root)
    unet = UNet2DModel.from_pretrained(w.root / "unet", use_safetensors=True)
    return unet.to(device).eval().requires_grad_(False)


def load_classifier(root: str | Path | None = None, device: str = "cpu") -> Classifier:
    """The trained classifier from safetensors, in eval mode."""
    w = weights(root)
    cfg = w.classifier_config()
    model = Classifier(hidden=cfg["hidden"], features=cfg["features"])
    model.load_state_dict(load_file(str(w.root / CLASSIFIER_FILE)), strict=True)
    return model.to(device).eval().requires_grad_(False)
