"""Promise 6: a bad config is one clear line naming the field, exit code 2, and nothing written to an existing
run directory."""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from configs import edit, leaves, toy, write
from runs import count, digest, one_line_error, rows, run_config, toy_cfg, toy_config, vlm_test_helpers

from eacps.commands.cli import main
from eacps.config import (
    ConfigError,
    SearchConfig,
    build_conditions,
    build_potential,
    check_fields,
    check_values,
    default_run_dir,
    first_difference,
    load_config,
    normalized,
    parse_config,
    stored_difference,
)
from eacps.store import save_png

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


# -- promise 17: no non-finite number, boolean or key (moved from tests/reliability/test_17_config_values.py)
# Promise 17: what no config field may hold is refused in one line naming the field, exit code 2, before any
# compute. Every number of the documented example config set to nan, inf or -inf, every integer set to true, and
# every string set to an API key or a URL with credentials: each refused; a key is never echoed back.


EXAMPLE = Path(__file__).parents[1] / "examples" / "digits.toml"
KEY = "sk-CANARYabcdefghijklmnop0123456789"
URL = "https://user:CANARYs3cret@judge.example/v1"


def _refused(tmp_path: Path, cfg: dict, field: str, capsys) -> str:
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path / "c.toml", cfg)), "--out", str(out), "--quiet"]) == 2, field
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"eacps: error: {field}: ") and "Traceback" not in err, err
    assert not out.exists()
    return err


def test_non_finite_numbers_and_booleans(tmp_path, capsys, figures):
    base = tomllib.loads(EXAMPLE.read_text())
    numbers = [(p, v) for p, v in leaves(base) if isinstance(v, int | float) and not isinstance(v, bool)]
    assert len(numbers) >= 8
    refused = 0
    for path, value in numbers:
        for bad in (math.nan, math.inf, -math.inf):
            assert "finite number" in _refused(tmp_path, edit(base, path, bad), path, capsys)
            refused += 1
        if isinstance(value, int) and ".extra." not in path:  # extra is the plugin's free-form table
            assert "not a boolean" in _refused(tmp_path, edit(base, path, True), path, capsys)
            refused += 1
    figures("17-config-values", numeric_fields=len(numbers), non_finite_or_bool_refused=refused)


def test_keys_in_any_string_field(tmp_path, capsys, figures):
    base = tomllib.loads(EXAMPLE.read_text())
    strings = [p for p, v in leaves(base) if isinstance(v, str)]
    assert len(strings) >= 6
    for path in strings:
        for secret in (KEY, URL):
            err = _refused(tmp_path, edit(base, path, secret), path, capsys)
            assert "CANARY" not in err and "environment variable" in err, err
    figures("17-config-values", string_fields=len(strings), secrets_refused=2 * len(strings), echoed=0)


# -- promise 15: a run directory belongs to one config (moved from tests/reliability/test_15_run_identity.py) --------
# Promise 15: a run directory belongs to one config. `run`, `compare`, `landscape` and `demo` pointed at a
# directory holding results of a different config (a changed weight, another testbed) refuse in one line naming
# the first difference, exit code 2, and write nothing; a config that only spells out defaults (or moves
# [search] to [[searches]], or picks another executor) is the same run and resumes without computing anything.


def _unchanged(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k != ".lock"} == {k: v for k, v in b.items() if k != ".lock"}


def test_every_command_refuses_a_run_directory_of_another_config(tmp_path, toy_plugin, capsys, figures):
    cfg = write(tmp_path / "c.toml", toy(budget=4, strategy="best-of-n"))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    before = digest(out)
    other = write(tmp_path / "other.toml", edit(toy(budget=4, strategy="best-of-n"),
                                                "potential.criteria.realism.weight", 1.5))
    capsys.readouterr()
    attempts = {
        "run": ["run", str(other), "--out", str(out), "--quiet"],
        "compare": ["compare", str(other), "--out", str(out), "--strategies", "best-of-n", "--budgets", "2",
                    "--quiet"],
        "landscape": ["landscape", str(other), "--out", str(out), "--neighborhoods", "seed-offset", "--parents", "3",
                      "--children", "1", "--quiet"],
        "demo": ["demo", "--out", str(out), "--tasks", "1", "--budget", "4", "--quiet"],
    }
    for name, argv in attempts.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("eacps: error: --out: ") and "Traceback" not in err, err
        if name != "demo":
            assert "first difference: potential.criteria.realism.weight" in err, err
        assert _unchanged(digest(out), before), name  # not a byte written
    figures("15-run-identity", commands_refused=len(attempts), bytes_written=0)

    demo = tmp_path / "demo"  # and the other way round: a config into a demo's directory
    assert main(["demo", "--out", str(demo), "--tasks", "1", "--budget", "4", "--quiet"]) == 0
    before = digest(demo)
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(demo), "--quiet"]) == 2
    assert "holds a run of a different config" in capsys.readouterr().err
    assert main(["demo", "--out", str(demo), "--tasks", "2", "--budget", "4", "--quiet"]) == 2
    assert "holds results of another run" in capsys.readouterr().err
    assert _unchanged(digest(demo), before)
    figures("15-run-identity", commands_refused=2, bytes_written=0)


