"""Tasks of the digits testbed: "draw class c in the style of this held-out exemplar"."""

from __future__ import annotations

import numpy as np

from eacps import Condition
from eacps.plugins import DemoPreset
from eacps_digits import data


def tasks(n: int, seed: int = 0) -> list[Condition]:
    """``n`` conditions; task i asks for class ``c = i % 10`` in the style of a held-out exemplar of class c.

    Per class, the held-out exemplars are permuted by ``seed`` (numpy PCG64) and task i takes the
    ``i // 10``-th of them (cycling when a class runs out), so exemplars are distinct as long as possible.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.Generator(np.random.PCG64(seed))
    perms = [rng.permutation(data.held_out_indices(c)) for c in range(10)]
    out = []
    for i in range(n):
        c = i % 10
        idx = int(perms[c][(i // 10) % len(perms[c])])
        out.append(
            Condition(
                id=f"digit{c}-ref{idx}",
                class_label=c,
                reference=data.reference_image(idx),
                reference_path=None,
                extra={"reference_index": idx},
            )
        )
    return out


def demo_preset() -> DemoPreset:
    """``eacps demo``: the digits generator, its three scorers at the reference weights, the digits tasks."""
    return DemoPreset(name="digits", generator="digits", tasks="digits", criteria={
        "consistency": ("digits-consistency", 1.0), "realism": ("digits-realism", 4.0),
        "identity": ("digits-identity", 1.5)}, title="eacps demo: EACPS vs best-of-N on the digits testbed")
