"""Regression tests for the defects issue 12 found by attacking the CLI (each failed before its fix)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from configs import edit, toy, write

from eacps.cli import main


def run(cfg_path: Path, out: Path, *extra: str) -> int:
    return main(["run", str(cfg_path), "--out", str(out), "--quiet", *extra])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("eacps: error: ") and "Traceback" not in err, err
    return err.strip()


def count(out: Path, where: str = "1=1") -> int:
    db = sqlite3.connect(out / "store.sqlite")
    try:
        return db.execute(f"SELECT COUNT(*) FROM candidates WHERE {where}").fetchone()[0]
    finally:
        db.close()


# -- config values ---------------------------------------------------------------------------------------------------
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
    assert run(write(tmp_path / "c.toml", edit(toy(), path, value)), tmp_path / "run") == 2
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
    assert run(write(tmp_path / "c.toml", edit(toy(), path, value)), tmp_path / "run") == 2
    err = one_line_error(capsys)
    assert err.startswith(f"eacps: error: {path}.{next(iter(value))}: ") and "environment variable" in err, err
    assert needle in next(iter(value.values())) and needle not in err, err
    assert not (tmp_path / "run").exists()


def test_search_errors_are_labelled_with_their_searches_entry(tmp_path, toy_plugin, capsys):
    cfg = toy()
    del cfg["search"]
    cfg["searches"] = [{"strategy": "best-of-n", "budget": 4}, {"strategy": "nope", "label": "x"}]
    assert run(write(tmp_path / "c.toml", cfg), tmp_path / "run") == 2
    assert "eacps: error: searches.1.strategy: unknown strategy 'nope'" in one_line_error(capsys)
    cfg["searches"][1] = {"strategy": "eacps", "params": {"warp": 1}}
    assert run(write(tmp_path / "c.toml", cfg), tmp_path / "run") == 2
    assert "eacps: error: searches.1.params.warp: unknown parameter" in one_line_error(capsys)
    cfg["searches"][1] = {"strategy": "eacps", "budget": True}
    assert run(write(tmp_path / "c.toml", cfg), tmp_path / "run") == 2
    assert "eacps: error: searches.1.budget: must be a number" in one_line_error(capsys)
    cfg["searches"][1] = {"strategy": "adaptive", "params": {"strategy": "eacps", "params": {"warp": 1}}}
    assert run(write(tmp_path / "c.toml", cfg), tmp_path / "run") == 2  # a wrapper's inner params too
    assert "eacps: error: searches.1.params.params.warp: unknown parameter" in one_line_error(capsys)
    cfg["searches"][1] = {"strategy": "adaptive", "params": {"strategy": "adaptive"}}
    assert run(write(tmp_path / "c.toml", cfg), tmp_path / "run") == 2
    assert "eacps: error: searches.1.params.strategy: adaptive cannot wrap itself" in one_line_error(capsys)
    cfg["searches"] = [{"strategy": "fk-steering", "budget": 4}]  # one [[searches]] entry is still searches.0
    assert run(write(tmp_path / "c.toml", cfg), tmp_path / "run") == 2
    assert "eacps: error: searches.0.strategy: strategy 'fk-steering' needs stepping" in one_line_error(capsys)


# -- tracebacks that became one line ---------------------------------------------------------------------------------
def test_unreadable_configs_are_one_line(tmp_path, toy_plugin, capsys):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('[[conditions]]\nid = "caf\xe9"\n'.encode("latin-1"))  # text: bytes that are not UTF-8
    assert run(bad, tmp_path / "run") == 2
    assert "config: " in (err := one_line_error(capsys)) and "not UTF-8 text" in err
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")  # text: nesting past the TOML parser's recursion
    assert run(deep, tmp_path / "run") == 2
    assert "nested more than 32 levels deep" in one_line_error(capsys)
    nested: list = []
    for _ in range(39):
        nested = [nested]  # 40 levels of arrays
    write(deep, {"x": nested})  # parsed by tomllib, refused by eacps
    assert run(deep, tmp_path / "run") == 2
    assert "nested more than 32 levels deep" in one_line_error(capsys)
    assert run(tmp_path, tmp_path / "run") == 2  # a directory
    assert "is a directory, not a TOML file" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


DIGITS = {
    "generator": {"name": "digits", "params": {"steps": 15}},
    "potential": {"criteria": {"identity": {"scorer": "digits-identity"}}},
    "search": {"strategy": "best-of-n", "budget": 2, "batch_size": 2},
    "conditions": [{"id": "three", "class_label": 3, "extra": {"reference_index": 59}}],
}


@pytest.mark.parametrize("path, value, expected", [
    ("conditions.0.extra.reference_index", "abc", "conditions.0 ('three'): reference index must be an int, got str"),
    ("generator.params.device", "cuda:7", "generator.params.device: no such device 'cuda:7'"),
    ("generator.params.device", "cuda:x", "generator.params.device: no such device 'cuda:x'"),
])
def test_plugin_input_errors_are_one_line(tmp_path, capsys, path, value, expected):
    assert run(write(tmp_path / "c.toml", edit(DIGITS, path, value)), tmp_path / "run") == 2
    assert expected in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_report_output_in_a_missing_folder_is_one_line(tmp_path, toy_plugin, capsys):
    out = tmp_path / "run"
    assert run(write(tmp_path / "c.toml", toy(budget=4)), out) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--output", str(tmp_path / "no" / "such" / "r.html")]) == 2
    assert "--output: folder" in one_line_error(capsys)
    assert main(["report", str(out), "--output", str(tmp_path)]) == 2  # a directory
    assert "report: Invalid value for '--output'" in one_line_error(capsys)


def test_out_pointing_at_a_file_is_one_line(tmp_path, toy_plugin, capsys):
    f = tmp_path / "file"
    f.write_text("mine")
    for argv in (["run", str(write(tmp_path / "c.toml", toy())), "--out", str(f)], ["demo", "--out", str(f)],
                 ["landscape", str(tmp_path / "c.toml"), "--out", str(f)]):
        assert main(argv) == 2
        assert "Invalid value for '--out'" in one_line_error(capsys) and f.read_text() == "mine"


# -- run directories -------------------------------------------------------------------------------------------------
def test_resume_accepts_an_equivalent_config_that_spells_out_defaults(tmp_path, toy_plugin, capsys):
    out = tmp_path / "run"
    assert run(write(tmp_path / "c.toml", toy()), out) == 0
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
    assert run(write(tmp_path / "spelled.toml", spelled), out) == 0
    assert count(out) == n  # resumed: nothing computed again
    changed = edit(spelled, "potential.criteria.realism.weight", 2.0)
    assert run(write(tmp_path / "changed.toml", changed), out) == 2
    assert "first difference: potential.criteria.realism.weight" in one_line_error(capsys)


def test_output_is_the_default_run_directory(tmp_path, toy_plugin, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfgs").mkdir()
    cfg = write(tmp_path / "cfgs" / "c.toml", {**toy(budget=4), "output": "my-run"})
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert (tmp_path / "cfgs" / "my-run" / "store.sqlite").exists() and not (tmp_path / "runs").exists()


def test_landscape_into_a_run_directory_of_another_config_is_refused(tmp_path, toy_plugin, capsys):
    out = tmp_path / "run"
    assert run(write(tmp_path / "c.toml", toy(budget=4)), out) == 0
    before = sorted((p.name, p.stat().st_size) for p in out.rglob("*") if p.name != ".lock")
    other = write(tmp_path / "o.toml", edit(toy(budget=4), "potential.criteria.realism.weight", 1.0))
    argv = ["landscape", str(other), "--out", str(out), "--neighborhoods", "seed-offset", "--parents", "3",
            "--children", "1", "--quiet"]
    assert main(argv) == 2
    assert "holds results of a different config (first difference: potential.criteria.realism.weight)" in \
        one_line_error(capsys)
    assert sorted((p.name, p.stat().st_size) for p in out.rglob("*") if p.name != ".lock") == before


def test_every_candidate_failed_exits_1(tmp_path, toy_plugin, capsys):
    out = tmp_path / "run"
    assert run(write(tmp_path / "c.toml", edit(toy(budget=4), "generator.params", {"fail_all": True})), out) == 1
    captured = capsys.readouterr()
    assert "every candidate FAILED" in captured.err and captured.err.count("\n") == 1
    assert "100.0%" in captured.out  # the table is still printed


# -- store -----------------------------------------------------------------------------------------------------------
def test_a_condition_text_is_stored_once(tmp_path, toy_plugin):
    prompt = "a very long prompt " * 50_000  # ~1 MB
    cfg = toy(budget=6, strategy="best-of-n")
    cfg["conditions"] = [{"id": "long", "prompt": prompt}]
    out = tmp_path / "run"
    assert run(write(tmp_path / "c.toml", cfg), out) == 0
    db = sqlite3.connect(out / "store.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = (out / "store.sqlite").stat().st_size
    assert db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0] == 7
    db.close()
    # the config (meta) and the conditions table hold it once each; 7 candidate rows used to hold 7 more copies
    assert size < 3 * len(prompt), size
    from eacps.store import read_only

    ro = read_only(out)
    assert ro.condition_json("long")["prompt"] == prompt
    ro.close()


def test_a_store_written_before_the_conditions_table_still_reads_and_resumes(tmp_path, toy_plugin, capsys):
    out = tmp_path / "run"
    cfg = write(tmp_path / "c.toml", toy(budget=8, strategy="best-of-n"))
    assert run(cfg, out) == 0
    db = sqlite3.connect(out / "store.sqlite")  # rewrite it in the old format: a condition_json per candidate
    db.execute("ALTER TABLE candidates ADD COLUMN condition_json TEXT NOT NULL DEFAULT ''")
    db.execute("UPDATE candidates SET condition_json = (SELECT json FROM conditions WHERE id = candidates.condition)")
    db.execute("DELETE FROM candidates WHERE seq >= 4 AND role = 'search'")  # a run killed half way
    db.execute("DROP TABLE conditions")
    db.execute("DROP TABLE searches")
    db.commit()
    db.close()
    assert main(["show", str(out)]) == 0 and "a/best-of-n/b8/s0" in capsys.readouterr().out
    assert run(cfg, out) == 0  # resumes the old store
    db = sqlite3.connect(out / "store.sqlite")
    rows = db.execute("SELECT condition, condition_json FROM candidates WHERE seq >= 4 AND role = 'search'").fetchall()
    db.close()
    assert len(rows) == 8 and all(json.loads(j)["id"] == c for c, j in rows)
    assert main(["report", str(out)]) == 0


def test_search_ids_are_unambiguous(tmp_path, toy_plugin, capsys):
    cfg = toy()
    del cfg["search"]
    cfg["searches"] = [{"strategy": "best-of-n", "label": "q/r", "budget": 6}, {"strategy": "eacps", "label": "r",
                                                                                 "budget": 6}]
    cfg["conditions"] = [{"id": "p", "prompt": "first"}, {"id": "p/q", "prompt": "second"}]
    out = tmp_path / "run"
    assert run(write(tmp_path / "c.toml", cfg), out) == 0
    db = sqlite3.connect(out / "store.sqlite")
    per_search = db.execute("SELECT search, COUNT(DISTINCT condition), COUNT(*) FROM candidates "
                            "WHERE role = 'search' GROUP BY search").fetchall()
    db.close()
    assert len(per_search) == 4, per_search  # p/q/r/b6/s0 used to be the id of two searches
    assert all(n_cond == 1 and n == 6 for _, n_cond, n in per_search), per_search
    assert {"p/q%2Fr/b6/s0", "p%2Fq/r/b6/s0"} <= {s for s, _, _ in per_search}


def test_summary_compares_each_search_with_its_own_prior(tmp_path, toy_plugin):
    from eacps.store import read_only
    from eacps.summary import load_searches

    cfg = toy()
    del cfg["search"]
    cfg["searches"] = [{"strategy": "best-of-n", "label": f"p{s}", "budget": 4, "prior_seed": s} for s in (0, 1)]
    out = tmp_path / "run"
    assert run(write(tmp_path / "c.toml", cfg), out) == 0
    ro = read_only(out)
    recs = load_searches(ro)
    ro.close()
    assert len(recs) == 4
    for r in recs:
        assert r.prior.search == f"prior/{r.condition}/{r.strategy[1]}", (r.search, r.prior.search)
        assert r.prior.recipe.seed == int(r.strategy[1])
