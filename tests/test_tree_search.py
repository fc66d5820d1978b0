"""tree-search (eacps.strategies.tree_search): a greedy tree over the denoising chain (DTS*-style). Nodes are partial
trajectories at ``levels``; ``root_width``·B fresh seeds at the root, ``width`` children below (the first continues
its parent's path, the others branch from it); selection descends by backed-up value; expansions come in waves."""

from __future__ import annotations

import hashlib

import pytest

from eacps import Recipe, Result, Status
from eacps.strategies.tree_search import Node, TreeSearch, TreeSearchParams
from eacps.strategy import SamplerSchedule
from eacps.testing import StrategyConformance, fake_objective

T = 10


def run(strategy, objective=None, batch=4):
    strategy.bind(T)
    strategy.optimize(objective or fake_objective(), batch_size=batch)
    return strategy


def tell(s: TreeSearch, values: dict[Recipe, float]) -> None:
    """Tell every pending recipe its value in ``values``."""
    s.tell([Result(r, Status.OK, values[r]) for r in list(s.pending)])


def test_tree_children_continue_or_branch_from_their_parent():
    s = run(TreeSearch(TreeSearchParams(levels=[0.2, 0.5], root_width=1.0, width=3), budget=20, seed=0))
    by_until = {u: [r.recipe for r in s.history if r.recipe.until == u] for u in (2, 5, None)}
    assert len(by_until[2]) == 20  # root width = B fresh trajectories screened at step 2
    assert all(not r.branches for r in by_until[2])
    for r in by_until[5]:  # a level-2 node: its parent's path, continued or branched at the parent's step
        assert r.root.with_until(2) in by_until[2] or Recipe(seed=r.seed, until=2) in by_until[2]
        assert all(b.step == 2 for b in r.branches)
    for r in by_until[None]:
        assert all(b.step in (2, 5) for b in r.branches)
    assert s.spent_steps <= 20 * T and s.stop()
    assert s.best is not None and s.best.recipe.until is None


def test_tree_descends_into_the_best_node():
    s = run(TreeSearch(TreeSearchParams(levels=[0.5], root_width=1.0, width=2, wave=1, last="preview"), budget=12,
                       seed=0))
    previews = [r for r in s.history if r.recipe.until == 5]
    best_root = max(previews, key=lambda r: r.potential).recipe.root
    finals = [r.recipe for r in s.history if r.recipe.until is None]
    assert finals and finals[0].root == best_root  # the first leaf grows under the best screened node
    winner = s.best.recipe.root.with_until(5)
    root_previews = {r.recipe: r.potential for r in previews}
    rank = 1 + sum(v > root_previews[winner] for v in root_previews.values())
    assert s.diagnostics()["winner_root_rank"] == rank  # the winner's root, ranked by preview among the roots
    assert run(TreeSearch(budget=20, seed=0), objective=roots_decide).diagnostics()["winner_root_rank"] == 1
    assert TreeSearch(budget=20, seed=0).bind(T).diagnostics()["winner_root_rank"] is None  # no leaf yet


def test_tree_search_pcn_move_keeps_paths_unbranched_and_pays_the_prefix():
    s = TreeSearch(TreeSearchParams(move="pcn", levels=[0.5], width=3, wave=64, last="preview"), budget=6,
                   seed=0).bind(10)
    asked = s.ask(64)
    assert s.sampler_schedule() is None and "noise_recipes" in s.needs()
    assert all(not r.branches for r in asked)
    # the root's children first (fresh seeds to step 5); answer them, then the leaves come
    s.tell([Result(r, Status.OK, float(i)) for i, r in enumerate(asked)])
    leaves = s.ask(64)
    assert leaves and all(not r.branches and r.until is None for r in leaves)
    pcn_children = [r for r in leaves if r.moves]
    assert pcn_children and all(r.moves[-1].theta == 1.0 for r in pcn_children)
    # charged honestly: a continuing leaf pays 5 more calls, a pcn sibling its whole path of 10
    assert s.spent_steps == 5 * len(asked) + sum(10 if r.moves else 5 for r in leaves)
    assert s.spent_steps <= 60


