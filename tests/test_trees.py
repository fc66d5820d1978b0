"""Parent links read back from path recipes, and the text tree of ``eacps show --tree``."""

from __future__ import annotations

from dataclasses import dataclass

import configs

from eacps.cli import main
from eacps.recipe import Recipe
from eacps.trees import parent_links, tree_lines


def test_parents_follow_the_paths():
    a3 = Recipe.from_seed(1).with_until(3)
    b3 = Recipe.from_seed(2).with_until(3)
    a6 = Recipe.from_seed(1).with_until(6)  # a continues
    a_br6 = Recipe.from_seed(1).branch(3, 0.5, 9).with_until(6)  # a copy branches at 3
    a_fin = Recipe.from_seed(1)
    a_br_fin = Recipe.from_seed(1).branch(3, 0.5, 9)
    links = parent_links([a3, b3, a6, a_br6, a_fin, a_br_fin])
    assert links == [None, None, 0, 0, 2, 3]  # the copy's parent is the node it branched from, not its sibling


def test_tree_lines_draw_every_node_once():
    @dataclass
    class C:
        recipe: Recipe
        potential: float | None

    cs = [C(Recipe.from_seed(1).with_until(3), 30.0), C(Recipe.from_seed(1), 40.0),
          C(Recipe.from_seed(1).branch(3, 0.5, 4), None)]
    lines = tree_lines(cs, best=cs[1])
    assert len(lines) == 3 and lines[0].startswith("└─ step 3 U=30.00 (seed 1)")
    assert "final U=40.00" in lines[1] and "★" in lines[1]
    assert "renoise@3" in lines[2] and "FAILED" in lines[2]


def test_show_tree_on_a_tree_search(tmp_path, capsys):
    cfg = configs.write(tmp_path / "cfg.toml", configs.digits("tree-search", 4, criteria=("realism",)))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["show", str(tmp_path / "run"), "--tree"]) == 0
    out = capsys.readouterr().out
    assert "(★ best)" in out and out.count("★") == 2  # the heading and the best leaf
    assert "step 3" in out and "final" in out and "renoise@" in out
    from eacps.report import cost_curves
    from eacps.store import read_only
    from eacps.summary import load_searches, summarize_store

    store = read_only(tmp_path / "run")
    try:  # the report's cost axis charges what the summary charges: a shared prefix once (it charged 129 of 60)
        recs = load_searches(store)
        steps = summarize_store(store, recs)["strategies"]["tree-search"]["cost_per_search"]["steps"]
    finally:
        store.close()
    assert steps == 4 * 15 and cost_curves(recs, {})["tree-search"][-1][0] == steps


def test_the_store_keeps_the_parent_links(tmp_path):
    import eacps
    from eacps.config import create
    from eacps.store import read_only

    gen = create("generator", "digits")
    pot = eacps.Potential.from_scorers(realism=create("scorer", "digits-realism"))
    from eacps.types import Condition

    eacps.search(Condition("three", class_label=3), generator=gen, potential=pot, strategy="fk-steering", budget=6,
                 run_dir=tmp_path / "run")
    store = read_only(tmp_path / "run")
    try:
        search = next(s for s in store.searches() if not s.startswith("prior/"))
        cands = store.candidates(search=search)
    finally:
        store.close()
    stored = [c.parent for c in cands]
    assert stored == parent_links([c.recipe for c in cands])  # what the scheduler stored = the recipes' ancestry
    assert sum(p is not None for p in stored) >= len(cands) // 2  # most nodes continue or branch from another
    assert [c.seq for c in cands] == list(range(len(cands)))
