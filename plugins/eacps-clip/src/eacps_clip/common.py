"""Loading and embedding helpers shared by the CLIP and image-similarity scorers."""

from __future__ import annotations

from typing import Any

import torch

from eacps.engine.checkpoints import (
    CheckpointParams,
    refuse_pickled_only,
    require_local,
    resolve_device,
    resolve_dtype,
    weights_fingerprint,
)
from eacps.params import Params


class ModelParams(CheckpointParams):
    """Where and how to load an embedding model (safetensors only; remote code only when asked)."""


RUNTIME = ("device", "batch_size", "local_files_only")


def load_model(p: ModelParams) -> tuple[Any, Any, torch.device, torch.dtype]:
    """``AutoModel`` + ``AutoProcessor`` (falls back to ``AutoImageProcessor``) in eval mode on the device."""
    from transformers import AutoImageProcessor, AutoModel, AutoProcessor

    require_local(p)
    refuse_pickled_only(p.model)
    device = resolve_device(p.device, mps=False)
    dtype = resolve_dtype(p.dtype, device, cuda_auto=torch.float16)
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