class TestTreeSearchVariantsConformance(StrategyConformance):
    """The conformance suite for the trees the default does not build: pcn children, an unpreviewed deepest level,
    a probe, nodes that never widen, a root sized from what the search measures."""
    budget = 20

    def allowed_stop_reasons(self, strategy):
        return {"tree"}

    @pytest.fixture(params=[{"move": "pcn"}, {"last": "finish"}, {"probe": True}, {"widen": 0},
                            {"root_size": "measured"}], ids=["pcn", "finish", "probe", "narrow", "measured-root"])
    def make_strategy(self, request):
        return lambda budget, seed: TreeSearch(TreeSearchParams(**request.param), budget=budget, seed=seed)


def test_levels_and_widths_shape_the_tree():
    s = run(TreeSearch(TreeSearchParams(width=3), budget=20, seed=1))
    assert s.diagnostics()["level_steps"] == [4, 6, 8]  # the default levels 0.4, 0.6, 0.8 of T = 10
    assert len(s.root.children) == 30  # the default root_width: 1.5 x B fresh trajectories
    assert all(not c.recipe.branches and not c.recipe.moves for c in s.root.children)
    for node in s.nodes.values():
        assert node.recipe.until == [4, 6, 8, None][node.depth - 1]
        # width below the root; the two deepest levels widen to the default widen once the previews rank finals
        assert len(node.children) <= (3 if node.depth < 2 or s.diagnostics()["widened_at_steps"] is None else 8)
        for i, child in enumerate(node.children):  # the first child continues its parent, the others branch from it
            assert child.recipe.root == node.recipe.root
            assert child.recipe.branches == node.recipe.branches + (
                () if i == 0 else (child.recipe.branches[-1],))
            assert i == 0 or (child.recipe.branches[-1].step, child.recipe.branches[-1].theta) == (node.recipe.until,
                                                                                                    1.0)
    narrow = run(TreeSearch(TreeSearchParams(root_width=0.5), budget=20, seed=1))
    assert len(narrow.root.children) == 10


@pytest.mark.parametrize(("budget", "power", "roots"), [(8, 0.5, 12), (20, 0.5, 19), (64, 0.5, 34), (20, 0.75, 24),
                                                         (64, 1.0, 96), (7, 1.0, 10)])
def test_root_power_grows_the_roots_slower_than_the_budget_from_budget_8(budget, power, roots):
    s = run(TreeSearch(TreeSearchParams(root_power=power), budget=budget, seed=0))
    assert s.roots == roots == len(s.root.children)  # 1.5·8·(B/8)^power; power 1: 1.5·B as before (7: round(10.5))
    # the budget not spent on roots goes below them: more nodes under the best roots than the linear root leaves
    if power < 1 and budget > 8:
        linear = run(TreeSearch(budget=budget, seed=0))
        assert len(s.nodes) - roots > len(linear.nodes) - linear.roots


def test_a_sibling_shares_its_parents_prefix_and_is_charged_only_its_own_calls():
    s = run(TreeSearch(budget=20, seed=0))
    step = [0, 4, 6, 8, T]
    assert s.spent_steps == sum(step[n.depth] - step[n.depth - 1] for n in s.nodes.values())
    assert s.sampler_schedule() == SamplerSchedule((4, 6, 8), (1.0, 1.0, 1.0))  # a leaf may branch at every level


def test_a_wave_is_chosen_at_once_whatever_the_batches_and_the_next_waits_for_it():
    whole = TreeSearch(TreeSearchParams(wave=5), budget=20, seed=3).bind(T)
    wave = whole.ask(100)
    assert len(wave) == 5 and whole.ask(100) == []  # the next wave waits for every result of this one
    pieces = TreeSearch(TreeSearchParams(wave=5), budget=20, seed=3).bind(T)
    assert pieces.ask(2) + pieces.ask(2) + pieces.ask(2) == wave and pieces.ask(2) == []
    tell(whole, {r: 1.0 for r in wave})
    assert len(whole.ask(100)) == 5


def test_backup_max_is_the_best_of_the_subtree_and_none_the_own_value():
    for how, expected in (("max", [9.0, 9.0, 9.0, 1.0]), ("none", [0.0, 2.0, 9.0, 1.0])):
        root = Node(None, 0, pending=False, value=0.0)
        a = Node(Recipe(1), 1, root, value=2.0)
        leaf, other = Node(Recipe(2), 2, a, value=9.0), Node(Recipe(3), 1, root, value=1.0)
        root.children, a.children = [a, other], [leaf]
        for n in (other, leaf):
            n.backup(how)
        assert [n.best for n in (root, a, leaf, other)] == expected, how


