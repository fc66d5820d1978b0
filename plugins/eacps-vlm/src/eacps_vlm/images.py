"""Image conversions: eacps images (float32 HWC in [0, 1]) to PIL and data URLs."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image as PILImage


def to_pil(image: np.ndarray) -> PILImage.Image:
    """A float HWC (or HW) array in [0, 1] with 1, 3 or 4 channels as an RGB PIL image."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HWC image with 1, 3 or 4 channels, got shape {a.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    a = np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0)
    return PILImage.fromarray(np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8), mode="RGB")


def to_data_url(image: np.ndarray, fmt: str = "png", quality: int = 95) -> str:
    """``data:image/png;base64,...`` (or jpeg) for an eacps image."""
    buf = io.BytesIO()
    pil = to_pil(image)
    if fmt == "jpeg":
        pil.save(buf, format="JPEG", quality=quality)
    else:
        pil.save(buf, format="PNG")
    return f"data:image/{fmt};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
