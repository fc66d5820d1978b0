"""benchmarks/value_model.py: ``--task-seed`` draws the whole protocol on another task set. The seed reaches the
compare config and the warm-start config (its tuning split, not task set 0's), and it changes the tasks; the
default stays task set 0. Cheap: the configs are read back, the warm-start run is replaced by a recorder."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from repo import load_script

from eacps.config import build_conditions, parse_config

pytest.importorskip("eacps_digits")
BENCH = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the script imports its sibling strategies.py
    return load_script(BENCH / "value_model.py", "value_model_bench")


def conditions(text: str) -> list[str]:
    import tomllib

    return [c.id for c in build_conditions(parse_config(tomllib.loads(text)), Path("."))]


def test_the_task_seed_reaches_the_compare_config_and_changes_the_evaluation_tasks(bench):
    import eacps_digits

    searches = {"best-of-n": {"strategy": "best-of-n"}}
    ns = lambda seed: argparse.Namespace(eval_tasks=3, testbed="digits", task_seed=seed)  # noqa: E731
    ids = {seed: conditions(bench.eval_config(ns(seed), searches)) for seed in (0, 1)}
    for seed, got in ids.items():
        assert got == [c.id for c in eacps_digits.tasks(bench.TUNE_TASKS + 3, seed)]
    assert ids[0][bench.TUNE_TASKS:] != ids[1][bench.TUNE_TASKS:]  # another evaluation split
    assert "seed = 1" in bench.eval_config(ns(1), searches)
    # the default of strategies.config is unchanged: task set 0, as every earlier figure names it
    assert conditions(bench.config(bench.TUNE_TASKS + 3, searches)) == ids[0]


def test_the_warm_start_comes_from_the_tuning_split_of_the_same_task_set(bench, monkeypatch, tmp_path):
    import eacps_digits

    seen: dict[str, list[str]] = {}
    monkeypatch.setattr(bench, "run_config", lambda path, run_dir: seen.setdefault(
        "tasks", conditions(Path(path).read_text())))
    monkeypatch.setattr(bench, "export_warm_start", lambda *a, **k: 0)
    assert bench.warm_start(tmp_path, 2, task_seed=1) == (tmp_path / "warm.json", 0)
    assert seen["tasks"] == [c.id for c in eacps_digits.tasks(2, 1)] != [c.id for c in eacps_digits.tasks(2, 0)]
    # within one task set the warm-start tasks are not evaluation tasks
    assert not set(seen["tasks"]) & {c.id for c in eacps_digits.tasks(bench.TUNE_TASKS + 8, 1)[bench.TUNE_TASKS:]}
