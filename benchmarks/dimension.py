"""Scaling in dimension on the gaussian-mixture testbed: cost per candidate and each strategy's multiplier as the
latent grows (issue 19, item 4).

Per latent shape (default 4x16x16, 4x32x32, 4x64x64; one landscape character throughout: 10 components,
separation 3, sharpness 1, threshold 0):

* **Overhead.** The same candidates three ways, in interleaved rounds (medians): the generator's raw sampler loop
  (``start`` -> ``advance`` to the end -> ``decode``, batched, no scoring), that loop plus
  ``potential.evaluate``, and ``eacps.search`` (best-of-N: store, PNG writes, strategy ask/tell, bookkeeping).
  Prints seconds per candidate and the ratios search / raw and search / (raw + scoring); checks that the raw
  loop scores exactly what the search stored (same computation).
* **Multipliers.** ``eacps compare`` under the protocol of ``benchmarks/strategies.py`` (evaluation split: the
  tasks after the 30 tuning tasks; strategy seeds 0..R-1; an independent reference pool; both cost models;
  paired bootstrap CIs over tasks), per strategy: multiplier against best-of-N under (a) the measured cost and
  (b) one potential evaluation = one generation, against the same-sampler baseline (branching strategies), the
  sampler effect and the fraction of the gap to the known optimum closed.

Sampler steps grow with the dimension, T = ``--steps`` x sqrt(D / D0) (D0 the first shape's), unless
``--fixed-steps``: a T-step sampler contracts its samples' spread by about pi^2 / 4T per dimension, which shifts
standardized scores by about pi^2 / 4T x sqrt(D / 2); T proportional to sqrt(D) keeps that shift, and with it
the landscape's character, the same at every shape (50 steps at 4x16x16 is the testbed's default).

    python benchmarks/dimension.py [--shapes 4x16x16,4x32x32,4x64x64] [--steps 50] [--fixed-steps]
                                   [--strategies best-of-n,...] [--tasks 4] [--repeats 4] [--budget 20]
                                   [--pool 160] [--candidates 64] [--batch 16] [--rounds 3]
                                   [--out runs/bench-dimension] [--quick]

Writes OUT/<shape>/ (each a compare run directory, resumable) and OUT/dimension.json; prints both tables as
markdown and the wall time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import eacps
from eacps import Recipe
from eacps.analysis.compare import SEED_MODES, Split, run_compare
from eacps.api import load_run
from eacps.config import ConfigError
from eacps.tables import gap_text, multiplier_text

# benchmarks/strategies.py by its path: the name ``strategies`` can be any folder of that name on sys.path (a
# namespace package once anything imported it), so a sys.path import could find the folder instead
_spec = importlib.util.spec_from_file_location("bench_strategies", Path(__file__).with_name("strategies.py"))
_strategies = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(_strategies)  # type: ignore[union-attr]
TUNE_TASKS, config, contestants = _strategies.TUNE_TASKS, _strategies.config, _strategies.contestants

DEFAULT = "best-of-n,eacps-pcn,fk-steering,tree-search,multi-fidelity,branched-best-of-n"


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--shapes: {text!r} is not CxHxW (e.g. 4x32x32)") from None
    return c, h, w


def testbed(shape: tuple[int, int, int], steps: int) -> dict[str, Any]:
    """The gaussian-mixture character measured at every shape (a ``benchmarks/strategies.py`` TESTBEDS entry)."""
    return {"generator": "gaussian-mixture", "tasks": "gaussian-mixture", "scorer": "gm",
            "mixture": {"shape": list(shape), "components": 10, "separation": 3.0}, "sharpness": 1.0,
            "threshold": 0.0, "steps": steps}


def steps_for(shape: tuple[int, int, int], first: tuple[int, int, int], base: int, fixed: bool) -> int:
    return base if fixed else max(1, round(base * math.sqrt(math.prod(shape) / math.prod(first))))


def overhead(setup: Any, n: int, batch: int, rounds: int) -> dict[str, Any]:
    """Seconds per candidate of the raw sampler loop, the loop with scoring and ``eacps.search`` (best-of-N) on the
    same ``n`` candidates of one task; interleaved rounds after a warm-up, medians."""
    gen, pot, cond = setup.generator, setup.potential, setup.conditions[-1]

    def search() -> tuple[float, list[Recipe], list[float | None]]:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            res = eacps.search(cond, generator=gen, potential=pot, strategy="best-of-n", budget=n - 1, seed=0,
                               batch_size=batch, run_dir=d)
            dt = time.perf_counter() - t0
        cands = [res.prior, *res.history]
        return dt, [c.recipe for c in cands], [c.potential for c in cands]

    def raw(recipes: list[Recipe], score: bool) -> tuple[float, list[float]]:
        values: list[float] = []
        t0 = time.perf_counter()
        for i in range(0, len(recipes), batch):
            traj = gen.start(recipes[i:i + batch], cond)
            traj = gen.advance(traj, cond, traj.total)
            outs = gen.decode(traj.latents, cond)
            if score:
                values += [r.potential for r in pot.evaluate([o.image for o in outs], cond)]
        return time.perf_counter() - t0, values

    _, recipes, stored = search()  # warm-up, and the recipes every pass runs
    t_raw, t_scored, t_search = [], [], []
    for _ in range(rounds):
        t_raw.append(raw(recipes, False)[0])
        dt, values = raw(recipes, True)
        t_scored.append(dt)
        t_search.append(search()[0])
    r, s, e = (statistics.median(t) / len(recipes) for t in (t_raw, t_scored, t_search))
    return {"candidates": len(recipes), "batch": batch, "rounds": rounds, "raw_s": r, "raw_scored_s": s,
            "search_s": e, "search_over_raw": e / r, "search_over_scored": e / s,
            "same_potentials": [round(v, 6) for v in values] == [None if v is None else round(v, 6) for v in stored]}


def multipliers(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Per strategy row of a compare summary: the figures this benchmark prints."""
    names = summary["cost_models"]
    rows = []
    for r in summary["table"]:
        ms, same = r.get("multipliers", {}), r.get("same_sampler") or {}
        rows.append({"strategy": r["strategy"], "mean_best": r["mean_best"], "ci95": r["ci95"],
                     "multiplier_a": ms.get(names[0]), "multiplier_b": ms.get(names[-1]),
                     "same_sampler_a": (same.get("multipliers") or {}).get(names[0]),
                     "sampler_effect": ({"effect": same["effect"], "ci95": same["effect_ci95"]}
                                        if "effect" in same else None),
                     "optimum_gap": r.get("optimum_gap")})
    return rows


