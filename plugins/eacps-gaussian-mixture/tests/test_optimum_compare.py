"""The known optimum (reachable, cached, refused for potentials it cannot bound), the gap fraction of
``eacps compare`` against the exact order statistics of the pool, and the testbed in the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from eacps_gaussian_mixture import optimum as om
from eacps_gaussian_mixture import tasks
from eacps_gaussian_mixture.generator import GaussianMixtureGenerator
from eacps_gaussian_mixture.scorers import GMConsistency, GMIdentity, GMRealism

from eacps import Potential, tomlw
from eacps.analysis.compare import Split, analyze, format_compare, run_compare
from eacps.orderstats import expected_max_empirical
from eacps.potential import Calibration, Criterion

LOW = {"shape": (1, 2, 2), "components": 4, "separation": 2.0}  # the easy, low-dimension character


def setup(spec: dict, sharpness: float = 1.0):
    gen = GaussianMixtureGenerator(GaussianMixtureGenerator.Params(**spec, steps=20))
    pot = Potential.from_scorers(consistency=GMConsistency(GMConsistency.Params(**spec)),
                                 realism=GMRealism(GMRealism.Params(**spec, sharpness=sharpness)),
                                 identity=GMIdentity(GMIdentity.Params(**spec, sharpness=sharpness)))
    return gen, pot


@pytest.mark.parametrize(("spec", "sharpness"), [(LOW, 1.0), ({"shape": (1, 4, 4), "components": 4}, 3.0)])
def test_optimum_bounds_an_independent_pool_and_is_reachable(spec, sharpness):
    gen, pot = setup(spec, sharpness)
    cond = tasks(2, classes=4)[1]
    opt = gen.optimum(cond, pot)
    pool = om.pool(gen, cond, pot, 4096)
    assert not np.isnan(pool).any()
    assert pool.max() <= opt + 1e-9, (pool.max(), opt)  # no sample of the pool beats it
    assert opt <= 10 * sum(c.weight for c in pot.criteria) + 1e-9
    assert opt - pool.max() < 0.15 * (opt - pool.mean()), (opt, pool.max(), pool.mean())  # tight, not loose


def test_optimum_is_cached_and_refused_when_it_cannot_be_known(monkeypatch):
    gen, pot = setup(LOW)
    cond = tasks(1, classes=4)[0]
    first = gen.optimum(cond, pot)
    monkeypatch.setattr(om, "_compute", lambda *a, **k: pytest.fail("recomputed a cached optimum"))
    assert gen.optimum(cond, pot) == first
    monkeypatch.undo()
    other = GMRealism(GMRealism.Params(**{**LOW, "separation": 3.0}))  # another mixture than the generator's
    assert gen.optimum(cond, Potential([Criterion("realism", other, 1.0)])) is None
    std = Criterion("realism", GMRealism(GMRealism.Params(**LOW)), 1.0, Calibration(kind="standardize"))
    assert gen.optimum(cond, Potential([std])) is None
    assert gen.optimum(cond, Potential([Criterion("realism", GMRealism(GMRealism.Params(**LOW)), 1.0,
                                                  Calibration(kind="range", lo=2.0, hi=8.0))])) is not None


def test_shell_holds_the_noise_the_toolkit_draws():
    lo, hi = om.shell(1024)
    norms = np.linalg.norm(np.random.default_rng(0).standard_normal((20000, 1024)), axis=1)
    assert ((norms < lo) | (norms > hi)).mean() < 1e-3
    assert lo < np.sqrt(1024) < hi


def test_best_of_n_gap_fraction_follows_the_exact_order_statistics():
    """Best-of-N that draws N of the pool's samples (without replacement) closes, on average, exactly
    (E[max of N] - mean) / (optimum - mean) of the gap, E[max of N] the pool's U-statistic."""
    rng = np.random.default_rng(0)
    pools = {f"t{i}": list(rng.normal(40 + i, 3.0, size=64)) for i in range(5)}
    optima = {t: float(np.max(v)) + 2.0 for t, v in pools.items()}
    budgets, repeats = [1, 2, 4, 16], 3000
    records = [{"strategy": "best-of-n", "budget": b, "repeat": r, "seed": r, "task": t,
                "best": float(np.max(rng.choice(v, size=b, replace=False))), "steps": 10 * b, "evaluations": b,
                "scorer_calls": {"realism": b}} for b in budgets for r in range(repeats) for t, v in pools.items()]
    s = analyze(records, pools, ["best-of-n"], budgets, {"kind": "fixed"}, full_steps=10, criteria=["realism"],
                n_boot=200, optima=optima)
    exact = {b: sum(expected_max_empirical(pools[t], b) - np.mean(pools[t]) for t in pools)
             / sum(optima[t] - np.mean(pools[t]) for t in pools) for b in budgets}
    curve = dict(zip(s["optimum"]["best_of_n"]["n"], s["optimum"]["best_of_n"]["fraction"], strict=True))
    for row in s["table"]:
        b, got = row["budget"], row["optimum_gap"]
        assert curve[b] == pytest.approx(exact[b], abs=1e-9)
        assert got["fraction"] == pytest.approx(exact[b], abs=0.02), (b, got, exact[b])
        assert got["ci95"][0] <= got["fraction"] <= got["ci95"][1]
    assert exact[1] == pytest.approx(0.0, abs=1e-12) and exact[16] > exact[4] > exact[2] > 0.1
    assert "optimum gap closed" in format_compare(s)
    assert "optimum" not in format_compare(analyze(records, pools, ["best-of-n"], budgets, {"kind": "fixed"},
                                                   full_steps=10, criteria=["realism"], n_boot=50))


