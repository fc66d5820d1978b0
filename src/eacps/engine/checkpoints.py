"""Helpers for plugins that load model checkpoints and turn eacps images into model inputs.

One place for the safety and identity rules every model-loading plugin follows: the common loading
parameters (``CheckpointParams``: remote code off, local files optional), safetensors only (a folder
holding only pickled weights is refused with a clear error), device/dtype resolution, a cheap fingerprint
of local weights for cache keys, and the conversion of an eacps image (float HWC in [0, 1]) to an RGB PIL
image.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image as PILImage
from pydantic import Field

from eacps.params import Params

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class CheckpointParams(Params):
    """Where and how to load a transformers checkpoint (safetensors only; remote code only when asked)."""

    model: str
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    local_files_only: bool = Field(True, description="never reach the hub unless set to false (the one download "
                                   "policy of generators and scorers; `eacps generate --allow-download` sets it)")
    trust_remote_code: bool = False
    batch_size: int = Field(16, ge=1)


# -- where a model comes from: a local folder, the Hugging Face cache, or a download -----------------------------
def is_hub_id(model: str) -> bool:
    """``org/name`` that is not an existing local path (a hub repository id)."""
    if model.startswith(("/", ".", "~", "\\")) or (len(model) > 1 and model[1] == ":") or model.count("/") != 1:
        return False
    return not Path(model).expanduser().exists()


def in_hf_cache(repo: str, filename: str, *, revision: str | None = None, cache_dir: str | None = None) -> bool:
    """Whether ``filename`` of ``repo`` is in the Hugging Face cache (nothing is fetched)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo, filename, cache_dir=cache_dir, revision=revision), str)
    except Exception:  # huggingface_hub missing, or not a valid repo id
        return False


def download_command(repo: str, revision: str | None = None) -> str:
    """The exact command that puts ``repo`` in the Hugging Face cache."""
    return f"hf download {repo}" + (f" --revision {revision}" if revision else "")


def not_cached(model: str, filename: str, *, revision: str | None = None, cache_dir: str | None = None) -> str | None:
    """Why a hub model cannot be loaded with downloads off (``local_files_only = true``), with the exact
    ``hf download`` line, or None when it is a local folder, cached, or not a hub id."""
    if not is_hub_id(model) or in_hf_cache(model, filename, revision=revision, cache_dir=cache_dir):
        return None
    return (f"{model!r} is not in the Hugging Face cache and downloads are off (local_files_only = true); download "
            f"it with: {download_command(model, revision)} (or allow downloads: `eacps generate ... --allow-download`, "
            "or local_files_only = false in the config)")


class NotCachedError(ValueError):
    """A hub model missing from the cache while downloads are off; ``str()`` names ``params.model`` and says the
    exact ``hf download`` line (the engine reports it as a config error, uncut)."""


def require_local(p: CheckpointParams, filename: str = "config.json") -> None:
    """``NotCachedError`` when ``p.model`` would have to be downloaded and ``p.local_files_only`` forbids it."""
    if p.local_files_only and (why := not_cached(p.model, filename, revision=p.revision)) is not None:
        raise NotCachedError(f"params.model: {why}")


def resolve_device(device: str, *, mps: bool = True) -> torch.device:
    """``auto``: CUDA if available, else Apple MPS (when ``mps``), else CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device, *, cuda_auto: torch.dtype = torch.bfloat16) -> torch.dtype:
    """``auto``: ``cuda_auto`` on CUDA, float32 elsewhere."""
    if dtype == "auto":
        return cuda_auto if device.type == "cuda" else torch.float32
    return DTYPES[dtype]


def refuse_pickled_only(model: str, use_safetensors: bool = True) -> None:
    """A clear ValueError for a local folder that holds only pickled (``.bin``/``.pt``) weights."""
    path = Path(model)
    if use_safetensors and path.is_dir():
        has_st = any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").is_file()
        pickled = [p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if not has_st and pickled:
            raise ValueError(
                f"{model} holds only pickled weights ({', '.join(sorted(pickled)[:3])}); eacps loads safetensors "
                "only. Convert the checkpoint (save_pretrained(..., safe_serialization=True))."
            )


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
