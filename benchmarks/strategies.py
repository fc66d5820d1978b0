"""Strategies against best-of-N on the digits testbed, under the evaluation protocol of ``eacps compare``.

Protocol (issue 11, "Targets"):

* Tasks: the digits task set with seed 0. **Tuning split** = its first 30 tasks (``eacps_digits.tasks(30)``):
  every default parameter and every earlier figure in docs/findings.md was chosen or measured there; tune new
  strategies there too. **Evaluation split** = the next ``--eval-tasks`` tasks (default 30; other held-out
  exemplars of the same ten digits), never used to choose anything. Only the evaluation split is run here.
* Seeds: ``--repeats`` strategy seeds per task (default 4), 0..R-1 (``--seed-offset`` for fresh ones), each
  task under its own seeds (``--seed-mode per-task``). ``--task-seed`` draws a second task set (split alike), so the
  variation between task sets shows beside the CI within one.
* Budgets 20 and 64 (B means B x 15 denoising steps of charged work; charged cost is what counts).
* Reference: an independent best-of-N pool per task (its own seed stream, default 1024 samples = 16x the
  largest budget), never a contestant.
* Reported per strategy and budget: mean best, paired difference against best-of-N and the compute multiplier
  N*/cost with paired bootstrap 95% CIs over tasks, under (a) the measured cost model and (b) one potential
  evaluation costing one full generation (``--scorer-cost``).

    python benchmarks/strategies.py [--strategies best-of-n,eacps,...] [--budgets 20,64] [--repeats 4]
                                    [--eval-tasks 30] [--out runs/bench-strategies] [--quick]
                                    [--testbed digits|gm-easy|gm-sharp|gm-flow|gm-guided|gm-fewstep|
                                              gm-cluttered]
                                    [--seed-mode per-task|shared] [--task-seed 0]

``--testbed`` runs the same protocol on another landscape: ``gm-easy`` and ``gm-sharp`` are the exact
gaussian-mixture testbed (docs/gaussian-mixture.md) in a low-dimension and a high-dimension sharp-reward
character; there the table adds the fraction of the gap to the known optimum each strategy closes. ``gm-flow`` is a
rectified-flow character (a tuning testbed since 2026-12-06; held out before); ``gm-guided`` (guided DDIM, CFG 2.5),
``gm-fewstep`` (a few-step guided flow) and ``gm-cluttered`` (unguided DDIM over 32 overlapping components in
D = 192) are held out: no default is tuned on them (``benchmarks/tune_trajectories.py`` refuses them).
``--markdown`` adds, per budget, a "search or sampler?" table for the strategies that branch (their multiplier
against best-of-N of random paths with the same branches, and the sampler effect). ``benchmarks/dimension.py``
runs this protocol on the gaussian-mixture testbed at growing latent sizes.

``--strategies`` takes labels of the built-in contestants below, or JSON mapping new labels to searches
(``'{"eacps-wide": {"strategy": "eacps", "params": {"k_global": 12}}}'``; built-in labels may be mixed in
as keys with ``{}``). Runs through ``eacps compare`` (resumes and reuses the store in --out); writes
OUT/config.toml, OUT/compare.json and OUT/report.html and prints the table and the wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eacps import tomlw
from eacps.analysis.compare import SEED_MODES, Split, format_compare, run_compare
from eacps.analysis.report import write_report
from eacps.config import ConfigError
from eacps.store import StoreError
from eacps.tables import gap_text, multiplier_text

SEED_MODE_HELP = ("per-task (default): each task runs the strategy seeds, and draws its pool, under its own seeds; "
                  "shared: the same noises on every task (tasks correlated; as eacps compare --seed-mode)")
TUNE_TASKS = 30  # the tuning split: eacps_digits.tasks(30), where defaults and earlier figures came from

CONTESTANTS: dict[str, dict[str, Any]] = {
    "best-of-n": {"strategy": "best-of-n", "batch_size": 16},
    "eacps": {"strategy": "eacps"},  # the write-up's EACPS: seed-offset children
    "eacps-pcn": {"strategy": "eacps", "params": {"neighborhood": "pcn", "theta": 0.3}},
    "eacps-anneal": {"strategy": "eacps",
                     "params": {"neighborhood": "pcn", "generations": 3, "theta": 0.6, "theta_decay": 0.5}},
    "multi-fidelity": {"strategy": "multi-fidelity"},
    "zero-order": {"strategy": "zero-order"},
    "fk-steering": {"strategy": "fk-steering"},
    "tree-search": {"strategy": "tree-search"},
    # earlier defaults, pinned so that their figures replay after a default changes (docs/findings.md)
    "fk-steering-old": {"strategy": "fk-steering", "params": {"resample_at": [0.2, 0.4, 0.6], "lam": 2.0,
                                                             "renoise": "copies"}},  # to 12-05
    "fk-steering-r3": {"strategy": "fk-steering", "params": {"resample_at": [0.3], "lam": 4.0,
                                                            "renoise": "copies"}},  # 12-05 to 12-06
    # 12-06 (the late round's): one point at 0.6, the copies renoised
    "fk-steering-copies": {"strategy": "fk-steering", "params": {"resample_at": [0.6], "lam": 4.0,
                                                                "renoise": "copies"}},
    "tree-search-l246": {"strategy": "tree-search", "params": {"levels": [0.2, 0.4, 0.6], "widen": 0}},  # 12-05..06
    "tree-search-narrow": {"strategy": "tree-search", "params": {"widen": 0}},  # 12-06 to 12-07: nodes never widen
    # the tree-finish round's choice at budget 20 (not made: it loses at budget 8; docs/findings.md)
    "tree-search-finish": {"strategy": "tree-search", "params": {"last": "finish", "root_width": 1.0, "widen": 0}},
    # to 12-06: the adaptive plan for the pilot's measured agreement (its default is the agreement's posterior)
    "multi-fidelity-point": {"strategy": "multi-fidelity", "params": {"agreement": "point", "pilot": 0.15,
                                                                      "promotion": "drop", "rungs": [0.2, 0.5]}},
    # 12-06 (the pilot round's): successive halving, the promoted paths continue alone, rungs at 0.2 and 0.5
    "multi-fidelity-drop": {"strategy": "multi-fidelity", "params": {"promotion": "drop", "rungs": [0.2, 0.5]}},
    "branched-best-of-n": {"strategy": "branched-best-of-n", "batch_size": 16},  # one renoise at 0.8 T, theta 1
    "optuna-tpe": {"strategy": "optuna", "params": {"sampler": "tpe"}},
    "nevergrad": {"strategy": "nevergrad"},
}
DEFAULT = "best-of-n,eacps,eacps-anneal,multi-fidelity,zero-order,fk-steering,tree-search"


@contextmanager
def errors_in_one_line(prog: str) -> Iterator[None]:
    """A config or store error (a ``ReplayError`` among them) ends a benchmark as it ends the CLI: one line; a store
    error with its exit code (2)."""
    try:
        yield
    except ConfigError as exc:
        sys.exit(f"{prog}: error: {exc}")
    except StoreError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


def task_seed(text: str) -> int:
    """``--task-seed``'s argparse type (here and in tune_trajectories.py): a task set's seed, an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def contestants(spec: str) -> dict[str, dict[str, Any]]:
    """Labels of ``CONTESTANTS`` (comma-separated), or JSON {label: search table or {} for a built-in}."""
    if spec.lstrip().startswith("{"):
        try:
            given = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--strategies: invalid JSON: {exc}") from None
        if not isinstance(given, dict) or not all(isinstance(v, dict) for v in given.values()):
            raise ConfigError('--strategies: JSON must map labels to searches, e.g. {"x": {"strategy": "eacps"}}')
        out = {k: v or CONTESTANTS.get(k, {}) for k, v in given.items()}
    else:
        out = {k: CONTESTANTS.get(k, {}) for k in (x.strip() for x in spec.split(",")) if k}
    for label, s in out.items():
        if "strategy" not in s:
            raise ConfigError(f"--strategies: {label!r} is not a built-in contestant ({', '.join(CONTESTANTS)}); "
                              "give it as JSON with a strategy")
    return out


