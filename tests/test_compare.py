"""eacps compare: every strategy on every task at its charged cost, refusing run directories of another config;
the reference pool and the evaluation split share no seed with a contestant (regressions of issue 12)."""

import json

import configs
import pytest
from configs import n_candidates

from eacps.analysis.compare import (
    POOL,
    POOL_SEED,
    Split,
    compute_multiplier,
    format_compare,
    parse_budgets,
    parse_contestants,
    run_compare,
)
from eacps.config import ConfigError, parse_config
from eacps.store import Store, read_only
from eacps.strategies.zero_order import ZeroOrderParams

BASE = {
    "tasks": {"name": "toy", "n": 3},
    "generator": {"name": "toy"},
    "potential": {"criteria": {"realism": {"scorer": "toy-pixel"}}},
}


def write(tmp_path, name: str = "c.toml", cfg: dict | None = None, **extra):
    """``cfg`` (BASE unless given) with the top-level tables ``extra`` added, written as ``tmp_path/name``."""
    return configs.write(tmp_path / name, {**(BASE if cfg is None else cfg), **extra})


def rows_of(summary):
    return {(r["strategy"], r["budget"]): r for r in summary["table"]}


def test_compare_refuses_a_run_dir_of_another_config_or_a_relabelled_strategy(tmp_path, toy_plugin):
    out = tmp_path / "cmp"
    run_compare(write(tmp_path), out, strategies="best-of-n", budgets="2", repeats=1, pool=4)
    n = n_candidates(out)
    changed = write(tmp_path, "d.toml", configs.edit(BASE, "potential.criteria.realism.weight", 2.0))
    with pytest.raises(ConfigError, match=r"^--out: .* holds results of a different config") as exc:
        run_compare(changed, out, strategies="best-of-n", budgets="2", repeats=1, pool=4)
    assert "\n" not in str(exc.value)
    # a label may be added to the directory, but never run again with other settings
    relabelled = write(tmp_path, "e.toml", searches=[{"label": "best-of-n", "strategy": "zero-order"}])
    with pytest.raises(ConfigError, match=r"^--strategies: 'best-of-n' was run in .* with other settings"):
        run_compare(relabelled, out, strategies="best-of-n", budgets="2", repeats=1, pool=4)
    assert n_candidates(out) == n  # nothing was written


def test_a_label_whose_parameters_resolve_alike_replays(tmp_path, toy_plugin):
    """What ran is the parameters resolved with their defaults: a default spelled out is the same search, replayed;
    a value that resolves otherwise is refused."""
    out = tmp_path / "cmp"
    run_compare(write(tmp_path), out, strategies="best-of-n,zero-order", budgets="2", repeats=1, pool=4)
    n = n_candidates(out)
    default = ZeroOrderParams().threshold
    spelled = write(tmp_path, "s.toml", searches=[{"label": "zero-order", "strategy": "zero-order",
                                                   "params": {"threshold": default}}])
    assert run_compare(spelled, out, strategies="best-of-n,zero-order", budgets="2", repeats=1,
                       pool=4)["generated"] == 0
    other = write(tmp_path, "o.toml", searches=[{"label": "zero-order", "strategy": "zero-order",
                                                 "params": {"threshold": default / 2}}])
    with pytest.raises(ConfigError, match=r"^--strategies: 'zero-order' was run in .* with other settings"):
        run_compare(other, out, strategies="best-of-n,zero-order", budgets="2", repeats=1, pool=4)
    assert n_candidates(out) == n


def test_a_label_whose_default_parameters_changed_since_it_ran_is_refused(tmp_path, toy_plugin):
    """The stored settings carry the parameters resolved with their defaults: a label run under an older default
    (here: the store edited as if zero-order had had another default threshold) is refused, not silently mixed; a
    store written before the resolved parameters were stored is compared as before."""
    out = tmp_path / "cmp"
    run_compare(write(tmp_path), out, strategies="best-of-n,zero-order", budgets="2", repeats=1, pool=4)
    n = n_candidates(out)
    with Store.open(out) as store:
        labels = store.get_meta("compare/contestants")
        assert labels["zero-order"]["params"] == {} and labels["zero-order"]["resolved"]["threshold"] is not None
        store.set_meta("compare/contestants", {**labels, "zero-order": {
            **labels["zero-order"], "resolved": {**labels["zero-order"]["resolved"], "threshold": 0.123}}})
    with pytest.raises(ConfigError, match=r"^--strategies: 'zero-order' was run in .* with other settings"):
        run_compare(write(tmp_path), out, strategies="best-of-n,zero-order", budgets="2", repeats=1, pool=4)
    assert n_candidates(out) == n
    with Store.open(out) as store:  # as a store from before: no resolved parameters
        store.set_meta("compare/contestants", {k: {f: x for f, x in v.items() if f != "resolved"}
                                               for k, v in labels.items()})
    run_compare(write(tmp_path), out, strategies="best-of-n,zero-order", budgets="2", repeats=1, pool=4)
    assert n_candidates(out) == n  # replayed, nothing recomputed


