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
    reasons = _reasons(log)
    return {"head": allocation_heading(log).splitlines()[0],  # one line, whatever a stored string holds
            "rows": [{"condition": r["condition"], "candidates": r["candidates"], "best": _best(r),
                      "reason": reasons.get(r["condition"], [""])[-1]} for r in log["rows"]]}


def format_allocation(log: dict[str, Any], last: int = 2) -> str:
    """Where the budget went and why: per condition, candidates, best and the reasons of its ``last`` grants."""
    reasons = _reasons(log)
    rows = [[r["condition"], r["candidates"], _best(r), " | ".join(reasons.get(r["condition"], [])[-last:])]
            for r in log["rows"]]
    return allocation_heading(log) + "\n" + format_table(["condition", "candidates", "best", "why (last grants)"], rows)


def allocation_heading(log: dict[str, Any]) -> str:
    """One line: the allocation's label, objective (and threshold), candidates spent of the total, grants, stop."""
    spent = sum(r["candidates"] for r in log["rows"])
    tau = f", τ = {log['threshold']:g}" if log.get("threshold") is not None else ""
    return (f"allocation {log['label']!r}: objective {log['objective']}{tau}, {spent} of {log['total_budget']} "
            f"candidates, {len(log['decisions'])} grants; stopped: {log['stop'] or '(interrupted)'}")


def _reasons(log: dict[str, Any]) -> dict[str, list[str]]:
    """Per condition, the reasons of its grants in order."""
    reasons: dict[str, list[str]] = {}
    for d in log["decisions"]:
        reasons.setdefault(d["condition"], []).append(d["reason"])
    return reasons


def _best(row: dict[str, Any]) -> str:
    return "-" if row["best"] is None else f"{row['best']:.3f}"
