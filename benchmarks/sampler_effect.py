"""What one ``renoise`` branch does to the samples, with no selection at all (docs/concepts.md, "What a branch does
to the samples").

Per task of the digits evaluation split, N random paths per cell: vanilla (no branch) and one ``renoise`` branch at
step k of T = 15 with angle theta, for every (k, theta) of the grid. Every cell uses the same N root seeds
(``branched-best-of-n`` and ``best-of-n`` under one strategy seed: common random numbers), so a cell differs from
vanilla by its branch alone. Reported per cell, with paired bootstrap 95% CIs over tasks:

* mean potential, and its difference from vanilla (the sampler effect);
* spread: the within-task standard deviation of the potential, and the pixel spread (per-pixel standard deviation
  of the N final images in [0, 1], averaged over pixels), each as a ratio to vanilla's.

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
from eacps.api import load_run, make_strategy
from eacps.engine import Job
from eacps.recipe import Recipe
from eacps.stats import percentile_interval, task_weights
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


def measure(res: Any, root: Path) -> tuple[float, float, float]:
    """(mean potential, potential std, mean per-pixel std) of one search's final images."""
    from PIL import Image

    ok = [h for h in res.history if h.status is Status.OK and h.potential is not None]
    pots = np.array([h.potential for h in ok])
    imgs = np.stack([np.asarray(Image.open(root / h.image_path), dtype=float) / 255.0 for h in ok])
    return float(pots.mean()), float(pots.std(ddof=1)), float(imgs.std(axis=0, ddof=1).mean())


def run(args: argparse.Namespace) -> dict[tuple, np.ndarray]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.toml"
    cfg_path.write_text(config(TUNE_TASKS + args.tasks))
    setup = load_run(cfg_path)
    tasks = setup.conditions[TUNE_TASKS:]
    cells: list[tuple[int | None, float | None]] = [(None, None)] + [(k, t) for k in args.steps for t in args.thetas]
    cells += [(0, t) for t in args.pcn]
    per: dict[tuple, np.ndarray] = {}
    with Store.open(out, argv=["sampler_effect"]) as store:
        engine = setup.engine(store, batch_size=16)
        try:
            for step, theta in cells:
                tag = "vanilla" if step is None else f"pcn-t{theta:.4g}" if step == 0 else f"k{step}-t{theta:.4g}"
                jobs = [Job(c, cell_strategy(step, theta, args.n), label=tag, search_id=f"{c.id}/{tag}/N{args.n}",
                            prior_seed=0) for c in tasks]
                per[(step, theta)] = np.array([measure(r, out) for r in engine.run_all(jobs)])
        finally:
            engine.close()
    return per


def table(per: dict[tuple, np.ndarray], n_boot: int = 2000) -> str:
    base = per[(None, None)]
    w = np.vstack([np.ones(len(base)), task_weights(len(base), n_boot=n_boot, seed=0)])
    wm = lambda v: (w @ v) / w.sum(axis=1)  # noqa: E731 - weighted mean per replicate

    def ci(v: np.ndarray, spec: str, ratio: bool = False) -> str:
        x = wm(v) if not ratio else wm(v[0]) / wm(v[1])
        lo, hi = percentile_interval(x[1:])
        return f"{x[0]:{spec}} [{lo:{spec}}, {hi:{spec}}]"

    lines = ["| branch | mean potential [95% CI] | effect vs vanilla [95% CI] | potential sd ratio [95% CI] "
             "| pixel sd ratio [95% CI] |", "|---|---|---|---|---|"]
    for (step, theta), v in per.items():
        name = ("vanilla (no branch)" if step is None else f"root pcn, θ = {theta:.2f}" if step == 0
                else f"renoise at {step}, θ = {theta:.2f}")
        effect = "–" if step is None else ci(v[:, 0] - base[:, 0], "+.2f")
        sd = "1" if step is None else ci(np.stack([v[:, 1], base[:, 1]]), ".2f", ratio=True)
        px = "1" if step is None else ci(np.stack([v[:, 2], base[:, 2]]), ".2f", ratio=True)
        lines.append(f"| {name} | {ci(v[:, 0], '.2f')} | {effect} | {sd} | {px} |")
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
          f"paired bootstrap over tasks; {time.perf_counter() - t0:.0f} s")
    print(table(per))


if __name__ == "__main__":
    sys.exit(main())
