"""``eacps compare``: every strategy on every task at equal cost, with scaling curves.

For each strategy and budget B (in full-fidelity candidate equivalents) and repeat r, one search per task
with seed r. Reported: mean best potential with bootstrap 95% CIs over tasks, paired differences against
best-of-N, the compute multiplier against best-of-N (the N best-of-N needs to reach the strategy's mean,
over B), cost in denoising steps and scorer calls, and the order-statistics predictions of the best-of-N
curve. Everything lives in one run store, so a repeated compare regenerates nothing already done.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eacps import plugins
from eacps.api import load_run, make_strategy
from eacps.config import ConfigError, RunConfig, validate_params
from eacps.cost import figure, unit_costs
from eacps.engine import Engine, Job
from eacps.orderstats import expected_max_empirical, expected_max_std_normal
from eacps.stats import bootstrap_ci
from eacps.store import Store

REFERENCE = "best-of-n"
POOL = "best-of-n-pool"  # the reference pool's label: feeds the curve, not the table


@dataclass
class Contestant:
    label: str
    strategy: str
    params: dict[str, Any] = field(default_factory=dict)


def parse_contestants(spec: str, cfg: RunConfig | None = None) -> list[Contestant]:
    """Comma-separated labels of the config's ``[[searches]]`` or registered strategy names (default params)."""
    by_label = {s.label or s.strategy: s for s in (cfg.all_searches() if cfg else [])} if cfg and cfg.searches else {}
    out = []
    for item in [x.strip() for x in spec.split(",") if x.strip()]:
        if item in by_label:
            s = by_label[item]
            out.append(Contestant(item, s.strategy, dict(s.params)))
        else:
            try:
                plugins.get("strategy", item)
            except plugins.UnknownPluginError as exc:
                labels = f"; config labels: {', '.join(by_label)}" if by_label else ""
                raise ConfigError(f"--strategies: {exc}{labels}") from None
            out.append(Contestant(item, item))
    if not out:
        raise ConfigError("--strategies: give at least one strategy")
    if len({c.label for c in out}) != len(out):
        raise ConfigError("--strategies: each strategy once")
    return out


def parse_budgets(spec: str) -> list[int]:
    try:
        budgets = sorted({int(x) for x in spec.split(",") if x.strip()})
    except ValueError:
        raise ConfigError(f"--budgets: comma-separated positive integers, got {spec!r}") from None
    if not budgets or budgets[0] < 1:
        raise ConfigError(f"--budgets: comma-separated positive integers, got {spec!r}")
    return budgets


