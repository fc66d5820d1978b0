"""eacps landscape: parent/child correlations per neighbourhood, written only into a run directory of its config."""

from __future__ import annotations

import pytest
from configs import edit, toy, write
from runs import one_line_error, run_config

from eacps.analysis.landscape import run_landscape
from eacps.commands.cli import main
from eacps.config import ConfigError
from eacps.store import read_only

#: the toy task set of three conditions, one criterion (the base config of test_compare.py)
TASKS_CFG = {
    "tasks": {"name": "toy", "n": 3},
    "generator": {"name": "toy"},
    "potential": {"criteria": {"realism": {"scorer": "toy-pixel"}}},
}


# -- run directories (moved from tests/test_cli_defects.py) ----------------------------------------------------------
def test_landscape_into_a_run_directory_of_another_config_is_refused(tmp_path, toy_plugin, capsys):
    out = tmp_path / "run"
    assert run_config(write(tmp_path / "c.toml", toy(budget=4)), out) == 0
    before = sorted((p.name, p.stat().st_size) for p in out.rglob("*") if p.name != ".lock")
    other = write(tmp_path / "o.toml", edit(toy(budget=4), "potential.criteria.realism.weight", 1.0))
    argv = ["landscape", str(other), "--out", str(out), "--neighborhoods", "seed-offset", "--parents", "3",
            "--children", "1", "--quiet"]
    assert main(argv) == 2
    assert "holds results of a different config (first difference: potential.criteria.realism.weight)" in \
        one_line_error(capsys)
    assert sorted((p.name, p.stat().st_size) for p in out.rglob("*") if p.name != ".lock") == before


# -- the config's prior seed and batch size (moved from tests/test_compare_defects.py) -------------------------------
def test_landscape_uses_the_configs_prior_seed_and_batch_size(tmp_path, toy_plugin, monkeypatch):
    sizes = []
    generate = toy_plugin.ToyGenerator.generate

    def spy(self, recipes, condition, **kw):
        sizes.append(len(recipes))
        return generate(self, recipes, condition, **kw)

    monkeypatch.setattr(toy_plugin.ToyGenerator, "generate", spy)
    cfg = write(tmp_path / "c.toml", {**TASKS_CFG, "search": {"prior_seed": 5, "batch_size": 3}})
    out = tmp_path / "land"
    run_landscape(cfg, out, neighborhoods="pcn:0.3", parents=4, k=2)
    ro = read_only(out)
    try:
        assert {c.search for c in ro.candidates(role="prior")} == {f"prior/toy0-{i}/5" for i in range(3)}
    finally:
        ro.close()
    assert sizes and max(sizes) <= 3
    other = write(tmp_path / "o.toml", {**edit(TASKS_CFG, "tasks.n", 4), "search": {"prior_seed": 6}})
    with pytest.raises(ConfigError, match=r"^--out: .* holds results of a different config"):
        run_landscape(other, out, neighborhoods="pcn:0.3", parents=4, k=2)
