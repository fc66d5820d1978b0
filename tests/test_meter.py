"""The cost meter owns "charged steps" and "generated": every reader of a run store (summary and ``eacps show``,
the report's curves and trees, ``eacps serve``'s state, ``eacps compare``) agrees with it, on runs with a batch
skipped after repeated process deaths, with candidates reused from the store, and with shared path prefixes."""

from __future__ import annotations

import json

import configs
import numpy as np
import pytest
import toy
from click.testing import CliRunner

from eacps import Condition, Recipe, Status
from eacps.analysis.compare import run_compare
from eacps.analysis.report import cost_curves, trees
from eacps.analysis.serve import state
from eacps.analysis.summary import load_searches, summarize_store
from eacps.api import make_strategy
from eacps.commands.cli import cli, main
from eacps.cost import empty_totals
from eacps.engine.engine import Engine
from eacps.engine.meter import Cost, CostMeter
from eacps.engine.planner import DEATHS_META, MAX_DEATHS, Planned
from eacps.potential import Scored
from eacps.store import Candidate, Store, read_only, search_id
from eacps.types import Generated

COND = Condition("task0", prompt="a toy")
STEPS_ONLY = {"seconds_per_step": None, "seconds_per_call": {}}  # cost curves in denoising steps


def engine(store: Store, potential, *, stepping: bool = False, batch_size: int = 3) -> Engine:
    return Engine(toy.ToyGenerator(toy.ToyGeneratorParams(stepping=stepping)), potential, store,
                  batch_size=batch_size)


def readers(run_dir) -> dict[str, dict[str, float]]:
    """Per search: the charged steps and candidates as summary, show --json, the report's curves and serve read
    them from the store."""
    with read_only(run_dir) as ro:
        recs = load_searches(ro)
    # through the group, as the console script does (invoking a command alone caches its help options without -h)
    show = json.loads(CliRunner().invoke(cli, ["show", str(run_dir), "--json"]).output)
    served = state(run_dir)
    out = {}
    for r in recs:
        (curve,) = [c for label, c in cost_curves([r], STEPS_ONLY).items() if label == r.strategy]
        out[r.search] = {"summary": sum(r.charges), "curve": curve[-1][0], "candidates": len(r.candidates),
                         "show": show["summary"]["strategies"][r.strategy]["cost_per_search"]["steps"],
                         "serve": next(s["steps"] for s in served["searches"] if s["search"] == r.search)}
    return out


def test_a_batch_skipped_after_repeated_deaths_is_charged_but_not_generated(tmp_path, toy_potential):
    """A batch that killed the process ``MAX_DEATHS`` times is stored FAILED without computing: the meter counts
    it as asked (charged) but neither generated nor reused, and every reader shows the meter's steps."""
    strat = make_strategy("best-of-n", budget=12, seed=0).bind(toy.ToyGenerator().default_steps)
    recipes = [a.recipe for a in strat.ask_records(9)][6:9]  # the third batch of 3 (seq 6..8)
    sid = search_id(COND.id, "best-of-n", "b12", "s0")
    b = Planned(recipes, COND, sid, 6, "search", "best-of-n", [""] * 3, todo=[0, 1, 2])
    with Store.open(tmp_path) as store:  # what two deaths with crash evidence leave in the store
        store.set_meta(DEATHS_META, {b.id: {"what": b.describe(), "deaths": MAX_DEATHS}})
        eng = engine(store, toy_potential)
        res = eng.run(COND, make_strategy("best-of-n", budget=12, seed=0))
        eng.close()
    failed = [c for c in res.history if c.reason and "died 2 times" in c.reason]
    assert [c.seq for c in failed] == [6, 7, 8]
    assert eng.generated == 1 + 9  # the prior and the 9 computed; the skipped 3 are not generated
    assert (res.cost.generated, res.cost.reused, res.cost.candidates, res.cost.steps) == (9, 0, 12, 120)
    assert readers(tmp_path) == {sid: {"summary": 120, "curve": 120, "candidates": 12, "show": 120, "serve": 120}}
    assert state(tmp_path)["progress"]["done"] == 12  # candidate equivalents: 120 steps / T = 10


