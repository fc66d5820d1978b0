"""Budgets across conditions (``eacps.search_all``) against uniform budgets, on the digits testbed.

Protocol:

* Tasks: the digits task set with seed 0. **Tuning split** = its first 30 tasks (the project's tuning split, see
  benchmarks/strategies.py): the allocator's rule and defaults (``Worst``'s rule, ``min_per_condition``, the
  grant size, the evidence model) were chosen there (``--split tune``). **Evaluation split** = the next 40 tasks
  (30..69), never used to choose anything. ``--testbed`` (a landscape of benchmarks/strategies.py, e.g.
  ``gm-easy``) and ``--task-seed`` (another task set) run the same splits elsewhere: the evidence model was chosen
  on the tuning splits of digits, gm-easy and gm-flow (task set 0).
* Pools: per task, the first ``--pool`` best-of-N draws of strategy seed 0 (the candidates ``best-of-n`` with seed 0
  asks, in order), computed once through the engine into a store under OUT (resumable) and cached in
  OUT/pools-[TESTBED-tSEED-]SPLIT-POOL.json.
* Replicates: replicate 0 walks each pool in the order drawn (exactly what ``search_all``/best-of-N with seed 0
  would see); replicates r >= 1 walk a random permutation of each pool (seeded by r): **resampling without
  replacement from the cached pool**, not new generations. The allocation policies are run on these draws with
  the same decision code as ``search_all`` (``eacps.allocate.choose``), at equal total cost (candidates; the
  priors are not counted by either).
* Reported, per objective: the allocation's figure and the uniform ones (8, 16, 32, 64 per condition where the
  pool allows), each with a bootstrap 95% CI over replicates and tasks (tasks resampled jointly within each
  replicate), and the paired difference allocation − uniform at equal cost:
  ``mean`` — mean best; ``worst`` — worst-decile mean (the mean of the lowest 10% of bests);
  ``threshold`` — fraction of tasks whose best reaches τ (``--tau``).
* The done-means check (``worst``, 8 per condition on 40 conditions, vs uniform 32 per condition) is also run
  for real, through ``eacps.search_all`` on the evaluation split, by tests/test_allocate.py.

    python benchmarks/allocation.py [--split eval|tune] [--testbed digits] [--task-seed 0] [--pool 128]
                                    [--replicates 200] [--out runs/bench-allocation]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from strategies import TESTBEDS

from eacps.allocate import Allocator, Mean, Objective, Threshold, Worst, choose

TUNE_TASKS, EVAL_TASKS = 30, 40


def testbed_setup(testbed: str, task_seed: int) -> tuple[Any, Any, list]:
    """The generator, potential and the tuning + evaluation tasks of a landscape of benchmarks/strategies.py (the
    same config ``eacps compare`` runs there)."""
    import tomllib

    from strategies import config

    from eacps.api import build
    from eacps.config import parse_config

    cfg = parse_config(tomllib.loads(config(TUNE_TASKS + EVAL_TASKS, {"pool": {"strategy": "best-of-n"}}, testbed,
                                            task_seed=task_seed)))
    setup = build(cfg, Path.cwd())
    return setup.generator, setup.potential, setup.conditions


def split_tasks(split: str, tasks: list) -> list:
    return tasks[:TUNE_TASKS] if split == "tune" else tasks[TUNE_TASKS:]


def tag(testbed: str, task_seed: int) -> str:
    """What names a landscape's task set in OUT ("" for digits task set 0, which keeps the names it always had)."""
    return "" if (testbed, task_seed) == ("digits", 0) else f"{testbed}-t{task_seed}"


def named(*parts: str) -> str:
    return "-".join(p for p in parts if p)


def pools(out: Path, split: str, size: int, testbed: str = "digits", task_seed: int = 0
          ) -> dict[str, list[float | None]]:
    """Per task, the potentials of best-of-N seed 0's first ``size`` candidates (None: not OK), in order."""
    cache = out / f"{named('pools', tag(testbed, task_seed), split, str(size))}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    from eacps.engine.engine import Engine, Job
    from eacps.store import Store
    from eacps.strategies.best_of_n import BestOfN

    generator, potential, tasks = testbed_setup(testbed, task_seed)
    tasks = split_tasks(split, tasks)
    with Store.open(out / tag(testbed, task_seed)) as store:
        engine = Engine(generator, potential, store, batch_size=16, progress=True)
        try:
            res = engine.run_all([Job(t, BestOfN(budget=size, seed=0), "pool") for t in tasks])
        finally:
            engine.close()
    got = {r.condition.id: [c.potential if c.result.ok else None for c in r.history] for r in res}
    cache.write_text(json.dumps(got))
    return got


# -- simulation on the cached pools ---------------------------------------------------------------------------
def draws(pool: dict[str, list[float | None]], replicate: int) -> list[list[float | None]]:
    """Per task, the order its candidates are drawn in: as generated (replicate 0) or a seeded permutation."""
    out = []
    for i, ys in enumerate(pool.values()):
        if replicate == 0:
            out.append(list(ys))
        else:
            perm = np.random.default_rng([replicate, i]).permutation(len(ys))
            out.append([ys[j] for j in perm])
    return out


def bests_after(seq: list[list[float | None]], spent: list[int]) -> list[float | None]:
    out = []
    for ys, n in zip(seq, spent, strict=True):
        ok = [y for y in ys[:n] if y is not None]
        out.append(max(ok) if ok else None)
    return out


