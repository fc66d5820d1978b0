"""Search or sampler? compare's same-sampler baselines (random paths with a strategy's own branch schedule, no
selection) and the sampler effect (the branched-best-of-n strategy they are drawn with is tested in
tests/test_branched_best_of_n.py)."""

from __future__ import annotations

import json

import configs
import numpy as np
import pytest
from runs import candidates

from eacps.analysis.compare import (
    POOL,
    SAMPLER_POOL,
    Contestant,
    analyze,
    sampler_pool_id,
    sampler_schedules,
)
from eacps.api import make_strategy
from eacps.commands.cli import main
from eacps.recipe import Recipe
from eacps.strategies.best_of_n import BestOfN
from eacps.strategy import SamplerSchedule

STEPPING = {
    "tasks": {"name": "toy", "n": 4},
    "generator": {"name": "toy", "params": {"stepping": True}},
    "potential": {"criteria": {"realism": {"scorer": "toy-pixel"}}},
    "searches": [
        {"label": "best-of-n", "strategy": "best-of-n"},
        {"label": "tree", "strategy": "tree-search", "params": {"levels": [0.5, 0.8], "theta": 0.7, "wave": 4}},
        {"label": "fk", "strategy": "fk-steering", "params": {"resample_at": [0.5], "branch_theta": 1.2}},
        {"label": "mf", "strategy": "multi-fidelity", "params": {"branch_at": [], "promotion": "drop"}},
        {"label": "branched", "strategy": "branched-best-of-n", "params": {"at": [0.5], "theta": 1.2}},
    ],
}


def _seeds(recipe: Recipe) -> set[int]:
    """Every seed a recipe draws (its root and its branches)."""
    return {recipe.seed, *(b.seed for b in recipe.branches)}


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    import toy

    from eacps import plugins

    plugins.register_plugin(toy)
    try:
        tmp = tmp_path_factory.mktemp("sampler")
        cfg = configs.write(tmp / "c.toml", STEPPING)
        out = tmp / "cmp"
        args = ["compare", str(cfg), "--strategies", "best-of-n,tree,fk,mf,branched", "--budgets", "4",
                "--repeats", "2", "--pool", "12", "--out", str(out), "--quiet"]
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(args) == 0
        yield out, json.loads((out / "compare.json").read_text()), buf.getvalue()
    finally:
        plugins.unregister_plugin(toy)


def test_branching_rows_get_both_multipliers_and_the_effect(compared):
    _, summary, text = compared
    rows = {r["strategy"]: r for r in summary["table"]}
    # declared schedules, bound to the toy's T = 10: tree levels 0.5, 0.8 -> steps 5, 8; fk's resampling at 5
    assert rows["tree"]["same_sampler"]["schedule"] == {"steps": [5, 8], "thetas": [0.7, 0.7],
                                                        "label": "renoise@5,8 theta=0.7,0.7"}
    assert rows["fk"]["same_sampler"]["schedule"]["steps"] == [5]
    assert rows["fk"]["same_sampler"]["schedule"]["thetas"] == [1.2]
    # no branches, no baseline: best-of-N and unbranched multi-fidelity (selection alone does not change the sampler)
    assert "same_sampler" not in rows["best-of-n"] and "same_sampler" not in rows["mf"]
    for label in ("tree", "fk", "branched"):
        ss = rows[label]["same_sampler"]
        assert ss["pool"] == 12 and set(ss["multipliers"]) == set(rows[label]["multipliers"])
        lo, hi = ss["effect_ci95"]
        assert lo <= ss["effect"] <= hi
        m = ss["multiplier"]
        assert m["equivalents"] == rows[label]["multiplier"]["equivalents"]  # the same charged cost
    # branched-best-of-n and fk share a schedule, hence one pool and one effect
    assert rows["fk"]["same_sampler"]["effect"] == rows["branched"]["same_sampler"]["effect"]
    assert set(summary["sampler_pool_samples"]) == {"renoise@5,8 theta=0.7,0.7", "renoise@5 theta=1.2"}
    # the text prints the section: both multipliers and the effect per branching row
    section = text[text.index("search or sampler?"):]
    for label in ("tree", "fk", "branched"):
        line = next(ln for ln in section.splitlines() if ln.startswith(label + " "))
        assert line.count("x [") + line.count(">pool") + line.count("<=") >= 2 and "[" in line.split()[-2]
    assert "best-of-n " not in section.split("\n", 2)[2] and "\nmf " not in section
    html = (compared[0] / "report.html").read_text()
    assert "id='sampler'" in html or 'id="sampler"' in html