#: --testbed: the generator, scorer prefix and parameters of each landscape. The gaussian-mixture ones (the exact
#: testbed, docs/gaussian-mixture.md) know their optimum, so compare adds the gap to it: an easy low-dimension
#: character and a high-dimension sharp-reward one. Their tuning/evaluation split is the same task-set rule.
TESTBEDS: dict[str, dict[str, Any]] = {
    "digits": {"generator": "digits", "tasks": "digits", "scorer": "digits", "mixture": None},
    "gm-easy": {"generator": "gaussian-mixture", "tasks": "gaussian-mixture", "scorer": "gm",
                "mixture": {"shape": [1, 2, 2], "components": 10, "separation": 3.0}, "sharpness": 1.0},
    # sharp and demanding rewards (threshold 2: about 2% of samples score above 5 on realism or identity), and
    # 1000 steps: a few-step sampler contracts its samples' variance (about pi^2 / 4T per dimension), which in
    # D = 4096 dimensions would saturate every sharp score; at T = 1000 the contraction is negligible
    "gm-sharp": {"generator": "gaussian-mixture", "tasks": "gaussian-mixture", "scorer": "gm",
                 "mixture": {"shape": [4, 32, 32], "components": 10, "separation": 3.0}, "sharpness": 4.0,
                 "threshold": 2.0, "steps": 1000},
    # fixed on 2026-12-05 as a held-out testbed, before any strategy ran on it, to be unlike the two above:
    # rectified flow (they are DDIM), anisotropic components, D = 128, 16 closer components, a middling reward
    # sharpness, 100 steps. Its evaluation sets were looked at by the late round (2026-12-06), so it became a tuning
    # testbed that day; gm-guided and gm-fewstep are held out instead
    "gm-flow": {"generator": "gaussian-mixture", "tasks": "gaussian-mixture", "scorer": "gm",
                "mixture": {"shape": [2, 8, 8], "components": 16, "separation": 2.5, "sigma_spread": 2.0,
                            "mixture_seed": 1}, "sharpness": 2.0, "threshold": 1.0, "steps": 100, "sampler": "flow"},
    # held out, fixed on 2026-12-06 before any strategy or landscape measure ran on it, after gm-flow had been looked
    # at: classifier-free guidance 2.5 (a distorted sampler, as real text-to-image models run; the others are exact),
    # DDIM with 30 steps, D = 432, 10 well-separated components with strongly anisotropic spreads
    "gm-guided": {"generator": "gaussian-mixture", "tasks": "gaussian-mixture", "scorer": "gm", "held_out": True,
                  "mixture": {"shape": [3, 12, 12], "components": 10, "separation": 4.0, "sigma_spread": 3.0,
                              "mixture_seed": 2}, "sharpness": 3.0, "threshold": 1.5, "steps": 30, "guidance": 2.5},
    # held out, fixed on 2026-12-06 after gm-guided had been run (its result changed a default), for the final check
    # of that day's changes: a few-step guided flow (20 steps, CFG 1.5), D = 512, overlapping components, mild rewards
    "gm-fewstep": {"generator": "gaussian-mixture", "tasks": "gaussian-mixture", "scorer": "gm", "held_out": True,
                   "mixture": {"shape": [2, 16, 16], "components": 10, "separation": 2.0, "sigma_spread": 1.5,
                               "mixture_seed": 3}, "sharpness": 1.5, "threshold": 0.5, "steps": 20, "sampler": "flow",
                   "guidance": 1.5},
    # held out, fixed on 2026-12-06 (afternoon) before any strategy or landscape measure ran on it, for multi-fidelity's
    # promotion round: an unguided DDIM with 25 steps, D = 192, 32 overlapping components with anisotropic spreads,
    # a middling reward
    "gm-cluttered": {"generator": "gaussian-mixture", "tasks": "gaussian-mixture", "scorer": "gm", "held_out": True,
                     "mixture": {"shape": [3, 8, 8], "components": 32, "separation": 1.5, "sigma_spread": 2.5,
                                 "mixture_seed": 5}, "sharpness": 2.5, "threshold": 1.0, "steps": 25},
}
#: testbeds no parameter may be chosen on (evaluation only): how a default fares on a landscape it never saw
HELD_OUT = frozenset(name for name, tb in TESTBEDS.items() if tb.get("held_out"))