def simulate(seq: list[list[float | None]], total: int, objective: Objective, *,
             batch_size: int = Allocator.batch_size, min_per_condition: int = Allocator.min_per_condition,
             prior_weight: float = Allocator.prior_weight) -> list[int]:
    """Candidates per task that ``search_all``'s decisions grant when task i's draws are ``seq[i]`` (capped at
    the pool); the defaults are ``search_all``'s (its ``Allocator``'s)."""
    spent = [min_per_condition] * len(seq)
    while True:
        scores = [[y for y in ys[:n] if y is not None] for ys, n in zip(seq, spent, strict=True)]
        room = [len(ys) - n for ys, n in zip(seq, spent, strict=True)]
        pick = choose(scores, room, total - sum(spent), objective, batch_size=batch_size, prior_weight=prior_weight)
        if pick.index is None:
            return spent
        spent[pick.index] += pick.candidates


def _ci95(stat: Any, r: int, t: int, seed: int, n_boot: int = 2000) -> tuple[float, float]:
    """95% CI of ``stat(rows, cols)`` with replicates and tasks resampled (tasks jointly within a replicate)."""
    rng = np.random.default_rng(seed)
    stats = [stat(rng.integers(0, r, r), rng.integers(0, t, t)) for _ in range(n_boot)]
    return float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


def bootstrap(values: np.ndarray, objective: Objective) -> tuple[float, float]:
    """95% CI of the objective's figure."""
    return _ci95(lambda rows, cols: np.mean([objective.value(list(row[cols])) for row in values[rows]]),
                 *values.shape, seed=0)


def evaluate(pool: dict[str, list[float | None]], objective: Objective, per_condition: int, uniform: list[int],
             replicates: int, **kw: Any) -> dict[str, Any]:
    """The allocation at ``per_condition`` x tasks against uniform budgets, over ``replicates`` draw orders."""
    m = min(len(v) for v in pool.values())
    total = per_condition * len(pool)
    alloc, unif = [], {u: [] for u in uniform if u <= m}
    for r in range(replicates):
        seq = draws(pool, r)
        alloc.append(bests_after(seq, simulate(seq, total, objective, **kw)))
        for u in unif:
            unif[u].append(bests_after(seq, [u] * len(seq)))
    a = np.array(alloc, dtype=float)
    out = {"objective": objective.to_json(), "per_condition": per_condition, "tasks": len(pool),
           "replicates": replicates, "allocation": _fig(a, objective), "uniform": {}}
    for u, rows in unif.items():
        b = np.array(rows, dtype=float)
        out["uniform"][u] = {**_fig(b, objective), "diff": _diff(a, b, objective)}
    return out


def _fig(v: np.ndarray, objective: Objective) -> dict[str, Any]:
    return {"value": float(np.mean([objective.value(list(row)) for row in v])), "ci95": bootstrap(v, objective)}


def _diff(a: np.ndarray, b: np.ndarray, objective: Objective) -> dict[str, Any]:
    """allocation − uniform, paired (the same replicates and tasks in both)."""
    ci = _ci95(lambda rows, cols: np.mean([objective.value(list(a[i, cols])) - objective.value(list(b[i, cols]))
                                           for i in rows]), *a.shape, seed=1)
    point = float(np.mean([objective.value(list(x)) - objective.value(list(y)) for x, y in zip(a, b, strict=True)]))
    return {"value": point, "ci95": ci}


def fmt(res: dict[str, Any]) -> str:
    o = res["objective"]
    name = o["objective"] + (f" τ={o['threshold']:g}" if "threshold" in o else "")
    a = res["allocation"]
    lines = [f"{name}: allocation {res['per_condition']}/condition over {res['tasks']} tasks, {res['replicates']} "
             f"replicates: {a['value']:.3f} [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}]"]
    for u, r in res["uniform"].items():
        d = r["diff"]
        lines.append(f"  uniform {u:>3}/condition: {r['value']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]; "
                     f"allocation - uniform: {d['value']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["eval", "tune"], default="eval")
    ap.add_argument("--testbed", default="digits", choices=list(TESTBEDS), help="the landscape (default: digits)")
    ap.add_argument("--task-seed", type=int, default=0, help="the task set (default 0, the one the splits name)")
    ap.add_argument("--pool", type=int, default=128, help="best-of-N draws cached per task")
    ap.add_argument("--replicates", type=int, default=200, help="draw orders (replicate 0: as generated)")
    ap.add_argument("--per-condition", type=int, default=8, help="the allocation's total budget per condition")
    ap.add_argument("--tau", type=float, default=None, help="threshold τ (default: the median best of uniform 8)")
    ap.add_argument("--out", default="runs/bench-allocation")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pool = pools(out, args.split, args.pool, args.testbed, args.task_seed)
    tau = args.tau
    if tau is None:
        tau = float(np.median([b for b in bests_after(draws(pool, 0), [args.per_condition] * len(pool))
                               if b is not None]))
    results = []
    for obj in (Mean(), Worst(), Threshold(round(tau, 2))):
        res = evaluate(pool, obj, args.per_condition, [8, 16, 32, 64], args.replicates)
        results.append(res)
        print(fmt(res), flush=True)
    path = out / f"{named('allocation', tag(args.testbed, args.task_seed), args.split)}.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"wall time: {time.perf_counter() - t0:.0f} s; results: {path}")


if __name__ == "__main__":
    sys.exit(main())
