"""benchmarks/tune_trajectories.py (the joint tuning rule over tuning-split runs) on a tiny gm-easy run: the rule read
on some seeds only is recomputed from those seeds' searches, and each setting's paired difference from its family's
old default is the mean over tasks of the same-seed differences."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from repo import load_script

pytest.importorskip("eacps_gaussian_mixture")
BENCH = Path(__file__).parents[1] / "benchmarks" / "tune_trajectories.py"


def load():
    return load_script(BENCH, "tune_bench")


def tune(tmp_path_factory, budgets: str, *extra: str):
    """A tiny zero-order tuning run on gm-easy at ``budgets``: (the module, its directory, its compare.json)."""
    mod = load()
    out = tmp_path_factory.mktemp("tune") / "tune-others-gm-easy"
    argv = ["tune_trajectories.py", "--testbed", "gm-easy", "--round", "others", "--tasks", "3", "--repeats", "2",
            "--pool", "16", "--budgets", budgets, "--only", "zo-n4-c95,zo-n6-c90", "--out", str(out), *extra]
    old, sys.argv = sys.argv, argv
    try:
        mod.main()
    finally:
        sys.argv = old
    return mod, out, json.loads((out / "compare.json").read_text())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tune(tmp_path_factory, "6")


def test_the_rule_on_every_seed_is_the_compare_table_and_on_one_seed_that_seeds_searches(run):
    mod, out, summary = run
    rows, chosen = mod.joint([out])
    a = summary["cost_models"][0]  # the rule reads multiplier (a)
    assert chosen == {"zero-order": max(("zo-n4-c95", "zo-n6-c90"), key=lambda k: next(
        r["multipliers"][a]["multiplier"] for r in summary["table"] if r["strategy"] == k))}
    assert mod.joint([out], seeds={0, 1}) == (rows, chosen)  # recomputed from the searches: the same figures
    one, _ = mod.joint([out], seeds={1})
    for label in ("best-of-n", "zo-n6-c90"):
        bests = [s["best"] for s in summary["searches"] if s["strategy"] == label and s["seed"] == 1]
        m = mod.compute_multiplier(summary["pool_samples"], sum(bests) / len(bests), 6.0)
        assert next(r for r in one if r.startswith(f"| {label} |")).split(" | ")[1].lstrip(">") \
            .startswith(f"{m['multiplier']:.2f}×")
    with pytest.raises(SystemExit, match="--seeds: no search"):
        mod.joint([out], seeds={7})


def test_the_rule_under_b_maximins_the_multiplier_when_an_evaluation_costs_a_generation(run):
    """--rule b (cost=1, the judge round): the choice and the min column read multiplier (b), the cells still show
    (a) / (b)."""
    mod, out, summary = run
    b = summary["cost_models"][-1]
    mult = {r["strategy"]: r["multipliers"] for r in summary["table"]}
    rows, chosen = mod.joint([out], cost=1)
    assert chosen == {"zero-order": max(("zo-n4-c95", "zo-n6-c90"), key=lambda k: mult[k][b]["multiplier"])}
    assert "min (b)" in rows[0] and "min (a)" in mod.joint([out])[0][0]
    row = next(r for r in rows if r.startswith("| zo-n6-c90 |")).split(" | ")
    assert row[-2] == f"{mult['zo-n6-c90'][b]['multiplier']:.2f}×"
    a = summary["cost_models"][0]
    assert row[1].lstrip(">").startswith(f"{mult['zo-n6-c90'][a]['multiplier']:.2f}× / ")


def test_each_setting_is_paired_with_its_familys_old_default(run):
    mod, out, summary = run
    best = {(s["strategy"], s["task"], s["seed"]): s["best"] for s in summary["searches"]}
    tasks = sorted({s["task"] for s in summary["searches"]})
    for seeds in ({0, 1}, {0}):
        diff = sum(sum(best[("zo-n6-c90", t, s)] - best[("zo-n4-c95", t, s)] for s in seeds) / len(seeds)
                   for t in tasks) / len(tasks)
        rows = mod.versus_default([out], seeds)
        assert [r.split(" | ")[0] for r in rows[2:]] == ["| zo-n6-c90"]  # the default is not paired with itself
        assert rows[2].split(" | ")[1].startswith(f"{diff:+.2f} [")


def test_a_setting_that_loses_to_the_baseline_paired_is_vetoed_whatever_its_multiplier(run, tmp_path):
    """--baseline: a setting whose paired difference from its family's baseline has a CI below 0 on one testbed is
    not eligible, even where its multipliers win the maximin (as one beyond the pool would); without the baseline,
    or on a run that lacks it, nothing is vetoed."""
    mod, out, summary = run
    worse = json.loads(json.dumps(summary))  # zo-n6-c90 made to lose every search, by a point, on a copy
    for s in worse["searches"]:
        if s["strategy"] == "zo-n6-c90":
            s["best"] -= 1.0 + abs(s["best"])
    for r in worse["table"]:  # ... while its multipliers are made to win
        if r["strategy"] == "zo-n6-c90":
            for m in r["multipliers"].values():
                m["multiplier"] = 1e6
    lost = tmp_path / "tune-others-gm-easy-lost"
    lost.mkdir()
    (lost / "compare.json").write_text(json.dumps(worse))
    assert mod.joint([out, lost])[1] == {"zero-order": "zo-n6-c90"}  # the multiplier alone chooses it
    rows, chosen = mod.joint([out, lost], baselines={"zo-": "zo-n4-c95"})
    assert chosen == {"zero-order": "zo-n4-c95"}
    assert any(r.startswith("| zo-n6-c90 (vetoed: loses to zo-n4-c95 on tune-others-gm-easy-lost)") for r in rows)
    assert mod.joint([out, lost], baselines={"zo-": "zo-absent"})[1] == {"zero-order": "zo-n6-c90"}


def test_a_held_out_testbed_cannot_be_tuned_on_and_is_unlike_the_others(capsys):
    """gm-guided and gm-fewstep are for evaluation only: tune_trajectories refuses them (argparse, exit 2, naming
    the choices), while benchmarks/strategies.py runs them; gm-flow, held out until it was looked at, is a tuning
    testbed now. Their configs pass the samplers' own fields (flow, guidance), unlike the DDIM presets."""
    mod = load()
    assert {"digits", "gm-easy", "gm-sharp", "gm-flow"} == set(mod.TUNABLE)
    assert {"gm-guided", "gm-fewstep", "gm-cluttered"} <= set(mod.TESTBEDS) - set(mod.TUNABLE)
    for held in ("gm-guided", "gm-fewstep", "gm-cluttered"):
        old, sys.argv = sys.argv, ["tune_trajectories.py", "--testbed", held]
        try:
            with pytest.raises(SystemExit) as exc:
                mod.main()
        finally:
            sys.argv = old
        assert exc.value.code == 2 and f"invalid choice: '{held}'" in capsys.readouterr().err
    import tomllib

    cfg = tomllib.loads(load_script(BENCH.with_name("strategies.py"), "bench_strategies").config(3, {}, "gm-flow"))
    gen = cfg["generator"]["params"]
    assert gen["sampler"] == "flow" and gen["sigma_spread"] == 2.0 and gen["shape"] == [2, 8, 8]
    assert all(c["params"]["sigma_spread"] == 2.0 for c in cfg["potential"]["criteria"].values())
    guided = tomllib.loads(mod.config(3, {}, "gm-guided"))["generator"]["params"]
    assert guided["guidance"] == 2.5 and guided["steps"] == 30
    assert "sampler" not in guided and "guidance" not in gen  # the presets' configs pass their own fields only
    easy = tomllib.loads(mod.config(3, {}, "gm-easy"))["generator"]["params"]
    assert "sampler" not in easy  # the tuned testbeds' configs (and their stores) are unchanged


