"""How far a preview predicts the final of a *renoised child* (multi-fidelity's ``promotion = "branch"``).

On the tuning tasks of a testbed (never its evaluation split), P random trajectories per task; at each rung point
k (fractions of T) the step-k preview is scored, the trajectory is finished as is, and two children of it are
renoised at k (angle ``--theta``, their own seeds) and finished. Printed per point, averaged over tasks (Spearman
on ranks within a task):

* the preview's agreement with its own final, and with a child's final;
* the correlation of two siblings' finals, and their *partial* correlation given the preview: the share of a
  child's unexplained variance that its siblings share (multi-fidelity's plan model takes ``SIBLING_SHARE``);

    python benchmarks/siblings.py --testbed gm-easy [--tasks 6] [--parents 24] [--at 0.2,0.5,0.7] [--out DIR]

Runs through the engine into one store (resumable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import strategies as _bench
from tune_trajectories import TUNABLE

from eacps.analysis.landscape import Listed
from eacps.api import load_run
from eacps.engine.engine import Job
from eacps.recipe import Recipe
from eacps.store import Store
from eacps.strategy import SeedStream, schedule_steps


def ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(float)


def partial(a: np.ndarray, b: np.ndarray, given: np.ndarray) -> float:
    """Correlation of the ranks of ``a`` and ``b`` after each is regressed on the ranks of ``given``."""
    g = np.vstack([ranks(given), np.ones(len(given))]).T
    ra, rb = (r - g @ np.linalg.lstsq(g, r, rcond=None)[0] for r in (ranks(a), ranks(b)))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--testbed", default="gm-easy", choices=TUNABLE)
    ap.add_argument("--tasks", type=int, default=6, help="the first tasks of the tuning split")
    ap.add_argument("--parents", type=int, default=24, help="trajectories per task")
    ap.add_argument("--at", default="0.2,0.5,0.7", help="rung points, fractions of the schedule")
    ap.add_argument("--theta", type=float, default=1.0, help="the children's renoise angle")
    ap.add_argument("--out", default=None, help="run directory (default: runs/siblings-<testbed>)")
    args = ap.parse_args()
    out = Path(args.out or f"runs/siblings-{args.testbed}")
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "config.toml"
    cfg.write_text(_bench.config(args.tasks, {"x": {"strategy": "best-of-n"}}, args.testbed))
    setup = load_run(cfg)
    _, generator, _, conditions, _ = setup
    total = generator.default_steps
    points = schedule_steps([float(x) for x in args.at.split(",")], total, "siblings")
    seeds = SeedStream(11).take(args.parents)
    child_seeds = SeedStream(12)
    children = {(s, k): [child_seeds.next() for _ in range(2)] for s in seeds for k in points}

    def child(s: int, k: int, j: int) -> Recipe:
        return Recipe.from_seed(s).branch(k, args.theta, children[(s, k)][j])

    recipes = [Recipe.from_seed(s) for s in seeds]
    recipes += [r for s in seeds for k in points for r in (Recipe.from_seed(s).with_until(k), child(s, k, 0),
                                                          child(s, k, 1))]
    with Store.open(out, argv=["siblings", args.testbed]) as store:
        engine = setup.engine(store, batch_size=64)
        try:
            results = engine.run_all([Job(c, Listed(recipes), label="siblings", search_id=f"siblings/{c.id}")
                                      for c in conditions])
        finally:
            engine.close()
    print(f"{args.testbed}: {len(conditions)} tuning tasks x {args.parents} trajectories, T = {total}, "
          f"children renoised by theta = {args.theta}")
    print("| point | preview vs own final | preview vs a child's final | sibling finals | siblings given the preview |")
    print("|---|---|---|---|---|")
    for k in points:
        rows = []
        for res in results:
            v = {c.recipe: c.potential for c in res.history}
            final = np.array([v[Recipe.from_seed(s)] for s in seeds])
            preview = np.array([v[Recipe.from_seed(s).with_until(k)] for s in seeds])
            a, b = (np.array([v[child(s, k, j)] for s in seeds]) for j in (0, 1))
            if min(np.ptp(x) for x in (final, preview, a, b)) == 0:
                continue  # a saturated preview (or final) ranks nothing
            rows.append([np.corrcoef(ranks(preview), ranks(final))[0, 1], np.corrcoef(ranks(preview), ranks(a))[0, 1],
                         np.corrcoef(ranks(a), ranks(b))[0, 1], partial(a, b, preview)])
        if not rows:
            print(f"| {k}/{total} | – | – | – | – |  (every task's previews saturated)")
            continue
        m = np.mean(rows, axis=0)
        print(f"| {k}/{total} ({k / total:.0%}) | {m[0]:+.2f} | {m[1]:+.2f} | {m[2]:+.2f} | {m[3]:+.2f} |"
              f"{'' if len(rows) == len(results) else f'  ({len(rows)} of {len(results)} tasks)'}")


if __name__ == "__main__":
    main()
