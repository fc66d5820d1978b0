"""benchmarks/gpu.py in its reduced CPU form: every measurement runs and reports what it found.

Speed is never asserted; the regeneration and OOM-split checks are real comparisons of images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repo import load_script

pytest.importorskip("eacps_diffusers")
BENCH = Path(__file__).parents[1] / "benchmarks" / "gpu.py"


@pytest.mark.slow
def test_gpu_benchmark_reduced_cpu_run(tmp_path):
    mod = load_script(BENCH, "gpu_bench")
    out = mod.main(["--candidates", "2", "--batch-size", "2", "--steps", "2", "--size", "32", "--rounds", "1",
                    "--dtypes", "float32", "--json", str(tmp_path / "gpu.json")])
    assert json.loads((tmp_path / "gpu.json").read_text()) == json.loads(json.dumps(out))
    t = out["throughput"]
    assert t["raw_cand_s"] > 0 and t["engine_cand_s"] > 0 and t["ratio"] == pytest.approx(
        t["engine_cand_s"] / t["raw_cand_s"])
    (reg,) = out["regeneration"]
    assert reg["dtype"] == "float32" and reg["batch_bit_identical"] is True
    assert reg["single_vs_batch_max_abs"] < 1e-4  # CPU fp32 batch composition (the plugin's documented bound)
    oom = out["oom_split"]
    assert oom["calls"][0] == 2 and all(n <= 1 for n in oom["calls"][1:]), oom  # split after the injected OOM
    assert oom["settled_batch"] == 1 and oom["equal_to_halves"] is True
    # against the unsplit batch (another composition) the 8-bit images may differ by one level where a float sits on
    # a rounding boundary (fails standalone with 2 threads otherwise), never more, and on few pixels
    assert oom["max_abs_vs_unsplit"] <= 1 / 255 + 1e-6 and oom["equal_8bit_vs_unsplit"] > 0.99
    assert out["peak_memory"]["bytes"]
    if out["mode"] == "cpu-reduced":
        assert out["device"] == "cpu"
