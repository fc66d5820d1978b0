"""Image conversions: eacps images (float32 HWC in [0, 1]) to PIL and data URLs."""

from __future__ import annotations

import base64
import io

import numpy as np

from eacps.engine.checkpoints import to_pil


def to_data_url(image: np.ndarray, fmt: str = "png", quality: int = 95) -> str:
    """``data:image/png;base64,...`` (or jpeg) for an eacps image."""
    buf = io.BytesIO()
    pil = to_pil(image)
    if fmt == "jpeg":
        pil.save(buf, format="JPEG", quality=quality)
    else:
        pil.save(buf, format="PNG")
    return f"data:image/{fmt};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