def markdown(result: dict[str, Any]) -> str:
    out = ["| latent | D | steps | raw loop ms/cand | raw + scoring ms/cand | eacps.search ms/cand | "
           "search / raw | search / (raw + scoring) | same potentials |", "|---|---|---|---|---|---|---|---|---|"]
    for d in result["shapes"]:
        o = d["overhead"]
        out.append(f"| {d['latent']} | {d['dim']} | {d['steps']} | {1e3 * o['raw_s']:.2f} | "
                   f"{1e3 * o['raw_scored_s']:.2f} | {1e3 * o['search_s']:.2f} | {o['search_over_raw']:.2f} | "
                   f"{o['search_over_scored']:.2f} | {'yes' if o['same_potentials'] else 'NO'} |")
    out += ["", f"Budget {result['budget']}; multipliers against best-of-N under (a) the measured cost and (b) one "
            "potential evaluation = one generation; 'vs same sampler' under (a).", "",
            "| strategy | latent | mean best [95% CI] | multiplier (a) [95% CI] | multiplier (b) [95% CI] | "
            "vs same sampler (a) [95% CI] | sampler effect [95% CI] | optimum gap closed [95% CI] |",
            "|---|---|---|---|---|---|---|---|"]
    labels = [r["strategy"] for r in result["shapes"][0]["rows"]]
    for label in labels:
        for d in result["shapes"]:
            r = next(x for x in d["rows"] if x["strategy"] == label)
            eff = r["sampler_effect"]
            eff_t = f"{eff['effect']:+.2f} [{eff['ci95'][0]:+.2f}, {eff['ci95'][1]:+.2f}]" if eff else "–"
            same = multiplier_text(r["same_sampler_a"], times="×") if r["same_sampler_a"] else "–"
            out.append(f"| {label} | {d['latent']} | {r['mean_best']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] | "
                       f"{multiplier_text(r['multiplier_a'], times='×')} | "
                       f"{multiplier_text(r['multiplier_b'], times='×')} | {same} | {eff_t} | "
                       f"{gap_text(r['optimum_gap'])} |")
    return "\n".join(out)


