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

from eacps.api import load_run
from eacps.config import ConfigError
from eacps.engine import Engine
from eacps.recipe import SEED_MAX, Recipe
from eacps.store import Store
from eacps.strategy import SeedStream


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


def run_landscape(config: str | Path, out: str | Path, *, neighborhoods: str, parents: int = 8, k: int = 4,
                  seed: int = 0, progress: bool = False) -> dict[str, Any]:
    if parents < 3 or k < 1:
        raise ConfigError("--parents must be >= 3 and --children >= 1")
    _, generator, potential, conditions, executor = load_run(config)
    nbs = parse_neighborhoods(neighborhoods)
    out = Path(out)
    rows = []
    with Store.open(out, argv=["landscape", str(config)]) as store:
        engine = Engine(generator, potential, store, executor=executor, progress=progress)
        try:
            pairs: dict[str, list[tuple[str, float, float, float]]] = {n[0]: [] for n in nbs}
            for cond in conditions:
                prior = engine.prior(cond)
                c = cond.with_prior(prior.image)
                ps = [Recipe.from_seed(s) for s in SeedStream(seed).take(parents)]
                pc, _ = engine.evaluate(ps, c, search=f"landscape/{cond.id}/parents", seq0=0,
                                        strategy="landscape parents")
                shape = generator.noise_shape(c)
                for nb in nbs:
                    stream = SeedStream(seed, 2)
                    kids = [ch for p in ps for ch in children(p, nb, k, stream)]
                    kc, _ = engine.evaluate(kids, c, search=f"landscape/{cond.id}/{nb[0]}", seq0=0,
                                            strategy=f"landscape {nb[0]}")
                    for i, p in enumerate(pc):
                        zp = p.recipe.noise(shape).flatten().numpy()
                        for ch in kc[i * k:(i + 1) * k]:
                            if p.potential is None or ch.potential is None:
                                continue
                            zr = float(np.corrcoef(zp, ch.recipe.noise(shape).flatten().numpy())[0, 1])
                            pairs[nb[0]].append((cond.id, p.potential, ch.potential, zr))
        finally:
            engine.close()
    rng = np.random.default_rng(0)
    for name, ps_ in pairs.items():
        tasks = sorted({t for t, *_ in ps_})
        centred = {}
        for t in tasks:
            arr = np.array([(a, b) for tt, a, b, _ in ps_ if tt == t])
            centred[t] = arr - arr.mean()  # within task: remove the task's level
        allp = np.concatenate([centred[t] for t in tasks]) if tasks else np.zeros((0, 2))
        r = _pearson(allp[:, 0], allp[:, 1]) if len(allp) else float("nan")
        boots = []
        for _ in range(1000):
            pick = rng.integers(0, len(tasks), len(tasks))
            arr = np.concatenate([centred[tasks[i]] for i in pick])
            boots.append(_pearson(arr[:, 0], arr[:, 1]))
        boots = [b for b in boots if not math.isnan(b)]
        lo, hi = (float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))) if boots else (math.nan,) * 2
        rows.append({"neighborhood": name, "pairs": len(ps_), "tasks": len(tasks), "potential_r": r,
                     "potential_r_ci95": [lo, hi],
                     "noise_r": float(np.mean([z for *_, z in ps_])) if ps_ else float("nan")})
    summary = {"parents": parents, "children": k, "tasks": len(conditions), "neighborhoods": rows}
    (out / "landscape.json").write_text(json.dumps(summary, indent=2))
    return summary


def format_landscape(summary: dict[str, Any]) -> str:
    lines = [f"{summary['tasks']} tasks x {summary['parents']} parents x {summary['children']} children",
             f"{'neighbourhood':<14} {'noise r':>8} {'potential r':>12} {'95% CI':>18} {'pairs':>6}"]
    for r in summary["neighborhoods"]:
        lo, hi = r["potential_r_ci95"]
        lines.append(f"{r['neighborhood']:<14} {r['noise_r']:>8.3f} {r['potential_r']:>12.3f} "
                     f"{f'[{lo:.3f}, {hi:.3f}]':>18} {r['pairs']:>6}")
    return "\n".join(lines)
