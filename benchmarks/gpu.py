"""GPU readiness in one script: engine vs a raw batched pipeline loop, fp16/bf16 regeneration, peak memory, OOM split.

On CUDA (tiny SD pipeline by default, ``--model PATH`` for a local diffusers model):
* throughput: candidates/s of ``eacps.search`` (best-of-N, a trivial scorer, the run store writing every PNG)
  against a raw batched loop ``pipe([prompt] * B, generator=[...], ...)`` on the same seeds; the ratio is the
  engine's overhead (interleaved rounds, the fastest of each kept);
* regeneration per dtype (float16, bfloat16): the same batch twice is bit-identical, each candidate alone
  matches its batched self (max abs difference, share of identical 8-bit pixels);
* peak memory per batch size (``torch.cuda.max_memory_allocated``);
* the OOM split: an out-of-memory error injected above half the batch (the pipeline call's seam); the
  engine's batch computer halves the batch, and its images must be bit-identical to running those halves
  directly (and within the batch-composition tolerance of the unsplit batch).
Without CUDA the same measurements run reduced (float32, small batches, peak RSS): what the tests cover.

    python benchmarks/gpu.py                         # tiny pipeline, CUDA if present
    python benchmarks/gpu.py --model /models/sdxl --size 1024 --steps 30 --batch-size 4 --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from eacps_diffusers import DiffusersGenerator
from eacps_diffusers.tiny import tiny_pipeline

import eacps
from eacps import Condition, Criterion, Potential, Recipe, Scorer, Status
from eacps.engine.batch import Batch, BatchComputer
from eacps.store import quantize

PROMPT = "a photo of a lighthouse at dusk"


class Brightness(Scorer):
    """A scorer that costs nothing, so the engine's own overhead is what the ratio measures."""

    name = "brightness"

    def score(self, images: Sequence[np.ndarray], condition: Condition) -> list[float]:
        return [float(np.clip(np.mean(im) * 10, 0, 10)) for im in images]


def generator(args: argparse.Namespace, device: str, dtype: str) -> DiffusersGenerator:
    kw: dict[str, Any] = {"steps": args.steps, "height": args.size, "width": args.size, "device": device,
                          "dtype": dtype, "max_batch_size": args.batch_size}
    if args.model:
        return DiffusersGenerator(model=args.model, **kw)
    return DiffusersGenerator.from_pipe(tiny_pipeline("sd"), **kw)


def raw_loop(gen: DiffusersGenerator, seeds: list[int], batch: int) -> float:
    """Seconds for the plain batched loop a user would write, on the same pipeline and settings."""
    pipe, t0 = gen.pipe, time.perf_counter()
    for i in range(0, len(seeds), batch):
        chunk = seeds[i : i + batch]
        pipe([PROMPT] * len(chunk), generator=[torch.Generator("cpu").manual_seed(s) for s in chunk],
             num_inference_steps=gen.params.steps, height=gen.params.height, width=gen.params.width, output_type="np")
    _sync()
    return time.perf_counter() - t0


def engine_run(gen: DiffusersGenerator, n: int, batch: int, seed: int) -> float:
    """Seconds for one best-of-N search of ``n`` candidates through the engine (prior and store included)."""
    potential = Potential([Criterion("realism", Brightness(), 1.0)])
    t0 = time.perf_counter()
    res = eacps.search(Condition("bench", prompt=PROMPT), generator=gen, potential=potential, strategy="best-of-n",
                       budget=n, batch_size=batch, seed=seed)
    _sync()
    assert len(res.history) == n
    return time.perf_counter() - t0


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def throughput(gen: DiffusersGenerator, n: int, batch: int, rounds: int) -> dict[str, Any]:
    engine_run(gen, batch, batch, seed=10_000)  # warm-up: kernels, allocator, first PNG writes
    raw, eng = [], []
    for r in range(rounds):  # interleaved; fresh seeds each round so nothing is served from a store
        eng.append(engine_run(gen, n, batch, seed=r))
        raw.append(raw_loop(gen, list(range(1000 * (r + 1), 1000 * (r + 1) + n)), batch))
    best_raw, best_eng = n / min(raw), (n + 1) / min(eng)  # the engine also generates the prior
    return {"candidates": n, "batch_size": batch, "rounds": rounds, "raw_cand_s": best_raw, "engine_cand_s": best_eng,
            "ratio": best_eng / best_raw}


