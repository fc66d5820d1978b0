"""Tasks of the gaussian-mixture testbed: "a sample of component c, close to this reference point"."""

from __future__ import annotations

import numpy as np

from eacps import Condition

CLASSES = 10  # the default mixture's components


def tasks(n: int, seed: int = 0, *, classes: int = CLASSES) -> list[Condition]:
    """``n`` conditions; task i asks for component ``c = i % classes`` near the reference point drawn from
    ``extra["reference_seed"]`` (distinct seeds from a numpy PCG64 stream of ``seed``). The registered task set
    uses the default 10 classes (a mixture with ``components >= 10``); pass ``classes`` for a smaller one."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    rng = np.random.Generator(np.random.PCG64(seed))
    seeds = rng.choice(2**31, size=n, replace=False) if n else []
    return [Condition(id=f"gm{i % classes}-ref{int(s)}", class_label=i % classes,
                      extra={"reference_seed": int(s)}) for i, s in enumerate(seeds)]
