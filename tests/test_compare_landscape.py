import json
import re

import configs
import pytest
from runs import count

from eacps.analysis.compare import compute_multiplier, parse_budgets, parse_contestants
from eacps.analysis.landscape import parse_neighborhoods
from eacps.commands.cli import main
from eacps.config import ConfigError

CFG = {
    "tasks": {"name": "toy", "n": 4},
    "generator": {"name": "toy"},
    "potential": {"criteria": {"realism": {"scorer": "toy-pixel"}}},
    "search": {"batch_size": 8},
}


def test_compare_end_to_end_and_reuse(tmp_path, toy_plugin):
    cfg = configs.write(tmp_path / "c.toml", CFG)
    out = tmp_path / "cmp"
    args = ["compare", str(cfg), "--strategies", "eacps,best-of-n,zero-order", "--budgets", "8,16",
            "--repeats", "2", "--pool", "24", "--out", str(out), "--quiet"]
    assert main(args) == 0
    summary = json.loads((out / "compare.json").read_text())
    rows = {(r["strategy"], r["budget"]): r for r in summary["table"]}
    assert set(rows) == {(s, b) for s in ("eacps", "best-of-n", "zero-order") for b in (8, 16)}
    # charged cost: every full-fidelity candidate is 10 steps and one potential evaluation
    assert rows[("eacps", 16)]["steps"] == rows[("best-of-n", 16)]["steps"] == 160
    assert rows[("best-of-n", 16)]["evaluations"] == 16 and rows[("best-of-n", 16)]["scorer_calls"] == {"realism": 16}
    assert rows[("eacps", 8)]["diff_vs_best_of_n"] == pytest.approx(
        rows[("eacps", 8)]["mean_best"] - rows[("best-of-n", 8)]["mean_best"])
    # the multiplier divides N* by the *charged* cost in best-of-N-candidate equivalents, under each cost model
    for label in ("best-of-n", "zero-order"):
        mf = rows[(label, 16)]
        judge = mf["multipliers"]["scorer_cost=1"]
        assert judge["equivalents"] == pytest.approx((mf["steps"] / 10 + mf["evaluations"]) / 2)
        if judge["bound"] == "=":
            assert judge["multiplier"] == pytest.approx(judge["n_star"] / judge["equivalents"])
    assert rows[("best-of-n", 16)]["multipliers"]["measured"]["equivalents"] == pytest.approx(16)
    # the reference pool: its own stream, 24 samples per task, never a contestant; the curve stops at the pool
    curve = summary["best_of_n_curve"]
    assert summary["pool"]["size"] == 24 and max(curve["n"]) == 16
    assert "best-of-n-pool" not in {r["strategy"] for r in summary["table"]}
    pool_seeds = summary["protocol"]["pool"]["seeds"].values()
    assert min(pool_seeds) >= 2**32 > max(r["strategy_seed"] for r in summary["searches"])
    assert curve["writeup_approx"][curve["n"].index(2)] > curve["normal_exact"][curve["n"].index(2)]
    # 4 tasks and 2 seeds: both say so
    assert any("only 4 tasks" in w for w in summary["warnings"]) and any("2 seed(s)" in w for w in summary["warnings"])
    html = (out / "report.html").read_text()
    assert re.search(r"id=.compare.", html) and re.search(r"id=.scaling.", html) and "write-up approx" in html
    # a repeated compare regenerates nothing
    n_rows = count(out)
    assert main(args) == 0
    assert json.loads((out / "compare.json").read_text())["generated"] == 0
    assert count(out) == n_rows


