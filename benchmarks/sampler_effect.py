"""What one ``renoise`` branch does to the samples, with no selection at all (docs/concepts.md, "What a branch does
to the samples").

Per task of the digits evaluation split, N random paths per cell: vanilla (no branch) and one ``renoise`` branch at
step k of T = 15 with angle theta, for every (k, theta) of the grid. Every cell uses the same N root seeds
(``branched-best-of-n`` and ``best-of-n`` under one strategy seed: common random numbers), so a cell differs from
vanilla by its branch alone. Reported per cell, with paired bootstrap 95% CIs over tasks:

* mean potential, and its difference from vanilla (the sampler effect);
* spread: the within-task standard deviation of the potential, and the pixel spread (per-pixel standard deviation
  of the N final images in [0, 1], averaged over pixels), each as a ratio to vanilla's.

The intervals resample tasks and paths jointly: every task draws the same root (and branch) seeds, so a seed's
luck is shared by all tasks, and a bootstrap over tasks alone is overconfident (it gave the root pCN cell, whose
true effect is zero, -0.51 [-0.70, -0.33]).

    python benchmarks/sampler_effect.py [--tasks 10] [--n 32] [--steps 3,6,9,12] [--thetas 0.3,1.0,1.5708]
                                        [--pcn 1.0] [--out runs/sampler-effect]

A root pCN cell (``--pcn``) moves each root noise instead (tree-search ``move = "pcn"``): it keeps the sampler's
distribution exactly, so its effect should be zero within its CI.

Runs through the engine into one store (resumable; a repeated run regenerates nothing).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from eacps import tomlw
from eacps.analysis.stats import percentile_interval, task_weights
from eacps.api import load_run, make_strategy
from eacps.engine.engine import Job
from eacps.recipe import Recipe
from eacps.store import Store
from eacps.strategies.best_of_n import BestOfN
from eacps.types import Status

TUNE_TASKS = 30  # as benchmarks/strategies.py: the evaluation split starts after the first 30 digits tasks
SEED = 7  # strategy seed of every cell (roots shared across cells)


def config(n_tasks: int) -> str:
    return tomlw.dumps({
        "tasks": {"name": "digits", "n": n_tasks, "seed": 0},
        "generator": {"name": "digits"},
        "potential": {"criteria": {c: {"scorer": f"digits-{c}"} for c in ("consistency", "realism", "identity")}},
        "search": {"strategy": "best-of-n", "budget": 1},
    })


class RootPcn(BestOfN):
    """Best-of-N's roots, each moved by a root pCN move of angle ``theta`` (a fresh seed of the local stream): the
    move that keeps the sampler's distribution exactly (tree-search ``move = "pcn"``)."""

    name = "root-pcn"
    theta = 1.0

    def _ask(self, n: int) -> list[Recipe]:
        return [r.pcn(self.theta, self.local_seeds.next()) for r in self.fresh_seeds(n)]


def cell_strategy(step: int | None, theta: float | None, n: int):
    """``step`` None: vanilla best-of-N; 0: root pCN of ``theta``; k: one renoise branch at k of ``theta``."""
    if step is None:
        return make_strategy("best-of-n", {}, budget=n, seed=SEED)
    if step == 0:
        s = RootPcn(budget=n, seed=SEED)
        s.theta = float(theta)  # type: ignore[arg-type]
        return s
    return make_strategy("branched-best-of-n", {"steps": [step], "theta": theta}, budget=n, seed=SEED)


