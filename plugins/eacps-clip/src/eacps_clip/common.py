"""Loading and embedding helpers shared by the CLIP and image-similarity scorers."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from eacps.checkpoints import refuse_pickled_only, weights_fingerprint
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




def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return DTYPES[dtype]






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