def test_same_sampler_pool_follows_the_schedule_on_its_own_stream(compared):
    out, summary, _ = compared
    by_search: dict[str, list[Recipe]] = {}
    for c in candidates(out, role="search"):
        by_search.setdefault(c.search, []).append(c.recipe)
    sampler = {s: rs for s, rs in by_search.items() if f"/{SAMPLER_POOL}/" in s}
    contestants = {s: rs for s, rs in by_search.items() if "/pool" not in s and f"/{SAMPLER_POOL}/" not in s
                   and f"/{POOL}/" not in s}
    assert len(sampler) == 2 * 4 and contestants  # two schedules x four tasks
    schedules = [SamplerSchedule((5, 8), (0.7, 0.7)), SamplerSchedule((5,), (1.2,))]
    for search, recipes in sampler.items():
        sched = next(s for s in schedules if sampler_pool_id(search.split("/")[0], s, 12, "/per-task") == search)
        want = tuple(zip(sched.steps, sched.thetas, strict=True))
        assert len(recipes) == 12
        for r in recipes:  # exactly the schedule: every branch point, its angle, nothing else; full paths
            assert tuple((b.step, b.theta) for b in r.branches) == want and r.until is None and not r.moves
    # roots: the reference pool's (paired); every seed drawn is disjoint from every contestant's seeds
    pool_roots = {s.split("/")[0]: {r.seed for r in rs} for s, rs in by_search.items() if f"/{POOL}/" in s}
    contestant_seeds = set().union(*(_seeds(r) for rs in contestants.values() for r in rs))
    for search, recipes in sampler.items():
        assert {r.seed for r in recipes} == pool_roots[search.split("/")[0]]
        assert not set().union(*(_seeds(r) for r in recipes)) & contestant_seeds
    pool_seeds = summary["protocol"]["pool"]["seeds"]  # per task, >= 2^32: no contestant's (< 2^32)
    assert len(set(pool_seeds.values())) == 4 and min(pool_seeds.values()) >= 2**32


def _records(tasks, label, best):
    return [{"strategy": label, "budget": 4, "repeat": 0, "seed": 0, "task": t, "best": b, "steps": 40,
             "evaluations": 4, "scorer_calls": {"u": 4}} for t, b in zip(tasks, best, strict=True)]


def _analyze(pools, spools, best):
    tasks = sorted(pools)
    sched = SamplerSchedule((5,), (1.0,))
    records = _records(tasks, "best-of-n", [max(pools[t][:4]) for t in tasks]) + _records(tasks, "x", best)
    return analyze(records, pools, ["best-of-n", "x"], [4], {}, full_steps=10, criteria=["u"], n_boot=300,
                   schedules={("x", 4): sched}, sampler_pools={sched.label: spools})


def test_sampler_effect_is_zero_when_the_sampler_is_unchanged():
    rng = np.random.default_rng(0)
    pools = {f"t{i}": list(rng.normal(i, 1.0, 64)) for i in range(12)}
    best = [float(np.mean(sorted(pools[t])[-8:])) for t in sorted(pools)]
    row = {r["strategy"]: r for r in _analyze(pools, pools, best)["table"]}["x"]
    ss = row["same_sampler"]
    assert ss["effect"] == 0.0 and ss["effect_ci95"] == [0.0, 0.0]
    assert ss["multiplier"] == row["multiplier"]  # the same pool: the same multiplier, CI and all


def test_sampler_effect_and_multiplier_track_a_shifted_sampler():
    rng = np.random.default_rng(1)
    pools = {f"t{i}": list(rng.normal(i, 1.0, 64)) for i in range(12)}
    shifted = {t: [v + 0.5 + rng.normal(0, 0.1) for v in vs] for t, vs in pools.items()}
    best = [float(np.mean(sorted(pools[t])[-8:])) for t in sorted(pools)]
    row = {r["strategy"]: r for r in _analyze(pools, shifted, best)["table"]}["x"]
    ss = row["same_sampler"]
    lo, hi = ss["effect_ci95"]
    assert 0.45 < lo <= ss["effect"] <= hi < 0.55
    # a better sampler needs fewer of its own samples to reach the same mean best: a smaller multiplier
    assert ss["multiplier"]["n_star"] < row["multiplier"]["n_star"]
    assert ss["multiplier"]["multiplier"] < row["multiplier"]["multiplier"]