def measure(res: Any, root: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """One search's final images in asked order: potentials (n,) and pixels (n, P) in [0, 1] (NaN if not OK)."""
    from PIL import Image

    pots, imgs = np.full(n, np.nan), None
    for i, h in enumerate(res.history[:n]):
        if h.status is Status.OK and h.potential is not None:
            img = np.asarray(Image.open(root / h.image_path), dtype=float).ravel() / 255.0
            imgs = np.full((n, img.size), np.nan) if imgs is None else imgs
            pots[i], imgs[i] = h.potential, img
    return pots, imgs if imgs is not None else np.full((n, 1), np.nan)


def run(args: argparse.Namespace) -> dict[tuple, np.ndarray]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.toml"
    cfg_path.write_text(config(TUNE_TASKS + args.tasks))
    setup = load_run(cfg_path)
    tasks = setup.conditions[TUNE_TASKS:]
    cells: list[tuple[int | None, float | None]] = [(None, None)] + [(k, t) for k in args.steps for t in args.thetas]
    cells += [(0, t) for t in args.pcn]
    per: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    with Store.open(out, argv=["sampler_effect"]) as store:
        engine = setup.engine(store, batch_size=16)
        try:
            for step, theta in cells:
                tag = "vanilla" if step is None else f"pcn-t{theta:.4g}" if step == 0 else f"k{step}-t{theta:.4g}"
                jobs = [Job(c, cell_strategy(step, theta, args.n), label=tag, search_id=f"{c.id}/{tag}/N{args.n}",
                            prior_seed=0) for c in tasks]
                got = [measure(r, out, args.n) for r in engine.run_all(jobs)]
                per[(step, theta)] = (np.stack([g[0] for g in got]), np.stack([g[1] for g in got]))
        finally:
            engine.close()
    return per


def crossed_stats(pots: np.ndarray, imgs: np.ndarray, wt: np.ndarray, wp: np.ndarray) -> np.ndarray:
    """Per replicate (rows of the task weights ``wt`` and position weights ``wp``): mean potential, mean
    within-task potential sd and mean per-pixel sd, weighting positions within each task and tasks over them."""
    v = wp / wp.sum(axis=1, keepdims=True)  # replicates x positions
    mean = np.einsum("rn,tn->rt", v, pots)
    sd = np.sqrt(np.maximum(np.einsum("rn,tn->rt", v, pots**2) - mean**2, 0))
    px_mean = np.einsum("rn,tnp->rtp", v, imgs)
    px_sd = np.sqrt(np.maximum(np.einsum("rn,tnp->rtp", v, imgs**2) - px_mean**2, 0)).mean(axis=2)
    tw = wt / wt.sum(axis=1, keepdims=True)
    return np.stack([(tw * x).sum(axis=1) for x in (mean, sd, px_sd)])  # 3 x replicates


def table(per: dict[tuple, tuple[np.ndarray, np.ndarray]], n_boot: int = 2000) -> str:
    """Every figure with a bootstrap over tasks *and* paths (every task draws the same root and branch seeds, so
    a seed's luck is shared by all tasks and resampling tasks alone would be overconfident)."""
    pots0, _ = per[(None, None)]
    n_tasks, n = pots0.shape
    wt = np.vstack([np.ones(n_tasks), task_weights(n_tasks, n_boot=n_boot, seed=0)])
    wp = np.vstack([np.ones(n), task_weights(n, n_boot=n_boot, seed=1)])
    stats = {cell: crossed_stats(p, i, wt, wp) for cell, (p, i) in per.items()}
    base = stats[(None, None)]

    def ci(x: np.ndarray, spec: str) -> str:
        lo, hi = percentile_interval(x[1:])
        return f"{x[0]:{spec}} [{lo:{spec}}, {hi:{spec}}]"

    lines = ["| cell | mean potential [95% CI] | effect vs vanilla [95% CI] | potential sd ratio [95% CI] "
             "| pixel sd ratio [95% CI] |", "|---|---|---|---|---|"]
    for (step, theta), x in stats.items():
        name = ("vanilla (no branch)" if step is None else f"root pcn, θ = {theta:.2f}" if step == 0
                else f"renoise at {step}, θ = {theta:.2f}")
        rest = ("– | 1 | 1" if step is None else
                f"{ci(x[0] - base[0], '+.2f')} | {ci(x[1] / base[1], '.2f')} | {ci(x[2] / base[2], '.2f')}")
        lines.append(f"| {name} | {ci(x[0], '.2f')} | {rest} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=10, help="evaluation-split tasks")
    ap.add_argument("--n", type=int, default=32, help="random paths per task and cell")
    ap.add_argument("--steps", default="3,6,9,12", help="branch steps (model calls of 15)")
    ap.add_argument("--thetas", default=f"0.3,1.0,{math.pi / 2:.6f}", help="renoise angles in (0, pi/2]")
    ap.add_argument("--pcn", default="1.0", help="root pCN angles (the move that keeps the distribution); '' for none")
    ap.add_argument("--out", default="runs/sampler-effect")
    args = ap.parse_args()
    args.steps = [int(x) for x in args.steps.split(",")]
    args.thetas = [min(float(x), math.pi / 2) for x in args.thetas.split(",")]
    args.pcn = [min(float(x), math.pi / 2) for x in args.pcn.split(",") if x.strip()]
    t0 = time.perf_counter()
    per = run(args)
    print(f"digits evaluation split: {args.tasks} tasks x {args.n} paths per cell, strategy seed {SEED}; "
          f"bootstrap over tasks and paths; {time.perf_counter() - t0:.0f} s")
    print(table(per))


if __name__ == "__main__":
    sys.exit(main())