def run_compare(config: str | Path, out: str | Path, *, strategies: str, budgets: str, repeats: int = 1,
                pool: int = 0, progress: bool = False) -> dict[str, Any]:
    """``pool`` > 0 adds, per task and repeat, a best-of-N reference search of that many candidates whose
    samples only feed the best-of-N curve (so multipliers can be measured beyond the largest budget)."""
    if repeats < 1:
        raise ConfigError(f"--repeats: must be >= 1, got {repeats}")
    if pool < 0:
        raise ConfigError(f"--pool: must be >= 0, got {pool}")
    cfg, generator, potential, conditions, executor = load_run(config)
    contestants = parse_contestants(strategies, cfg)
    bs = parse_budgets(budgets)
    search_cfg = cfg.all_searches()[0]
    plan: list[tuple[Contestant, int, int]] = []
    for c in contestants:  # validate every (strategy, budget) before computing anything
        cls = plugins.get("strategy", c.strategy)
        params = validate_params(cls.Params, c.params, f"--strategies {c.label}")
        for b in bs:
            n = cls.budget_for(b, full_steps=generator.default_steps, params=params)
            make_strategy(c.strategy, c.params, budget=n, seed=0)
            plan.append((c, b, n))
    if pool:
        plan.append((Contestant(POOL, REFERENCE), pool, pool))
    out = Path(out)
    records = []
    with Store.open(out, argv=["compare", str(config)]) as store:
        store.set_meta("compare", {"config": cfg.model_dump(mode="json"), "strategies": strategies,
                                   "budgets": bs, "repeats": repeats})
        engine = Engine(generator, potential, store, batch_size=search_cfg.batch_size, progress=progress,
                        preview_potential=potential.preview,
                        executor=executor)
        try:
            for c, b, n in plan:
                for r in range(repeats):
                    jobs = [Job(cond, make_strategy(c.strategy, c.params, budget=n, seed=r), label=c.label,
                                search_id=f"{cond.id}/{c.label}/B{b}/r{r}", prior_seed=search_cfg.prior_seed)
                            for cond in conditions]
                    for res in engine.run_all(jobs):
                        records.append({
                            "strategy": c.label, "budget": b, "repeat": r, "task": res.condition.id,
                            "best": None if res.best is None else res.best.potential,
                            "prior": res.prior.potential, "candidates": res.cost.candidates,
                            "steps": res.cost.steps, "scorer_calls": res.cost.scorer_calls,
                            "diagnostics": res.diagnostics,
                            "samples": [h.potential for h in res.history if h.potential is not None
                                        and not h.recipe.is_preview] if c.strategy == REFERENCE else [],
                            "sample_keys": [h.recipe.key for h in res.history if h.potential is not None
                                            and not h.recipe.is_preview] if c.strategy == REFERENCE else [],
                        })
        finally:
            engine.close()
        unit = unit_costs(store, cfg.cost)
        generated = store.generated
    summary = analyze(records, [c.label for c in contestants], bs, unit)
    summary["pool"] = pool
    summary["generated"] = generated  # computed by this invocation (0 when everything was in the store)
    (out / "compare.json").write_text(json.dumps(summary, indent=2))
    return summary


def _expected_max_curve(samples_by_task: dict[str, list[float]], ns: list[float]) -> dict[str, list[float]]:
    emp, norm, approx = [], [], []
    for n in ns:
        e, f, a = [], [], []
        for xs in samples_by_task.values():
            mu, sd = float(np.mean(xs)), float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0
            e.append(expected_max_empirical(xs, n))
            f.append(mu + sd * expected_max_std_normal(max(1, round(n))))
            a.append(mu + sd * math.sqrt(2 * math.log(n)) if n > 1 else mu)
        emp.append(float(np.mean(e)))
        norm.append(float(np.mean(f)))
        approx.append(float(np.mean(a)))
    return {"empirical": emp, "normal_exact": norm, "writeup_approx": approx}


def compute_multiplier(samples_by_task: dict[str, list[float]], target: float, budget: int) -> dict[str, Any]:
    """N* such that best-of-N* (from the tasks' empirical score distributions) reaches ``target``; N*/budget."""
    n_max = min(len(xs) for xs in samples_by_task.values())
    f = lambda n: float(np.mean([expected_max_empirical(xs, n) for xs in samples_by_task.values()]))  # noqa: E731
    if target <= f(1):
        return {"n_star": 1.0, "multiplier": 1.0 / budget, "bound": "<="}
    if target > f(n_max):
        return {"n_star": float(n_max), "multiplier": n_max / budget, "bound": ">"}
    lo, hi = 1.0, float(n_max)
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return {"n_star": hi, "multiplier": hi / budget, "bound": "="}


