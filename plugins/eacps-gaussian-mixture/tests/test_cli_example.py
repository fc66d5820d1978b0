"""examples/gaussian-mixture.toml through the commands the digits example goes through (issue 19): run, show,
report, landscape --per-step and serve's state, on a small copy (2 tasks, budget 6, tree-search)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from eacps import tomlw
from eacps.analysis import serve
from eacps.commands.cli import main

EXAMPLE = Path(__file__).parents[3] / "examples" / "gaussian-mixture.toml"


def small_example(tmp_path: Path, strategy: str = "tree-search") -> Path:
    cfg = tomllib.loads(EXAMPLE.read_text())
    cfg["tasks"]["n"] = 2
    cfg["search"].update(strategy=strategy, budget=6, batch_size=6, params={})
    path = tmp_path / "gm.toml"
    path.write_text(tomlw.dumps(cfg))
    return path


def test_example_runs_shows_reports_and_serves(tmp_path, capsys):
    cfg = small_example(tmp_path)
    run = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(run), "--quiet"]) == 0
    assert main(["show", str(run), "--tree"]) == 0
    out = capsys.readouterr().out
    searches = [line.split()[0] for line in out.splitlines() if "/tree-search/b6/s0" in line and "(" not in line]
    assert len(searches) == 2 and "renoise@" in out  # both conditions' searches, and the tree with its branches
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert "Trajectory trees" in html and "gaussian-mixture" in html
    state = serve.state(run)
    assert state["best"] and all(b["potential"] is not None for b in state["best"])
    rows = json.loads(json.dumps(state))["best"]
    assert len(rows) == 2  # one best per condition


def test_example_landscape_per_step(tmp_path, capsys):
    cfg = small_example(tmp_path)
    out = tmp_path / "land"
    assert main(["landscape", str(cfg), "--per-step", "--parents", "3", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    steps = json.loads((out / "landscape_steps.json").read_text())
    assert steps["parents"] == 3 and steps["steps"] == 50 and len(steps["rows"]) >= 40  # a row per step k
    assert (out / "report.html").exists() and "report:" in text
