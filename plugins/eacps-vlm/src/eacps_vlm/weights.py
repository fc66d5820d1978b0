"""Shared model-loading helpers: device/dtype resolution and a cheap fingerprint of local weights."""

from __future__ import annotations

import torch

from eacps.checkpoints import refuse_pickled_only, weights_fingerprint

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


__all__ = ["refuse_pickled_only", "resolve_device", "resolve_dtype", "weights_fingerprint"]
