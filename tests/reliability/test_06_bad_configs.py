"""Promise 6: a bad config is one clear line naming the field, exit code 2, and nothing written to an existing
run directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from relhelp import digest, toy_config

from eacps.cli import main

EDITS = [  # (replace, with, the field the message must name)
    ('strategy = "eacps"', 'strategy = "nope"', "search.strategy: unknown strategy 'nope'"),
    ('scorer = "toy-mean"', 'scorer = "nope"', "potential.criteria.consistency.scorer: unknown scorer 'nope'"),
    ("budget = 20", 'budget = "twenty"', "search.budget: Input should be a valid integer"),
    ("batch_size = 6", "batch_size = 1.5", "search.batch_size: Input should be a valid integer"),
    ("budget = 20", "budget = -5", "search.budget: Input should be greater than or equal to 1"),
    ('scorer = "toy-pixel"', 'scorer = "toy-pixel"\nweight = 0.0', "weights are all zero"),
    ('prompt = "first"', 'reference = "missing.png"', "conditions.0.reference: cannot read image"),
    (
        'name = "toy"\nparams = {}',
        'name = "diffusers"\nparams = { model = "/nonexistent/eacps-model" }',
        "generator.params: diffusers cannot load its model",
    ),
    (
        'name = "toy"\nparams = {}',
        'name = "digits"\nparams = { weights_dir = "/nonexistent/eacps-weights" }',
        "generator",
    ),
]


@pytest.mark.parametrize("edit", EDITS, ids=[e[2].split(":")[0] for e in EDITS])
def test_bad_config_one_line_exit_2_nothing_written(tmp_path, toy_plugin, capsys, figures, edit):
    out = tmp_path / "run"
    good = toy_config(tmp_path, budget=20)
    assert main(["run", str(good), "--out", str(out), "--quiet"]) == 0
    before = digest(out)
    capsys.readouterr()
    text = good.read_text()
    assert edit[0] in text
    bad = tmp_path / "bad.toml"
    text = text.replace(edit[0], edit[1], 1)
    if "weights are all zero" in edit[2]:
        text = text.replace("params = {}\n\n[search]", "params = {}\nweight = 0.0\n\n[search]")
    bad.write_text(text)
    assert main(["run", str(bad), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("eacps: error: ") and edit[2] in err, err
    assert digest(out) == before  # not a byte written to the existing run
    figures("6-bad-configs", configs_refused=1, written=0)


def test_real_process_exit_code_2(tmp_path, figures):
    """The installed ``eacps`` command itself: one line on stderr, exit status 2, the run directory untouched."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        '[generator]\nname = "digits"\n[potential.criteria.realism]\nscorer = "digits-realism"\n'
        '[search]\nbudget = -1\n[[conditions]]\nid = "x"\nclass_label = 3\n'
    )
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
