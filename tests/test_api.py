"""eacps.api, the Python API the CLI itself uses: arguments obey the config's rules, a run directory belongs to one
generator and potential (and a search to one strategy setting), a strategy instance runs once, ``max_steps`` is
respected or refused, a step-counting strategy on a 1-step schedule, a huge budget and a strategy the generator
cannot run are refused before any compute; a search resumes from its run directory, and without one its images live
as long as its result. The issue-23 regressions here each failed before their fix."""

from __future__ import annotations

import math

import configs
import pytest
import toy
from configs import n_candidates

import eacps
from eacps import Condition
from eacps.analysis.compare import run_compare
from eacps.api import run_config
from eacps.commands.cli import main
from eacps.config import ConfigError
from eacps.engine.engine import Engine, Job
from eacps.params import MAX_BUDGET
from eacps.potential import Criterion, Potential
from eacps.strategy import StrategyError


class CountingGenerator(toy.ToyGenerator):
    """The toy generator, counting the candidates it computes (a refusal must come before any)."""

    def generate(self, recipes, condition, *, steps=None):
        self.generated += len(recipes)
        return super().generate(recipes, condition, steps=steps)


def consistency_only() -> Potential:
    return Potential([Criterion("consistency", toy.ToyMeanScorer(), 1.0)])


# -- 6: the API validates like the config ----------------------------------------------------------------------------
@pytest.mark.parametrize("kw, message", [
    ({"budget": True}, r"^budget: must be a number, not a boolean \(got true\)$"),
    ({"budget": 1.5}, r"^budget: .*fractional part \(got 1.5\)$"),
    ({"budget": 0}, r"^budget: .*greater than or equal to 1"),
    ({"budget": MAX_BUDGET + 1}, rf"^budget: .*less than or equal to {MAX_BUDGET}"),
    ({"timeout_s": math.nan}, r"^timeout_s: .*finite number"),
    ({"timeout_s": 0}, r"^timeout_s: .*greater than 0"),
    ({"seed": 2**40}, r"^seed: .*less than 4294967296"),
    ({"seed": -1}, r"^seed: "),
    ({"prior_seed": True}, r"^prior_seed: must be a number, not a boolean"),
    ({"batch_size": 0}, r"^batch_size: "),
])
def test_search_arguments_obey_the_config_rules(tmp_path, toy_potential, cond, kw, message):
    gen = CountingGenerator()
    with pytest.raises(ConfigError, match=message) as exc:
        eacps.search(cond, generator=gen, potential=toy_potential, strategy="best-of-n",
                     **{"budget": 4, "run_dir": tmp_path / "run", **kw})
    assert "\n" not in str(exc.value)
    assert gen.generated == 0 and not (tmp_path / "run").exists()


def test_strategies_refuse_what_the_config_refuses():
    with pytest.raises(ConfigError, match=r"^budget: must be a number, not a boolean"):
        eacps.make_strategy("eacps", budget=True)
    from eacps.strategies.best_of_n import BestOfN

    for kw in ({"budget": True}, {"budget": 1.5}, {"budget": MAX_BUDGET + 1}, {"seed": True}, {"seed": -1}):
        with pytest.raises(ValueError, match=r"must be an integer in"):
            BestOfN(**{"budget": 4, **kw})


# -- 3: budgets whose first ask would not return ---------------------------------------------------------------------
def test_a_huge_budget_is_refused_by_the_config_naming_the_bound(tmp_path, toy_plugin, capsys):
    cfg = configs.write(tmp_path / "c.toml", configs.toy(budget=1_000_000_000))
    rc = main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"eacps: error: search.budget: Input should be less than or equal to {MAX_BUDGET} " \
                              "(got 1000000000)\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["eacps", "best-of-n", "multi-fidelity", "tree-search", "zero-order", "adaptive"])
def test_the_first_ask_at_the_largest_budget_is_small(name):
    """No strategy draws its whole first stage at once (eacps drew 4·10^8 seeds for a budget of 10^9)."""
    strategy = eacps.make_strategy(name, budget=MAX_BUDGET).bind(50)
    asked = strategy.ask(8)
    assert 1 <= len(asked) <= 8
    assert len(strategy.global_seeds._seen) <= 8  # seeds drawn: what was asked, not the stage