def test_an_equivalent_config_is_the_same_run(tmp_path, toy_plugin, capsys, figures):
    base = toy(budget=20)
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path / "c.toml", base)), "--out", str(out), "--quiet"]) == 0
    expected = rows(out)
    spellings = {
        "searches": {**{k: v for k, v in base.items() if k != "search"}, "searches": [base["search"]]},
        "strategy defaults": edit(base, "search.params", {"k_global": 8, "m": 3, "k_local": 4,
                                                          "neighborhood": "seed-offset", "generations": 2}),
        "reference weight": edit(base, "potential.criteria.realism.weight", 4.0),
        "scorer and generator defaults": edit(edit(base, "potential.criteria.realism.params", {"pixel": 0}),
                                              "generator.params", {"steps": 10}),
        "executor": {**base, "executor": {"name": "inline"}},
    }
    for name, cfg in spellings.items():
        path = write(tmp_path / "spelled.toml", cfg)
        assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0, (name, capsys.readouterr().err)
        assert rows(out) == expected, name  # resumed: nothing computed again
    figures("15-run-identity", equivalent_spellings_resumed=len(spellings), computed_again=0)


# -- promise 9: an API key never leaks (moved from tests/reliability/test_09_secrets.py) -----------------------------
# Promise 9: with a canary API key in the environment, DEBUG logging of every library and a judge that answers
# 401 (echoing the key back in its error, as real APIs do with a prefix of it), the key appears in no log, no
# file of the run directory, no report, no ``eacps show`` output and no config dump; the candidates are FAILED
# with an http/401 reason.


def test_api_key_never_leaks(tmp_path, toy_plugin, capsys, monkeypatch, figures):
    vlm = vlm_test_helpers()
    key = f"sk-eacps-CANARY-{secrets.token_hex(12)}"
    needles = [key, key[-24:]]  # the whole key and its random part alone
    monkeypatch.setenv("EACPS_REL_SECRET", key)
    server = vlm.FakeServer()

    def unauthorized(req, n):
        auth = server.headers[n].get("authorization", "")
        body = {"error": {"message": f"Incorrect API key provided: {auth.removeprefix('Bearer ')}", "code": "401"}}
        return 401, body, 0.0

    server.script = unauthorized
    params = {"base_url": server.base_url, "api_key_env": "EACPS_REL_SECRET", "max_retries": 1, "backoff": 0.01,
              "timeout": 5, "top_logprobs": 0}
    cfg = toy_config(tmp_path, scorer="openai-judge", scorer_params=params, strategy="best-of-n", budget=6)
    out, log_file = tmp_path / "run", tmp_path / "debug.log"
    root = logging.getLogger()
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        # progress bars on: everything a user sees; every judged candidate FAILED, so the run exits 1
        assert main(["run", str(cfg), "--out", str(out)]) == 1
        assert main(["show", str(out)]) == 0
        assert main(["report", str(out)]) == 0
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
        server.close()
    printed = capsys.readouterr()
    assert server.requests and all(h.get("authorization") == f"Bearer {key}" for h in server.headers)  # it was sent

    # the candidates judged by the HTTP judge are FAILED with the 401, never scored
    all_rows = rows(out)
    judged = [r for r in all_rows if r[5] != "FILTERED"]
    assert len(judged) == 2 * 7
    for r in judged:
        assert r[5] == "FAILED" and r[6] is None and "http" in r[7] and "401" in r[7], r[7]

    # nowhere: the debug log, stdout/stderr, every file of the run (store, WAL, images, report, config), config dump
    log_text = log_file.read_text()
    assert "openai" in log_text and ("httpx" in log_text or "httpcore" in log_text)  # DEBUG reached them
    texts = {"debug log": log_text.encode(), "stdout": printed.out.encode(), "stderr": printed.err.encode()}
    files = [p for p in out.rglob("*") if p.is_file()]
    texts.update({str(p.relative_to(out)): p.read_bytes() for p in files})
    assert "report.html" in texts and "store.sqlite" in texts
    run_cfg, _ = load_config(cfg)
    texts["RunConfig.model_dump"] = json.dumps(run_cfg.model_dump(mode="json")).encode()
    texts["RunConfig.model_dump_json"] = run_cfg.model_dump_json().encode()
    for where, data in texts.items():
        for needle in needles:
            assert needle.encode() not in data, f"the API key leaked into {where}"
    assert "***" in " ".join(r[7] for r in judged)  # the key the server echoed was redacted, not dropped silently
    figures(
        "9-secrets",
        places_searched=len(texts),
        run_files_searched=len(files),
        debug_log_bytes=len(log_text),
        http_401_failed=len(judged),
        leaks=0,
    )


