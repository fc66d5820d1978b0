"""``eacps landscape``: is the seed space structured? Parent/child correlations per neighbourhood.

For every task, P parents (random seeds, the same for every neighbourhood) and K children each. For each
neighbourhood it reports the correlation between parent and child *potentials* within task (both
centred on the task's mean, pooled; bootstrap 95% CI over tasks) and between their *noises* (mean
Pearson r). ``seed-offset`` children are s+1..s+K (the paper's); ``pcn:θ`` children are pCN moves.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from eacps.analysis.compare import check_run_dir, shared_prior_seed
from eacps.api import load_run
from eacps.config import ConfigError, RunConfig
from eacps.engine.engine import Job
from eacps.recipe import SEED_MAX, Recipe
from eacps.store import Store
from eacps.strategy import SeedStream, Strategy


def parse_neighborhoods(spec: str) -> list[tuple[str, float | None]]:
    out: list[tuple[str, float | None]] = []
    for item in [x.strip() for x in spec.split(",") if x.strip()]:
        if item == "seed-offset":
            out.append((item, None))
            continue
        kind, _, arg = item.partition(":")
        try:
            theta = float(arg)
        except ValueError:
            theta = -1.0
        if kind != "pcn" or not 0 < theta <= math.pi / 2:
            raise ConfigError(f"--neighborhoods: {item!r}; allowed: seed-offset, pcn:THETA (0 < THETA <= pi/2)")
        out.append((item, theta))
    if not out:
        raise ConfigError("--neighborhoods: give at least one neighbourhood")
    return out


def children(parent: Recipe, nb: tuple[str, float | None], k: int, stream: SeedStream) -> list[Recipe]:
    if nb[1] is None:
        return [Recipe.from_seed((parent.seed + d) % SEED_MAX) for d in range(1, k + 1)]
    return [parent.pcn(nb[1], stream.next()) for _ in range(k)]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


class Listed(Strategy):
    """Asks exactly ``recipes``, in order: landscape parents or children, run as ordinary searches (so the
    engine batches them with the config's batch size, against the config's prior)."""

    name = "landscape"
    ask_ahead = True

    def __init__(self, recipes: list[Recipe]) -> None:
        super().__init__(budget=len(recipes), seed=0)
        self.todo = list(recipes)

    def _ask(self, n: int) -> list[Recipe]:
        out, self.todo = self.todo[:n], self.todo[n:]
        return out


def landscape_settings(cfg: RunConfig) -> tuple[int, int]:
    """(prior seed, batch size) of the config's searches: one prior seed (the potential scores against the
    prior), and the smallest batch size (a memory limit every search runs within)."""
    return shared_prior_seed(cfg), min(s.batch_size for s in cfg.all_searches())


def run_landscape(config: str | Path, out: str | Path, *, neighborhoods: str, parents: int = 8, k: int = 4,
                  seed: int = 0, progress: bool = False) -> dict[str, Any]:
    if parents < 3 or k < 1:
        raise ConfigError("--parents must be >= 3 and --children >= 1")
    setup = load_run(config, progress=progress)
    cfg, generator, _, conditions, _ = setup
    nbs = parse_neighborhoods(neighborhoods)
    prior_seed, batch_size = landscape_settings(cfg)
    out = Path(out)
    check_run_dir(out, cfg)
    with Store.open(out, argv=["landscape", str(config)]) as store:
        store.set_meta("landscape", {"config": cfg.model_dump(mode="json"), "neighborhoods": neighborhoods,
                                     "parents": parents, "children": k, "seed": seed})
        engine = setup.engine(store, batch_size=batch_size, progress=progress)
        try:
            pairs = _pairs(engine, generator, conditions, nbs, parents, k, seed, prior_seed)
        finally:
            engine.close()
    rows = [_correlations(name, ps_) for name, ps_ in pairs.items()]
    summary = {"parents": parents, "children": k, "tasks": len(conditions), "prior_seed": prior_seed,
               "batch_size": batch_size, "neighborhoods": rows}
    (out / "landscape.json").write_text(json.dumps(summary, indent=2))
    return summary


def _pairs(engine: Any, generator: Any, conditions: list, nbs: list[tuple[str, float | None]], parents: int,
           k: int, seed: int, prior_seed: int) -> dict[str, list[tuple[str, float, float, float]]]:
    """(task, parent potential, child potential, noise correlation) per neighbourhood."""
    ps = [Recipe.from_seed(s) for s in SeedStream(seed).take(parents)]  # the same parents for every task
    parent_res = engine.run_all([Job(c, Listed(ps), label="landscape parents", search_id=f"landscape/{c.id}/parents",
                                     prior_seed=prior_seed) for c in conditions])
    pairs: dict[str, list[tuple[str, float, float, float]]] = {n[0]: [] for n in nbs}
    for nb in nbs:
        stream = SeedStream(seed, 2)
        kids = [ch for p in ps for ch in children(p, nb, k, stream)]  # the same children for every task
        jobs = [Job(c, Listed(kids), label=f"landscape {nb[0]}", search_id=f"landscape/{c.id}/{nb[0]}",
                    prior_seed=prior_seed) for c in conditions]
        for pres, kres in zip(parent_res, engine.run_all(jobs), strict=True):
            shape = generator.noise_shape(pres.condition)
            for i, p in enumerate(pres.history):
                zp = p.recipe.noise(shape).flatten().numpy()
                for ch in kres.history[i * k:(i + 1) * k]:
                    if p.potential is None or ch.potential is None:
                        continue
                    zr = float(np.corrcoef(zp, ch.recipe.noise(shape).flatten().numpy())[0, 1])
                    pairs[nb[0]].append((pres.condition.id, p.potential, ch.potential, zr))
    return pairs


def _correlations(name: str, ps_: list[tuple[str, float, float, float]]) -> dict[str, Any]:
    """Within-task parent/child correlation of potentials with a bootstrap CI over tasks; mean noise r."""
    rng = np.random.default_rng(0)
    tasks = sorted({t for t, *_ in ps_})
    if not tasks:
        return {"neighborhood": name, "pairs": 0, "tasks": 0, "potential_r": math.nan,
                "potential_r_ci95": [math.nan, math.nan], "noise_r": math.nan}
    centred = {}
    for t in tasks:
        arr = np.array([(a, b) for tt, a, b, _ in ps_ if tt == t])
        centred[t] = arr - arr.mean()  # within task: remove the task's level
    allp = np.concatenate([centred[t] for t in tasks])
    r = _pearson(allp[:, 0], allp[:, 1])
    boots = []
    for _ in range(1000):
        pick = rng.integers(0, len(tasks), len(tasks))
        arr = np.concatenate([centred[tasks[i]] for i in pick])
        boots.append(_pearson(arr[:, 0], arr[:, 1]))
    boots = [b for b in boots if not math.isnan(b)]
    lo, hi = (float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))) if boots else (math.nan,) * 2
    return {"neighborhood": name, "pairs": len(ps_), "tasks": len(tasks), "potential_r": r,
            "potential_r_ci95": [lo, hi],
            "noise_r": float(np.mean([z for *_, z in ps_]))}


def format_landscape(summary: dict[str, Any]) -> str:
    lines = [f"{summary['tasks']} tasks x {summary['parents']} parents x {summary['children']} children",
             f"{'neighbourhood':<14} {'noise r':>8} {'potential r':>12} {'95% CI':>18} {'pairs':>6}"]
    for r in summary["neighborhoods"]:
        lo, hi = r["potential_r_ci95"]
        lines.append(f"{r['neighborhood']:<14} {r['noise_r']:>8.3f} {r['potential_r']:>12.3f} "
                     f"{f'[{lo:.3f}, {hi:.3f}]':>18} {r['pairs']:>6}")
    return "\n".join(lines)
