"""Budgets across conditions: ``eacps.search_all`` and ``eacps run`` with ``[allocation]``."""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path

import configs
import numpy as np
import pytest
import runs as run_helpers
import toy
from test_resume_kill import wait_for_rows

import eacps
from eacps import Condition
from eacps.allocate import Mean, Threshold, Worst, as_objective, choose, estimates, worst_decile
from eacps.allocation_log import format_allocation, stored_allocations
from eacps.commands.cli import main
from eacps.config import ConfigError
from eacps.potential import Criterion, Potential
from eacps.store import read_only

HERE = Path(__file__).parent


# -- objective semantics on evidence alone (choose is what search_all asks) ------------------------------------------
LOW = [30.0, 31.0, 32.0, 33.0]  # a weak condition: best 33
HIGH = [40.0, 41.0, 42.0, 43.0]  # a strong one, the same spread: best 43
WIDE = [30.0, 50.0, 35.0, 45.0]  # the strongest, spread much wider: the largest expected gain


def test_worst_goes_to_the_weakest_and_mean_to_the_largest_gain():
    scores = [HIGH, LOW, WIDE]
    assert choose(scores, [10] * 3, 30, Worst(), batch_size=2).index == 1
    assert choose(scores, [10] * 3, 30, Mean(), batch_size=2, prior_weight=0).index == 2  # each its own spread
    # a condition at its cap gets nothing; a condition without any OK candidate gets nothing
    assert choose(scores, [10, 0, 10], 30, Worst(), batch_size=2).index == 0
    assert choose([HIGH, [], WIDE], [10] * 3, 30, Worst(), batch_size=2).index == 0


def test_worst_raises_the_bottom_decile_where_it_can_rise():
    """20 conditions: the worst decile is the lowest 2. Only those two are candidates; of them, the one expected
    to rise more (up to the third lowest best) is granted; a weakest one that never varies yields to the other."""
    others = [[40.0 + i, 41.0 + i, 42.0 + i, 43.0 + i] for i in range(18)]  # bests 43..60, wide gains
    flat = [33.0] * 4
    pick = choose([flat, LOW, *others], [10] * 20, 100, Worst(), batch_size=2, prior_weight=0)
    assert pick.index == 1 and "among the lowest 2" in pick.reason and "up to 43.000" in pick.reason
    # with a single bottom condition (fraction 0.05 of 20 = 1), the flat one is the whole set: it is granted
    assert choose([flat, LOW, *others], [10] * 20, 100, Worst(0.05), batch_size=2, prior_weight=0).index == 0
    # a bottom condition at its cap: the next weakest outside the set comes next, not the strongest
    assert choose([flat, LOW, *others], [0, 0, *[10] * 18], 100, Worst(), batch_size=2).index == 2


def test_threshold_skips_conditions_that_reached_it_and_stops_when_all_have():
    scores = [HIGH, LOW, WIDE]
    pick = choose(scores, [10] * 3, 30, Threshold(42.5), batch_size=2)
    assert pick.index == 1 and 0 < pick.predicted < 1  # LOW and only LOW is below τ
    done = choose(scores, [10] * 3, 30, Threshold(33.0), batch_size=2)
    assert done.index is None and "reached" in done.stop
    assert choose(scores, [10] * 3, 0, Mean(), batch_size=2).stop == {"budget": "the total budget is spent"}


def test_objectives_from_names_and_their_figures():
    assert as_objective("mean") == Mean() and as_objective("worst") == Worst()
    assert as_objective("threshold", 7.0) == Threshold(7.0)
    with pytest.raises(ValueError, match="needs a threshold"):
        as_objective("threshold")
    with pytest.raises(ValueError, match="must be one of mean, worst, threshold"):
        as_objective("best")
    bests = [float(x) for x in range(1, 21)]  # 20 conditions: the worst decile is the lowest 2
    assert worst_decile(bests) == 1.5 == Worst().value(bests)
    assert Threshold(15.0).value(bests) == 0.3 and Mean().value(bests) == 10.5


