"""Overlap of generation and scoring: wall time of the ``local`` executor vs ``inline``, side by side.

A generator and a scorer with known costs run the same searches (best-of-N over several conditions, all
dispatched at once by ``Engine.run_all``) under both executors:

* sleep-calibrated stand-ins: a generator and a scorer that sleep a fixed time per batch (no CPU use),
  in several generation/scoring cost ratios;
* the digits testbed (``eacps-digits``): the real tiny UNet and the reference digits potential on CPU.

``gen`` and ``score`` are the measured generation and scoring seconds of the search candidates (from the
engine's cost accounting). The priors are computed (and stored) before timing, so both runs time the
search phase only. For each executor the script prints wall / max(gen, score) (target for ``local``:
<= 1.1) and wall / (gen + score) (``inline`` is ~1.0 by construction). ``local`` runs with its default
``max_inflight`` (2) and with 3.

Torch runs one intra-op thread per stage by default (``--threads 1``): on a small, busy machine two
OpenMP threads in the main thread can be many times slower than one, which would flatter ``local``
(its stages run on worker threads) for reasons that have nothing to do with overlap.

    python benchmarks/overlap.py [--batches 40] [--batch 4] [--conditions 4] [--sleep-scale 0.02] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np
import torch
from pydantic import Field

from eacps import Condition, Engine, Generated, Generator, Params, Recipe, Scorer, Store, hookimpl, plugins
from eacps.engine.engine import Job
from eacps.engine.executor import Executor, InlineExecutor, LocalExecutor, LocalParams
from eacps.potential import Criterion, Potential
from eacps.strategies.best_of_n import BestOfN


class SleepGenParams(Params):
    seconds: float = Field(0.05, ge=0, description="seconds per batch")


class SleepGenerator(Generator):
    """Sleeps a fixed time per batch (the GIL is released: no CPU use), then returns sigmoid(noise) 8x8."""

    name = "bench-sleep"
    Params = SleepGenParams

    def noise_shape(self, condition: Condition) -> tuple[int, ...]:
        return (1, 1, 8, 8)

    @property
    def default_steps(self) -> int:
        return 1

    def settings(self):
        return self.params.model_dump()

    def generate(self, recipes: Sequence[Recipe], condition: Condition, *, steps: int | None = None):
        time.sleep(self.params.seconds)
        z = torch.sigmoid(self.noises(recipes, condition)).numpy()
        return [Generated(np.transpose(img, (1, 2, 0)).astype(np.float32)) for img in z]


class SleepScorer(Scorer):
    """Sleeps a fixed time per batch, then scores 10 x mean brightness."""

    name = "bench-sleep-score"
    Params = SleepGenParams

    def score(self, images, condition):
        time.sleep(self.params.seconds)
        return [10.0 * float(np.mean(img)) for img in images]


@hookimpl
def register_generators(register):
    register(SleepGenerator)


@hookimpl
def register_scorers(register):
    register(SleepScorer)


def timed_run(
    gen: Generator, pot: Potential, executor: Executor, conds: list[Condition], budget: int, batch: int
) -> tuple[float, float, float]:
    """(wall, gen seconds, score seconds) of the search phase; priors are computed before timing."""
    with tempfile.TemporaryDirectory() as d, Store.open(d) as store:
        eng = Engine(gen, pot, store, batch_size=batch, executor=executor)
        for c in conds:
            eng.prior(c)  # stored: run_all serves them from the store
        jobs = [Job(c, BestOfN(budget=budget, seed=i)) for i, c in enumerate(conds)]
        t0 = time.perf_counter()
        res = eng.run_all(jobs)
        wall = time.perf_counter() - t0
        eng.close()
    return wall, sum(r.cost.gen_seconds for r in res), sum(r.cost.score_seconds for r in res)


def compare(
    label: str, gen: Generator, pot: Potential, conds: list[Condition], budget: int, batch: int, rounds: int
) -> dict[str, float]:
    executors = {
        "inline": InlineExecutor,
        "local": LocalExecutor,
        "local/3": lambda: LocalExecutor(LocalParams(max_inflight=3)),
    }
    rows = {name: [] for name in executors}
    for _ in range(rounds):  # interleaved, so machine noise hits all alike
        for name, make in executors.items():
            rows[name].append(timed_run(gen, pot, make(), conds, budget, batch))
    out = {}
    print(label, flush=True)
    for name, runs in rows.items():
        wall, g, s = min(runs)  # best of rounds
        out[name] = wall / max(g, s)
        print(
            f"  {name:<8} wall {wall:6.2f}s  gen {g:6.2f}s  score {s:6.2f}s  "
            f"wall/max(gen,score) {wall / max(g, s):5.2f}  wall/(gen+score) {wall / (g + s):5.2f}",
            flush=True,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=40, help="batches in all (over all conditions)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--conditions", type=int, default=4)
    ap.add_argument("--sleep-scale", type=float, default=0.02, help="seconds per batch of the cheaper stage")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-digits", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: leave torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    plugins.register_plugin(sys.modules[__name__])
    budget = args.batches * args.batch // args.conditions
    conds = [Condition(f"c{i}", class_label=i % 10) for i in range(args.conditions)]
    print(
        f"{args.conditions} searches x {budget} candidates, batch {args.batch}; best of {args.rounds} rounds; "
        f"torch threads {torch.get_num_threads()}"
    )
    results = {}
    u = args.sleep_scale
    for g, s in [(2 * u, 2 * u), (2 * u, u), (u, 2 * u), (3 * u, u)]:
        gen = SleepGenerator(SleepGenParams(seconds=g))
        pot = Potential([Criterion("consistency", SleepScorer(SleepGenParams(seconds=s)), 1.0)])
        results[f"sleep gen {g:.3f}s score {s:.3f}s"] = compare(
            f"sleep g={g * 1000:.0f}ms s={s * 1000:.0f}ms", gen, pot, conds, budget, args.batch, args.rounds
        )
    if not args.no_digits:
        from eacps.commands.demo import digits_potential
        from eacps.config import create

        gen = create("generator", "digits")
        results["digits"] = compare(
            "digits (CPU models)", gen, digits_potential(), conds, budget, args.batch, args.rounds
        )
    print("\nwall / max(gen, score), target <= 1.10 for local:")
    for k, v in results.items():
        print(
            f"  {k:<34} inline {v['inline']:.3f}   local {v['local']:.3f} "
            f"({'OK' if v['local'] <= 1.10 else 'ABOVE'})   local/3 {v['local/3']:.3f} "
            f"({'OK' if v['local/3'] <= 1.10 else 'ABOVE'})"
        )


if __name__ == "__main__":
    main()
