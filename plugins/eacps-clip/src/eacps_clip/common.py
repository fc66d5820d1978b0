"""Loading and embedding helpers shared by the CLIP and image-similarity scorers."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image as PILImage
from pydantic import Field

from eacps.params import Params

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelParams(Params):
    """Where and how to load an embedding model (safetensors only; remote code only when asked)."""

    model: str
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    local_files_only: bool = False
    trust_remote_code: bool = False
    batch_size: int = Field(16, ge=1)


RUNTIME = ("device", "batch_size", "local_files_only")


def to_pil(image: np.ndarray) -> PILImage.Image:
    """A float HWC (or HW) array in [0, 1] with 1, 3 or 4 channels as an RGB PIL image."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HWC image with 1, 3 or 4 channels, got shape {a.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    a = np.nan_to_num(a[:, :, :3], nan=0.0, posinf=1.0, neginf=0.0)
    return PILImage.fromarray(np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8), mode="RGB")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return DTYPES[dtype]


def refuse_pickled_only(model: str) -> None:
    path = Path(model)
    if path.is_dir():
        has_st = any(path.glob("*.safetensors"))
        pickled = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        if not has_st and pickled:
            raise ValueError(
                f"{model} holds only pickled weights ({', '.join(pickled[:3])}); eacps loads safetensors only"
            )


def weights_fingerprint(model: str, sample: int = 1 << 16) -> str | None:
    """Local folders: a hash of config.json and each safetensors file's header, size and three data samples."""
    path = Path(model)
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    if (path / "config.json").is_file():
        h.update((path / "config.json").read_bytes())
    for f in sorted(path.glob("*.safetensors")):
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with f.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            h.update(fh.read(n))
            for off in (8 + n, max(8 + n, (size - sample) // 2), max(8 + n, size - sample)):
                fh.seek(off)
                h.update(fh.read(sample))
    return h.hexdigest()[:16]


def load_model(p: ModelParams) -> tuple[Any, Any, torch.device, torch.dtype]:
    """``AutoModel`` + ``AutoProcessor`` (falls back to ``AutoImageProcessor``) in eval mode on the device."""
    from transformers import AutoImageProcessor, AutoModel, AutoProcessor

    refuse_pickled_only(p.model)
    device = resolve_device(p.device)
    dtype = resolve_dtype(p.dtype, device)
    common = dict(revision=p.revision, local_files_only=p.local_files_only, trust_remote_code=p.trust_remote_code)
    try:
        processor = AutoProcessor.from_pretrained(p.model, **common)
    except (OSError, ValueError, TypeError):
        processor = AutoImageProcessor.from_pretrained(p.model, **common)
    model = AutoModel.from_pretrained(p.model, dtype=dtype, use_safetensors=True, **common)
    return model.to(device).eval(), processor, device, dtype


def pooled(out: Any) -> torch.Tensor:
    """``get_*_features`` returns a tensor (transformers 4) or an output whose ``pooler_output`` is it (5)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def settings(params: Params) -> dict[str, Any]:
    s = {k: v for k, v in params.model_dump(mode="json").items() if k not in RUNTIME}
    fp = weights_fingerprint(params.model)
    if fp is not None:
        s["weights"] = fp
    return s