def test_drawing_per_ask_asks_the_same_recipes_as_before():
    """eacps stage 1 and multi-fidelity rung 0 are drawn per ask, in the order the whole stage was drawn: the
    seed stream's first seeds (so stores written before resume with the same candidates)."""
    from eacps.strategy import SeedStream

    fixed = {"schedule": "fixed", "promotion": "drop"}
    for name, params, budget, first in (("eacps", {}, 20, 8), ("multi-fidelity", fixed, 4, None)):
        s = eacps.make_strategy(name, params, budget=budget, seed=3).bind(10)
        got = [r.seed for r in s.ask(3) + s.ask(2)]
        assert got == SeedStream(3).take(5), name
        if first is not None:
            assert len(s.ask(100)) == first - 5  # the rest of stage 1, then the stage boundary


# -- 4: a run directory of another generator, potential or strategy setting ------------------------------------------
def test_search_refuses_a_run_dir_of_another_potential_or_generator(tmp_path, toy_potential, cond):
    run_dir = tmp_path / "run"
    first = eacps.search(cond, generator=toy.ToyGenerator(), potential=toy_potential, strategy="best-of-n",
                         budget=4, run_dir=run_dir)
    assert set(first.best.scores) == {"realism", "consistency"}
    n = n_candidates(run_dir)
    cases = [
        (toy.ToyGenerator(), consistency_only(), r"^run_dir: .* holds a run of another potential"),
        (CountingGenerator(toy.ToyGeneratorParams(steps=5)), toy_potential,
         r"^run_dir: .* holds a run of another generator"),
    ]
    for gen, pot, message in cases:
        with pytest.raises(ConfigError, match=message) as exc:
            eacps.search(cond, generator=gen, potential=pot, strategy="best-of-n", budget=4, run_dir=run_dir)
        assert "\n" not in str(exc.value) and "use another directory" in str(exc.value)
    assert n_candidates(run_dir) == n  # nothing written
    again = eacps.search(cond, generator=toy.ToyGenerator(), potential=toy_potential, strategy="best-of-n",
                         budget=4, run_dir=run_dir)  # the same search resumes
    assert [c.recipe for c in again.history] == [c.recipe for c in first.history] and n_candidates(run_dir) == n


def test_search_refuses_a_run_dir_search_of_other_strategy_params(tmp_path, toy_potential, cond):
    """Other params under the same label asked other recipes at the same seqs: a traceback (UNIQUE constraint)
    before; now one line, and another label is the way out."""
    run_dir = tmp_path / "run"

    def run(theta, label=None):
        return eacps.search(cond, generator=toy.ToyGenerator(), potential=toy_potential, strategy="eacps",
                            params={"neighborhood": "pcn", "theta": theta}, budget=8, run_dir=run_dir, label=label)

    run(0.1)
    with pytest.raises(ConfigError, match=r"^label: search 'task0/eacps/b8/s0' in .* was run with other strategy "
                                          r"settings \(.*\"theta\": 0.1.*\); give another label or run_dir$"):
        run(0.9)
    assert len(run(0.9, label="wide").history) == 8


def test_a_run_dir_made_by_the_cli_is_refused_to_another_potential(tmp_path, toy_plugin):
    cfg = configs.write(tmp_path / "c.toml", configs.toy(strategy="best-of-n", budget=4))
    run = run_config(cfg, tmp_path / "run")
    cond = run.results[0].condition
    with pytest.raises(ConfigError, match=r"^run_dir: .* another potential"):
        eacps.search(cond, generator=toy.ToyGenerator(), potential=consistency_only(), strategy="best-of-n",
                     budget=4, run_dir=tmp_path / "run")


# -- 5: a strategy instance runs once --------------------------------------------------------------------------------
def test_a_strategy_instance_refuses_a_second_search(toy_potential, cond):
    strategy = eacps.make_strategy("best-of-n", budget=4)
    first = eacps.search(cond, generator=toy.ToyGenerator(), potential=toy_potential, strategy=strategy)
    assert len(first.history) == 4
    gen = CountingGenerator()
    with pytest.raises(StrategyError, match=r"^best-of-n: this strategy instance already ran a search \(4 recipes "
                                            r"asked\); a strategy runs one search: make a new one for each$"):
        eacps.search(cond, generator=gen, potential=toy_potential, strategy=strategy)
    engine = Engine(gen, toy_potential)
    try:
        with pytest.raises(StrategyError, match="already ran a search"):
            engine.run(cond, strategy)
        fresh = eacps.make_strategy("best-of-n", budget=4)
        with pytest.raises(StrategyError, match="the same strategy instance is given to two searches"):
            engine.run_all([Job(cond, fresh), Job(Condition("task1", prompt="b"), fresh)])
    finally:
        engine.close()
    assert gen.generated == 0