@pytest.mark.parametrize("script", ["tune_trajectories.py", "strategies.py"])
def test_a_store_the_code_cannot_replay_ends_the_benchmark_in_one_line_exit_2(script, tmp_path, monkeypatch, capsys):
    """A ReplayError (or any StoreError) from compare ends a benchmark script as it ends the CLI: one line, exit 2."""
    from eacps.store import ReplayError

    mod = load_script(BENCH.with_name(script), f"bench_{script[:-3]}")

    def refuse(*a, **k):
        raise ReplayError("store.sqlite: search 's' asks {} at seq 1, where the store holds {}: the code changed")

    monkeypatch.setattr(mod, "run_compare", refuse)
    argv = [script, "--testbed", "gm-easy", "--out", str(tmp_path / "out")]
    monkeypatch.setattr(sys, "argv", argv + (["--tasks", "3"] if script.startswith("tune") else ["--quick"]))
    with pytest.raises(SystemExit) as exc:
        mod.main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and err.startswith(f"{script}: error: store.sqlite: search")


def test_siblings_partial_correlation_reads_what_siblings_share_beyond_the_preview():
    """benchmarks/siblings.py: two children that share only what the preview says read a partial correlation near 0
    (their raw correlation is high); children that also share a term of their own read its share."""
    mod = load_script(BENCH.with_name("siblings.py"), "siblings_bench")
    rng = np.random.default_rng(0)
    g, u, e1, e2 = rng.standard_normal((4, 4000))
    assert np.corrcoef(g + e1, g + e2)[0, 1] > 0.4 and abs(mod.partial(g + e1, g + e2, g)) < 0.05
    assert mod.partial(g + u + e1, g + u + e2, g) == pytest.approx(0.5, abs=0.05)


