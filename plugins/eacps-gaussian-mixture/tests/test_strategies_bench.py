"""benchmarks/strategies.py on the exact testbed (issue 19): its two characters are the mixtures docs/findings.md
describes, the generator and every scorer share the mixture, the testbed knows the optimum of their potential, and
the protocol runs on gm-easy (tuning split never reported, an optimum per evaluation task, its markdown table)."""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
from pathlib import Path

import pytest
from eacps_gaussian_mixture import optimum as om
from eacps_gaussian_mixture.generator import GaussianMixtureGenerator

from eacps.config import build_potential, load_config

BENCH = Path(__file__).parents[3] / "benchmarks" / "strategies.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_strategies_gm", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(("testbed", "shape", "sharpness", "threshold", "steps"),
                         [("gm-easy", [1, 2, 2], 1.0, 0.0, 50), ("gm-sharp", [4, 32, 32], 4.0, 2.0, 1000)])
def test_the_characters_share_one_mixture_whose_optimum_is_known(bench, tmp_path, testbed, shape, sharpness,
                                                                   threshold, steps):
    text = bench.config(bench.TUNE_TASKS + 2, {"best-of-n": bench.CONTESTANTS["best-of-n"]}, testbed)
    cfg = tomllib.loads(text)
    gen = cfg["generator"]
    assert gen["name"] == "gaussian-mixture" and gen["params"]["shape"] == shape and gen["params"]["steps"] == steps
    assert cfg["tasks"] == {"name": "gaussian-mixture", "n": 32, "seed": 0}
    mixture = {k: gen["params"][k] for k in ("shape", "components", "separation")}
    for name, crit in cfg["potential"]["criteria"].items():
        assert crit["scorer"] == f"gm-{name}" and {k: crit["params"][k] for k in mixture} == mixture
        if name != "consistency":
            assert (crit["params"]["sharpness"], crit["params"]["threshold"]) == (sharpness, threshold)
    (tmp_path / "c.toml").write_text(text)
    run_cfg, _ = load_config(tmp_path / "c.toml")
    generator = GaussianMixtureGenerator(GaussianMixtureGenerator.Params(**gen["params"]))
    assert om.supported(generator, build_potential(run_cfg.potential))  # so compare reports the gap to the optimum


def test_the_protocol_runs_on_gm_easy(bench, tmp_path, monkeypatch, capsys):
    out = tmp_path / "gm-easy"
    monkeypatch.setattr(sys, "argv", ["strategies.py", "--testbed", "gm-easy", "--eval-tasks", "2", "--budgets", "4",
                                      "--repeats", "1", "--pool", "8", "--strategies", "best-of-n,tree-search",
                                      "--out", str(out)])
    bench.main()
    text = capsys.readouterr().out
    assert "optimum gap closed [95% CI]" in text and "wall time:" in text
    summary = json.loads((out / "compare.json").read_text())
    p = summary["protocol"]
    assert p["reported"] == "evaluation" and len(p["tuning_tasks"]) == bench.TUNE_TASKS
    assert len(p["evaluation_tasks"]) == 2 and not set(p["evaluation_tasks"]) & set(p["tuning_tasks"])
    assert set(summary["optimum"]["per_task"]) == set(p["evaluation_tasks"])
    assert summary["cost_models"][0] == "measured" and len(summary["cost_models"]) == 2  # both cost models
    table = bench.markdown(summary).splitlines()
    assert any(line.startswith("| best-of-n |") for line in table)
    assert any("optimum gap closed [95% CI]" in line for line in table)