def measure(shape: tuple[int, int, int], steps: int, args: argparse.Namespace,
            searches: dict[str, dict[str, Any]]) -> dict[str, Any]:
    latent = "x".join(map(str, shape))
    out = Path(args.out) / latent
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "config.toml"
    cfg.write_text(config(TUNE_TASKS + args.tasks, searches, testbed(shape, steps)))
    t0 = time.perf_counter()
    over = overhead(load_run(cfg), args.candidates, args.batch, args.rounds)
    t1 = time.perf_counter()
    summary = run_compare(cfg, out, strategies=",".join(searches), budgets=str(args.budget), repeats=args.repeats,
                          pool=args.pool, split=Split(tune_tasks=TUNE_TASKS, seeds=args.seed_mode),
                          progress=args.progress)
    t2 = time.perf_counter()
    print(f"{latent}: overhead {t1 - t0:.0f} s, compare {t2 - t1:.0f} s", flush=True)
    return {"latent": latent, "shape": list(shape), "dim": math.prod(shape), "steps": steps, "overhead": over,
            "rows": multipliers(summary), "tasks": summary["tasks"], "pool": summary["pool"]["size"],
            "wall_s": {"overhead": t1 - t0, "compare": t2 - t1}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="4x16x16,4x32x32,4x64x64", help="latent shapes CxHxW, comma-separated")
    ap.add_argument("--steps", type=int, default=50, help="sampler steps at the first shape (default 50)")
    ap.add_argument("--fixed-steps", action="store_true", help="the same steps at every shape (no sqrt(D) growth)")
    ap.add_argument("--strategies", default=DEFAULT, help=f"contestant labels of benchmarks/strategies.py "
                    f"(default: {DEFAULT})")
    ap.add_argument("--tasks", type=int, default=4, help="evaluation tasks per shape (after the 30 tuning tasks)")
    ap.add_argument("--repeats", type=int, default=4, help="strategy seeds per task")
    ap.add_argument("--budget", type=int, default=20)
    ap.add_argument("--pool", type=int, default=160, help="reference pool per task (and per branch schedule)")
    ap.add_argument("--candidates", type=int, default=64, help="candidates per overhead pass")
    ap.add_argument("--batch", type=int, default=16, help="batch size of the overhead passes")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved overhead rounds (medians)")
    ap.add_argument("--seed-mode", default="per-task", choices=SEED_MODES, help=_strategies.SEED_MODE_HELP)
    ap.add_argument("--out", default="runs/bench-dimension")
    ap.add_argument("--progress", action="store_true", help="compare's per-search progress lines")
    ap.add_argument("--quick", action="store_true", help="smoke run: shapes 1x2x2,1x4x4, 10 steps, 2 tasks, 1 seed, "
                    "budget 4, pool 8, 8 candidates in batches of 4, 1 round")
    args = ap.parse_args(argv)
    if args.quick:
        args.shapes, args.steps, args.tasks, args.repeats, args.budget, args.pool = "1x2x2,1x4x4", 10, 2, 1, 4, 8
        args.candidates, args.batch, args.rounds = 8, 4, 1
    try:
        shapes = [parse_shape(s) for s in args.shapes.split(",") if s.strip()]
        searches = contestants(args.strategies)
        if "best-of-n" not in searches:
            raise ConfigError("--strategies: must include best-of-n (the reference of every multiplier)")
        t0 = time.perf_counter()
        result = {"budget": args.budget, "repeats": args.repeats, "fixed_steps": args.fixed_steps,
                  "shapes": [measure(s, steps_for(s, shapes[0], args.steps, args.fixed_steps), args, searches)
                             for s in shapes]}
    except ConfigError as exc:
        sys.exit(f"dimension.py: error: {exc}")
    result["wall_s"] = time.perf_counter() - t0
    (Path(args.out) / "dimension.json").write_text(json.dumps(result, indent=2))
    print(markdown(result))
    print(f"wall time: {result['wall_s']:.0f} s")
    return result


if __name__ == "__main__":
    main()