@pytest.mark.parametrize("backup", ["max", "none"])
def test_selection_descends_by_the_backed_up_value(backup):
    # two root children A (5) and B (4), one child each (width 1): A1 scores 0, B1 10. With backup "max" B's subtree
    # is worth 10 and the next expansion grows under B; with "none" A's own 5 still beats B's 4.
    s = TreeSearch(TreeSearchParams(levels=[0.3, 0.6], root_width=0.2, width=1, wave=2, backup=backup,
                                    last="preview"), budget=10, seed=0).bind(T)
    a, b = s.ask(10)
    tell(s, {a: 5.0, b: 4.0})
    a1, b1 = s.ask(10)
    assert (a1.root, b1.root, a1.until, b1.until) == (a.root, b.root, 6, 6)
    tell(s, {a1: 0.0, b1: 10.0})
    grown = s.ask(10)[0]
    assert grown == (b1 if backup == "max" else a1).with_until(None)


def test_only_finished_leaves_can_be_the_best():
    def previews_look_better(recipe):
        res = fake_objective()(recipe)
        return Result(recipe, Status.OK, res.potential + (100.0 if recipe.until is not None else 0.0))

    s = run(TreeSearch(budget=10, seed=2), previews_look_better)
    assert s.best.recipe.until is None and s.best.potential < 100.0
    assert s.best.potential == max(r.potential for r in s.history if r.recipe.until is None)


def test_anytime_a_budget_of_one_candidate_still_finishes_one():
    for last, untils in (("preview", [4, 6, 8, None]), ("finish", [4, 6, None])):
        s = run(TreeSearch(TreeSearchParams(last=last), budget=1, seed=0))  # 10 steps: a second root child would
        finals = [r for r in s.history if r.recipe.until is None]        # leave too few to finish a path
        assert len(finals) == 1 and s.spent_steps == T and s.best == finals[0]
        assert [r.recipe.until for r in s.history] == untils


def test_it_stops_when_nothing_is_left_to_grow():
    s = run(TreeSearch(TreeSearchParams(root_width=0.1, width=1), budget=10, seed=0))  # a single chain
    assert s.stop() == {"tree": "nothing left to grow within the budget"} and s.spent_steps == T < 10 * T


def test_tree_search_needs_stepping():
    assert TreeSearch().needs() == {"stepping"}
    assert TreeSearch(TreeSearchParams(move="pcn")).needs() == {"stepping", "noise_recipes"}


# -- last = "finish": the deepest level valued by finishing its own path, not by a judged preview ------------------


def test_finish_asks_no_preview_at_the_deepest_level_and_values_it_by_its_own_final():
    s = run(TreeSearch(TreeSearchParams(last="finish"), budget=20, seed=1))
    assert not [r for r in s.history if r.recipe.until == 8]  # never a preview at the deepest level (0.8 of T)
    finished = [n for n in s.nodes.values() if n.finished]
    assert finished and s.diagnostics()["finished_unjudged"] == len(finished)
    assert all(n.depth == 3 and n.recipe.until == 8 for n in finished)
    for node in finished:  # its first child is its own path finished, and that final is its value
        first = node.children[0]
        assert first.recipe == node.recipe.with_until(None) and node.value == first.value
        assert node.best == max(c.best for c in node.children)
        for sib in node.children[1:]:  # the others branch from it at its level, as below a previewed node
            assert sib.recipe.branches[:-1] == node.recipe.branches and sib.recipe.branches[-1].step == 8
    # charged honestly: a finished node's first leaf pays from its parent's level to the end, a sibling from 8
    step = [0, 4, 6, 8, T]
    assert s.spent_steps == sum(step[n.depth] - step[n.depth - 1] for n in s.nodes.values()) <= 20 * T