# -- 2: max_steps respected, or refused with the bound ---------------------------------------------------------------
def test_max_steps_is_never_exceeded(toy_potential, cond):
    """best-of-n in batches of 8 with a 10-step schedule: a cap of 25 steps is 2 candidates (20 steps), not a whole
    batch of 80 (a cap of 1 charged 120 steps on digits)."""
    engine = Engine(toy.ToyGenerator(), toy_potential, batch_size=8)
    try:
        for cap, n in ((25, 2), (10, 1), (80, 8)):
            res = engine.run(cond, eacps.make_strategy("best-of-n", budget=20), max_steps=cap)
            assert (res.cost.steps, len(res.history), res.stop) == (10 * n, n, {"max_steps": cap})
        res = engine.run(cond, eacps.make_strategy("best-of-n", budget=2), max_steps=25)
        assert res.stop == {"budget": 2}  # the budget ends it first
    finally:
        engine.close()


@pytest.mark.parametrize("name, params, need", [("best-of-n", {}, 10), ("tree-search", {}, 10),
                                                ("multi-fidelity", {}, 10), ("fk-steering", {"particles": 3}, 30)])
def test_a_cap_below_one_finished_candidate_is_refused_before_compute(cond, toy_potential, name, params, need):
    gen = CountingGenerator(toy.ToyGeneratorParams(stepping=True))
    engine = Engine(gen, toy_potential)
    try:
        with pytest.raises(ValueError, match=rf"^max_steps: {name} needs {need} denoising steps to finish a "
                                             rf"candidate on this 10-step schedule \(got {need - 1}\); allowed: "
                                             rf">= {need}, or unset$"):
            engine.run(cond, eacps.make_strategy(name, params, budget=4), max_steps=need - 1)
        assert gen.generated == 0
        res = engine.run(cond, eacps.make_strategy(name, params, budget=4), max_steps=need)  # the bound works
    finally:
        engine.close()
    assert res.best is not None and res.cost.steps <= need


@pytest.mark.parametrize("name", ["tree-search", "multi-fidelity"])
def test_a_capped_trajectory_search_finishes_a_candidate(cond, toy_potential, name):
    """tree-search with max_steps 5 ended with no eligible candidate (CI [nan, nan], exit 0): it now plans within
    the cap, and a search id with the cap keeps it apart from the uncapped search."""
    engine = Engine(toy.ToyGenerator(toy.ToyGeneratorParams(stepping=True)), toy_potential)
    try:
        for cap in (12, 17, 23):
            res = engine.run(cond, eacps.make_strategy(name, budget=4), max_steps=cap)
            assert res.best is not None and res.cost.steps <= cap, (cap, res.cost.steps)
            assert res.search_id.endswith(f"/m{cap}")
        full = engine.run(cond, eacps.make_strategy(name, budget=4))
        assert full.cost.steps <= 40 and not full.search_id.endswith(("/m12", "/m17", "/m23"))
    finally:
        engine.close()


def test_max_steps_in_a_config_is_checked_before_compute(tmp_path, toy_plugin, capsys):
    cfg = configs.write(tmp_path / "c.toml", configs.toy(strategy="best-of-n", budget=4, max_steps=5))
    rc = main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("eacps: error: search.max_steps: best-of-n needs 10 denoising steps"), err
    assert err.count("\n") == 1 and not (tmp_path / "run").exists()


# -- 7: a step-counting strategy on a 1-step schedule ----------------------------------------------------------------
STEP_COUNTING = ["tree-search", "fk-steering", "multi-fidelity"]


