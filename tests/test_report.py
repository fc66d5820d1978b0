"""eacps report: a self-contained HTML page of a run store, written where asked or refused in one line."""

from __future__ import annotations

from configs import toy, write
from runs import one_line_error, run_config

from eacps.cli import main


# -- --output (moved from tests/test_cli_defects.py) -----------------------------------------------------------------
def test_report_output_in_a_missing_folder_is_one_line(tmp_path, toy_plugin, capsys):
    out = tmp_path / "run"
    assert run_config(write(tmp_path / "c.toml", toy(budget=4)), out) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--output", str(tmp_path / "no" / "such" / "r.html")]) == 2
    assert "--output: folder" in one_line_error(capsys)
    assert main(["report", str(out), "--output", str(tmp_path)]) == 2  # a directory
    assert "report: Invalid value for '--output'" in one_line_error(capsys)
