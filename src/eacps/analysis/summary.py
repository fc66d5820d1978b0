"""Per-strategy summaries of a run store: mean best potential with CIs, improvement over the prior.

Means are over tasks (a task's value: the mean over its searches), CIs the percentile bootstrap over tasks of
``eacps.analysis.stats.task_mean_ci``, the one ``eacps compare`` uses."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eacps.allocation_log import stored_allocations
from eacps.analysis.stats import task_mean_ci
from eacps.cost import CostConfig, figure, unit_costs
from eacps.screening import recorded_seconds
from eacps.store import Candidate, Store, best_of, best_so_far
from eacps.tables import format_table as _table
from eacps.types import Status


@dataclass
class SearchRecord:
    search: str
    condition: str
    strategy: str
    candidates: list[Candidate]
    prior: Candidate | None
    best: Candidate | None = None
    curve: list[float | None] = field(default_factory=list)
    charges: list[int] = field(default_factory=list)  # each candidate's charged denoising steps (as stored)

    @property
    def failed(self) -> int:
        return sum(c.status is not Status.OK for c in self.candidates)


def _prior_finder(store: Store):
    """``find(search id, condition, label) -> prior candidate``: the prior the search was run against. Keyed by
    condition AND prior seed: the link the engine recorded, else the prior seed the stored config gives the
    search's label, else the condition's prior with the default seed 0 (else its first prior)."""
    priors = {c.search: c for c in store.candidates(role="prior")}
    links = store.prior_links()
    config = store.get_meta("config", expect=dict) or {}
    searches = config.get("searches") or ([config["search"]] if isinstance(config.get("search"), dict) else [])
    seed_of = {s.get("label") or s.get("strategy", "eacps"): s.get("prior_seed", 0)
               for s in searches if isinstance(s, dict)}
    first = {}
    for c in sorted(priors.values(), key=lambda c: c.id):
        first.setdefault(c.condition, c)

    def find(sid: str, condition: str, label: str) -> Candidate | None:
        if sid in links and links[sid] in priors:
            return priors[links[sid]]
        seed = seed_of.get(label, 0)
        return priors.get(f"prior/{condition}/{seed}") or first.get(condition)

    return find


def load_searches(store: Store, allocations: Mapping[str, Any] | None = None) -> list[SearchRecord]:
    """Every search of the store, in the order they ran (``allocations``: its ``stored_allocations``, when the
    caller has read them already)."""
    find_prior = _prior_finder(store)
    by_search: dict[str, list[Candidate]] = defaultdict(list)
    for c in store.candidates(role="search"):
        by_search[c.search].append(c)
    out = []
    for sid, cands in sorted(by_search.items(), key=lambda kv: min(c.id for c in kv[1])):  # order of running
        cands.sort(key=lambda c: c.seq)
        cond, label = cands[0].condition, cands[0].strategy or "?"
        rec = SearchRecord(sid, cond, label, cands, find_prior(sid, cond, label))
        rec.best = best_of(cands)
        rec.curve = best_so_far(cands)
        rec.charges = [c.charge for c in cands]
        out.append(rec)
    sizes: dict[str, set[int]] = defaultdict(set)
    for r in out:
        sizes[r.strategy].add(len(r.candidates))
    # one allocation's searches differ in size by design: one row
    allocated = set(stored_allocations(store) if allocations is None else allocations)
    for r in out:  # a store holding several budgets of one strategy (eacps compare): keep them apart
        if len(sizes[r.strategy]) > 1 and r.strategy not in allocated:
            r.strategy = f"{r.strategy} (n={len(r.candidates)})"
    return out


def summarize_store(store: Store, recs: list[SearchRecord] | None = None) -> dict[str, Any]:
    """``{"budget", "n_tasks", "prior_mean", "strategies": {label: {...}}}`` over every search in the store
    (``recs``: its ``load_searches``, when the caller has read them already)."""
    recs = load_searches(store) if recs is None else recs
    by_strategy: dict[str, list[SearchRecord]] = defaultdict(list)
    for r in recs:
        by_strategy[r.strategy].append(r)
    priors = {r.prior.search: r.prior.potential for r in recs if r.prior is not None and r.prior.potential is not None}
    config = store.get_meta("config", expect=dict) or {}
    units = unit_costs(store, CostConfig(**config["cost"]) if isinstance(config.get("cost"), dict) else None)
    full_keys = {k for r in recs for c in r.candidates if not c.recipe.is_preview for k in c.scores}
    preview_keys = {k for r in recs for c in r.candidates if c.recipe.is_preview for k in c.scores}
    out: dict[str, Any] = {
        "cost_model": units,
        "budget": _budget(config, recs),
        "compare": _compare_budgets(store),
        "n_tasks": len({r.condition for r in recs}),  # prior_mean: over the priors the searches were run against
        "prior_mean": sum(priors.values()) / len(priors) if priors else None,
        "strategies": {},
    }
    for label, rs in by_strategy.items():
        bests, imps = defaultdict(list), defaultdict(list)  # per task (condition)
        for r in rs:
            if r.best is not None:
                bests[r.condition].append(r.best.potential)
                if r.prior is not None and r.prior.potential is not None:
                    imps[r.condition].append(r.best.potential - r.prior.potential)
        n = sum(len(r.candidates) for r in rs)
        failed = sum(r.failed for r in rs)
        steps = sum(sum(r.charges) for r in rs) / len(rs)
        calls: dict[str, float] = defaultdict(float)
        for r in rs:
            for c in r.candidates:
                if c.image_path is not None and c.status is not Status.FILTERED:  # it reached the scorers
                    for k in preview_keys if c.recipe.is_preview else full_keys:
                        calls[k] += 1 / len(rs)
        # a value model's measured fitting, prediction and feature time (screening), charged like any other cost
        value = sum(recorded_seconds(store.get_meta(f"diagnostics/{r.search}")) for r in rs) / len(rs)
        secs = figure(steps, calls, units)
        mean, lo, hi = task_mean_ci(bests)  # over tasks, as eacps compare: one CI per number
        imp, ilo, ihi = task_mean_ci(imps)
        out["strategies"][label] = {
            "mean_best": mean if bests else None,
            "ci95": [lo, hi],
            "improvement_over_prior": imp if imps else None,
            "improvement_ci95": [ilo, ihi],
            "n_searches": len(rs),
            "candidates": n,
            "failure_rate": failed / n if n else 0.0,
            "no_result": sum(r.best is None for r in rs),
            "cost_per_search": {"steps": steps, "scorer_calls": {k: round(v, 3) for k, v in calls.items()},
                                "value_seconds": value, "seconds": None if secs is None else secs + value},
        }
    return out


def format_table(summary: dict[str, Any]) -> str:
    rows = [("strategy", "mean best", "95% CI", "vs prior", "failed", "steps", "calls", "cost (s)")]
    for label, s in summary["strategies"].items():
        mb = "-" if s["mean_best"] is None else f"{s['mean_best']:.3f}"
        ci = f"[{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]"
        imp = "-" if s["improvement_over_prior"] is None else f"{s['improvement_over_prior']:+.3f}"
        c = s["cost_per_search"]
        secs = "-" if c["seconds"] is None else f"{c['seconds']:.3f}"
        rows.append((label, mb, ci, imp, f"{100 * s['failure_rate']:.1f}%", f"{c['steps']:.0f}",
                     f"{sum(c['scorer_calls'].values()):.0f}", secs))
    lines = _table(rows[0], rows[1:]).splitlines()
    prior = summary.get("prior_mean")
    cmp = summary.get("compare")
    budget = (f"a comparison at budgets {', '.join(map(str, cmp['budgets']))} (reference pool: {cmp['pool']} "
              "per task)" if cmp else f"budget {summary['budget']}")
    head = f"{summary['n_tasks']} tasks, {budget}" + ("" if prior is None else f", prior mean {prior:.3f}")
    u = summary.get("cost_model") or {}
    step = u.get("seconds_per_step")
    model = (f"cost model: {u.get('kind')} ({'-' if step is None else f'{step:.2e}'} s/step; per scorer call: "
             + ", ".join(f"{k} {v:.2e} s" for k, v in (u.get("seconds_per_call") or {}).items()) + ")")
    return "\n".join([head, *lines, "cost per search: steps, scorer calls, single figure; " + model])


def _compare_budgets(store: Store) -> dict[str, Any] | None:
    """An ``eacps compare`` store's contestant budgets and reference pool size (None for any other store)."""
    cmp = store.get_meta("compare")
    if not isinstance(cmp, dict):
        return None
    pool = ((cmp.get("protocol") or {}).get("pool") or {}).get("size")
    return {"budgets": [b for b in cmp.get("budgets") or [] if isinstance(b, int)], "pool": pool}


def _budget(config: dict[str, Any], recs: list[SearchRecord]) -> int | str:
    """The configured budget B (B·T denoising steps per search), or the candidates of the largest search when the
    store holds no run config (several budgets: "a–b")."""
    budgets = sorted({s.get("budget") for s in [config.get("search") or {}, *(config.get("searches") or [])]
                      if isinstance(s, dict) and isinstance(s.get("budget"), int)})
    if not budgets:
        return max((len(r.candidates) for r in recs), default=0)
    return budgets[0] if len(budgets) == 1 else f"{budgets[0]}–{budgets[-1]}"
