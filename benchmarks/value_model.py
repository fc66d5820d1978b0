"""Each trajectory strategy with and without judge screening by a value model, on the evaluation split of a task set.

Protocol: the warm start comes from the *tuning split* only (``--warm-tasks`` of its tasks, one ``eacps run`` per
trajectory strategy with default params at budget 20, exported with ``eacps warm-start``); then ``eacps compare``
(the machinery of ``benchmarks/strategies.py``: the same tasks, seeds, independent best-of-N pool and paired
bootstrap CIs) runs fk-steering, tree-search and multi-fidelity with and without ``value_model = { warm_start =
... }`` at ``--budgets`` on ``--eval-tasks`` tasks of the evaluation split, ``--repeats`` seeds each, under both
cost models (denoising steps; one potential evaluation costing one generation, ``--scorer-cost``). With
``--features`` the screened contestants describe previews by the digits generator's preview features too
(``value_model.features = "generator"``: the preview's pixels, 2x2-pooled), their warm start exported with them.

``--task-seed S`` runs the whole protocol on another task set: the config's ``tasks.seed`` is S, and the warm start
comes from the tuning split *of that same task set*. A task set is then measured end to end as a practitioner would
meet it (warm start and evaluation both drawn with S), so the range across task seeds shows the variation of the
whole recipe, and within each set the warm-start tasks and the evaluation tasks stay disjoint by construction
(distinct positions of one draw; two task sets of digits may share an exemplar, each class has about 36).
``--testbed gm-easy`` runs it on the gaussian-mixture testbed (warm start from its own tuning split).

    python benchmarks/value_model.py [--budgets 8,20] [--repeats 4] [--eval-tasks 8] [--warm-tasks 4]
                                     [--pool 128] [--task-seed 0] [--testbed digits|gm-easy] [--features]
                                     [--out runs/bench-value-model]

A multiplier resolves up to about pool / budget (beyond it prints as ``>pool``): at budget 64 the default pool of
128 resolves 2x only, so give ``--pool 256`` or more there (docs/findings.md uses 1024; a pool under 4x the
largest budget is warned about). Writes OUT/warm.json, OUT/compare.json and OUT/report.html; prints the compare
table, the warm-start size and the wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from strategies import SEED_MODE_HELP, TUNE_TASKS, config

from eacps.analysis.compare import SEED_MODES, Split, format_compare, run_compare
from eacps.analysis.report import write_report
from eacps.api import run_config
from eacps.config import ConfigError
from eacps.screening import ScreenParams, export_warm_start, run_generator

TRAJECTORY = ("fk-steering", "tree-search", "multi-fidelity")


def warm_start(out: Path, tasks: int, features: str = "potential", *, testbed: str = "digits",
               task_seed: int = 0) -> tuple[Path, int]:
    """Runs every trajectory strategy on the first ``tasks`` tuning tasks of the task set drawn with ``task_seed``;
    their pairs in one warm-start file."""
    path = out / "warm-config.toml"
    path.write_text(config(tasks, {s: {"strategy": s, "budget": 20} for s in TRAJECTORY}, testbed,
                           task_seed=task_seed))
    run_config(path, out / "warm-run")
    gen = run_generator(out / "warm-run") if features == "generator" else None
    n = export_warm_start(out / "warm-run", out / "warm.json", ScreenParams(features=features), gen)
    return out / "warm.json", n


def eval_config(args: argparse.Namespace, searches: dict[str, dict[str, Any]]) -> str:
    """The compare config: the tuning split and ``--eval-tasks`` evaluation tasks of the ``--task-seed`` task set."""
    return config(TUNE_TASKS + args.eval_tasks, searches, args.testbed, task_seed=args.task_seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", default="8,20")
    ap.add_argument("--repeats", type=int, default=4, help="strategy seeds per task")
    ap.add_argument("--eval-tasks", type=int, default=8, help="tasks of the evaluation split")
    ap.add_argument("--warm-tasks", type=int, default=4, help="tuning tasks the warm start is measured on")
    ap.add_argument("--pool", type=int, default=128, help="reference best-of-N pool per task")
    ap.add_argument("--scorer-cost", type=float, default=1.0, help="generations per potential evaluation, cost (b)")
    ap.add_argument("--task-seed", type=int, default=0, help="seed of the task set (config tasks.seed); its own "
                    "tuning split gives the warm start (default 0: the set every findings split names)")
    ap.add_argument("--testbed", default="digits", choices=("digits", "gm-easy"), help="the landscape")
    ap.add_argument("--features", action="store_true", help="screen with the generator's preview features too")
    ap.add_argument("--seed-mode", default="per-task", choices=SEED_MODES, help=SEED_MODE_HELP)
    ap.add_argument("--out", default="runs/bench-value-model")
    args = ap.parse_args()
    if args.task_seed < 0:
        sys.exit(f"value_model.py: error: --task-seed: must be >= 0, got {args.task_seed}")
    top = max((int(b) for b in args.budgets.split(",") if b.strip().isdigit()), default=0)
    if top and args.pool < 4 * top:
        print(f"value_model.py: warning: --pool {args.pool} resolves multipliers only up to {args.pool / top:.1f}x "
              f"at budget {top} (>pool beyond); give --pool {4 * top} or more", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        features = "generator" if args.features else "potential"
        warm, pairs = warm_start(out, args.warm_tasks, features, testbed=args.testbed, task_seed=args.task_seed)
        searches = {"best-of-n": {"strategy": "best-of-n", "batch_size": 16}}
        for s in TRAJECTORY:
            searches[s] = {"strategy": s}
            searches[f"{s}+vm"] = {"strategy": s, "params": {"value_model": {"warm_start": str(warm.resolve()),
                                                                             "features": features}}}
        cfg = out / "config.toml"
        cfg.write_text(eval_config(args, searches))
        summary = run_compare(cfg, out / "compare", strategies=",".join(searches), budgets=args.budgets,
                              repeats=args.repeats, pool=args.pool, scorer_cost=args.scorer_cost, progress=True,
                              split=Split(tune_tasks=TUNE_TASKS, seeds=args.seed_mode))
    except ConfigError as exc:
        sys.exit(f"value_model.py: error: {exc}")
    print(format_compare(summary))
    print(f"warm start: {pairs} (preview, final) pairs from {args.warm_tasks} tuning tasks of task seed "
          f"{args.task_seed}; wall time: {time.perf_counter() - t0:.0f} s")
    title = f"value-model screening ({args.testbed}, task seed {args.task_seed}, evaluation split)"
    print(f"report: {write_report(out / 'compare', title=title)}")


if __name__ == "__main__":
    main()
