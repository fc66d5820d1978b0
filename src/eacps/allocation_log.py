"""Reading where a cross-condition budget went (``eacps.allocate``'s log, store meta ``allocation/<label>``):
``eacps show`` and the report. Imports no torch (reading a store never does)."""

from __future__ import annotations

from typing import Any

from eacps.store import Store, StoreError
from eacps.tables import format_table

META_PREFIX = "allocation/"


def stored_allocations(store: Store) -> dict[str, dict[str, Any]]:
    """Every allocation log of a run store, by label (``{}`` for a run without one)."""
    return {k.removeprefix(META_PREFIX): _checked(k, store.get_meta(k, expect=dict))
            for k in store.meta_keys(META_PREFIX)}


def _checked(key: str, log: dict[str, Any]) -> dict[str, Any]:
    """A stored allocation log in the shape ``format_allocation`` reads, or StoreError naming the key (one line)."""
    ok = (isinstance(log.get("label"), str) and isinstance(log.get("objective"), str)
          and isinstance(log.get("total_budget"), int) and isinstance(log.get("decisions"), list)
          and isinstance(log.get("rows"), list)
          and all(isinstance(d, dict) and isinstance(d.get("condition"), str) and isinstance(d.get("reason"), str)
                  for d in log["decisions"])
          and all(isinstance(r, dict) and isinstance(r.get("condition"), str) and isinstance(r.get("candidates"), int)
                  and (r.get("best") is None or isinstance(r.get("best"), int | float)) for r in log["rows"]))
    if not ok:
        raise StoreError(f"run store damaged: meta {key!r} is not an allocation log (label, objective, total_budget, "
                         "decisions and rows of the shape eacps.allocate writes)")
    return log


def allocation_context(log: dict[str, Any]) -> dict[str, Any]:
    """The report's view of one allocation log: a heading line and per condition (candidates, best, last reason)."""
    last: dict[str, str] = {}
    for d in log["decisions"]:
        last[d["condition"]] = d["reason"]
    return {"head": format_allocation(log).splitlines()[0],
            "rows": [{"condition": r["condition"], "candidates": r["candidates"],
                      "best": "-" if r["best"] is None else f"{r['best']:.3f}", "reason": last.get(r["condition"], "")}
                     for r in log["rows"]]}


def format_allocation(log: dict[str, Any], last: int = 2) -> str:
    """Where the budget went and why: per condition, candidates, best and the reasons of its ``last`` grants."""
    reasons: dict[str, list[str]] = {}
    for d in log["decisions"]:
        reasons.setdefault(d["condition"], []).append(d["reason"])
    rows = [[r["condition"], r["candidates"], "-" if r["best"] is None else f"{r['best']:.3f}",
             " | ".join(reasons.get(r["condition"], [])[-last:])] for r in log["rows"]]
    spent = sum(r["candidates"] for r in log["rows"])
    tau = f", τ = {log['threshold']:g}" if log.get("threshold") is not None else ""
    head = (f"allocation {log['label']!r}: objective {log['objective']}{tau}, {spent} of {log['total_budget']} "
            f"candidates, {len(log['decisions'])} grants; stopped: {log['stop'] or '(interrupted)'}")
    return head + "\n" + format_table(["condition", "candidates", "best", "why (last grants)"], rows)
