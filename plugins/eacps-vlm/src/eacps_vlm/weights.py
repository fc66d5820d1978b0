"""Shared model-loading helpers: device/dtype resolution and a cheap fingerprint of local weights."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return DTYPES[dtype]


def weights_fingerprint(model: str, sample: int = 1 << 16) -> str | None:
    """For a local checkpoint folder: a hash of every ``*.safetensors`` file's header, size and three sampled
    chunks of its data (start, middle, end), plus ``config.json``. Cheap on multi-GB checkpoints, and changes
    when weights are fine-tuned or swapped. None for hub ids (their ``revision`` identifies them)."""
    path = Path(model)
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    cfg = path / "config.json"
    if cfg.is_file():
        h.update(cfg.read_bytes())
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


def refuse_pickled_only(model: str, use_safetensors: bool = True) -> None:
    """A clear error for a local folder that holds only pickled (``.bin``/``.pt``) weights."""
    path = Path(model)
    if use_safetensors and path.is_dir():
        has_st = any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").is_file()
        pickled = [p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        if not has_st and pickled:
            raise ValueError(
                f"{model} holds only pickled weights ({', '.join(sorted(pickled)[:3])}); eacps loads safetensors "
                "only. Convert the checkpoint (save_pretrained(..., safe_serialization=True))."
            )


__all__ = ["refuse_pickled_only", "resolve_device", "resolve_dtype", "weights_fingerprint"]
