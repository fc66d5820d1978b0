"""Promise 6: a bad config is one clear line naming the field, exit code 2, and nothing written to an existing
run directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from configs import edit, write
from runs import digest, toy_cfg

from eacps.cli import main

EDITS = [  # ({dotted path: the bad value}, the field the message must name)
    ({"search.strategy": "nope"}, "search.strategy: unknown strategy 'nope'"),
    ({"potential.criteria.consistency.scorer": "nope"}, "potential.criteria.consistency.scorer: unknown scorer 'nope'"),
    ({"search.budget": "twenty"}, "search.budget: Input should be a valid integer"),
    ({"search.batch_size": 1.5}, "search.batch_size: Input should be a valid integer"),
    ({"search.budget": -5}, "search.budget: Input should be greater than or equal to 1"),
    ({"potential.criteria.realism.weight": 0.0, "potential.criteria.consistency.weight": 0.0}, "weights are all zero"),
    ({"conditions.0": {"id": "a", "reference": "missing.png"}}, "conditions.0.reference: cannot read image"),
    (
        {"generator": {"name": "diffusers", "params": {"model": "/nonexistent/eacps-model"}}},
        "generator.params: diffusers cannot load its model",
    ),
    ({"generator": {"name": "digits", "params": {"weights_dir": "/nonexistent/eacps-weights"}}}, "generator"),
]


@pytest.mark.parametrize("edits", EDITS, ids=[e[1].split(":")[0] for e in EDITS])
def test_bad_config_one_line_exit_2_nothing_written(tmp_path, toy_plugin, capsys, figures, edits):
    changes, message = edits
    out = tmp_path / "run"
    good = toy_cfg(budget=20)
    assert main(["run", str(write(tmp_path / "cfg.toml", good)), "--out", str(out), "--quiet"]) == 0
    before = digest(out)
    capsys.readouterr()
    bad = good
    for path, value in changes.items():
        bad = edit(bad, path, value)
    assert bad != good
    assert main(["run", str(write(tmp_path / "bad.toml", bad)), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("eacps: error: ") and message in err, err
    assert digest(out) == before  # not a byte written to the existing run
    figures("6-bad-configs", configs_refused=1, written=0)


def test_real_process_exit_code_2(tmp_path, figures):
    """The installed ``eacps`` command itself: one line on stderr, exit status 2, the run directory untouched."""
    cfg = write(tmp_path / "bad.toml", {
        "generator": {"name": "digits"},
        "potential": {"criteria": {"realism": {"scorer": "digits-realism"}}},
        "search": {"budget": -1},
        "conditions": [{"id": "x", "class_label": 3}],
    })
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    env = {**os.environ, "EACPS_LOAD_PLUGINS": "eacps-digits"}
    p = subprocess.run(
        [sys.executable, "-m", "eacps", "run", str(cfg), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert p.returncode == 2
    assert p.stderr.strip() == "eacps: error: search.budget: Input should be greater than or equal to 1 (got -1)"
    assert digest(out) == {"keep.txt": digest(out)["keep.txt"]} and (out / "keep.txt").read_text() == "mine"
    figures("6-bad-configs", configs_refused=1, written=0)