def config(n_tasks: int, searches: dict[str, dict[str, Any]], testbed: str | dict[str, Any] = "digits", *,
           task_seed: int = 0) -> str:
    """The compare config of ``n_tasks`` tasks for a ``TESTBEDS`` name or an entry of that form (e.g. another shape);
    ``task_seed`` draws another task set (the config's ``tasks.seed``; 0 is the set every split above names)."""
    tb = TESTBEDS[testbed] if isinstance(testbed, str) else testbed
    mixture = tb["mixture"]
    criteria = {c: {"scorer": f"{tb['scorer']}-{c}"} for c in ("consistency", "realism", "identity")}
    if mixture is not None:  # the generator and every scorer share the mixture's fields
        for c, crit in criteria.items():
            reward = {"sharpness": tb["sharpness"], "threshold": tb.get("threshold", 0.0)}
            crit["params"] = {**mixture, **(reward if c != "consistency" else {})}
    return tomlw.dumps({
        "tasks": {"name": tb["tasks"], "n": n_tasks, "seed": task_seed},
        "generator": {"name": tb["generator"],
                      **({"params": {**mixture, "steps": tb.get("steps", 50),
                                     **{k: tb[k] for k in ("sampler", "guidance") if k in tb}}} if mixture else {})},
        "potential": {"criteria": criteria},
        "searches": [{"label": label, **s} for label, s in searches.items()],
    })