def test_finish_spends_fewer_evaluations_on_the_same_steps():
    previewed = run(TreeSearch(TreeSearchParams(last="preview"), budget=20, seed=4))
    finishing = run(TreeSearch(TreeSearchParams(last="finish"), budget=20, seed=4))
    assert TreeSearch().params.last == "preview"  # the default
    assert finishing.spent_steps == previewed.spent_steps == 20 * T
    assert len(finishing.history) < len(previewed.history)
    # the same first level either way: the difference is the deepest level's previews
    assert [r.recipe for r in finishing.history[:30]] == [r.recipe for r in previewed.history[:30]]


def test_finish_a_node_whose_final_failed_is_not_grown():
    s = TreeSearch(TreeSearchParams(levels=[0.5], root_width=0.2, width=3, wave=1, last="finish"), budget=10,
                   seed=0).bind(T)
    first = s.ask(10)
    assert len(first) == 1 and first[0].until is None  # one level: the root's children are finished paths
    s.tell([Result(first[0], Status.FAILED, None, reason="boom")])
    node = s.nodes[first[0].with_until(5)]
    assert not node.pending and node.value is None
    second = s.ask(10)  # the other root child, never a sibling under the failed one
    assert len(second) == 1 and second[0].until is None and not second[0].branches and second[0].seed != first[0].seed


def _uniform(recipe: Recipe, salt: str) -> float:
    """A value in [0, 1) from a hash of the recipe's text and ``salt``."""
    return int.from_bytes(hashlib.sha256((salt + repr(recipe)).encode()).digest()[:4], "little") / 2 ** 32


def previews_say_nothing(recipe: Recipe) -> Result:
    """fake_objective's finals, with previews drawn from a hash of the recipe: a preview ranks no final."""
    if recipe.until is None:
        return fake_objective()(recipe)
    return Result(recipe, Status.OK, 10 * _uniform(recipe, "preview"))


def test_widen_grows_the_nodes_once_the_deepest_previews_rank_their_finals():
    s = run(TreeSearch(TreeSearchParams(width=2, widen=5), budget=20, seed=0))
    d = s.diagnostics()
    assert d["agreement"] >= 0.5 and 0 < d["widened_at_steps"] < s.spent_steps  # fake previews rank their finals
    below = [n for n in s.nodes.values() if n.depth >= 1]
    assert max(len(n.children) for n in below) == 5  # past width once widened, never past widen
    assert max(len(n.children) for n in below if n.depth == 1) == 2  # the level above them keeps its width
    fixed = run(TreeSearch(TreeSearchParams(width=2, widen=0), budget=20, seed=0))
    assert max(len(n.children) for n in fixed.nodes.values() if n.depth >= 1) == 2
    assert "agreement" not in fixed.diagnostics()  # nothing to widen to: nothing measured
    # before the widening the two trees ask alike (the decision comes from what the search measured), after it not
    asked, asked_fixed = [r.recipe for r in s.history], [r.recipe for r in fixed.history]
    assert asked[:40] == asked_fixed[:40] and asked != asked_fixed


def test_widen_keeps_the_width_where_previews_do_not_rank_finals():
    s = run(TreeSearch(TreeSearchParams(width=2, widen=5), budget=20, seed=0), objective=previews_say_nothing)
    fixed = run(TreeSearch(TreeSearchParams(width=2, widen=0), budget=20, seed=0), objective=previews_say_nothing)
    d = s.diagnostics()
    assert d["agreement"] is not None and d["agreement"] < 0.5 and d["widened_at_steps"] is None
    assert [r.recipe for r in s.history] == [r.recipe for r in fixed.history]  # the same tree, asked alike


def test_widen_has_nothing_to_measure_without_the_deepest_previews():
    s = run(TreeSearch(TreeSearchParams(width=2, widen=5, last="finish"), budget=20, seed=0))
    assert s.diagnostics()["agreement"] is None
    assert max(len(n.children) for n in s.nodes.values() if n.depth >= 1) <= 2


def leaf_order(s: TreeSearch) -> list[int]:
    """Each finished leaf, in asked order, as its place among its parent's children (0: it continues its parent)."""
    leaves = [s.nodes[r.recipe] for r in s.history if r.recipe.until is None]
    return [leaf.parent.children.index(leaf) for leaf in leaves]