@pytest.mark.parametrize("name", STEP_COUNTING)
def test_one_step_schedule_is_a_config_error_in_run_and_compare(tmp_path, toy_plugin, capsys, name):
    cfg = configs.toy(strategy=name, budget=4)
    cfg["generator"]["params"] = {"steps": 1, "stepping": True}
    path = configs.write(tmp_path / "c.toml", cfg)
    message = (f"eacps: error: generator.params.steps: {name} stops and continues trajectories part way, which "
               "needs a schedule of at least 2 denoising steps (got 1); allowed: >= 2, or a strategy that asks "
               "whole candidates\n")
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert capsys.readouterr().err == message
    cfg["search"]["strategy"] = "best-of-n"  # compare checks the strategies it is told, not only [search]'s
    path = configs.write(tmp_path / "d.toml", cfg)
    with pytest.raises(ConfigError) as exc:
        run_compare(path, tmp_path / "cmp", strategies=name, budgets="4", repeats=1, pool=0)
    assert f"eacps: error: {exc.value}\n" == message
    assert not (tmp_path / "run").exists() and not (tmp_path / "cmp").exists()


def test_one_step_schedule_in_generate_names_steps(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(["generate", "3", "--model", "digits", "--budget", "8", "--steps", "1", "--strategy", "tree-search",
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("eacps: error: --steps: tree-search stops and continues trajectories"), err
    assert list(tmp_path.iterdir()) == []


# -- make_strategy, search: resume, temporary stores, capabilities ----------------------------------------------------
def test_make_strategy_from_a_name_a_class_or_an_instance():
    from eacps.strategies.eacps import EACPS

    built = EACPS(budget=8, seed=2)
    assert eacps.make_strategy(built, {"ignored": True}, budget=99) is built  # an instance is returned as is
    by_class = eacps.make_strategy(EACPS, {"k_global": 6}, budget=12, seed=3)
    by_name = eacps.make_strategy("eacps", {"k_global": 6}, budget=12, seed=3)
    assert type(by_class) is type(by_name) is EACPS and by_class.params == by_name.params
    assert by_class.ask(4) == by_name.ask(4)
    with pytest.raises(ConfigError, match=r"^search\.params\.k_global: Input should be a valid integer.*\(got 'x'\)$"):
        eacps.make_strategy(EACPS, {"k_global": "x"})
    with pytest.raises(ConfigError, match=r"^search\.params\.nope: unknown parameter; allowed: k_global, "):
        eacps.make_strategy(EACPS, {"nope": 1})


def test_a_strategy_the_generator_cannot_run_is_refused_before_compute(tmp_path, toy_potential, cond):
    gen = CountingGenerator()
    with pytest.raises(ConfigError, match=r"^search\.strategy: strategy 'tree-search' needs stepping, which generator "
                                          r"'toy' does not offer \(it offers: noise_recipes\)$"):
        eacps.search(cond, generator=gen, potential=toy_potential, strategy="tree-search", budget=4,
                     run_dir=tmp_path / "run")
    assert gen.generated == 0 and not (tmp_path / "run").exists()


def test_a_repeated_search_resumes_from_its_run_dir(tmp_path, toy_potential, cond):
    gen = CountingGenerator()
    kw = dict(generator=gen, potential=toy_potential, strategy="eacps", budget=12, seed=4, run_dir=tmp_path / "run")
    first = eacps.search(cond, **kw)
    done = gen.generated
    again = eacps.search(cond, **kw)
    assert gen.generated == done  # every candidate served from the store
    assert [c.recipe for c in again.history] == [c.recipe for c in first.history] and len(first.history) == 12
    assert again.best.recipe == first.best.recipe and again.best.potential == first.best.potential
    assert n_candidates(tmp_path / "run") == 12 + 1  # the search and its prior, stored once


def test_without_a_run_dir_the_images_live_as_long_as_the_result(toy_potential, cond):
    import gc

    result = eacps.search(cond, generator=toy.ToyGenerator(), potential=toy_potential, strategy="best-of-n", budget=4)
    root = result.best.root
    image = result.best.image
    regenerated = toy.ToyGenerator().generate([result.best.recipe], cond)[0].image
    assert image.shape == regenerated.shape and abs(image - regenerated).max() <= 1 / 255  # stored as 8-bit PNG
    assert root.exists()
    del result
    gc.collect()
    assert not root.exists()  # the temporary store goes with the result