def test_sampler_effect_ci_counts_the_seeds_every_task_shares():
    """Every task's pool draws the same seeds, so a seed's luck is shared by all tasks: two samplers with the
    same distribution, each with its own shared per-seed offsets, must not look different (resampling tasks alone
    would find an 'effect' of the size of the offsets' mean)."""
    rng = np.random.default_rng(2)
    k, n_tasks = 32, 30
    hits = 0
    for _ in range(20):
        shared_a, shared_b = rng.normal(0, 2.0, k), rng.normal(0, 2.0, k)  # per-position luck, common to tasks
        pools = {f"t{i}": list(i + shared_a + rng.normal(0, 0.5, k)) for i in range(n_tasks)}
        spools = {f"t{i}": list(i + shared_b + rng.normal(0, 0.5, k)) for i in range(n_tasks)}
        best = [float(np.mean(sorted(pools[t])[-8:])) for t in sorted(pools)]
        ss = {r["strategy"]: r for r in _analyze(pools, spools, best)["table"]}["x"]["same_sampler"]
        lo, hi = ss["effect_ci95"]
        hits += lo <= 0.0 <= hi
        assert hi - lo > 2 * 1.96 * 2.0 * np.sqrt(2 / k) * 0.6  # about the width the shared offsets imply
    assert hits >= 17  # a 95% interval covers the true zero effect (it would almost never with tasks alone)


def test_schedules_are_declared_not_guessed():
    contestants = [Contestant("ts", "tree-search", {"levels": [0.3, 0.6], "theta": 0.4}),
                   Contestant("plain", "best-of-n"),
                   Contestant("mf", "multi-fidelity", {"branch_at": [], "promotion": "drop"}),
                   Contestant("mf-branched", "multi-fidelity"), Contestant("none", "branched-best-of-n", {"steps": []})]
    got = sampler_schedules({(c.label, b): make_strategy(c.strategy, c.params, budget=b, seed=0)
                             for c in contestants for b in (4, 8)}, 20)
    assert got == {**{("ts", b): SamplerSchedule((6, 12), (0.4, 0.4)) for b in (4, 8)},
                   # by default: the children's renoises at the rungs (0.3, 0.6) and every path's at 0.8
                   **{("mf-branched", b): SamplerSchedule((6, 12, 16), (1.0,) * 3) for b in (4, 8)}}

    class Sneaky(BestOfN):  # a best-of-N by name that declares a branch schedule: compare believes the declaration
        def sampler_schedule(self):
            return SamplerSchedule((3,), (0.2,))

    assert Sneaky(budget=4).bind(10).sampler_schedule().params() == {"steps": [3], "theta": [0.2]}


def test_no_pool_no_baseline_and_no_section():
    from eacps.analysis.compare import format_compare

    tasks = [f"t{i}" for i in range(3)]
    sched = SamplerSchedule((5,), (1.0,))
    summary = analyze(_records(tasks, "x", [1.0, 2.0, 3.0]), {}, ["x"], [4], {}, full_steps=10, criteria=["u"],
                      n_boot=50, schedules={("x", 4): sched}, sampler_pools={})
    summary["warnings"] = []
    assert "same_sampler" not in summary["table"][0]
    assert "search or sampler?" not in format_compare(summary)


def test_sampler_effect_benchmark_table():
    """benchmarks/sampler_effect.py: point estimates are the plain means and ratios, the CIs resample tasks and
    paths, and a cell with the vanilla distribution but other seeds covers a zero effect."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "sampler_effect.py"
    spec = importlib.util.spec_from_file_location("sampler_effect", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    rng = np.random.default_rng(3)
    n_tasks, n = 12, 16
    luck = rng.normal(0, 2.0, n)  # a seed's luck, shared by every task (the same roots everywhere)
    pots = np.arange(n_tasks)[:, None] + luck + rng.normal(0, 0.5, (n_tasks, n))
    imgs = rng.random((n_tasks, n, 4))
    other = np.arange(n_tasks)[:, None] + rng.normal(0, 2.0, n) + rng.normal(0, 0.5, (n_tasks, n))
    per = {(None, None): (pots, imgs), (12, 1.0): (pots + 1.0, imgs * 0.5), (0, 1.0): (other, imgs)}
    text = mod.table(per, n_boot=400)
    lines = {ln.split(" |")[0]: ln for ln in text.splitlines()}
    shifted = lines["| renoise at 12, θ = 1.00"]
    assert "+1.00 [+1.00, +1.00]" in shifted and shifted.count("0.50 [0.50, 0.50]") == 1
    zero = lines["| root pcn, θ = 1.00"].split(" | ")[2]
    lo, hi = (float(x) for x in zero[zero.index("[") + 1:-1].split(", "))
    assert lo < 0 < hi
