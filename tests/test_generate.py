"""``eacps generate``: one search from a prompt, end to end on the digits testbed, and its bad-input rules."""

from __future__ import annotations

import json
import socket
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eacps.cli import main
from eacps.generate import GenerateRequest, build_config, reproduction, to_toml
from eacps.recipe import Recipe
from eacps.store import read_only
from eacps.summary import load_searches


def _line(out: str, prefix: str) -> str:
    return next(x for x in out.splitlines() if x.startswith(prefix))


def test_generate_digits_then_run_the_saved_config(tmp_path, capsys, monkeypatch):
    """generate writes the winner and a config; ``eacps run`` on that config finds the same winner."""
    monkeypatch.chdir(tmp_path)
    rc = main(["generate", "3", "--model", "digits", "--budget", "8", "-o", "best.png", "--save-config", "g.toml",
               "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0, out
    potential = float(_line(out, "best potential").split()[2])
    recipe = Recipe.from_json(_line(out, "recipe: ").removeprefix("recipe: "))
    scores = dict(kv.split()[:2] for kv in _line(out, "sub-scores: ").removeprefix("sub-scores: ").split(", "))
    assert set(scores) == {"consistency", "realism", "identity"}
    assert 0 < potential <= 65
    best = np.asarray(Image.open("best.png"))
    assert best.shape == (8, 8) and best.max() > 0

    cfg = tomllib.loads(Path("g.toml").read_text())
    assert cfg["generator"]["name"] == "digits" and cfg["conditions"][0]["class_label"] == 3
    assert cfg["search"]["budget"] == 8

    assert main(["run", "g.toml", "--out", "run", "--quiet"]) == 0
    capsys.readouterr()
    store = read_only(tmp_path / "run")
    try:
        (rec,) = load_searches(store)
    finally:
        store.close()
    assert len(rec.candidates) == 8
    assert rec.best.recipe == recipe
    assert rec.best.potential == pytest.approx(potential, abs=5e-4)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "run" / rec.best.image_path)), best)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize(
    "args, names",
    [
        (["cat", "--model", "digits"], "PROMPT"),
        (["3", "--model", "digits", "--judge", "some/vlm"], "--judge"),
        (["a cat", "--model", "no/such-model-here"], "--model"),
        (["a cat", "--model", "x", "--reference", "missing.png"], "--reference"),
        (["a cat", "--model", "x", "--judge-url", "http://127.0.0.1:{port}/v1", "--judge", "m"], "--judge-url"),
        (["a cat", "--model", "x", "--judge-url", "http://127.0.0.1:{port}/v1", "--judge", "m",
          "--judge-key-env", "EACPS_TEST_UNSET_KEY"], "--judge-key-env"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, monkeypatch, args, names):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-0123456789")
    monkeypatch.delenv("EACPS_TEST_UNSET_KEY", raising=False)
    args = [a.format(port=_closed_port()) for a in args]
    rc = main(["generate", *args, "-o", "best.png", "--save-config", "g.toml", "--run-dir", "run", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"eacps: error: {names}"), err
    assert "sk-test-secret" not in out + err
    assert list(tmp_path.iterdir()) == []


def test_the_saved_toml_round_trips_every_field(tmp_path):
    """The TOML writer keeps every value of a diffusers + openai-judge + reference config."""
    ref = tmp_path / "ref.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(ref)
    req = GenerateRequest('a "quoted" cat\\dog', "stabilityai/sdxl", judge="qwen", judge_url="http://h:1/v1",
                          reference=str(ref), prior=True, budget=12, steps=4, strategy="best-of-n")
    cfg = build_config(req)
    assert tomllib.loads(to_toml(cfg, header="two\nlines")) == json.loads(json.dumps(cfg))
    crit = cfg["potential"]["criteria"]
    assert set(crit) == {"consistency", "realism", "identity"}
    assert {c["scorer"] for c in crit.values()} == {"openai-judge"}
    assert all(c["params"]["use_prior"] and c["params"]["api_key_env"] == "OPENAI_API_KEY" for c in crit.values())
    no_ref = build_config(GenerateRequest("a cat", "m"))
    assert set(no_ref["potential"]["criteria"]) == {"consistency", "realism"}
    assert no_ref["potential"]["criteria"]["realism"]["scorer"] == "vlm"


def test_reproduction_lines_only_for_seed_only_diffusers_winners():
    cfg = build_config(GenerateRequest("a cat", "some/model", steps=4))
    lines = reproduction(cfg, Recipe.from_seed(1234))
    assert len(lines) == 2
    assert "from_pretrained('some/model')" in lines[0]
    assert 'torch.Generator("cpu").manual_seed(1234)' in lines[1] and "'a cat'" in lines[1]
    assert "num_inference_steps=4" in lines[1]
    assert reproduction(cfg, Recipe.from_seed(1).pcn(0.3, 7)) == []
    assert reproduction(build_config(GenerateRequest("3", "digits")), Recipe.from_seed(1)) == []