# -- config values and their one-line errors (moved from tests/test_cli_defects.py) ----------------------------------
@pytest.mark.parametrize("path, value, expected", [
    ("potential.criteria.realism.weight", float("inf"), "potential.criteria.realism.weight: must be a finite number"),
    ("potential.criteria.realism.calibration", {"kind": "affine", "scale": float("nan")},
     "potential.criteria.realism.calibration.scale: must be a finite number (got nan)"),
    ("search.budget", True, "search.budget: must be a number, not a boolean (got true)"),
    ("search.params", {"k_global": True}, "search.params.k_global: must be a number, not a boolean"),
    ("generator.params", {"sleep": float("-inf")}, "generator.params.sleep: must be a finite number (got -inf)"),
    ("conditions.0.extra", {"x": [1.0, float("nan")]}, "conditions.0.extra.x.1: must be a finite number"),
])
def test_non_finite_numbers_and_booleans_for_numbers_are_refused(tmp_path, toy_plugin, capsys, path, value,
                                                                  expected):
    assert run_config(write(tmp_path / "c.toml", edit(toy(), path, value)), tmp_path / "run") == 2
    assert expected in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path, value, needle", [
    ("potential.criteria.consistency.params", {"api_key_env": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123"}, "AbCdEf"),
    ("potential.criteria.consistency.params", {"base_url": "https://user:s3cr3tKEYvalue@judge.example/v1"},
     "s3cr3t"),
    ("generator.params", {"model": "https://hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123@example.org/m"}, "AbCdEf"),
    ("conditions.1.extra", {"endpoint": "http://t0kenVALUE@10.0.0.1:8000"}, "t0ken"),
])
def test_key_shaped_values_are_refused_without_echoing_them(tmp_path, toy_plugin, capsys, path, value, needle):
    assert run_config(write(tmp_path / "c.toml", edit(toy(), path, value)), tmp_path / "run") == 2
    err = one_line_error(capsys)
    assert err.startswith(f"eacps: error: {path}.{next(iter(value))}: ") and "environment variable" in err, err
    assert needle in next(iter(value.values())) and needle not in err, err
    assert not (tmp_path / "run").exists()


def test_search_errors_are_labelled_with_their_searches_entry(tmp_path, toy_plugin, capsys):
    cfg = toy()
    del cfg["search"]
    cfg["searches"] = [{"strategy": "best-of-n", "budget": 4}, {"strategy": "nope", "label": "x"}]
    assert run_config(write(tmp_path / "c.toml", cfg), tmp_path / "run") == 2
    assert "eacps: error: searches.1.strategy: unknown strategy 'nope'" in one_line_error(capsys)
    cfg["searches"][1] = {"strategy": "eacps", "params": {"warp": 1}}
    assert run_config(write(tmp_path / "c.toml", cfg), tmp_path / "run") == 2
    assert "eacps: error: searches.1.params.warp: unknown parameter" in one_line_error(capsys)
    cfg["searches"][1] = {"strategy": "eacps", "budget": True}
    assert run_config(write(tmp_path / "c.toml", cfg), tmp_path / "run") == 2
    assert "eacps: error: searches.1.budget: must be a number" in one_line_error(capsys)
    cfg["searches"][1] = {"strategy": "adaptive", "params": {"strategy": "eacps", "params": {"warp": 1}}}
    assert run_config(write(tmp_path / "c.toml", cfg), tmp_path / "run") == 2  # a wrapper's inner params too
    assert "eacps: error: searches.1.params.params.warp: unknown parameter" in one_line_error(capsys)
    cfg["searches"][1] = {"strategy": "adaptive", "params": {"strategy": "adaptive"}}
    assert run_config(write(tmp_path / "c.toml", cfg), tmp_path / "run") == 2
    assert "eacps: error: searches.1.params.strategy: adaptive cannot wrap itself" in one_line_error(capsys)
    cfg["searches"] = [{"strategy": "fk-steering", "budget": 4}]  # one [[searches]] entry is still searches.0
    assert run_config(write(tmp_path / "c.toml", cfg), tmp_path / "run") == 2
    assert "eacps: error: searches.0.strategy: strategy 'fk-steering' needs stepping" in one_line_error(capsys)


