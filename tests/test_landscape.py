"""eacps landscape: parent/child correlations per neighbourhood, written only into a run directory of its config."""

from __future__ import annotations

from configs import edit, toy, write
from runs import one_line_error, run_config

from eacps.cli import main


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