def test_reused_candidates_are_charged_not_generated(tmp_path, toy_potential):
    """A resumed search and another search served from the store's cache: charged in full, generated 0."""
    with Store.open(tmp_path) as store:
        first = engine(store, toy_potential)
        a = first.run(COND, make_strategy("best-of-n", budget=6, seed=0))
        first.close()
        again = engine(store, toy_potential)
        resumed = again.run(COND, make_strategy("best-of-n", budget=6, seed=0))
        shared = again.run(COND, make_strategy("best-of-n", budget=6, seed=0), label="shared")
        again.close()
    assert first.generated == 1 + 6 and again.generated == 0
    assert (a.cost.generated, a.cost.reused, a.cost.steps) == (6, 0, 60)
    for res in (resumed, shared):
        assert (res.cost.generated, res.cost.reused, res.cost.steps) == (0, 6, 60)
    assert all(c.reused_from is not None for c in shared.history)
    figures = readers(tmp_path)
    assert set(figures) == {a.search_id, shared.search_id}
    assert all(f == {"summary": 60, "curve": 60, "candidates": 6, "show": 60, "serve": 60} for f in figures.values())


@pytest.mark.parametrize("name, params", [("tree-search", {}), ("fk-steering", {"particles": 3})])
def test_shared_prefixes_are_charged_once_by_every_reader(tmp_path, toy_potential, name, params):
    """Path recipes on a stepping generator: the stored charges and parents are the strategy's ledger's, a shared
    prefix is charged once, and the readers show the meter's steps and the ledger's tree."""
    with Store.open(tmp_path) as store:
        eng = engine(store, toy_potential, stepping=True)
        strat = make_strategy(name, params, budget=6, seed=0)
        res = eng.run(COND, strat)
        eng.close()
    cands = res.history
    assert res.cost.steps == strat.spent_steps == sum(c.charged for c in cands) == sum(strat.ledger.charges)
    assert res.cost.steps < sum(c.steps for c in cands)  # prefixes were shared: charged once
    assert [c.parent for c in cands] == strat.ledger.parents and any(p is not None for p in strat.ledger.parents)
    (figures,) = readers(tmp_path).values()
    assert figures == {"summary": res.cost.steps, "curve": res.cost.steps, "candidates": len(cands),
                       "show": res.cost.steps, "serve": res.cost.steps}
    assert state(tmp_path)["progress"]["done"] == pytest.approx(res.cost.steps / 10)
    (nodes,) = trees({res.search_id: cands}).values()
    ids = {c.seq: c.id for c in cands}
    assert [n["parent"] for n in nodes] == [None if p is None else ids[p] for p in strat.ledger.parents]


def test_compare_reports_the_meters_figures(tmp_path, toy_plugin):
    """``eacps compare``: its ``generated`` is the meters' count (0 when it runs again over the same store) and
    every search's charged steps are what summary, show and serve read back."""
    cfg = configs.write(tmp_path / "c.toml", {
        "tasks": {"name": "toy", "n": 2}, "generator": {"name": "toy", "params": {"stepping": True}},
        "potential": {"criteria": {"realism": {"scorer": "toy-pixel"}}}, "search": {"batch_size": 4}})
    out = tmp_path / "cmp"
    first = run_compare(cfg, out, strategies="best-of-n,tree-search", budgets="4", repeats=1, pool=4)
    with read_only(out) as ro:
        computed = sum(c.reused_from is None and c.role != "calibration" for c in ro.candidates())
        summary = summarize_store(ro)
    assert first["generated"] == computed > 0
    figures = readers(out)
    assert len(first["searches"]) == 4  # 2 tasks x 2 contestants
    for rec in first["searches"]:
        f = figures[rec["search_id"]]
        assert rec["steps"] == f["summary"] == f["curve"] == f["serve"] and rec["candidates"] == f["candidates"]
    tree = [r["steps"] for r in first["searches"] if r["strategy"] == "tree-search"]
    assert summary["strategies"]["tree-search"]["cost_per_search"]["steps"] == sum(tree) / len(tree)
    assert main(["compare", str(cfg), "--strategies", "best-of-n,tree-search", "--budgets", "4", "--repeats", "1",
                 "--pool", "4", "--out", str(out), "--quiet"]) == 0
    again = json.loads((out / "compare.json").read_text())
    assert again["generated"] == 0
    assert [(r["task"], r["strategy"], r["steps"]) for r in again["searches"]] == \
        [(r["task"], r["strategy"], r["steps"]) for r in first["searches"]]