@pytest.fixture(scope="module")
def two_budgets(tmp_path_factory):
    return tune(tmp_path_factory, "4,6")


def test_a_run_of_several_budgets_is_one_column_per_budget_and_a_loss_at_one_vetoes(two_budgets, tmp_path):
    """The rule reads each budget of a run as a column (a default must hold at every budget): the cells are that
    budget's rows, the paired difference pairs that budget's searches only, and a setting that loses at one budget
    is vetoed naming it."""
    mod, out, summary = two_budgets
    a = summary["cost_models"][0]
    rows, _ = mod.joint([out])
    assert rows[0].startswith(f"| setting | {out.name} B4 (a) / (b) | {out.name} B6 (a) / (b) |")
    row = next(r for r in rows if r.startswith("| zo-n6-c90 |")).split(" | ")
    for cell, b in zip(row[1:3], (4, 6), strict=True):
        m = next(r for r in summary["table"] if r["strategy"] == "zo-n6-c90" and r["budget"] == b)["multipliers"][a]
        assert cell.lstrip(">").startswith(f"{m['multiplier']:.2f}× / ")
    best = {(s["strategy"], s["budget"], s["task"], s["seed"]): s["best"] for s in summary["searches"]}
    tasks = sorted({s["task"] for s in summary["searches"]})
    for b in (4, 6):
        diff = np.mean([np.mean([best[("zo-n6-c90", b, t, s)] - best[("zo-n4-c95", b, t, s)] for s in (0, 1)])
                        for t in tasks])
        assert mod.paired_difference(summary, "zo-n6-c90", "zo-n4-c95", None, b)[0] == pytest.approx(diff)
    worse = json.loads(json.dumps(summary))  # zo-n6-c90 made to lose at budget 6 only, on a copy
    for s in worse["searches"]:
        if s["strategy"] == "zo-n6-c90" and s["budget"] == 6:
            s["best"] -= 1.0 + abs(s["best"])
    lost = tmp_path / "tune-lost"
    lost.mkdir()
    (lost / "compare.json").write_text(json.dumps(worse))
    rows, chosen = mod.joint([lost], baselines={"zo-": "zo-n4-c95"})
    assert chosen == {"zero-order": "zo-n4-c95"}
    assert any(r.startswith("| zo-n6-c90 (vetoed: loses to zo-n4-c95 on tune-lost B6)") for r in rows)
    against = mod.versus_default([lost], None, {"zo-": "zo-n4-c95"})
    assert "tune-lost B4" in against[0] and "tune-lost B6" in against[0]


