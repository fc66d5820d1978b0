"""scikit-learn's bundled 8x8 digits (offline), the fixed train / held-out split, reference exemplars.

Pixels are 0..16 in the dataset; here images are float32 (8, 8, 1) in [0, 1]. The split is made with
numpy's PCG64 (stable across versions): per class, a permutation from ``SPLIT_SEED`` and the first
``round(HELD_OUT_FRACTION * n_class)`` indices are held out of all training. Held-out digits are the
reference exemplars of tasks.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

SPLIT_SEED = 20240607
HELD_OUT_FRACTION = 0.2


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (np.asarray(d.data, dtype=np.float32) / 16.0).reshape(-1, 8, 8, 1)
    y = np.asarray(d.target, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def all_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as float32 (N, 8, 8, 1) in [0, 1], and their labels (N,). Read-only arrays."""
    return _digits()


def data_sha256() -> str:
    """sha256 of the dataset as used here (images + labels), recorded with the weights."""
    x, y = _digits()
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def split() -> tuple[np.ndarray, np.ndarray]:
    """(train_indices, held_out_indices), both sorted int64 arrays into ``all_digits()``."""
    _, y = _digits()
    rng = np.random.Generator(np.random.PCG64(SPLIT_SEED))
    held: list[np.ndarray] = []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        perm = rng.permutation(idx)
        held.append(perm[: round(HELD_OUT_FRACTION * len(idx))])
    held_out = np.sort(np.concatenate(held)).astype(np.int64)
    train = np.setdiff1d(np.arange(len(y)), held_out).astype(np.int64)
    train.setflags(write=False)
    held_out.setflags(write=False)
    return train, held_out


def split_sha256() -> str:
    """sha256 of the held-out index list (the split the weights were trained with)."""
    return hashlib.sha256(split()[1].tobytes()).hexdigest()


def train_data() -> tuple[np.ndarray, np.ndarray]:
    """Training images (N, 8, 8, 1) and labels: everything not held out."""
    x, y = _digits()
    tr, _ = split()
    return x[tr], y[tr]


def held_out_indices(class_label: int | None = None) -> np.ndarray:
    """Held-out dataset indices (sorted), optionally only those of one class."""
    _, y = _digits()
    held = split()[1]
    if class_label is None:
        return held
    return held[y[held] == int(class_label)]


def reference_image(idx: int) -> np.ndarray:
    """The held-out digit at dataset index ``idx``: a float32 (8, 8, 1) image in [0, 1] (a copy).

    Only held-out digits are reference exemplars (never seen in training); others raise ValueError.
    """
    x, y = _digits()
    if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
        raise TypeError(f"reference index must be an int, got {type(idx).__name__}")
    idx = int(idx)
    if not 0 <= idx < len(y):
        raise ValueError(f"reference index {idx} out of range [0, {len(y)})")
    held = split()[1]
    pos = np.searchsorted(held, idx)
    if pos >= len(held) or held[pos] != idx:
        raise ValueError(f"digit {idx} is a training digit, not a held-out reference exemplar")
    return x[idx].copy()


def reference_label(idx: int) -> int:
    """The class of dataset digit ``idx``."""
    return int(_digits()[1][int(idx)])