# -- the meter's own arithmetic --------------------------------------------------------------------------------

CRITERIA = ("realism", "consistency")


def cand(seq: int, status: Status = Status.OK, *, image: bool = True, steps: int = 10, gen: float = 0.0,
         score: float = 0.0, charged: int | None = None) -> Candidate:
    potential = 1.0 if status is Status.OK else None
    return Candidate("s", seq, "search", "c", Recipe.from_seed(seq), steps, status, potential,
                     image_path=f"images/{seq:020x}.png" if image else None, gen_seconds=gen, score_seconds=score,
                     charged=charged)


def test_charge_counts_asked_candidates_their_steps_and_the_scorer_calls_they_reached():
    meter, cost = CostMeter(), Cost()
    meter.charge(cost, cand(0), CRITERIA, computed=True)
    meter.charge(cost, cand(1, Status.FILTERED), CRITERIA, computed=True)  # an image, but never scored
    meter.charge(cost, cand(2, Status.FAILED, image=False), CRITERIA, computed=True)  # the generator failed
    meter.charge(cost, cand(3, Status.FAILED), CRITERIA, computed=True)  # a scorer failed: it was called
    assert (cost.candidates, cost.steps) == (4, 40)
    assert cost.scorer_calls == {"realism": 2, "consistency": 2}


def test_charged_steps_are_the_stored_charge_when_given_and_spent_steps_the_candidates_own():
    meter, cost = CostMeter(), Cost()
    meter.charge(cost, cand(0, charged=4), CRITERIA, computed=True)  # a branch: 6 steps shared with a prefix
    meter.charge(cost, cand(1, charged=0), CRITERIA, computed=True)  # a preview of a path already paid for
    meter.charge(cost, cand(2), CRITERIA, computed=True)  # no stored charge (a row of an older store): its steps
    assert cost.steps == 14
    assert cost.generated_steps == 30


def test_a_skipped_candidate_is_charged_but_neither_generated_nor_reused():
    meter, cost = CostMeter(), Cost()
    meter.charge(cost, cand(0, Status.FAILED, image=False), CRITERIA, computed=False, skipped=True)
    assert (cost.candidates, cost.steps, cost.generated, cost.reused, cost.generated_steps) == (1, 10, 0, 0, 0)
    assert cost.scorer_calls == {}


def test_reuse_is_charged_in_full_but_never_counted_as_generated():
    meter, cost = CostMeter(), Cost()
    meter.charge(cost, cand(0, gen=0.5, score=0.25), CRITERIA, computed=True)
    meter.charge(cost, cand(1, gen=7.0, score=7.0), CRITERIA, computed=False)  # served from the store
    assert cost.candidates == 2 and cost.steps == 20 and cost.scorer_calls == {"realism": 2, "consistency": 2}
    assert (cost.generated, cost.reused, cost.generated_steps) == (1, 1, 10)
    assert (cost.gen_seconds, cost.score_seconds) == (0.5, 0.25)  # the reused candidate's times are not ours


def test_measure_adds_a_computed_batch_to_the_unit_cost_totals():
    meter = CostMeter()
    img = np.zeros((4, 4, 1), np.float32)
    results = [
        (Generated(img, seconds=0.5), Scored({"realism": 1.0}, 1.0, None, 0.3, {"realism": 0.1, "consistency": 0.2})),
        (Generated(img, seconds=0.25), Scored({}, None, "NaN", 0.1, {"realism": 0.1})),
        (Generated.failed("boom"), None),  # generated (and failed): no scorer call
    ]
    tot = meter.measure(results, [10, 10, 10])
    assert tot["gen_seconds"] == pytest.approx(0.75) and tot["steps"] == 30
    assert tot["calls"] == {"realism": 2, "consistency": 1}
    assert tot["score_seconds"] == pytest.approx({"realism": 0.2, "consistency": 0.2})
    assert meter.generated == 3
    again = meter.measure(results[:1], [4])
    assert again is meter.totals and again["steps"] == 34 and again["calls"] == {"realism": 3, "consistency": 2}
    assert meter.generated == 4