def test_a_parameter_added_since_a_label_ran_replays_at_its_former_value(tmp_path, toy_plugin, monkeypatch):
    """A parameter the strategy gained after a label ran (here: the store edited as if zero-order had had no
    ``threshold`` then) is the same search at the value its class names in ``added`` (what the strategy did before
    it), and another search at any other value or when the class does not name it."""
    out = tmp_path / "cmp"
    run_compare(write(tmp_path), out, strategies="best-of-n,zero-order", budgets="2", repeats=1, pool=4)
    n = n_candidates(out)
    with Store.open(out) as store:
        labels = store.get_meta("compare/contestants")
        resolved = {k: v for k, v in labels["zero-order"]["resolved"].items() if k != "threshold"}
        store.set_meta("compare/contestants", {**labels, "zero-order": {**labels["zero-order"], "resolved": resolved}})
    refused = r"^--strategies: 'zero-order' was run in .* with other settings"
    with pytest.raises(ConfigError, match=refused):  # not named in ``added``: a new parameter, another search
        run_compare(write(tmp_path), out, strategies="best-of-n,zero-order", budgets="2", repeats=1, pool=4)
    default = ZeroOrderParams().threshold
    monkeypatch.setattr(ZeroOrderParams, "added", {"threshold": default})
    assert run_compare(write(tmp_path), out, strategies="best-of-n,zero-order", budgets="2", repeats=1,
                       pool=4)["generated"] == 0
    other = write(tmp_path, "o.toml", searches=[{"label": "zero-order", "strategy": "zero-order",
                                                 "params": {"threshold": default / 2}}])
    with pytest.raises(ConfigError, match=refused):
        run_compare(other, out, strategies="best-of-n,zero-order", budgets="2", repeats=1, pool=4)
    assert n_candidates(out) == n


def test_compare_honours_max_steps_and_every_searches_entry(tmp_path, toy_plugin):
    cfg = write(tmp_path, searches=[{"label": "open", "strategy": "best-of-n"},
                                    {"label": "capped", "strategy": "best-of-n", "batch_size": 2, "max_steps": 30}])
    rows = rows_of(run_compare(cfg, tmp_path / "cmp", strategies="open,capped", budgets="8", repeats=1, pool=4))
    assert rows[("open", 8)]["steps"] == 80  # 8 candidates x 10 steps
    assert 30 <= rows[("capped", 8)]["steps"] <= 40  # the second entry's cap and batch size (2 x 10 steps)
    # a bare strategy name takes [search]'s settings
    single = write(tmp_path, "s.toml", search={"batch_size": 2, "max_steps": 20})
    rows = rows_of(run_compare(single, tmp_path / "cmp2", strategies="best-of-n", budgets="8", repeats=1, pool=4))
    assert rows[("best-of-n", 8)]["steps"] == 20


def test_compare_needs_one_prior_seed(tmp_path, toy_plugin):
    cfg = write(tmp_path, searches=[{"label": "a"}, {"label": "b", "prior_seed": 1}])
    with pytest.raises(ConfigError, match=r"^searches\.1\.prior_seed: compare and landscape need one prior seed"):
        run_compare(cfg, tmp_path / "cmp", strategies="a,b", budgets="2")
    assert not (tmp_path / "cmp").exists()


def _root_seeds(out, *, pool: bool) -> dict[str, set[int]]:
    """Per task, the seeds of its pool's candidates (``pool``) or of every contestant's best-of-n candidates."""
    ro = read_only(out)
    try:
        by: dict[str, set[int]] = {}
        for s in ro.searches():
            if (f"/{POOL}/" in s) == pool and (pool or "/best-of-n/" in s):
                by.setdefault(s.split("/")[0], set()).update(c.recipe.seed for c in ro.candidates(search=s))
        return by
    finally:
        ro.close()