def test_the_evidence_is_the_upper_half_a_bad_draw_does_not_widen_it():
    """A condition's spread is what its best can rise into: one bad draw far below the others leaves its centre
    and spread where they were (a normal fit to all of them read it as a spread of 13), so it is not credited a
    large gain for it. Two draws: exactly the normal fit's variance."""
    clean, bad = [40.0, 41.0, 42.0, 43.0, 44.0], [40.0, 41.0, 42.0, 43.0, 44.0, 10.0]
    (c, b), _ = estimates([clean, bad], prior_weight=0)
    assert (c.mu, b.mu) == (42.0, 41.5) and c.best == b.best == 44.0 and b.n == 6
    assert c.sigma == pytest.approx(math.sqrt(2 * (1 + 4) / 4)) and b.sigma < 1.2 * c.sigma
    assert statistics.stdev(bad) > 13  # what the old fit would have used
    (two,), _ = estimates([[3.0, 5.0]], prior_weight=0)
    assert (two.mu, two.sigma) == (4.0, pytest.approx(statistics.stdev([3.0, 5.0])))
    # shrunk towards the pooled spread above the median; one draw has only the pooled one
    (one, other), pooled = estimates([[7.0], [3.0, 5.0]], prior_weight=4)
    assert (one.mu, one.sigma) == (7.0, pytest.approx(pooled)) and pooled == pytest.approx(math.sqrt(2.0))
    assert other.sigma == pytest.approx(math.sqrt((2.0 + 4 * 2.0) / (1 + 4)))
    # the expected gain of two more draws: about the clean condition's (the old fit's: 4.36, 29 times as much)
    gains = [choose([ys], [10], 20, Mean(), batch_size=2, prior_weight=0).predicted for ys in (clean, bad)]
    assert gains[1] == pytest.approx(gains[0], rel=0.05) and 0.1 < gains[0] < 0.2
    # and a decision says what it read: the best and the model its prediction comes from
    assert choose([bad], [10], 20, Mean(), batch_size=2, prior_weight=0).reason.startswith(
        f"best 44.000 (median 41.500, upper spread {b.sigma:.3f}, 6 seen): predicted gain")


# -- search_all on the toy generator with conditions of different difficulty -----------------------------------------
def shifted_conditions(n: int = 6) -> list[Condition]:
    """Condition i's noise is z * scale_i + offset_i: some conditions are harder (low offset) or more varied."""
    return [Condition(f"c{i}", prompt="toy", extra={"offset": -0.6 + 0.25 * i, "scale": 0.5 + 0.2 * (i % 3)})
            for i in range(n)]


@pytest.fixture
def setup():
    gen = toy.ToyGenerator(toy.ToyGeneratorParams(shift=True))
    pot = Potential([Criterion("realism", toy.ToyScorer(), 4.0), Criterion("consistency", toy.ToyMeanScorer(), 1.0)])
    return gen, pot


def uniform(setup, conds, per: int, run_dir: Path | None = None) -> list[float]:
    gen, pot = setup
    return [eacps.search(c, generator=gen, potential=pot, strategy="best-of-n", budget=per, batch_size=4,
                         run_dir=run_dir).best.potential for c in conds]


def test_worst_raises_the_minimum_over_uniform_at_equal_cost(setup, tmp_path):
    gen, pot = setup
    conds = shifted_conditions()
    a = eacps.search_all(conds, generator=gen, potential=pot, budget=8 * len(conds), objective="worst",
                         batch_size=2, run_dir=tmp_path / "run")
    u = uniform(setup, conds, 8)
    assert a.spent == 8 * len(conds)
    assert min(a.bests) > min(u)  # the weakest condition is better than uniform's weakest
    spent = {r["condition"]: r["candidates"] for r in a.rows()}
    weakest = conds[int(np.argmin(u))].id
    assert spent[weakest] == max(spent.values()) > 8  # it got the most
    assert a.value == worst_decile(a.bests)