def test_compare_on_the_testbed_reports_the_gap_to_the_optimum(tmp_path):
    spec = {**LOW, "shape": [1, 2, 2]}
    crit = {n: {"scorer": f"gm-{n}", "params": spec} for n in ("consistency", "realism", "identity")}
    cfg = tmp_path / "gm.toml"
    cfg.write_text(tomlw.dumps({"generator": {"name": "gaussian-mixture", "params": {**spec, "steps": 10}},
                                "potential": {"criteria": crit}, "search": {"batch_size": 16},
                                "conditions": [{"id": f"c{i}", "class_label": i % 4, "extra": {"reference_seed": i}}
                                               for i in range(6)]}))
    s = run_compare(cfg, tmp_path / "out", strategies="best-of-n,eacps", budgets="4,8", repeats=4, pool=64,
                    split=Split(tune_tasks=2))
    assert set(s["optimum"]["per_task"]) == {"c2", "c3", "c4", "c5"}
    rows = {(r["strategy"], r["budget"]): r for r in s["table"]}
    curve = dict(zip(s["optimum"]["best_of_n"]["n"], s["optimum"]["best_of_n"]["fraction"], strict=True))
    for b in (4, 8):  # best-of-N's own fraction agrees with the pool's exact curve, independent draws
        g = rows[("best-of-n", b)]["optimum_gap"]
        assert g["ci95"][0] - 0.1 <= curve[b] <= g["ci95"][1] + 0.1, (b, g, curve[b])
    assert 0 < rows[("eacps", 8)]["optimum_gap"]["fraction"] <= 1.2
    text = format_compare(s)
    assert "optimum gap closed [95% CI]" in text
    saved = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert saved["optimum"]["mean"] == pytest.approx(s["optimum"]["mean"])
    from eacps.analysis.report import write_report

    html = write_report(tmp_path / "out").read_text()
    assert "optimum gap closed [95% CI]" in html


def test_eacps_plugins_lists_the_testbed():
    from eacps.commands.cli import cli

    out = CliRunner().invoke(cli, ["plugins"])
    assert out.exit_code == 0, out.output
    for name in ("gaussian-mixture", "gm-consistency", "gm-realism", "gm-identity"):
        assert name in out.output