def test_unreadable_configs_are_one_line(tmp_path, toy_plugin, capsys):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('[[conditions]]\nid = "caf\xe9"\n'.encode("latin-1"))  # text: bytes that are not UTF-8
    assert run_config(bad, tmp_path / "run") == 2
    assert "config: " in (err := one_line_error(capsys)) and "not UTF-8 text" in err
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")  # text: nesting past the TOML parser's recursion
    assert run_config(deep, tmp_path / "run") == 2
    assert "nested more than 32 levels deep" in one_line_error(capsys)
    nested: list = []
    for _ in range(39):
        nested = [nested]  # 40 levels of arrays
    write(deep, {"x": nested})  # parsed by tomllib, refused by eacps
    assert run_config(deep, tmp_path / "run") == 2
    assert "nested more than 32 levels deep" in one_line_error(capsys)
    assert run_config(tmp_path, tmp_path / "run") == 2  # a directory
    assert "is a directory, not a TOML file" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_resume_accepts_an_equivalent_config_that_spells_out_defaults(tmp_path, toy_plugin, capsys):
    out = tmp_path / "run"
    assert run_config(write(tmp_path / "c.toml", toy()), out) == 0
    n = count(out)
    spelled = toy()
    del spelled["search"]
    spelled["searches"] = [{"strategy": "eacps", "label": "eacps", "budget": 20, "batch_size": 6, "seed": 0,
                            "prior_seed": 0, "params": {"k_global": 8, "m": 3, "k_local": 4,
                                                        "neighborhood": "seed-offset"}}]
    spelled["potential"]["criteria"]["realism"].update(weight=4.0, params={"pixel": 0})
    spelled["potential"]["calibration_samples"] = 8
    spelled["generator"]["params"] = {"steps": 10}
    spelled["executor"] = {"name": "inline"}  # where batches run is not what the results depend on
    spelled["output"] = "elsewhere"
    assert run_config(write(tmp_path / "spelled.toml", spelled), out) == 0
    assert count(out) == n  # resumed: nothing computed again
    changed = edit(spelled, "potential.criteria.realism.weight", 2.0)
    assert run_config(write(tmp_path / "changed.toml", changed), out) == 2
    assert "first difference: potential.criteria.realism.weight" in one_line_error(capsys)


# -- parse_config and the normalized config, in process ---------------------------------------------------------------
def test_parse_config_gives_a_validated_config_with_defaults(toy_plugin):
    cfg = parse_config(toy(budget=12))
    (s,) = cfg.all_searches()
    assert (s.strategy, s.budget, s.batch_size, cfg.executor.name) == ("eacps", 12, 6, "local")
    assert [c.id for c in cfg.conditions] == ["a", "b"]
    pot = build_potential(cfg.potential)
    assert [(c.name, c.scorer.name) for c in pot.criteria] == [("realism", "toy-pixel"), ("consistency", "toy-mean")]