def regeneration(args: argparse.Namespace, device: str, dtype: str, n: int) -> dict[str, Any]:
    gen = generator(args, device, dtype)
    cond = Condition("regen", prompt=PROMPT)
    recipes = [Recipe.from_seed(s) for s in range(n)]
    a = np.stack([g.image for g in gen.generate(recipes, cond)])
    b = np.stack([g.image for g in gen.generate(recipes, cond)])
    single = np.stack([gen.generate([r], cond)[0].image for r in recipes])
    to8 = lambda x: np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    return {"dtype": dtype, "batch_bit_identical": bool(np.array_equal(a, b)),
            "single_vs_batch_max_abs": float(np.abs(a - single).max()),
            "single_vs_batch_8bit_equal": float(np.mean(to8(a) == to8(single)))}


def peak_memory(gen: DiffusersGenerator, batches: list[int]) -> dict[str, Any]:
    cond = Condition("mem", prompt=PROMPT)
    if not torch.cuda.is_available():
        gen.generate([Recipe.from_seed(s) for s in range(max(batches))], cond)
        return {"kind": "process peak RSS (CPU)", "bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    out = {}
    for b in batches:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        gen.generate([Recipe.from_seed(s) for s in range(b)], cond)
        out[str(b)] = torch.cuda.max_memory_allocated()
    return {"kind": "torch.cuda.max_memory_allocated per batch size", "bytes": out}


def oom_split(gen: DiffusersGenerator, batch: int) -> dict[str, Any]:
    """Inject an out-of-memory error above ``batch // 2`` candidates per call; the split must change nothing."""
    cond = Condition("oom", prompt=PROMPT)
    recipes = [Recipe.from_seed(s) for s in range(batch)]
    limit, real, calls = max(1, batch // 2), gen._invoke, []
    unsplit = np.stack([g.image for g in gen.generate(recipes, cond)])
    halves = np.stack([g.image for i in range(0, batch, limit) for g in gen.generate(recipes[i : i + limit], cond)])

    def invoke(kw: dict[str, Any]) -> Any:
        n = len(kw["generator"])
        calls.append(n)
        if n > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory (injected above {limit})")
        return real(kw)

    computer = BatchComputer(gen, None)  # the engine's one out-of-memory rule: split, remember what fits
    gen._invoke = invoke  # type: ignore[method-assign]
    try:
        got = computer.generate(Batch(tuple(recipes), cond))
    finally:
        gen._invoke = real  # type: ignore[method-assign]
    if not all(g.status is Status.OK for g in got):
        return {"batch": batch, "injected_above": limit, "calls": calls, "failed": [g.reason for g in got]}
    images = np.stack([g.image for g in got])  # quantized to 8 bits, as the engine stores them
    halves, unsplit = quantize(halves), quantize(unsplit)
    return {"batch": batch, "injected_above": limit, "calls": calls, "settled_batch": computer.fits,
            "equal_to_halves": bool(np.array_equal(images, halves)),  # the same batches, run directly
            # the unsplit batch is another batch composition: last-bit float differences, which can flip an
            # 8-bit level where a value sits on a rounding boundary (at most 1/255, on a few pixels)
            "max_abs_vs_unsplit": float(np.abs(images - unsplit).max()),
            "equal_8bit_vs_unsplit": float(np.mean(images == unsplit))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="local diffusers model folder (default: the tiny SD pipeline)")
    ap.add_argument("--candidates", type=int, default=64 if cuda else 4, help="candidates per throughput round")
    ap.add_argument("--batch-size", type=int, default=16 if cuda else 2)
    ap.add_argument("--steps", type=int, default=20 if cuda else 2)
    ap.add_argument("--size", type=int, default=64 if cuda else 32, help="image height and width")
    ap.add_argument("--rounds", type=int, default=5 if cuda else 1)
    ap.add_argument("--dtypes", default="float16,bfloat16" if cuda else "float32", help="regeneration dtypes")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    device = "cuda" if cuda else "cpu"
    main_dtype = args.dtypes.split(",")[0]
    gen = generator(args, device, main_dtype)
    out: dict[str, Any] = {"mode": "cuda" if cuda else "cpu-reduced", "device": torch.cuda.get_device_name(0)
                           if cuda else "cpu", "torch": torch.__version__, "model": args.model or "tiny sd",
                           "steps": args.steps, "size": args.size, "dtype": main_dtype}
    out["throughput"] = throughput(gen, args.candidates, args.batch_size, args.rounds)
    out["regeneration"] = [regeneration(args, device, d, min(4, args.batch_size * 2)) for d in args.dtypes.split(",")]
    out["peak_memory"] = peak_memory(gen, sorted({1, max(1, args.batch_size // 2), args.batch_size}))
    out["oom_split"] = oom_split(gen, args.batch_size)
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