def test_mean_spends_the_budget_and_records_every_reason(setup):
    gen, pot = setup
    conds = shifted_conditions()
    a = eacps.search_all(conds, generator=gen, potential=pot, budget=23, objective=eacps.Mean(), batch_size=4)
    assert a.spent == 23 and a.stop == {"budget": "the total budget is spent"}  # 23: not a multiple of the grant
    assert sum(d.candidates for d in a.decisions) == 23
    assert [d.condition for d in a.decisions[:6]] == [c.id for c in conds]  # the warm-up
    for d in a.decisions[6:]:
        assert d.predicted > 0 and d.best is not None and "predicted gain" in d.reason and "upper spread" in d.reason
    grants = {}
    for d in a.decisions:
        assert d.spent == grants.get(d.condition, 0)  # each decision saw the condition's candidates so far
        grants[d.condition] = d.spent + d.candidates
    assert grants == {r["condition"]: r["candidates"] for r in a.rows()}
    assert a.value == pytest.approx(np.mean(a.bests))


@pytest.mark.slow
def test_threshold_stops_when_every_condition_reaches_it(setup):
    gen, pot = setup
    conds = shifted_conditions()
    tau = sorted(uniform(setup, conds, 4))[1]  # reachable: most conditions pass it within a few candidates
    a = eacps.search_all(conds, generator=gen, potential=pot, budget=200, objective=Threshold(tau), batch_size=2)
    assert "reached" in a.stop and a.spent < 200
    assert all(b >= tau for b in a.bests) and a.value == 1.0
    never = eacps.search_all(conds, generator=gen, potential=pot, budget=30, objective=Threshold(1e3), batch_size=2)
    assert never.spent == 30 and "budget" in never.stop and never.value == 0.0


def test_deterministic_and_resumed_from_the_store(setup, tmp_path):
    gen, pot = setup
    conds = shifted_conditions()
    kw = dict(generator=gen, potential=pot, budget=40, objective="worst", batch_size=2, seed=3)
    a = eacps.search_all(conds, run_dir=tmp_path / "a", **kw)
    b = eacps.search_all(conds, run_dir=tmp_path / "b", **kw)
    assert [d.to_json() for d in a.decisions] == [d.to_json() for d in b.decisions]
    assert [r.best.recipe for r in a.results] == [r.best.recipe for r in b.results]
    before = gen.generated
    again = eacps.search_all(conds, run_dir=tmp_path / "a", **kw)  # everything served from the store
    assert gen.generated == before
    assert [d.to_json() for d in again.decisions] == [d.to_json() for d in a.decisions]
    with read_only(tmp_path / "a") as store:
        log = stored_allocations(store)["best-of-n+worst"]
    assert log["decisions"] == [d.to_json() for d in a.decisions] and log["stop"] == a.stop
    assert sum(r["candidates"] for r in log["rows"]) == 40
    text = format_allocation(log)
    assert "objective worst, 40 of 40 candidates" in text and "among the lowest" in text


def test_conditions_without_any_ok_candidate_get_nothing_more(setup):
    _, pot = setup
    gen = toy.ToyGenerator(toy.ToyGeneratorParams(fail_all=True))
    a = eacps.search_all(shifted_conditions(3), generator=gen, potential=pot, budget=30, objective="worst")
    assert a.spent == 6 and "exhausted" in a.stop and a.bests == [None] * 3  # the warm-up only, every one FAILED
    assert all(c.reason and "exploded" in c.reason for r in a.results for c in r.history)


def test_a_step_counting_strategy_is_refused(setup):
    gen, pot = setup
    with pytest.raises(ValueError, match="spends denoising steps on partial paths"):
        eacps.search_all(shifted_conditions(2), generator=gen, potential=pot, budget=8, strategy="fk-steering")
    with pytest.raises(ValueError, match="total_budget: must be >= 12"):
        eacps.search_all(shifted_conditions(6), generator=gen, potential=pot, budget=8)


