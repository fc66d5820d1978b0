"""Measure the tail of the testbed potential U = 1.0·consistency + 4.0·realism + 1.5·identity (0–65).

    python plugins/eacps-digits/scripts/measure_tail.py [--tasks 20] [--seeds 512] [--threads 2]

For each task, ``--seeds`` random seeds are generated and scored; it prints the mean component scores,
the mean per-task std of U, and the mean expected best-of-N for N in 1, 2, 8, 20, 64, 256, estimated
without bias from the M seeds (the expected maximum of a random N-subset of the M values), plus the time
to generate 20 images x 15 DDIM steps.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from eacps_digits import tasks
from eacps_digits.generator import DigitsGenerator, DigitsParams
from eacps_digits.scorers import DigitsConsistency, DigitsIdentity, DigitsRealism

from eacps import Recipe

WEIGHTS = {"consistency": 1.0, "realism": 4.0, "identity": 1.5}
NS = (1, 2, 8, 20, 64, 256)


def expected_best_of(values: np.ndarray, n: int) -> float:
    """E[max of a uniformly random n-subset of ``values``] (exact, without replacement)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    m = len(v)
    if n > m:
        raise ValueError(f"best-of-{n} needs at least {n} samples, got {m}")
    # P(the i-th smallest, 1-based, is the max) = C(i-1, n-1) / C(m, n); computed in log space
    from scipy.special import gammaln

    i = np.arange(1, m + 1)
    logw = np.full(m, -np.inf)
    ok = i >= n
    logw[ok] = (
        gammaln(i[ok]) - gammaln(n) - gammaln(i[ok] - n + 1) - (gammaln(m + 1) - gammaln(n + 1) - gammaln(m - n + 1))
    )
    return float(np.sum(np.exp(logw) * v))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=512)
    ap.add_argument("--task-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--weights-dir", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    gen = DigitsGenerator(DigitsParams(steps=a.steps, guidance=a.guidance, weights_dir=a.weights_dir))
    sp = {"weights_dir": a.weights_dir}
    scorers = {
        "consistency": DigitsConsistency(DigitsConsistency.Params(**sp)),
        "realism": DigitsRealism(DigitsRealism.Params(**sp)),
        "identity": DigitsIdentity(DigitsIdentity.Params(**sp)),
    }
    conds = tasks(a.tasks, seed=a.task_seed)

    # timing: 20 images x 15 steps, one batch (best of 5 after a warm-up)
    rec20 = [Recipe.from_seed(s) for s in range(20)]
    gen.generate(rec20, conds[0], steps=15)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        gen.generate(rec20, conds[0], steps=15)
        times.append(time.perf_counter() - t)
    print(f"generate 20 images x 15 steps: {min(times) * 1000:.1f} ms (best of 5, {a.threads} threads)")

    stds, comps, best = [], {k: [] for k in scorers}, {n: [] for n in NS if n <= a.seeds}
    t0 = time.perf_counter()
    rng = np.random.Generator(np.random.PCG64(12345))
    for cond in conds:
        seeds = rng.choice(2**32, size=a.seeds, replace=False)
        u = np.zeros(a.seeds)
        for s in range(0, a.seeds, 256):
            recs = [Recipe.from_seed(int(x)) for x in seeds[s : s + 256]]
            imgs = [g.image for g in gen.generate(recs, cond)]
            for k, sc in scorers.items():
                v = np.asarray(sc.score(imgs, cond), dtype=np.float64)
                comps[k].append(v)
                u[s : s + len(v)] += WEIGHTS[k] * v
        stds.append(u.std())
        for n in best:
            best[n].append(expected_best_of(u, n))
    elapsed = time.perf_counter() - t0
    print(f"{a.tasks} tasks x {a.seeds} seeds, {a.steps} steps, guidance {a.guidance}: {elapsed:.1f} s")
    for k, v in comps.items():
        allv = np.concatenate(v)
        print(f"  {k:12s} mean {allv.mean():.2f}  std {allv.std():.2f}  p95 {np.percentile(allv, 95):.2f}")
    print(f"per-task std of U: mean {np.mean(stds):.2f} (min {np.min(stds):.2f}, max {np.max(stds):.2f})")
    print("mean best-of-N of U: " + "  ".join(f"N={n}: {np.mean(v):.2f}" for n, v in best.items()))


if __name__ == "__main__":
    main()
