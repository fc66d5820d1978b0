"""``eacps landscape --per-step``: how early is a reward trustworthy?

For every task, P random seeds are run once through the whole schedule; at every step k = 1..T-1 the
model's prediction of the clean image is scored (path recipes with ``until = k``, so each trajectory is
computed once: the engine's prefix-state cache continues it from step k-1), and the final image too. Reported
per k: the rank correlation (Spearman) between the potential of the step-k preview and of the final image of
the same trajectory, averaged over tasks, with a bootstrap 95% CI over tasks, and the mean preview potential.
Previews are scored by ``preview_potential`` when the config sets one (what a screening strategy would use).
Trajectory strategies take their default schedules from this curve. Needs a generator that can step.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from eacps.analysis.landscape import Listed, landscape_settings
from eacps.api import load_run
from eacps.config import ConfigError
from eacps.engine.engine import Job
from eacps.recipe import Recipe
from eacps.store import Store
from eacps.strategy import SeedStream


def _spearman(a: list[float], b: list[float]) -> float:
    if len(a) < 3:
        return math.nan
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if np.std(ra) == 0 or np.std(rb) == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def per_step_table(by_task: dict[str, dict[int | None, dict[int, float]]], total: int,
                   rng_seed: int = 0) -> list[dict[str, Any]]:
    """Rows per step k: mean Spearman over tasks of (step-k preview, final) potentials, bootstrap CI over tasks.
    ``by_task[task][k][seed_index]`` holds potentials; ``k = None`` the finals."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for k in range(1, total):
        rhos, means = [], []
        for per_k in by_task.values():
            final, prev = per_k.get(None, {}), per_k.get(k, {})
            common = sorted(set(final) & set(prev))
            rho = _spearman([prev[i] for i in common], [final[i] for i in common])
            if not math.isnan(rho):
                rhos.append(rho)
                means.append(float(np.mean([prev[i] for i in common])))
        if not rhos:
            rows.append({"step": k, "spearman": None, "ci95": [None, None], "tasks": 0, "mean_preview": None})
            continue
        boots = [float(np.mean(rng.choice(rhos, len(rhos)))) for _ in range(1000)]
        rows.append({"step": k, "spearman": float(np.mean(rhos)),
                     "ci95": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))],
                     "tasks": len(rhos), "mean_preview": float(np.mean(means))})
    return rows


def run_step_landscape(config: str | Path, out: str | Path, *, parents: int = 32, seed: int = 0,
                       progress: bool = False) -> dict[str, Any]:
    if parents < 3:
        raise ConfigError("--parents must be >= 3 (a rank correlation needs at least three trajectories)")
    setup = load_run(config, progress=progress)
    cfg, generator, _, conditions, _ = setup
    if (problem := generator.stepping_problem()) is not None:
        raise ConfigError(f"--per-step: {problem}: it cannot show intermediate predictions")
    total = generator.default_steps
    if total < 2:
        raise ConfigError(f"--per-step: the generator's schedule has {total} step; nothing lies in between")
    prior_seed, batch_size = landscape_settings(cfg)
    seeds = SeedStream(seed).take(parents)
    # step by step: each batch continues the previous step's states from the engine's state cache
    recipes = [Recipe.from_seed(s).with_until(k) for k in range(1, total) for s in seeds]
    recipes += [Recipe.from_seed(s) for s in seeds]
    out = Path(out)
    with Store.open(out, argv=["landscape", "--per-step", str(config)]) as store:
        store.set_meta("landscape", {"config": cfg.model_dump(mode="json"), "per_step": True,
                                     "parents": parents, "seed": seed})
        engine = setup.engine(store, batch_size=batch_size, progress=progress)
        try:
            results = engine.run_all([Job(c, Listed(recipes), label="landscape per step",
                                          search_id=f"landscape/{c.id}/per-step", prior_seed=prior_seed)
                                      for c in conditions])
        finally:
            engine.close()
    by_task: dict[str, dict[int | None, dict[int, float]]] = {}
    index = {s: i for i, s in enumerate(seeds)}
    for res in results:
        per_k = by_task.setdefault(res.condition.id, {})
        for c in res.history:
            if c.potential is not None:
                per_k.setdefault(c.recipe.until, {})[index[c.recipe.seed]] = c.potential
    summary = {"per_step": True, "tasks": len(conditions), "parents": parents, "steps": total,
               "prior_seed": prior_seed, "rows": per_step_table(by_task, total)}
    (out / "landscape_steps.json").write_text(json.dumps(summary, indent=2))
    return summary


def format_step_landscape(summary: dict[str, Any]) -> str:
    lines = [f"{summary['tasks']} tasks x {summary['parents']} trajectories of {summary['steps']} steps: "
             "rank correlation of the step-k preview's potential with the final image's",
             f"{'step':>5} {'of T':>6} {'spearman':>9} {'95% CI':>18} {'mean preview U':>15}"]
    for r in summary["rows"]:
        if r["spearman"] is None:
            lines.append(f"{r['step']:>5} {r['step'] / summary['steps']:>6.2f} {'-':>9}")
            continue
        lo, hi = r["ci95"]
        lines.append(f"{r['step']:>5} {r['step'] / summary['steps']:>6.2f} {r['spearman']:>9.3f} "
                     f"{f'[{lo:.3f}, {hi:.3f}]':>18} {r['mean_preview']:>15.2f}")
    return "\n".join(lines)