def test_landscape_separates_local_and_seed_offset_neighbours(tmp_path, toy_plugin, capsys):
    cfg = configs.write(tmp_path / "c.toml", configs.edit(CFG, "tasks.n", 5))
    out = tmp_path / "land"
    assert main(["landscape", str(cfg), "--neighborhoods", "seed-offset,pcn:0.1,pcn:1.2", "--parents", "10",
                 "--out", str(out), "--quiet"]) == 0
    rows = {r["neighborhood"]: r for r in json.loads((out / "landscape.json").read_text())["neighborhoods"]}
    assert abs(rows["seed-offset"]["noise_r"]) < 0.2  # s+1 is not a neighbour of s
    assert rows["pcn:0.1"]["noise_r"] == pytest.approx(0.995, abs=0.02)
    assert rows["pcn:0.1"]["potential_r"] > 0.9 > abs(rows["seed-offset"]["potential_r"])
    assert rows["pcn:0.1"]["potential_r"] > rows["pcn:1.2"]["potential_r"]
    assert re.search(r"id=.landscape.", (out / "report.html").read_text())


def test_argument_errors(toy_plugin):
    with pytest.raises(ConfigError, match="--budgets"):
        parse_budgets("8,x")
    with pytest.raises(ConfigError, match="unknown strategy 'nope'"):
        parse_contestants("eacps,nope")
    with pytest.raises(ConfigError, match="allowed: seed-offset, pcn:THETA"):
        parse_neighborhoods("pcn:2")


def test_compute_multiplier_inverts_the_best_of_n_curve():
    samples = {"t": [float(i) for i in range(100)]}
    m = compute_multiplier(samples, target=90.0, equivalents=4)
    from eacps.orderstats import expected_max_empirical

    assert expected_max_empirical(samples["t"], m["n_star"]) == pytest.approx(90.0, abs=1e-6)
    assert m["multiplier"] == pytest.approx(m["n_star"] / 4) and m["bound"] == "="
    assert compute_multiplier(samples, target=200.0, equivalents=4)["bound"] == ">"
    assert compute_multiplier(samples, target=10.0, equivalents=4)["bound"] == "<="


def test_best_of_n_multiplier_of_itself_is_one_on_average():
    """The curve (unbiased U-statistic over a larger pool) and a realized best-of-B agree: multiplier ~ 1."""
    import numpy as np

    rng = np.random.default_rng(0)
    pools = {f"t{i}": list(rng.normal(rng.normal(), 1.0, 64)) for i in range(400)}
    for b in (4, 16):
        realized = float(np.mean([max(xs[:b]) for xs in pools.values()]))
        assert compute_multiplier(pools, realized, b)["multiplier"] == pytest.approx(1.0, abs=0.15)


def test_a_free_scorer_cost_model_charges_steps_only(tmp_path, toy_plugin, capsys):
    """``--scorer-cost 0`` (scorers free) is a cost model like any other; a negative cost is refused."""
    cfg = configs.write(tmp_path / "c.toml", CFG)
    base = ["compare", str(cfg), "--strategies", "best-of-n,zero-order", "--budgets", "8", "--repeats", "1",
            "--pool", "16", "--quiet"]
    assert main([*base, "--scorer-cost", "-1", "--out", str(tmp_path / "bad")]) == 2
    assert "--scorer-cost" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main([*base, "--scorer-cost", "0", "--out", str(tmp_path / "cmp")]) == 0
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())["table"]
    for r in rows:
        assert r["multipliers"]["scorer_cost=0"]["equivalents"] == pytest.approx(r["steps"] / 10)


def test_the_benchmark_prints_a_compare_as_findings_tables(tmp_path, toy_plugin):
    """``benchmarks/strategies.py --markdown`` (how docs/findings.md tables are made) reads a compare.json."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bench_strategies", Path(__file__).parents[1] / "benchmarks" / "strategies.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cfg = configs.write(tmp_path / "c.toml", CFG)
    assert main(["compare", str(cfg), "--strategies", "best-of-n,zero-order", "--budgets", "8", "--repeats", "1",
                 "--pool", "16", "--out", str(tmp_path / "cmp"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    text = bench.markdown(summary)
    rows = [line for line in text.splitlines() if line.startswith("| zero-order ")]
    assert len(rows) == 1 and rows[0].count("|") == 8  # 7 columns, the last two multipliers with their CIs
    zo = next(r for r in summary["table"] if r["strategy"] == "zero-order")
    assert f"{zo['mean_best']:.2f} [" in rows[0] and ("×" in rows[0] or ">pool" in rows[0])
