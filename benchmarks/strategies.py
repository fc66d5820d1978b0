"""Every strategy at equal cost on the digits testbed: mean best potential with 95% CIs and the compute
multiplier against best-of-N (the budget best-of-N needs to reach each strategy's mean, over the budget).

Cost model: budgets are in full-fidelity candidate equivalents; every full-fidelity strategy spends
budget x 15 denoising steps and budget x 3 scorer calls, multi-fidelity fits its previews in the same
steps (it makes more scorer calls; the table shows both counts and the measured single figure).

    python benchmarks/strategies.py [--tasks 30] [--budgets 8,16,20,32,64] [--repeats 2] [--out runs/bench-strategies]

Runs through `eacps compare`, so it resumes and reuses the store; prints the table and writes
OUT/compare.json and OUT/report.html.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import eacps_digits

from eacps.compare import format_compare, run_compare
from eacps.report import write_report

SEARCHES = """
[[searches]]
label = "best-of-n"
strategy = "best-of-n"
batch_size = 16

[[searches]]
label = "eacps"
strategy = "eacps"

[[searches]]
label = "eacps-pcn"
strategy = "eacps"
params = {{ neighborhood = "pcn", theta = 0.3 }}

[[searches]]
label = "eacps-anneal"
strategy = "eacps"
params = {{ neighborhood = "pcn", generations = 3, theta = 0.6, theta_decay = 0.5 }}

[[searches]]
label = "zero-order"
strategy = "zero-order"

[[searches]]
label = "multi-fidelity"
strategy = "multi-fidelity"
params = {{ rungs = [3], promote = 0.25 }}

[[searches]]
label = "optuna-tpe"
strategy = "optuna"
params = {{ sampler = "tpe" }}

[[searches]]
label = "nevergrad"
strategy = "nevergrad"
"""


def config(n_tasks: int) -> str:
    lines = ['[generator]\nname = "digits"\n']
    for name in ("consistency", "realism", "identity"):
        lines.append(f'[potential.criteria.{name}]\nscorer = "digits-{name}"\n')
    lines.append(SEARCHES.format())
    for t in eacps_digits.tasks(n_tasks):
        lines.append(f'[[conditions]]\nid = "{t.id}"\nclass_label = {t.class_label}\n'
                     f'extra = {{ reference_index = {t.extra["reference_index"]} }}\n')
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=30)
    ap.add_argument("--budgets", default="8,16,20,32,64")
    ap.add_argument("--strategies", default="best-of-n,eacps,eacps-pcn,eacps-anneal,zero-order,multi-fidelity,"
                                            "optuna-tpe,nevergrad")
    ap.add_argument("--repeats", type=int, default=2, help="seeds per strategy (one is too noisy to rank)")
    ap.add_argument("--pool", type=int, default=256, help="best-of-N reference samples per task for the curve")
    ap.add_argument("--out", default="runs/bench-strategies")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "config.toml"
    cfg.write_text(config(args.tasks))
    summary = run_compare(cfg, out, strategies=args.strategies, budgets=args.budgets, repeats=args.repeats,
                          pool=args.pool, progress=True)
    print(format_compare(summary))
    print(f"report: {write_report(out, title='eacps strategies benchmark (digits)')}")


if __name__ == "__main__":
    main()
