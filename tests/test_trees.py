"""Parent links read back from path recipes, and the text tree of ``eacps show --tree``."""

from __future__ import annotations

from dataclasses import dataclass

import configs
import pytest

from eacps.commands.cli import main
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


def test_show_tree_on_a_tree_search(tmp_path, capsys, toy_plugin):
    cfg = configs.write(tmp_path / "cfg.toml", configs.toy_stepping("tree-search", 4))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["show", str(tmp_path / "run"), "--tree"]) == 0
    out = capsys.readouterr().out
    assert "(★ best)" in out and out.count("★") == 2  # the heading and the best leaf
    assert "step 4" in out and "final" in out and "renoise@" in out
    from eacps.analysis.report import cost_curves
    from eacps.analysis.summary import load_searches, summarize_store
    from eacps.store import read_only

    store = read_only(tmp_path / "run")
    try:  # the report's cost axis charges what the summary charges: a shared prefix once (it charged 129 of 60)
        recs = load_searches(store)
        steps = summarize_store(store, recs)["strategies"]["tree-search"]["cost_per_search"]["steps"]
    finally:
        store.close()
    assert steps == 4 * 10 and cost_curves(recs, {})["tree-search"][-1][0] == steps


def test_the_store_keeps_the_parent_links(tmp_path, toy_plugin):
    import eacps
    from eacps.store import read_only
    from eacps.types import Condition

    gen = toy_plugin.ToyGenerator(toy_plugin.ToyGeneratorParams(stepping=True))
    pot = eacps.Potential.from_scorers(realism=toy_plugin.ToyScorer())
    eacps.search(Condition("three"), generator=gen, potential=pot, strategy="fk-steering", budget=6,
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


# -- parent links in linear time -------------------------------------------------------------------------------------
def _pairwise(recipes: list[Recipe], total: int) -> tuple[list[int | None], list[int]]:
    """The rule, pairwise (the ledger before it was indexed; quadratic): the parent is the earlier path sharing the
    most calls (``Recipe.shared_calls``), then one whose path ends there, then the latest; the charge is the calls
    beyond that prefix."""
    parents, charges = [], []
    for i, r in enumerate(recipes):
        best, key = None, (0, False, -1)
        for j in range(i):
            n = r.shared_calls(recipes[j])
            k = (n, n == recipes[j].until, j)
            if n > 0 and k > key:
                best, key = j, k
        parents.append(best)
        stop = (r.steps or total) if r.until is None else r.until
        charges.append(stop - min(key[0], stop))
    return parents, charges


def _random_paths(rng, n: int, total: int = 20) -> list[Recipe]:
    """Paths continuing, branching from and repeating earlier ones (few roots, steps and thetas, so prefixes,
    equal stops and duplicates are common), and a few on another schedule."""
    out: list[Recipe] = []
    for _ in range(n):
        if not out or rng.random() < 0.15:
            r = Recipe.from_seed(rng.randrange(3), steps=rng.choice([None, None, None, 12]))
        else:
            r = rng.choice(out)
            t = r.steps or total
            last = r.branches[-1].step if r.branches else 0
            if rng.random() < 0.5 and last + 1 < t:
                r = r.branch(rng.randrange(last + 1, t), rng.choice([0.5, 1.0]), rng.randrange(2))
        last = r.branches[-1].step if r.branches else 0
        t = r.steps or total
        if rng.random() < 0.7 and last + 1 < t:
            r = r.with_until(rng.randrange(last + 1, t))
        out.append(r)
    return out


def test_indexed_ledger_links_and_charges_as_the_pairwise_rule():
    import random

    from eacps.trees import charged_steps

    rng = random.Random(23)
    for trial in range(300):
        recipes = _random_paths(rng, rng.randrange(1, 40))
        parents, charges = _pairwise(recipes, 20)
        assert parent_links(recipes) == parents, trial
        assert charged_steps(recipes, 20) == charges, trial


@pytest.mark.parametrize("strategy", ["tree-search", "fk-steering", "multi-fidelity"])
def test_indexed_ledger_agrees_on_real_searches(strategy):
    """The histories the trajectory strategies ask (a deep tree: few roots, hundreds of nodes each)."""
    from eacps.api import make_strategy
    from eacps.testing import fake_objective

    params = {"tree-search": {"root_width": 0.02}, "fk-steering": {}, "multi-fidelity": {}}[strategy]
    s = make_strategy(strategy, params, budget=100, seed=1).bind(10)
    s.optimize(fake_objective(), batch_size=16)
    recipes = [r.recipe for r in s.history]
    assert len(recipes) >= 100
    parents, charges = _pairwise(recipes, 10)
    assert parent_links(recipes) == parents
    assert s.ledger.charges == charges and s.ledger.parents == parents


def test_tree_lines_report_parent_cycles_and_draw_every_node():
    """Stored parent links that loop (an edited store) dropped the looping nodes from ``show --tree`` silently."""
    @dataclass
    class C:
        seq: int
        recipe: Recipe
        potential: float | None
        parent: int | None

    r = Recipe.from_seed(1)
    cs = [C(0, r.with_until(3), 1.0, None), C(1, r.with_until(5), 2.0, 2), C(2, r.with_until(7), 3.0, 1),
          C(3, r, 4.0, 2), C(4, r.branch(3, 0.5, 1), 5.0, 4)]
    lines = tree_lines(cs)
    assert lines[0] == ("! 2 cycles in the stored parent links (seq 1 → seq 2 → seq 1; seq 4 → seq 4): each drawn "
                        "from its first node")
    assert len(lines) == 1 + len(cs)  # every node drawn once
    for u in ("U=1.00", "U=2.00", "U=3.00", "U=4.00", "U=5.00"):
        assert sum(u in line for line in lines) == 1, u


def test_show_tree_reports_a_cycle_in_one_line(tmp_path, capsys, toy_plugin):
    import sqlite3

    cfg = configs.write(tmp_path / "cfg.toml", configs.toy_stepping("tree-search", 4))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    db = sqlite3.connect(tmp_path / "run" / "store.sqlite")
    search, n = db.execute("SELECT search, COUNT(*) FROM candidates WHERE role = 'search' GROUP BY search").fetchone()
    db.execute("UPDATE candidates SET parent = 1 WHERE search = ? AND seq = 0", (search,))
    db.execute("UPDATE candidates SET parent = 0 WHERE search = ? AND seq = 1", (search,))
    db.commit()
    db.close()
    capsys.readouterr()
    assert main(["show", str(tmp_path / "run"), "--tree"]) == 0
    out = capsys.readouterr().out
    tree = out[out.index("(★ best)"):].splitlines()[1:]
    assert sum(line.startswith("! 1 cycle in the stored parent links (seq 0 → seq 1 → seq 0)") for line in tree) == 1
    assert len([line for line in tree if "U=" in line or "FAILED" in line]) == n  # no node dropped