def test_a_step_cap_is_never_granted_past(setup):
    """With max_steps (4 candidates of 10 steps per condition), a condition at its cap gets no further grant: the
    decisions are what was asked, nothing granted goes unspent while others could use it."""
    from eacps.allocate import Allocator
    from eacps.api import make_strategy
    from eacps.engine.engine import Engine

    gen, pot = setup
    al = Allocator(Engine(gen, pot, None, batch_size=2), shifted_conditions(3),
                   lambda cap: make_strategy("best-of-n", {}, budget=cap, seed=0), 24, eacps.Mean(), "x",
                   batch_size=2, min_per_condition=2, max_steps=40)
    out = al.run()
    assert all(t.strategy.granted == t.strategy.asked == 4 for t in al.tracks)
    assert out.spent == 12 and "exhausted" in out.stop and len(out.decisions) == 6


def test_eacps_runs_under_allocation(setup):
    """eacps cannot be built at every budget; search_all checks it at the cap it runs with (it refused it)."""
    gen, pot = setup
    a = eacps.search_all(shifted_conditions(3), generator=gen, potential=pot, budget=60, strategy="eacps")
    assert a.spent == 60 and all(b is not None for b in a.bests)
    assert all(r.search_id.split("/")[1] == "eacps+mean" for r in a.results)


def test_a_run_dir_of_another_potential_is_refused(setup, tmp_path):
    gen, pot = setup
    conds = shifted_conditions(2)
    eacps.search_all(conds, generator=gen, potential=pot, budget=8, run_dir=tmp_path / "run")
    other = Potential([Criterion("realism", toy.ToyScorer(), 100.0)])
    with pytest.raises(ConfigError, match="holds a run of another potential"):
        eacps.search_all(conds, generator=gen, potential=other, budget=8, run_dir=tmp_path / "run")