def steps_multiplier(row: dict[str, Any], full_steps: int) -> str:
    """N* over the steps charged, in candidates (steps / T): the multiplier *in steps*, evaluations free (issue 18's
    measure), with the N* CI scaled alike (the steps of a search are fixed by its budget)."""
    m = next(iter(row.get("multipliers", {}).values()), None)
    if not m:
        return "–"
    cands = row["steps"] / full_steps
    lo, hi = m.get("n_star_ci95", [None, None])
    fmt = lambda v: ">pool" if v is None else f"{v / cands:.2f}"  # noqa: E731
    point = ">pool" if m["bound"] == ">" else f"{m['n_star'] / cands:.2f}×"
    return f"{point} [{fmt(lo)}, {fmt(hi)}]"


def markdown(summary: dict[str, Any], steps: bool = False) -> str:
    """The findings tables (one per budget) from a compare.json, every figure with its 95% CI; ``steps`` adds the
    multiplier in steps (evaluations free)."""
    p, names, opt = summary["protocol"], summary["cost_models"], summary.get("optimum")
    out = [f"{p['reported']} split: {summary['tasks']} tasks x {len(p['strategy_seeds'])} seeds; reference pool "
           f"{summary['pool']['size']} per task; cost (a) {names[0]}, (b) {names[-1]}"]
    for b in summary["budgets"]:
        out += ["", f"Budget {b} ({b * summary['full_steps']} steps):", "",
                "| strategy | mean best [95% CI] | paired diff vs best-of-N [95% CI] | steps | evaluations | "
                + " | ".join(f"multiplier ({'ab'[i]}) {n} [95% CI]" for i, n in enumerate(names)) + " |"
                + (" optimum gap closed [95% CI] |" if opt else "")
                + (" multiplier in steps [95% CI] |" if steps else ""),
                "|---|---|---|---|---|" + "---|" * (len(names) + bool(opt) + steps)]
        for r in (r for r in summary["table"] if r["budget"] == b):
            diff = (f"{r['diff_vs_best_of_n']:+.2f} [{r['diff_ci95'][0]:+.2f}, {r['diff_ci95'][1]:+.2f}]"
                    if "diff_vs_best_of_n" in r else "–")
            ms = r.get("multipliers", {})
            out.append(f"| {r['strategy']} | {r['mean_best']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] | {diff} "
                       f"| {r['steps']:.0f} | {r['evaluations']:.1f} | "
                       + " | ".join(multiplier_text(ms.get(n), times="×") for n in names) + " |"
                       + (f" {gap_text(r.get('optimum_gap'))} |" if opt else "")
                       + (f" {steps_multiplier(r, summary['full_steps'])} |" if steps else ""))
        out += sampler_table(summary, b)
    return "\n".join(out)