def test_probe_finishes_several_deepest_nodes_first_and_decides_sooner():
    plain = run(TreeSearch(TreeSearchParams(), budget=20, seed=0))
    probed = run(TreeSearch(TreeSearchParams(probe=True), budget=20, seed=0))
    assert leaf_order(plain)[:4] == [0, 1, 2, 3]  # greedy: the best deepest node's children first
    assert leaf_order(probed)[:4] == [0, 0, 0, 0]  # probe: four deepest nodes' own finals first
    assert probed.diagnostics()["widened_at_steps"] < plain.diagnostics()["widened_at_steps"]
    # where the budget left could not pay for a widened node, the probe changes nothing
    small = [run(TreeSearch(TreeSearchParams(probe=p), budget=8, seed=0)) for p in (False, True)]
    assert [r.recipe for r in small[0].history] == [r.recipe for r in small[1].history]


def test_probe_and_widen_work_on_a_tree_of_one_level():
    s = run(TreeSearch(TreeSearchParams(levels=[0.5], probe=True, width=2, widen=5), budget=20, seed=0))
    assert s.spent_steps <= 20 * T and s.best is not None and s.stop()
    assert s.diagnostics()["agreement"] is not None  # the level's previews against their own finals
    assert max(len(n.children) for n in s.nodes.values() if n.depth == 1) <= 5


def roots_decide(recipe: Recipe) -> Result:
    """Every node and leaf is worth its root seed: moves below the root change nothing (a local search saturated)."""
    return Result(recipe, Status.OK, 10 * _uniform(Recipe(seed=recipe.seed), "root"))


def moves_decide(recipe: Recipe) -> Result:
    """Roots differ little (within 0.1); a branch below the root decides up to 10 more (its path, finished)."""
    return Result(recipe, Status.OK, 0.1 * _uniform(Recipe(seed=recipe.seed), "root") +
                  (10 * _uniform(recipe.with_until(None), "path") if recipe.branches else 0.0))


def test_a_measured_root_is_the_budget_8_tree_at_budget_8():
    fixed = run(TreeSearch(budget=8, seed=2))
    measured = run(TreeSearch(TreeSearchParams(root_size="measured"), budget=8, seed=2))
    assert [r.recipe for r in measured.history] == [r.recipe for r in fixed.history]
    assert measured.root_open == fixed.roots == 12


def test_a_measured_root_opens_more_roots_where_the_subtrees_stop_rising():
    s = run(TreeSearch(TreeSearchParams(root_size="measured"), budget=20, seed=0), objective=roots_decide)
    d = s.diagnostics()
    assert d["roots"] == len(s.root.children) == s.roots == 30  # up to the fixed tree's 1.5·B
    assert d["roots_opened_at_steps"] and d["roots_opened_at_steps"][0] > 12 * 4  # after the first 12, measured
    assert all(x["root_rise"] > x["leaf_rise"] == 0 for x in s.root_decisions if "leaf_rise" in x)
    assert s.best.potential == max(r.potential for r in s.history if r.recipe.until == 4)  # the best root's


def test_a_measured_root_stays_at_the_budget_8_roots_where_the_subtrees_keep_rising():
    s = run(TreeSearch(TreeSearchParams(root_size="measured"), budget=20, seed=0), objective=moves_decide)
    fixed = run(TreeSearch(budget=20, seed=0), objective=moves_decide)
    d = s.diagnostics()
    assert d["roots"] == 12 < fixed.roots and d["roots_opened_at_steps"] == [] and d["root_decisions"] > 0
    assert all(x["leaf_rise"] >= x["root_rise"] for x in s.root_decisions)
    assert s.spent_steps == fixed.spent_steps == 200  # the budget the roots did not take went below them
    finals = [sum(r.recipe.until is None for r in x.history) for x in (s, fixed)]
    assert finals[0] > finals[1]  # more leaves, where the leaves decide
    assert s.stop() and fixed.stop()


def test_a_measured_root_opens_roots_when_nothing_else_can_grow():
    # one child per node: every root is one path, and the best root's subtree never has leaves enough to fit
    s = run(TreeSearch(TreeSearchParams(root_size="measured", width=1, widen=0), budget=20, seed=0))
    why = [x.get("why") for x in s.root_decisions]
    assert why and set(why) == {"nothing else can grow"} and len(s.root.children) > 12
    assert s.spent_steps > 200 - T  # the budget is spent, not stopped short at the 12 roots' paths