def test_every_round_names_grid_labels_and_starts_from_best_of_n():
    """A round is a list of GRID labels (a typo would only surface when the round runs), best-of-N first (the
    reference every multiplier of the round is read against)."""
    mod = load()
    for name, labels in mod.ROUNDS.items():
        assert labels[0] == "best-of-n" and len(set(labels)) == len(labels), name
        assert not [k for k in labels if k not in mod.GRID], name


def test_a_column_where_every_setting_of_a_family_is_beyond_the_pool_is_not_read_by_its_maximin(run, tmp_path):
    """Beyond the pool a multiplier is the pool over the setting's cost: a bound that ranks costs, not quality. A
    column where every setting of the family is beyond it is shown in parentheses and read by neither the maximin
    nor the geometric mean (the veto still reads it); one where only some are is read, at their bounds; a family
    beyond the pool everywhere reads every column."""
    mod, out, summary = run
    beyond = json.loads(json.dumps(summary))  # both settings beyond the pool, the other one far "cheaper"
    for r in beyond["table"]:
        if r["strategy"].startswith("zo-"):
            for m in r["multipliers"].values():
                m["bound"] = ">"
                m["multiplier"] = 1e-3 if r["strategy"] == mod.joint([out])[1]["zero-order"] else 1e3
    censored = tmp_path / "tune-beyond"
    censored.mkdir()
    (censored / "compare.json").write_text(json.dumps(beyond))
    rows, chosen = mod.joint([out, censored])
    assert (rows[2:], chosen) != mod.joint([out]) and chosen == mod.joint([out])[1]  # only the cells differ
    for label in ("zo-n4-c95", "zo-n6-c90"):
        cells = next(r for r in rows if r.startswith(f"| {label} |")).split(" | ")
        assert cells[2].startswith("(>") and not cells[1].startswith("(")
        assert cells[-2:] == next(r for r in mod.joint([out])[0] if r.startswith(f"| {label} |")).split(" | ")[-2:]
    assert mod.joint([censored])[1] != chosen  # beyond the pool everywhere: every column is read
    some = json.loads(json.dumps(beyond))  # only the chosen one beyond the pool: the column is read, at its bound
    for r in some["table"]:
        if r["strategy"].startswith("zo-") and r["strategy"] != chosen["zero-order"]:
            for m in r["multipliers"].values():
                m["bound"] = "="
    (censored / "compare.json").write_text(json.dumps(some))
    assert mod.joint([out, censored])[1] != chosen
    mults = {"ts-a": [{"a": {"bound": ">"}}, {"a": {"bound": "="}}],
             "ts-b": [{"a": {"bound": ">"}}, {"a": {"bound": ">"}}],
             "best-of-n": [{"a": {"bound": "="}}, {"a": {"bound": ">"}}]}
    assert mod.readable(mults, "a") == {"ts-a": [False, True], "ts-b": [False, True], "best-of-n": [True, False]}


def test_task_seed_tunes_on_the_tuning_split_of_another_task_set(run, tmp_path_factory):
    _, out, summary = tune(tmp_path_factory, "4", "--task-seed", "1")
    assert "seed = 1" in (out / "config.toml").read_text()
    assert summary["protocol"]["reported"] == "tuning"
    assert {s["task"] for s in summary["searches"]} != {s["task"] for s in run[2]["searches"]}  # task set 0's


def test_a_negative_task_seed_is_refused_by_both_scripts_in_one_line(capsys):
    mod = load()
    for main, prog in ((mod.main, "tune_trajectories.py"), (mod._bench.main, "strategies.py")):
        old, sys.argv = sys.argv, [prog, "--task-seed", "-1"]
        try:
            with pytest.raises(SystemExit) as exc:
                main()
        finally:
            sys.argv = old
        assert exc.value.code == 2
        assert "argument --task-seed: must be >= 0" in capsys.readouterr().err
