"""Engine overhead: the same candidates through the engine and through a plain batched loop.

Both paths run the digits generator and the reference digits potential on identical recipes at the same
batch size; runs are interleaved (engine, loop, engine, loop, ...) so machine noise hits both alike.
The engine path includes everything it adds: store lookups, PNG writes, one SQLite transaction per
batch, strategy ask/tell, progress bookkeeping. Prints the throughput ratio engine / loop (target >= 0.98).

    python benchmarks/engine_overhead.py [--tasks 4] [--budget 64] [--batch 16] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import eacps_digits

from eacps import Engine, Recipe, Store
from eacps.commands.demo import digits_potential
from eacps.config import create
from eacps.strategies.best_of_n import BestOfN


def engine_pass(gen, pot, tasks, budget, batch, seed) -> tuple[float, list[list[Recipe]]]:
    recipes = []
    with tempfile.TemporaryDirectory() as d, Store.open(d) as store:
        eng = Engine(gen, pot, store, batch_size=batch)
        t0 = time.perf_counter()
        for cond in tasks:
            res = eng.run(cond, BestOfN(budget=budget, seed=seed))
            recipes.append([res.prior.recipe] + [c.recipe for c in res.history])
        dt = time.perf_counter() - t0
    return dt, recipes


def loop_pass(gen, pot, tasks, recipes, batch) -> float:
    t0 = time.perf_counter()
    for cond, rs in zip(tasks, recipes, strict=True):
        prior = gen.generate(rs[:1], cond)[0].image
        cond = cond.with_prior(prior)
        pot.evaluate([prior], cond)
        for i in range(1, len(rs), batch):
            outs = gen.generate(rs[i : i + batch], cond)
            pot.evaluate([o.image for o in outs], cond)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--budget", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    gen = create("generator", "digits")
    pot = digits_potential()
    tasks = eacps_digits.tasks(args.tasks)
    engine_pass(gen, pot, tasks, args.budget, args.batch, seed=99)  # warm-up
    eng_t, loop_t = [], []
    for r in range(args.rounds):
        dt, recipes = engine_pass(gen, pot, tasks, args.budget, args.batch, seed=r)
        eng_t.append(dt)
        loop_t.append(loop_pass(gen, pot, tasks, recipes, args.batch))
    n = args.tasks * (args.budget + 1)
    e, lp = statistics.median(eng_t), statistics.median(loop_t)
    print(f"candidates per pass: {n} (batch {args.batch}, {args.rounds} interleaved rounds, medians)")
    print(f"engine: {n / e:8.1f} candidates/s   ({e:.3f} s)")
    print(f"loop:   {n / lp:8.1f} candidates/s   ({lp:.3f} s)")
    print(f"throughput ratio engine/loop: {lp / e:.3f}   (target >= 0.98)")


if __name__ == "__main__":
    main()