def test_per_task_seeds_share_no_noise_between_tasks_or_with_the_pool(tmp_path, toy_plugin):
    """The default: each task draws its own strategy seeds and pool, so a seed's luck is not shared by the tasks
    (a bootstrap over tasks then covers it); on one task the contestants still share seeds (paired)."""
    out = tmp_path / "cmp"
    s = run_compare(write(tmp_path), out, strategies="best-of-n,eacps", budgets="8", repeats=2, pool=16)
    pool, bon = _root_seeds(out, pool=True), _root_seeds(out, pool=False)
    assert len(pool) == len(bon) == 3 and all(len(v) == 16 for v in pool.values())
    assert len(set().union(*pool.values())) == 48 and len(set().union(*bon.values())) == 48  # no task shares one
    assert not set().union(*pool.values()) & set().union(*bon.values())
    split = Split()
    assert s["protocol"]["seeds"] == "per-task" and s["protocol"]["pool"]["seeds"] == {
        t: split.pool_seed(t) for t in pool}
    assert min(s["protocol"]["pool"]["seeds"].values()) >= 2**32
    for r in s["searches"]:  # records keep the strategy seed and the seed it ran under on its task
        assert r["strategy_seed"] == split.strategy_seed(r["task"], r["seed"]) != r["seed"]
    same = {(r["task"], r["seed"]): r["strategy_seed"] for r in s["searches"] if r["strategy"] == "eacps"}
    assert all(same[(r["task"], r["seed"])] == r["strategy_seed"] for r in s["searches"])
    assert "under its own seeds" in format_compare(s)


def test_shared_seeds_draw_the_same_noises_on_every_task(tmp_path, toy_plugin):
    out = tmp_path / "cmp"
    s = run_compare(write(tmp_path), out, strategies="best-of-n,eacps", budgets="8", repeats=2, pool=16,
                    split=Split(seeds="shared"))
    pool, bon = _root_seeds(out, pool=True), _root_seeds(out, pool=False)
    assert len({frozenset(v) for v in pool.values()}) == 1 and len(next(iter(pool.values()))) == 16
    assert len({frozenset(v) for v in bon.values()}) == 1
    assert not next(iter(pool.values())) & next(iter(bon.values()))  # the pool still shares no seed with them
    assert s["protocol"]["pool"]["seed"] == POOL_SEED and "too narrow" in format_compare(s)
    # the per-task searches of the same store are others (their ids differ), never a resumed shared one
    per_task = run_compare(write(tmp_path), out, strategies="best-of-n", budgets="8", repeats=2, pool=16)
    assert per_task["generated"] > 0
    assert {r["best"] for r in per_task["searches"]} != {r["best"] for r in s["searches"]
                                                          if r["strategy"] == "best-of-n"}
    with pytest.raises(ConfigError, match=r"^--seed-mode: 'mixed'; allowed: per-task, shared"):
        run_compare(write(tmp_path), tmp_path / "x", strategies="best-of-n", budgets="2",
                    split=Split(seeds="mixed"))  # type: ignore[arg-type]


def test_split_reports_the_evaluation_tasks_with_fresh_seeds(tmp_path, toy_plugin):
    write(tmp_path, "c.toml", configs.edit(BASE, "tasks.n", 5))
    out = tmp_path / "cmp"
    s = run_compare(tmp_path / "c.toml", out, strategies="best-of-n", budgets="2", repeats=1, pool=4,
                    split=Split(tune_tasks=2, seed_offset=7))
    p = s["protocol"]
    assert s["tasks"] == 3 and p["reported"] == "evaluation" and p["strategy_seeds"] == [7]
    assert p["tuning_tasks"] == ["toy0-0", "toy0-1"] and p["evaluation_tasks"] == ["toy0-2", "toy0-3", "toy0-4"]
    ro = read_only(out)
    try:
        assert not [x for x in ro.searches() if x.startswith(("toy0-0/", "toy0-1/"))]  # tuning tasks not run
        assert any(x.endswith("/B2/r7/per-task") for x in ro.searches())
    finally:
        ro.close()
    assert not any("winner's curse" in w for w in s["warnings"])
    tuning = run_compare(tmp_path / "c.toml", tmp_path / "tune", strategies="best-of-n", budgets="2", repeats=1,
                         pool=4, split=Split(tune_tasks=2, report="tuning"))
    assert tuning["tasks"] == 2 and any("tuning split" in w for w in tuning["warnings"])
    with pytest.raises(ConfigError, match=r"^--tune-tasks: 5 leaves the evaluation split empty"):
        run_compare(tmp_path / "c.toml", tmp_path / "x", strategies="best-of-n", budgets="2",
                    split=Split(tune_tasks=5))