def test_a_damaged_allocation_log_is_one_line(setup, tmp_path, capsys):
    gen, pot = setup
    eacps.search_all(shifted_conditions(2), generator=gen, potential=pot, budget=8, run_dir=tmp_path / "run")
    db = sqlite3.connect(tmp_path / "run" / "store.sqlite")
    db.execute("UPDATE meta SET value = ? WHERE key LIKE 'allocation/%'", (json.dumps({"label": "x"}),))
    db.commit()
    db.close()
    assert main(["show", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "meta 'allocation/best-of-n+mean' is not an allocation log" in err


# -- eacps run with [allocation] -------------------------------------------------------------------------------------
def alloc_config(**allocation) -> dict:
    cfg = configs.toy(strategy="best-of-n", budget=6, batch_size=2)
    cfg = configs.edit(cfg, "generator.params", {"shift": True})
    cfg["conditions"] = [{"id": c.id, "prompt": "toy", "extra": c.extra} for c in shifted_conditions()]
    cfg["allocation"] = {"objective": "worst", **allocation}
    return cfg


def test_serve_counts_the_total_budget_of_an_allocated_run(tmp_path, toy_plugin):
    """serve's progress total is [allocation].total_budget, not budget x conditions (36 here): a finished
    allocated run reads done = total."""
    from eacps.analysis.serve import state

    cfg = configs.write(tmp_path / "cfg.toml", alloc_config(total_budget=20))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    progress = state(tmp_path / "run")["progress"]
    assert progress["total"] == 20 == progress["done"]


def test_run_and_show_report_where_the_budget_went(tmp_path, toy_plugin, capsys):
    cfg = configs.write(tmp_path / "cfg.toml", alloc_config())
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["show", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "allocation 'best-of-n+worst': objective worst, 36 of 36 candidates" in out  # 6 x 6 conditions
    assert "best-of-n+worst  " in out and "(n=" not in out  # one summary row for the whole allocation
    assert "warm-up" not in out.split("allocation 'best-of-n+worst'")[1].split("\n")[2]  # reasons of the last grant
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Budget across conditions: where it went and why" in html and "among the lowest" in html
    with read_only(tmp_path / "run") as store:
        log = stored_allocations(store)["best-of-n+worst"]
        counts = {r["condition"]: len([c for c in store.candidates(r["search"], role="search")]) for r in log["rows"]}
    assert counts == {r["condition"]: r["candidates"] for r in log["rows"]} and len(set(counts.values())) > 1


@pytest.mark.parametrize("allocation, expected", [
    ({"objective": "best"}, "allocation.objective: must be one of 'mean', 'worst' or 'threshold' (got 'best')"),
    ({"objective": "threshold"}, "allocation: objective = 'threshold' needs threshold = τ"),
    ({"objective": "mean", "threshold": 3.0}, "allocation: threshold is only used with objective = 'threshold'"),
    ({"total_budget": 5}, "allocation.total_budget: must be >= 12 (min_per_condition 2 x 6 conditions), got 5"),
    ({"min_per_condition": 1}, "allocation.min_per_condition: Input should be greater than or equal to 2"),
    ({"max_per_condition": 3, "min_per_condition": 4}, "allocation.max_per_condition: must be >= min_per_condition"),
    ({"fraction": 0}, "allocation.fraction: Input should be greater than 0"),
    ({"colour": 1}, "allocation.colour: unknown field"),
])
def test_allocation_config_errors_name_the_field(tmp_path, toy_plugin, capsys, allocation, expected):
    cfg = alloc_config()
    cfg["allocation"] = {"objective": "worst", **allocation}
    assert main(["run", str(configs.write(tmp_path / "cfg.toml", cfg)), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err, err
    assert not (tmp_path / "run").exists()


def test_a_step_counting_strategy_is_a_config_error(tmp_path, toy_plugin, capsys):
    cfg = configs.edit(alloc_config(), "search.strategy", "fk-steering")
    cfg = configs.edit(cfg, "generator.params", {"shift": True, "stepping": True})
    assert main(["run", str(configs.write(tmp_path / "cfg.toml", cfg)), "--out", str(tmp_path / "run")]) == 2
    assert "search.strategy: 'fk-steering' spends denoising steps on partial paths" in capsys.readouterr().err


@pytest.mark.parametrize("allocation, strategy, expected", [
    ({"total_budget": 5}, None, "allocation.total_budget: must be >= 12 (min_per_condition 2 x 6 conditions), got 5"),
    ({"max_per_condition": 3, "min_per_condition": 4}, None,
     "allocation.max_per_condition: must be >= min_per_condition"),
    ({}, "fk-steering", "search.strategy: 'fk-steering' spends denoising steps on partial paths"),
])
def test_check_refuses_the_allocation_run_refuses(tmp_path, toy_plugin, capsys, allocation, strategy, expected):
    """``eacps check`` (and so ``generate --dry-run``'s check) runs run's [allocation] check: a config it passes
    does not fail at ``eacps run`` for its allocation."""
    cfg = alloc_config(**allocation)
    if strategy is not None:
        cfg = configs.edit(configs.edit(cfg, "search.strategy", strategy), "generator.params",
                           {"shift": True, "stepping": True})
    path = str(configs.write(tmp_path / "cfg.toml", cfg))
    assert main(["check", path]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err, err
    assert main(["run", path, "--out", str(tmp_path / "run")]) == 2 and expected in capsys.readouterr().err
    assert main(["check", str(configs.write(tmp_path / "ok.toml", alloc_config()))]) == 0


# -- kill -9 during a cross-condition run ----------------------------------------------------------------------------
RUNNER = """
import sys
sys.path.insert(0, {here!r})
import toy
from eacps import plugins
from eacps.commands.cli import main
from eacps.config import ConfigError
plugins.register_plugin(toy)
sys.exit(main(["run", {cfg!r}, "--out", {out!r}, "--quiet"]))
"""


def rows(out: Path) -> list[tuple]:
    return run_helpers.rows(out, "id, search, seq, recipe, status, potential", order="id")


def allocation_log(out: Path) -> dict:
    return run_helpers.meta(out, "allocation/best-of-n+worst")


def start(cfg: Path, out: Path) -> subprocess.Popen:
    code = RUNNER.format(here=str(HERE), cfg=str(cfg), out=str(out))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow  # ~1 min: seven child processes
def test_kill_9_during_an_allocated_run_resumes_with_the_same_winners(tmp_path):
    def config(log: Path) -> Path:
        cfg = configs.edit(alloc_config(), "generator.params", {"shift": True, "sleep": 0.03, "log": str(log)})
        return configs.write(tmp_path / f"{log.stem}.toml", cfg)

    ref = start(config(tmp_path / "ref.log"), tmp_path / "ref")
    assert ref.wait(120) == 0, ref.stderr.read().decode()
    total = len(rows(tmp_path / "ref"))  # 6 priors + 36 candidates
    assert total == 42
    for kill_at in (10, 30):  # in the warm-up, late in the grants
        out, log = tmp_path / f"run{kill_at}", tmp_path / f"run{kill_at}.log"
        cfg = config(log)
        proc = start(cfg, out)
        try:
            wait_for_rows(out, kill_at, proc, timeout=120)  # polled, not spun: the child needs the cores
        finally:
            proc.kill()  # SIGKILL, the point of the test (and no child left behind when an assert fails)
        proc.wait()
        before = rows(out)
        log.write_text("")
        again = start(cfg, out)
        assert again.wait(120) == 0, again.stderr.read().decode()
        after = rows(out)
        assert after[: len(before)] == before  # nothing finished was lost or rewritten
        assert len(after) == total and len({(s, q) for _, s, q, *_ in after}) == total  # each exactly once
        finished = {f"{s.split('/')[1] if s.startswith('prior/') else s.split('/')[0]} {r}"
                    for _, s, _, r, *_ in before}
        assert not set(log.read_text().splitlines()) & finished  # no finished candidate generated again
        assert sorted(x[1:] for x in after) == sorted(x[1:] for x in rows(tmp_path / "ref"))  # the same candidates
        assert allocation_log(out) == allocation_log(tmp_path / "ref")  # the same decisions, the same winners


# -- the done-means on the embedded digits testbed -----------------------------------------------------------
@pytest.mark.slow
def test_worst_at_8_per_condition_matches_uniform_32_on_40_held_out_digits_tasks(tmp_path, monkeypatch):
    """Objective worst, a total of 8 per condition over 40 evaluation-split tasks (30..69, no allocator parameter
    was chosen on them), against best-of-N 32 per condition: the worst-decile mean is at least uniform 32's."""
    from eacps.engine.engine import Engine, Job
    from eacps.store import Store
    from eacps.strategies.best_of_n import BestOfN

    monkeypatch.syspath_prepend(str(HERE.parent / "benchmarks"))
    from allocation import split_tasks, testbed_setup

    gen, pot, tasks = testbed_setup("digits", 0)
    tasks = split_tasks("eval", tasks)
    with Store.open(tmp_path / "run") as store:  # uniform first: the allocation's prefixes are then served from it
        engine = Engine(gen, pot, store, batch_size=16)
        try:
            u32 = engine.run_all([Job(t, BestOfN(budget=32, seed=0), "uniform") for t in tasks])
        finally:
            engine.close()
    a = eacps.search_all(tasks, generator=gen, potential=pot, budget=8 * 40, objective="worst", seed=0,
                         run_dir=tmp_path / "run")
    uniform32 = worst_decile([r.best.potential for r in u32])
    assert a.spent == 320 and sum(r.cost.candidates for r in u32) == 1280
    print(f"worst decile of 40 held-out tasks: allocation (8 per condition) {a.value:.3f}, uniform 32 {uniform32:.3f}")
    assert a.value >= uniform32, (a.value, uniform32)
    assert not math.isnan(a.value)
