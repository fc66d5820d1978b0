"""Images/s through the eacps diffusers plugin vs a plain batched diffusers loop, same tiny pipeline.

The two are interleaved round by round (plain, plugin, plain, plugin, ...) so machine noise hits both
alike; the ratio plugin/plain is the plugin's overhead (target >= 0.98). Throughput is taken from the
fastest round of each (timeit practice: on a shared machine slower rounds measure other processes);
the median-based ratio is printed too.

    python benchmarks/diffusers_throughput.py --family sd --batch 8 --rounds 6
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from eacps_diffusers import DiffusersGenerator
from eacps_diffusers.tiny import CALL_KWARGS, tiny_pipeline

from eacps import Condition, Recipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="sd", choices=sorted(CALL_KWARGS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)

    pipe = tiny_pipeline(args.family)
    extra = dict(CALL_KWARGS[args.family])
    gen = DiffusersGenerator.from_pipe(
        pipe, steps=args.steps, height=args.size, width=args.size, max_batch_size=args.batch, call_kwargs=extra
    )
    cond = Condition(id="bench", prompt="a photo of a cat")
    inside = [0.0]  # seconds the plugin spent inside the pipeline call
    real_invoke = gen._invoke

    def timed_invoke(kw):
        t0 = time.perf_counter()
        try:
            return real_invoke(kw)
        finally:
            inside[0] += time.perf_counter() - t0

    gen._invoke = timed_invoke  # type: ignore[method-assign]

    def plain(seeds: list[int]) -> None:
        pipe(
            cond.prompt,
            num_inference_steps=args.steps,
            height=args.size,
            width=args.size,
            num_images_per_prompt=len(seeds),
            generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
            output_type="np",
            **extra,
        )

    def plugin(seeds: list[int]) -> None:
        gen.generate([Recipe.from_seed(s) for s in seeds], cond)

    runs = {"plain": plain, "plugin": plugin}
    times: dict[str, list[float]] = {k: [] for k in runs}
    seeds = list(range(args.batch))
    for fn in runs.values():  # warm-up
        fn(seeds)
    inside[0] = 0.0
    for r in range(args.rounds):
        seeds = list(range(r * args.batch, (r + 1) * args.batch))
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for name in order:
            t0 = time.perf_counter()
            runs[name](seeds)
            times[name].append(time.perf_counter() - t0)
    ips = {k: args.batch / min(v) for k, v in times.items()}
    med = {k: args.batch / statistics.median(v) for k, v in times.items()}
    print(
        f"family={args.family} batch={args.batch} steps={args.steps} size={args.size} rounds={args.rounds} "
        f"device=cpu threads={args.threads}"
    )
    for k, v in ips.items():
        print(f"{k:7s} {v:8.2f} images/s best round, {med[k]:8.2f} median of {len(times[k])} rounds")
    print(f"ratio plugin/plain = {ips['plugin'] / ips['plain']:.3f}  (target >= 0.98)")
    print(f"ratio plugin/plain (medians) = {med['plugin'] / med['plain']:.3f}")
    own = sum(times["plugin"]) - inside[0]
    print(
        f"plugin's own work outside the pipeline call: {1000 * own / args.rounds:.2f} ms/call "
        f"({100 * own / sum(times['plugin']):.2f}% of its time; noise-free ratio bound "
        f"{1 - own / sum(times['plugin']):.3f})"
    )


if __name__ == "__main__":
    main()