def analyze(records: list[dict], labels: list[str], budgets: list[int], unit: dict[str, Any]) -> dict[str, Any]:
    tasks = sorted({r["task"] for r in records})
    per: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    cost: dict[tuple[str, int], list[dict]] = defaultdict(list)
    samples: dict[str, dict[str, float]] = defaultdict(dict)
    for r in records:
        if r["best"] is not None:
            per[(r["strategy"], r["budget"])][r["task"]].append(r["best"])
        cost[(r["strategy"], r["budget"])].append(r)
        for k, v in zip(r["sample_keys"], r["samples"], strict=True):
            samples[r["task"]][k] = v  # distinct best-of-N candidates per task (budgets share seeds)
    sample_lists = {t: list(v.values()) for t, v in samples.items() if len(v) >= 2}
    table = []
    for label in labels:
        for b in budgets:
            by_task = {t: float(np.mean(v)) for t, v in per[(label, b)].items()}
            vals = list(by_task.values())
            recs = cost[(label, b)]
            steps = float(np.mean([r["steps"] for r in recs])) if recs else 0.0
            calls = defaultdict(float)
            for r in recs:
                for k, v in r["scorer_calls"].items():
                    calls[k] += v / len(recs)
            row = {"strategy": label, "budget": b, "n_tasks": len(vals),
                   "mean_best": float(np.mean(vals)) if vals else None, "ci95": list(bootstrap_ci(vals)),
                   "steps": steps, "scorer_calls": {k: round(v, 3) for k, v in calls.items()},
                   "cost_seconds": figure(steps, calls, unit)}
            ref = {t: float(np.mean(v)) for t, v in per[(REFERENCE, b)].items()}
            common = [t for t in by_task if t in ref]
            if label != REFERENCE and common:
                diffs = [by_task[t] - ref[t] for t in common]
                row["diff_vs_best_of_n"] = float(np.mean(diffs))
                row["diff_ci95"] = list(bootstrap_ci(diffs))
            numeric = defaultdict(list)
            for r in recs:
                for k, v in (r.get("diagnostics") or {}).items():
                    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                        numeric[k].append(float(v))
            if numeric:  # e.g. multi-fidelity's preview_rank_spearman, averaged over searches
                row["diagnostics"] = {k: float(np.mean(v)) for k, v in numeric.items()}
            if sample_lists and row["mean_best"] is not None:
                row["multiplier"] = compute_multiplier(sample_lists, row["mean_best"], b)
            table.append(row)
    curve_ns = sorted({1, 2, *budgets, *(2**k for k in range(1, 11))})
    curve_ns = [n for n in curve_ns if n <= max((len(v) for v in sample_lists.values()), default=1)]
    return {
        "tasks": len(tasks), "budgets": budgets, "strategies": labels, "table": table,
        "cost_model": {**unit, "note": "single figure = steps x seconds_per_step"
                       " + sum over criteria of calls x seconds_per_call"},
        "best_of_n_curve": {"n": curve_ns, **(_expected_max_curve(sample_lists, curve_ns) if sample_lists else {})},
    }


def format_compare(summary: dict[str, Any]) -> str:
    u = summary["cost_model"]
    per_call = ", ".join(f"{k} {v:.2e} s" for k, v in u.get("seconds_per_call", {}).items())
    lines = [f"{summary['tasks']} tasks; cost model: {u.get('kind')} "
             f"({_fmt(u.get('seconds_per_step'), '.2e')} s/step; per scorer call: {per_call})",
             f"{'strategy':<16} {'B':>4} {'mean best':>10} {'95% CI':>20} {'vs best-of-n':>13} {'multiplier':>11} "
             f"{'steps':>7} {'calls':>7} {'cost (s)':>9}"]
    for r in summary["table"]:
        ci = f"[{_fmt(r['ci95'][0])}, {_fmt(r['ci95'][1])}]"
        diff = f"{r['diff_vs_best_of_n']:+.3f}" if "diff_vs_best_of_n" in r else "-"
        m = r.get("multiplier")
        mult = "-" if m is None else f"{'>' if m['bound'] == '>' else ''}{m['multiplier']:.2f}x"
        calls = sum(r["scorer_calls"].values())
        lines.append(f"{r['strategy']:<16} {r['budget']:>4} {_fmt(r['mean_best']):>10} {ci:>20} {diff:>13} "
                     f"{mult:>11} {r['steps']:>7.0f} {calls:>7.0f} {_fmt(r['cost_seconds']):>9}")
    return "\n".join(lines)


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)