@pytest.mark.parametrize("path, value, message", [
    ("search.budget", -1, "search.budget: Input should be greater than"),
    ("search.strategy", "nope", "search.strategy: unknown strategy 'nope'"),
    ("generator.name", "toyy", "generator.name: unknown generator 'toyy'"),
    ("potential.criteria.realism.scorer", "nope", "potential.criteria.realism.scorer: unknown scorer 'nope'"),
    ("search.params", {"warp": 1}, "search.params.warp: unknown parameter; allowed: k_global"),
    ("surprise", 1, "surprise: unknown field"),
    ("conditions", [{"id": "a"}, {"id": "a"}], "condition ids must be unique; repeated: a"),
    ("conditions", [], "no conditions: add [[conditions]] tables"),
])
def test_a_bad_config_is_one_error_naming_the_field(toy_plugin, path, value, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(edit(toy(), path, value))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_names_false_leaves_unknown_plugins_to_the_caller(toy_plugin):
    cfg = parse_config(edit(toy(), "generator.name", "not-installed"), names=False)
    assert cfg.generator.name == "not-installed"


def test_a_config_that_spells_out_defaults_normalizes_to_the_same_run(toy_plugin):
    plain = parse_config(toy())
    spelled = toy()
    del spelled["search"]
    spelled["searches"] = [{"strategy": "eacps", "label": "eacps", "budget": 20, "batch_size": 6}]
    spelled["generator"]["params"] = {"steps": 10}
    spelled["executor"] = {"name": "inline"}
    assert normalized(parse_config(spelled)) == normalized(plain)
    stored = plain.model_dump(mode="json")
    assert stored_difference(stored, parse_config(spelled)) is None
    assert stored_difference(stored, parse_config(edit(toy(), "generator.params", {"steps": 9}))) == \
        "generator.params.steps"
    other_search = parse_config(edit(toy(), "search.budget", 30))
    assert stored_difference(stored, other_search) == "searches.0.budget"
    assert stored_difference(stored, other_search, searches=False) is None  # compare/landscape pick their searches
    assert stored_difference({"not": "a config"}, plain) == "(config)"
    assert stored_difference(None, plain) is None


def test_first_difference_names_the_first_differing_field():
    assert first_difference({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}}) == "a.b.1"
    assert first_difference({"a": 1}, {"a": 1, "z": 2}) == "z"
    assert first_difference([1], [1, 2]) == "(config)"
    assert first_difference({"a": [1, {"x": None}]}, {"a": [1, {}]}) is None


def test_check_values_names_the_field_and_never_echoes_a_key():
    with pytest.raises(ConfigError, match=r"^search\.params\.x\.1: must be a finite number \(got nan\)$"):
        check_values({"search": {"params": {"x": [1.0, float("nan")]}}})
    key = "sk-" + "Ab1" * 8
    with pytest.raises(ConfigError) as exc:
        check_values({"potential": {"criteria": {"j": {"params": {"note": f"use {key}"}}}}})
    assert str(exc.value).startswith("potential.criteria.j.params.note: looks like an API key") and key not in str(
        exc.value)
    with pytest.raises(ConfigError, match="a URL with credentials"):
        check_values({"u": "https://me:pw@example.org/v1"})
    check_values({"u": "https://example.org/v1", "n": 1.5, "api_key_env": "OPENAI_API_KEY"})  # fine


def test_default_run_dir_is_output_beside_the_config_else_runs_config_name(toy_plugin, tmp_path):
    assert default_run_dir(tmp_path / "exp.toml", parse_config(toy())) == Path("runs") / "exp"
    assert default_run_dir(tmp_path / "exp.toml", parse_config(toy()), "-compare") == Path("runs") / "exp-compare"
    assert default_run_dir(tmp_path / "c" / "exp.toml", parse_config({**toy(), "output": "out/here"})) == \
        tmp_path / "c" / "out/here"


def test_check_fields_makes_the_python_api_obey_the_config_rules():
    check_fields(SearchConfig, budget=8, seed=0)
    with pytest.raises(ConfigError, match=r"^budget: must be a number, not a boolean"):
        check_fields(SearchConfig, budget=True)


def test_build_conditions_adds_the_task_set_and_reads_references(toy_plugin, tmp_path):
    save_png(np.full((4, 4, 1), 0.5, np.float32), tmp_path / "ref.png")
    raw = {**toy(), "conditions": [{"id": "r", "reference": "ref.png"}], "tasks": {"name": "toy", "n": 2}}
    conds = build_conditions(parse_config(raw), tmp_path)
    assert [c.id for c in conds] == ["r", "toy0-0", "toy0-1"]
    assert conds[0].reference.shape == (4, 4, 1) and conds[0].reference_path == "ref.png"
    with pytest.raises(ConfigError, match=r"^conditions\.0\.reference: cannot read image"):
        build_conditions(parse_config({**raw, "conditions": [{"id": "r", "reference": "missing.png"}]}), tmp_path)
    with pytest.raises(ConfigError, match=r"^conditions: ids must be unique"):
        build_conditions(parse_config({**raw, "conditions": [{"id": "toy0-1"}]}), tmp_path)
