"""Tune the trajectory strategies' defaults on the *tuning split* of the digits tasks (never the evaluation split).

The grid below was run once to choose the defaults of ``fk-steering``, ``tree-search`` and ``multi-fidelity``
(see docs/findings.md, "How the defaults were chosen"); ``benchmarks/strategies.py`` then measures the chosen
defaults on the evaluation split. Reports the same table as ``eacps compare`` (multipliers under the measured
cost model and under one potential evaluation = one generation).

    python benchmarks/tune_trajectories.py [--tasks 12] [--repeats 2] [--budgets 20] [--out runs/tune-trajectories]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from eacps.compare import Split, format_compare, run_compare
from strategies import TUNE_TASKS, config

GRID: dict[str, dict] = {
    "best-of-n": {"strategy": "best-of-n", "batch_size": 16},
    "mf-r20-p25": {"strategy": "multi-fidelity", "params": {"rungs": [0.2], "promote": 0.25}},
    "mf-r13-p15": {"strategy": "multi-fidelity", "params": {"rungs": [0.13], "promote": 0.15}},
    "mf-r20-50": {"strategy": "multi-fidelity", "params": {"rungs": [0.2, 0.5], "promote": 0.25}},
    "fk-3r-l2-t1": {"strategy": "fk-steering", "params": {"resample_at": [0.2, 0.4, 0.6], "lam": 2.0}},
    "fk-3r-l05-t1": {"strategy": "fk-steering", "params": {"resample_at": [0.2, 0.4, 0.6], "lam": 0.5}},
    "fk-3r-l2-t05": {"strategy": "fk-steering", "params": {"resample_at": [0.2, 0.4, 0.6], "lam": 2.0,
                                                          "branch_theta": 0.5}},
    "fk-1r-l2-t1": {"strategy": "fk-steering", "params": {"resample_at": [0.3], "lam": 2.0}},
    "ts-default": {"strategy": "tree-search", "params": {}},
    "ts-w8": {"strategy": "tree-search", "params": {"width": 8}},
    "ts-rw3": {"strategy": "tree-search", "params": {"root_width": 3.0}},
    "ts-t05": {"strategy": "tree-search", "params": {"theta": 0.5}},
    "ts-1lvl": {"strategy": "tree-search", "params": {"levels": [0.2]}},
    "ts-3lvl": {"strategy": "tree-search", "params": {"levels": [0.2, 0.4, 0.6]}},
    # round 2, around the best of round 1 (fk-3r-l2-t1, ts-3lvl)
    "fk-3r-l4-t1": {"strategy": "fk-steering", "params": {"resample_at": [0.2, 0.4, 0.6], "lam": 4.0}},
    "fk-3r-l8-t1": {"strategy": "fk-steering", "params": {"resample_at": [0.2, 0.4, 0.6], "lam": 8.0}},
    "fk-5r-l2-t1": {"strategy": "fk-steering", "params": {"resample_at": [0.13, 0.27, 0.4, 0.53, 0.67],
                                                         "lam": 2.0}},
    "fk-3r-l2-t15": {"strategy": "fk-steering", "params": {"resample_at": [0.2, 0.4, 0.6], "lam": 2.0,
                                                          "branch_theta": 1.5}},
    "fk-3r-l2-sum": {"strategy": "fk-steering", "params": {"resample_at": [0.2, 0.4, 0.6], "lam": 2.0,
                                                          "potential": "sum"}},
    "fk-3r-l2-diff": {"strategy": "fk-steering", "params": {"resample_at": [0.2, 0.4, 0.6], "lam": 2.0,
                                                           "potential": "difference"}},
    "ts-4lvl": {"strategy": "tree-search", "params": {"levels": [0.2, 0.4, 0.6, 0.8]}},
    "ts-3lvl-w2": {"strategy": "tree-search", "params": {"levels": [0.2, 0.4, 0.6], "width": 2}},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=12, help=f"tuning tasks used (at most the split's {TUNE_TASKS})")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--budgets", default="20")
    ap.add_argument("--only", default=None, help="comma-separated grid labels (default: all)")
    ap.add_argument("--out", default="runs/tune-trajectories")
    args = ap.parse_args()
    if not 3 <= args.tasks <= TUNE_TASKS:
        sys.exit(f"--tasks: between 3 and {TUNE_TASKS} (the tuning split)")
    grid = GRID if args.only is None else {k: GRID[k] for k in ["best-of-n", *args.only.split(",")]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "config.toml"
    cfg.write_text(config(args.tasks, grid))
    t0 = time.perf_counter()
    summary = run_compare(cfg, out, strategies=",".join(grid), budgets=args.budgets, repeats=args.repeats,
                          pool=512, scorer_cost=1.0, progress=True,
                          split=Split(tune_tasks=args.tasks, report="tuning"))
    print(format_compare(summary))
    print(f"wall time: {time.perf_counter() - t0:.0f} s; grid: {json.dumps(grid)}")


if __name__ == "__main__":
    main()