def test_a_meter_continues_the_stored_totals():
    stored = empty_totals()
    stored.update(gen_seconds=2.0, steps=20, calls={"realism": 5}, score_seconds={"realism": 1.0})
    meter = CostMeter(stored)
    meter.measure([(Generated(np.ones((4, 4, 1), np.float32), seconds=1.0),
                    Scored({"realism": 2.0}, 2.0, None, 0.5, {"realism": 0.5}))], [10])
    assert stored["steps"] == 30 and stored["calls"] == {"realism": 6} and stored["gen_seconds"] == 3.0
    assert meter.generated == 1  # this process's count starts at 0, whatever the store holds


def test_cost_to_json_has_the_charged_and_spent_figures():
    cost = Cost(candidates=3, steps=30, scorer_calls={"realism": 3}, generated=2, reused=1, gen_seconds=0.123456,
                score_seconds=1 / 3)
    assert cost.to_json() == {"candidates": 3, "steps": 30, "scorer_calls": {"realism": 3}, "generated": 2,
                              "reused": 1, "gen_seconds": 0.1235, "score_seconds": 0.3333, "value_seconds": 0.0}
    out = cost.to_json()
    out["scorer_calls"]["realism"] = 0
    assert cost.scorer_calls == {"realism": 3}  # a copy


def test_a_screened_search_is_charged_its_value_models_time_and_an_unscreened_one_nothing(tmp_path, toy_potential):
    """A value model's fitting and prediction time is part of the search's cost (``Cost.value_seconds``, its JSON),
    of summary's cost per search and single figure, and of compare's cost seconds and measured cost model; a search
    without a value model is charged 0."""
    from eacps.analysis.compare import cost_models, search_record
    from eacps.cost import figure, unit_costs

    screen = {"min_pairs": 4, "min_rho": -1.0, "max_miss": 1.0, "z": 0.5}  # acts readily: fits and predicts
    early = {"value_model": screen, "levels": [0.2, 0.4, 0.6]}  # early levels: enough previews for the screen to fit
    with Store.open(tmp_path) as store:
        eng = engine(store, toy_potential, stepping=True, batch_size=4)
        screened = eng.run(COND, make_strategy("tree-search", early, budget=8, seed=0), label="screened")
        plain = eng.run(COND, make_strategy("tree-search", budget=8, seed=0), label="plain")
        eng.close()
    d = screened.diagnostics["value_model"]
    assert d["fit_seconds"] > 0 and d["predict_seconds"] > 0
    assert screened.cost.value_seconds == pytest.approx(d["fit_seconds"] + d["predict_seconds"], abs=1e-5)
    assert screened.cost.to_json()["value_seconds"] == round(screened.cost.value_seconds, 6) > 0
    assert plain.cost.value_seconds == 0 and plain.cost.to_json()["value_seconds"] == 0
    with read_only(tmp_path) as ro:
        summary = summarize_store(ro)
        units = unit_costs(ro)
    for label, res in (("screened", screened), ("plain", plain)):
        c = summary["strategies"][label]["cost_per_search"]
        assert c["value_seconds"] == pytest.approx(res.cost.value_seconds, abs=1e-5)
        assert c["seconds"] == pytest.approx(figure(c["steps"], c["scorer_calls"], units) + c["value_seconds"])
    assert search_record(screened, "screened", 8, 0, 0)["value_seconds"] == screened.cost.value_seconds
    measured = cost_models(units, 10, ["realism", "consistency"], 1.0)["measured"]
    one = figure(10, {"realism": 1, "consistency": 1}, units)
    assert measured(10, {"realism": 1, "consistency": 1}, 1, 2 * one) == pytest.approx(3.0)  # seconds are charged
