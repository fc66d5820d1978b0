"""The cost model: denoising steps and scorer calls, and one figure from per-unit costs.

Every search is charged its denoising steps and its scorer calls per criterion (``engine.Cost``). The
single figure is ``steps x seconds_per_step + sum_k calls_k x seconds_per_call_k``, with unit costs either
measured in the run (totals of generation and per-criterion scoring time over the work this store
computed, kept in the store's meta ``unit_costs``) or set in the config (``[cost]``), which makes figures
comparable across machines. Every summary says which model it used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from eacps.params import Params

META_KEY = "unit_costs"


class CostConfig(Params):
    seconds_per_step: float | None = Field(None, ge=0, description="cost of one denoising step; None: measured")
    seconds_per_call: dict[str, float] = Field(default_factory=dict,
                                               description="cost of one scorer call per criterion; missing: measured")


def empty_totals() -> dict[str, Any]:
    return {"gen_seconds": 0.0, "steps": 0, "calls": {}, "score_seconds": {}}


def accumulate(tot: dict[str, Any], *, gen_seconds: float, steps: int, calls: Mapping[str, int],
               score_seconds: Mapping[str, float]) -> dict[str, Any]:
    """Add measured work to running totals (kept in the store's meta ``unit_costs``, written in the same
    transaction as the batch it measures, so a killed run keeps exactly the measurements of its batches)."""
    tot["gen_seconds"] += gen_seconds
    tot["steps"] += steps
    for k, v in calls.items():
        tot["calls"][k] = tot["calls"].get(k, 0) + v
    for k, v in score_seconds.items():
        tot["score_seconds"][k] = tot["score_seconds"].get(k, 0.0) + v
    return tot


def unit_costs(store: Any, config: CostConfig | None = None) -> dict[str, Any]:
    """Per-unit costs: the config's where set, else measured from the store's totals."""
    tot = store.get_meta(META_KEY, empty_totals())
    cfg = config or CostConfig()
    measured_step = tot["gen_seconds"] / tot["steps"] if tot["steps"] else None
    per_call = {k: tot["score_seconds"].get(k, 0.0) / n for k, n in tot["calls"].items() if n}
    per_call.update(cfg.seconds_per_call)
    kind = "config" if cfg.seconds_per_step is not None and set(per_call) <= set(cfg.seconds_per_call) else (
        "measured" if not cfg.seconds_per_call and cfg.seconds_per_step is None else "mixed")
    return {"kind": kind,
            "seconds_per_step": cfg.seconds_per_step if cfg.seconds_per_step is not None else measured_step,
            "seconds_per_call": per_call}


def figure(steps: float, calls: Mapping[str, float], units: Mapping[str, Any]) -> float | None:
    """The single cost figure (seconds) of ``steps`` and ``calls`` under ``units``."""
    if units.get("seconds_per_step") is None:
        return None
    return steps * units["seconds_per_step"] + sum(n * units["seconds_per_call"].get(k, 0.0) for k, n in calls.items())
