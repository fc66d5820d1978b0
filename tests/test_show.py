"""``eacps show`` on a comparison: a header naming the contestants' budgets, recipes that fit a line, ``--json``,
``--search`` and ``--condition`` filters, and stored strings still printed escaped."""

from __future__ import annotations

import json

import configs
import pytest

from eacps.commands.cli import main


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory):
    """A tiny comparison on the stepping toy: tree-search (path recipes) and best-of-N (seeds) at budgets 4 and 6,
    a pool of 12."""
    import toy

    from eacps import plugins
    from eacps.analysis.compare import run_compare

    tmp = tmp_path_factory.mktemp("show")
    cfg = {"generator": {"name": "toy", "params": {"steps": 6, "stepping": True}},
           "potential": {"criteria": {"realism": {"scorer": "toy-pixel"}}},
           "conditions": [{"id": f"task{i}", "prompt": f"toy {i}"} for i in range(2)]}
    configs.write(tmp / "c.toml", cfg)
    plugins.register_plugin(toy)
    try:
        run_compare(tmp / "c.toml", tmp / "cmp", strategies="tree-search,best-of-n", budgets="4,6", repeats=1,
                    pool=12)
    finally:
        plugins.unregister_plugin(toy)
    return tmp / "cmp"


def test_show_names_a_comparisons_budgets_and_keeps_recipes_short(compare_dir, capsys):
    assert main(["show", str(compare_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "a comparison at budgets 4, 6 (reference pool: 12 per task)" in lines[0], lines[0]
    assert "budget 12" not in lines[0]
    rows = [ln for ln in lines if "/tree-search/" in ln or "/best-of-n/" in ln]
    assert len(rows) == 2 * 2 * 2
    assert all(len(ln) < 160 for ln in lines), max(lines, key=len)  # was padded to the longest recipe
    paths = [ln for ln in rows if "/tree-search/" in ln and "  seed " not in ln]
    assert paths and all(ln.endswith("…") for ln in paths)  # a path recipe, cut
    assert all("  seed " in ln and not ln.endswith(" ") for ln in rows if "/best-of-n/" in ln)


def test_show_json_holds_every_search_and_whole_recipes(compare_dir, capsys):
    from eacps.store import read_only

    assert main(["show", str(compare_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)  # strict JSON: no NaN
    store = read_only(compare_dir)
    try:
        best = {c.id: json.loads(c.recipe.key) for c in store.candidates()}
        n_searches = len({c.search for c in store.candidates(role="search")})
    finally:
        store.close()
    assert len(data["searches"]) == n_searches
    assert all(s["best_recipe"] == best[s["best_id"]] for s in data["searches"])
    assert data["summary"]["compare"] == {"budgets": [4, 6], "pool": 12}


def test_show_filters_by_search_and_condition(compare_dir, capsys):
    assert main(["show", str(compare_dir), "--json", "--search", "tree-search"]) == 0
    got = json.loads(capsys.readouterr().out)["searches"]
    assert len(got) == 4 and {s["strategy"].split(" (n=")[0] for s in got} == {"tree-search"}
    cond = got[0]["condition"]
    assert main(["show", str(compare_dir), "--json", "--search", "B6", "--condition", cond]) == 0
    got = json.loads(capsys.readouterr().out)
    assert {s["search"] for s in got["searches"]} == {f"{cond}/{label}/B6/r0/per-task" for label in ("tree-search",
                                                                                                     "best-of-n")}
    assert got["summary"]["n_tasks"] == 1
    assert main(["show", str(compare_dir), "--search", "tree-serch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--search: no search matches 'tree-serch'" in err and "'tree-search'" in err
    assert main(["show", str(compare_dir), "--condition", "nope"]) == 2
    assert "--condition: no search of condition 'nope'" in capsys.readouterr().err


def test_show_json_and_filters_keep_stored_strings_escaped(tmp_path, toy_plugin, capsys):
    cfg = configs.toy(budget=4)
    evil = "evil\x1b[2J\x1b]0;pwned\x07\u202e"
    cfg["conditions"] = [{"id": evil, "prompt": "x"}]
    out = tmp_path / "run"
    assert main(["run", str(configs.write(tmp_path / "cfg.toml", cfg)), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    for args in (["--json"], ["--condition", evil]):
        assert main(["show", str(out), *args]) == 0
        text = capsys.readouterr().out
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert main(["show", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["searches"][0]["condition"] == evil
