"""``eacps landscape --per-step``: the rank correlation of step-k previews with final images, per step."""

from __future__ import annotations

import json
from pathlib import Path

import configs
from runs import candidates

from eacps.analysis.step_landscape import per_step_table
from eacps.commands.cli import main

EXAMPLE = Path(__file__).parents[1] / "examples" / "digits.toml"


def test_per_step_table_from_known_ranks():
    finals = {i: float(i) for i in range(6)}
    by_task = {"a": {None: finals, 1: {i: -float(i) for i in range(6)}, 2: dict(finals)},
               "b": {None: finals, 1: {i: float(i % 2) for i in range(6)}, 2: dict(finals)}}
    rows = per_step_table(by_task, 3)
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[1]["spearman"] == 1.0 and rows[1]["tasks"] == 2
    assert rows[0]["spearman"] < 0 and rows[0]["ci95"][0] <= rows[0]["spearman"] <= rows[0]["ci95"][1]


def test_per_step_on_digits(tmp_path, capsys):
    out = tmp_path / "ls"
    assert main(["landscape", str(EXAMPLE), "--per-step", "--parents", "8", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "landscape_steps.json").read_text())
    rows = summary["rows"]
    assert [r["step"] for r in rows] == list(range(1, summary["steps"]))
    early, late = rows[0]["spearman"], rows[-1]["spearman"]
    assert late > 0.9 and late > early  # the last preview ranks like the final image; the first does not
    assert "rank correlation" in capsys.readouterr().out
    n = sum(c.search.startswith("landscape") for c in candidates(out))
    assert n == summary["tasks"] * 8 * summary["steps"]  # T - 1 previews and one final per trajectory


def test_per_step_needs_a_stepping_generator(tmp_path, capsys, toy_plugin):
    cfg = configs.write(tmp_path / "cfg.toml", configs.toy())
    assert main(["landscape", str(cfg), "--per-step", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--per-step" in err and "stepping" in err and "Traceback" not in err