def test_a_default_spelled_out_is_the_same_config(tmp_path, toy_plugin):
    """A store written when criteria dumped their calibration as {kind = "none", ...} is the config that now
    leaves it unset (the scorer's default, none): compare must not refuse it."""
    from eacps.analysis.compare import check_run_dir
    from eacps.config import load_config, stored_difference

    cfg, _ = load_config(write(tmp_path))
    old = cfg.model_dump(mode="json")
    old["potential"]["criteria"]["realism"]["calibration"] = {"kind": "none", "scale": 1.0, "offset": 0.0,
                                                              "lo": 0.0, "hi": 10.0}
    assert stored_difference(old, cfg, searches=False) is None
    out = tmp_path / "cmp"
    run_compare(write(tmp_path), out, strategies="best-of-n", budgets="2", repeats=1, pool=4)
    check_run_dir(out, cfg)  # no error
    old["potential"]["criteria"]["realism"]["calibration"]["scale"] = 2.0
    assert stored_difference(old, cfg, searches=False) == "potential.criteria.realism.calibration.scale"


# -- the command's parts: arguments, splits, the best-of-N multiplier, a whole run ------------------------------------
@pytest.mark.parametrize("spec, budgets", [("8", [8]), ("32, 8,8 ,16", [8, 16, 32])])
def test_budgets_are_sorted_and_unique(spec, budgets):
    assert parse_budgets(spec) == budgets


@pytest.mark.parametrize("spec", ["", "0,8", "8,x", "-1"])
def test_bad_budgets_are_one_line_naming_the_option(spec):
    with pytest.raises(ConfigError, match=r"^--budgets: comma-separated positive integers"):
        parse_budgets(spec)


def test_contestants_are_config_labels_or_strategy_names(toy_plugin):
    cfg = parse_config({**BASE, "searches": [{"label": "wide", "strategy": "eacps", "batch_size": 4,
                                              "params": {"neighborhood": "pcn"}}]})
    wide, bon = parse_contestants("wide, best-of-n", cfg)
    assert (wide.label, wide.strategy, wide.params, wide.batch_size) == ("wide", "eacps", {"neighborhood": "pcn"}, 4)
    assert (bon.label, bon.strategy, bon.params) == ("best-of-n", "best-of-n", {})
    with pytest.raises(ConfigError, match=r"^--strategies: unknown strategy 'nope'.*; config labels: wide"):
        parse_contestants("nope", cfg)
    with pytest.raises(ConfigError, match=r"^--strategies: each strategy once"):
        parse_contestants("wide,wide", cfg)
    with pytest.raises(ConfigError, match=r"^--strategies: give at least one strategy"):
        parse_contestants(" , ", cfg)


def test_a_split_reports_the_evaluation_or_the_tuning_tasks():
    tasks = list("abcde")
    assert Split().select(tasks) == tasks
    assert Split(tune_tasks=2).select(tasks) == ["c", "d", "e"]
    assert Split(tune_tasks=2, report="tuning").select(tasks) == ["a", "b"]
    with pytest.raises(ConfigError, match=r"^--tune-tasks: must be between 0 and the config's 5 conditions"):
        Split(tune_tasks=6).select(tasks)
    with pytest.raises(ConfigError, match=r"^--tune-tasks: 0 leaves the tuning split empty"):
        Split(report="tuning").select(tasks)


def test_the_multiplier_is_where_best_of_n_reaches_the_target():
    pools = {"t": [float(v) for v in range(1, 9)]}  # E[max of N] over 1..8 at N = 1 is the mean, 4.5
    at_one = compute_multiplier(pools, 3.0, equivalents=1.0)  # below what one sample gives
    assert at_one["bound"] == "<=" and at_one["n_star"] == pytest.approx(1.0)
    mid = compute_multiplier(pools, 7.0, equivalents=2.0)
    assert mid["bound"] == "=" and 1 < mid["n_star"] < 8 and mid["multiplier"] == pytest.approx(mid["n_star"] / 2)
    beyond = compute_multiplier(pools, 9.0, equivalents=1.0)
    assert beyond["bound"] == ">" and beyond["n_star"] == 8  # capped at the pool


def test_a_compare_charges_every_contestant_its_budget_and_writes_compare_json(tmp_path, toy_plugin):
    out = tmp_path / "cmp"
    summary = run_compare(write(tmp_path), out, strategies="best-of-n,eacps", budgets="4,8", repeats=2, pool=8)
    rows = rows_of(summary)
    assert set(rows) == {(s, b) for s in ("best-of-n", "eacps") for b in (4, 8)}
    for (_, b), r in rows.items():
        assert r["steps"] == b * 10  # charged: budget x steps, whatever was reused
    assert json.loads((out / "compare.json").read_text())["table"] == summary["table"]
    assert len(summary["searches"]) == 2 * 2 * 2 * 3  # strategies x budgets x repeats x tasks
    assert {len(v) for v in summary["pool_samples"].values()} == {8}
    again = run_compare(write(tmp_path), out, strategies="best-of-n,eacps", budgets="4,8", repeats=2, pool=8)
    assert again["generated"] == 0 and again["table"] == summary["table"]  # resumed from the store
