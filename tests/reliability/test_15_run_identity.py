"""Promise 15: a run directory belongs to one config. `run`, `compare`, `landscape` and `demo` pointed at a
directory holding results of a different config (a changed weight, another testbed) refuse in one line naming
the first difference, exit code 2, and write nothing; a config that only spells out defaults (or moves
[search] to [[searches]], or picks another executor) is the same run and resumes without computing anything."""

from __future__ import annotations

from configs import edit, toy, write
from runs import digest, rows

from eacps.cli import main


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