def sampler_table(summary: dict[str, Any], budget: int) -> list[str]:
    """Search or sampler? For each branching row of ``budget``: its branch schedule, the multiplier against
    vanilla best-of-N and against best-of-N of random paths with the same branches (both cost models), and the
    sampler effect alone (mean potential of those paths minus vanilla samples), with CIs. Empty if none."""
    names = summary["cost_models"]
    rows = [r for r in summary["table"] if r["budget"] == budget and r.get("same_sampler")]
    if not rows:
        return []
    out = ["", f"Search or sampler? (budget {budget}; same-sampler pool "
           f"{max(r['same_sampler'].get('pool', 0) for r in rows)} per task and schedule)", "",
           f"| strategy | branch schedule (steps of {summary['full_steps']}; θ) | "
           + " | ".join(f"vs best-of-N ({'ab'[i]}) [95% CI] | vs same sampler ({'ab'[i]}) [95% CI]"
                        for i in range(len(names))) + " | sampler effect on the mean [95% CI] |",
           "|---|---|" + "---|---|" * len(names) + "---|"]
    for r in rows:
        same, sched = r["same_sampler"], r["same_sampler"]["schedule"]
        steps = ", ".join(map(str, sched["steps"])) + "; " + ", ".join(f"{t:g}" for t in sched["thetas"])
        eff = (f"{same['effect']:+.2f} [{same['effect_ci95'][0]:+.2f}, {same['effect_ci95'][1]:+.2f}]"
               if "effect" in same else same.get("note", "–"))
        mults = " | ".join(f"{multiplier_text(r.get('multipliers', {}).get(n), times='×')} | "
                           f"{multiplier_text((same.get('multipliers') or {}).get(n), times='×')}" for n in names)
        out.append(f"| {r['strategy']} | {steps} | {mults} | {eff} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategies", default=DEFAULT, help=f"labels or JSON (default: {DEFAULT})")
    ap.add_argument("--budgets", default="20,64")
    ap.add_argument("--repeats", type=int, default=4, help="strategy seeds per task (>= 4 for claims)")
    ap.add_argument("--eval-tasks", type=int, default=30, help="tasks of the evaluation split (>= 30 for claims)")
    ap.add_argument("--seed-offset", type=int, default=0, help="first strategy seed")
    ap.add_argument("--task-seed", type=task_seed, default=0, help="seed of the task set (the config's tasks.seed; "
                    "0 is the set whose splits every figure names; another draws a second task set, split alike)")
    ap.add_argument("--seed-mode", default="per-task", choices=SEED_MODES, help=SEED_MODE_HELP)
    ap.add_argument("--pool", type=int, default=None, help="reference pool per task (default: compare's, "
                    "16x the largest budget capped at 1024)")
    ap.add_argument("--scorer-cost", type=float, default=1.0, help="generations per potential evaluation, cost (b)")
    ap.add_argument("--testbed", default="digits", choices=list(TESTBEDS), help="the landscape (default: digits)")
    ap.add_argument("--out", default=None, help="run directory (default: runs/bench-strategies, "
                    "runs/bench-strategies-<testbed> for another testbed)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 evaluation tasks, budget 20, 1 seed, pool 40")
    ap.add_argument("--markdown", action="store_true", help="print OUT/compare.json as the findings tables; no run")
    ap.add_argument("--steps", action="store_true", help="with --markdown: add the multiplier in steps (N* over the "
                    "steps charged, in candidates; evaluations free)")
    args = ap.parse_args()
    if args.out is None:
        args.out = "runs/bench-strategies" + ("" if args.testbed == "digits" else f"-{args.testbed}")
    if args.markdown:
        print(markdown(json.loads((Path(args.out) / "compare.json").read_text()), steps=args.steps))
        return
    if args.quick:
        args.eval_tasks, args.budgets, args.repeats, args.pool = 3, "20", 1, 40
    with errors_in_one_line("strategies.py"):
        searches = contestants(args.strategies)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        cfg = out / "config.toml"
        cfg.write_text(config(TUNE_TASKS + args.eval_tasks, searches, args.testbed, task_seed=args.task_seed))
        t0 = time.perf_counter()
        summary = run_compare(cfg, out, strategies=",".join(searches), budgets=args.budgets, repeats=args.repeats,
                              pool=args.pool, scorer_cost=args.scorer_cost, progress=True,
                              split=Split(tune_tasks=TUNE_TASKS, seed_offset=args.seed_offset,
                                          seeds=args.seed_mode))
    wall = time.perf_counter() - t0
    print(format_compare(summary))
    print(f"wall time: {wall:.0f} s; {summary['generated']} candidates generated")
    print(f"report: {write_report(out, title=f'eacps strategies benchmark ({args.testbed}, evaluation split)')}")


if __name__ == "__main__":
    main()
