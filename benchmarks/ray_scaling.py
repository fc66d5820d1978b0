"""Scaling of the ``ray`` executor: 1, 2, 4, 8 generator actors on a latency-simulated generator.

The generator sleeps a fixed time per batch (no CPU use), so the ideal wall time with ``n`` actors is
``batches x latency / n``; the engine dispatches many best-of-N searches at once (``Engine.run_all``)
and the executor keeps ``n x queue_depth`` batches in flight. Scoring runs in the generator actors
(``num_scorers = 0``, a trivial scorer). Actors are started (and the priors stored) before timing.

Prints, per actor count: wall time, throughput, parallel efficiency against the ideal
(``batches x latency / (n x wall)``, target >= 90% at 8) and against one actor (``T1 / (n x Tn)``).
Then the per-candidate dispatch overhead: the same searches with a zero-latency generator on one actor,
minus the inline executor doing the same work in-process, divided by the candidates.

    python benchmarks/ray_scaling.py [--latency 0.1] [--batches 128] [--batch 4] [--actors 1 2 4 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overlap
from eacps_ray import RayExecutor, RayParams

from eacps import Condition, Engine, Store, plugins
from eacps.engine.engine import Job
from eacps.engine.executor import Executor, InlineExecutor
from eacps.potential import Criterion, Potential
from eacps.strategies.best_of_n import BestOfN

HERE = str(Path(__file__).resolve().parent)


def timed(executor: Executor, latency: float, conds: list[Condition], budget: int, batch: int) -> tuple[float, int]:
    """(wall seconds of the search phase, candidates) with the executor already started."""
    gen = overlap.SleepGenerator(overlap.SleepGenParams(seconds=latency))
    pot = Potential([Criterion("consistency", overlap.SleepScorer(overlap.SleepGenParams(seconds=0.0)), 1.0)])
    with tempfile.TemporaryDirectory() as d, Store.open(d) as store:
        eng = Engine(gen, pot, store, batch_size=batch, executor=executor)
        eng.run_all([Job(conds[0], BestOfN(budget=batch, seed=999))])  # starts the actors, stores a prior
        for c in conds:
            eng.prior(c)
        jobs = [Job(c, BestOfN(budget=budget, seed=i)) for i, c in enumerate(conds)]
        t0 = time.perf_counter()
        res = eng.run_all(jobs)
        wall = time.perf_counter() - t0
        eng.close()
    return wall, sum(len(r.history) for r in res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.1, help="seconds per generator batch")
    ap.add_argument("--batches", type=int, default=128, help="batches in all")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--conditions", type=int, default=16, help="searches dispatched at once")
    ap.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--queue-depth", type=int, default=2)
    ap.add_argument("--overhead-batches", type=int, default=200)
    args = ap.parse_args()
    plugins.register_plugin(overlap)
    ray.init(
        num_cpus=max(4, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    cpus = float(ray.cluster_resources()["CPU"])
    conds = [Condition(f"c{i}") for i in range(args.conditions)]
    budget = args.batches * args.batch // args.conditions
    batches = budget * args.conditions // args.batch
    print(
        f"{args.conditions} searches x {budget} candidates = {batches} batches of {args.batch}; "
        f"latency {args.latency * 1000:.0f} ms/batch; queue_depth {args.queue_depth}; host CPUs {os.cpu_count()}"
    )
    walls = {}
    for n in args.actors:
        ex = RayExecutor(
            RayParams(
                num_generators=n,
                num_scorers=0,
                cpus_per_actor=cpus / max(args.actors) / 2,
                queue_depth=args.queue_depth,
                pythonpath=[HERE],
            )
        )
        wall, cands = timed(ex, args.latency, conds, budget, args.batch)
        walls[n] = wall
        ideal = batches * args.latency / n
        print(
            f"  {n} actor(s): wall {wall:6.2f}s  {cands / wall:7.1f} cand/s  efficiency vs ideal "
            f"{ideal / wall:6.1%}  vs 1 actor {walls[args.actors[0]] * args.actors[0] / (n * wall):6.1%}",
            flush=True,
        )

    # dispatch overhead: zero latency, one actor, vs the same work inline
    ob = args.overhead_batches
    oconds = conds[:4]
    obudget = ob * args.batch // len(oconds)
    inline_wall, cands = timed(InlineExecutor(), 0.0, oconds, obudget, args.batch)
    ex = RayExecutor(
        RayParams(num_generators=1, num_scorers=0, cpus_per_actor=1.0, queue_depth=args.queue_depth, pythonpath=[HERE])
    )
    ray_wall, _ = timed(ex, 0.0, oconds, obudget, args.batch)
    ex1 = RayExecutor(
        RayParams(num_generators=1, num_scorers=0, cpus_per_actor=1.0, queue_depth=args.queue_depth, pythonpath=[HERE])
    )
    ray1_wall, cands1 = timed(ex1, 0.0, oconds, obudget // args.batch, 1)
    inline1_wall, _ = timed(InlineExecutor(), 0.0, oconds, obudget // args.batch, 1)
    print(f"\ndispatch overhead (zero-latency generator, 1 actor, {len(oconds)} searches):")
    print(
        f"  batch {args.batch}: ray {ray_wall / cands * 1000:.2f} ms/cand, inline {inline_wall / cands * 1000:.2f} "
        f"ms/cand -> overhead {(ray_wall - inline_wall) / cands * 1000:.2f} ms per candidate "
        f"({(ray_wall - inline_wall) / (cands / args.batch) * 1000:.2f} ms per batch)"
    )
    print(
        f"  batch 1: ray {ray1_wall / cands1 * 1000:.2f} ms/cand, inline {inline1_wall / cands1 * 1000:.2f} "
        f"ms/cand -> overhead {(ray1_wall - inline1_wall) / cands1 * 1000:.2f} ms per candidate"
    )
    if 8 in walls:
        eff = batches * args.latency / 8 / walls[8]
        print(f"\nefficiency at 8 actors: {eff:.1%} (target >= 90%: {'OK' if eff >= 0.9 else 'BELOW'})")
    ray.shutdown()


if __name__ == "__main__":
    main()
