"""benchmarks/dimension.py (scaling in dimension on the gaussian-mixture testbed) in its --quick form: every
measurement runs at every shape, the raw loop computes what the search stores, and the tables carry each figure.

Speed is never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repo import load_script

pytest.importorskip("eacps_gaussian_mixture")
BENCH = Path(__file__).parents[1] / "benchmarks" / "dimension.py"


def load():
    return load_script(BENCH, "dimension_bench")


@pytest.mark.slow
def test_dimension_benchmark_quick_run(tmp_path, capsys):
    mod = load()
    out = mod.main(["--quick", "--strategies", "best-of-n,fk-steering,branched-best-of-n", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "dimension.json").read_text()) == json.loads(json.dumps(out))
    assert [d["latent"] for d in out["shapes"]] == ["1x2x2", "1x4x4"]
    assert [d["steps"] for d in out["shapes"]] == [10, 20]  # T grows as sqrt(D): 4 -> 16 dimensions doubles it
    for d in out["shapes"]:
        cfg = json.loads((tmp_path / d["latent"] / "compare.json").read_text())
        assert cfg["tasks"] == 2 and cfg["pool"]["size"] == 8
        o = d["overhead"]
        assert o["candidates"] == 8 and o["same_potentials"] is True  # the raw loop is the search's computation
        assert o["search_over_raw"] == pytest.approx(o["search_s"] / o["raw_s"])
        assert o["search_over_scored"] == pytest.approx(o["search_s"] / o["raw_scored_s"])
        rows = {r["strategy"]: r for r in d["rows"]}
        assert set(rows) == {"best-of-n", "fk-steering", "branched-best-of-n"}
        assert all(r["multiplier_a"] and r["multiplier_b"] and r["optimum_gap"] for r in rows.values())
        assert rows["best-of-n"]["same_sampler_a"] is None and rows["best-of-n"]["sampler_effect"] is None
        for label in ("fk-steering", "branched-best-of-n"):  # branching strategies: the same-sampler baseline
            assert rows[label]["same_sampler_a"] and rows[label]["sampler_effect"] is not None
    text = capsys.readouterr().out
    for d in out["shapes"]:
        for label in ("best-of-n", "fk-steering", "branched-best-of-n"):
            assert sum(line.startswith(f"| {label} | {d['latent']} |") for line in text.splitlines()) == 1
        assert f"| {d['latent']} | {d['dim']} | {d['steps']} |" in text


@pytest.mark.slow
def test_strategies_markdown_has_the_search_or_sampler_table(tmp_path):
    """``benchmarks/strategies.py --markdown`` on a gaussian-mixture compare: the optimum column, and for every
    branching row (only those) its schedule, both multipliers under both cost models and the sampler effect."""
    mod = load()
    mod.main(["--quick", "--shapes", "1x2x2", "--strategies", "best-of-n,fk-steering,branched-best-of-n",
              "--out", str(tmp_path)])
    bench = load_script(BENCH.parent / "strategies.py", "bench_strategies")
    summary = json.loads((tmp_path / "1x2x2" / "compare.json").read_text())
    lines = bench.markdown(summary).splitlines()
    assert "optimum gap closed [95% CI]" in lines[4]
    start = next(i for i, line in enumerate(lines) if line.startswith("Search or sampler? (budget 4;"))
    table = lines[start + 2:]
    assert table[0].startswith("| strategy | branch schedule (steps of 10; θ) |") and table[0].count("|") == 8
    body = {line.split(" | ")[0][2:]: line for line in table[2:]}
    assert set(body) == {"fk-steering", "branched-best-of-n"}  # best-of-n does not branch: no row
    for label, line in body.items():
        row = next(r for r in summary["table"] if r["strategy"] == label)
        same = row["same_sampler"]
        assert ", ".join(map(str, same["schedule"]["steps"])) in line
        assert f"{same['effect']:+.2f} [{same['effect_ci95'][0]:+.2f}," in line
        for name in summary["cost_models"]:
            assert bench.multiplier_text(same["multipliers"][name], times="×") in line


def test_dimension_benchmark_steps_and_bad_input():
    mod = load()
    assert mod.steps_for((4, 64, 64), (4, 16, 16), 50, fixed=False) == 200
    assert mod.steps_for((4, 64, 64), (4, 16, 16), 50, fixed=True) == 50
    with pytest.raises(SystemExit, match="--shapes: '4x16' is not CxHxW"):
        mod.main(["--shapes", "4x16"])
    with pytest.raises(SystemExit, match="must include best-of-n"):
        mod.main(["--strategies", "fk-steering", "--shapes", "1x2x2"])


def test_loads_beside_a_strategies_folder(monkeypatch, tmp_path):
    """Imported in-process after something imported a folder named ``strategies`` as a namespace package (the
    repository had one; any checkout may), the benchmark still finds benchmarks/strategies.py (it failed with
    ImportError)."""
    import importlib
    import sys

    (tmp_path / "strategies").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "strategies", raising=False)
    ns = importlib.import_module("strategies")
    assert getattr(ns, "__file__", None) is None  # the folder, a namespace package
    try:
        assert load().TUNE_TASKS == 30
    finally:
        sys.modules.pop("strategies", None)
