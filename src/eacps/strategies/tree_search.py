"""``tree-search``: greedy tree search over the denoising chain, in the manner of DTS* (Jain et al. 2025,
arXiv 2506.20701), anytime within the budget.

The tree's nodes are partial trajectories at a few depths (``levels``, fractions of the schedule); leaves are
finished images. Each iteration walks from the root (selection), always to the child with the best value
among those that can still grow, until it reaches a node with fewer than its width of children, and adds one
child there (expansion): the root's children are fresh seeds run to the first level; a node's first child
continues its own trajectory to the next level, the others branch from it by a seeded ``renoise`` move of
angle ``theta`` (so siblings share their parent's prefix, computed and charged once). A new node is valued
by the potential of its clean-image prediction (a preview) or, for a leaf, of its final image. With
``last = "finish"`` a node of the deepest level is not previewed: it is asked as its own finished path (its first
leaf), valued by that final, and its siblings-to-be branch from it as before; near the end of the schedule a preview
ranks almost as its final does, so judging both spends a potential evaluation that decides little.

Mapping to DTS*: selection -> descent by value; expansion -> one child per iteration; rollout -> replaced by
the x0 preview of the new node (the cheap value estimate whose rank correlation with the final potential
``eacps landscape --per-step`` measures); backup -> a node's value is the best of its own preview and its
children's values (``backup = "max"``, DTS*'s greedy limit) or its own preview only (``"none"``).
Expansions are chosen in waves of ``wave`` from what is known (a batch of GPU work; the recipes do not depend
on how the engine batches asks). Every computed node is kept and reused; only leaves can be the best. Needs a
generator that can step.

How wide a node should be depends on the landscape: the tree measures it. For each node of the deepest level with
a first child it has the pair (preview, final of its own path); once their agreement's posterior mean (Spearman
through ``eacps.agreement``) reaches ``agree``, nodes of the two deepest levels may have ``widen`` children instead
of ``width`` (decided again after every wave). A small budget never gathers the pairs and keeps the narrow tree.

Default levels 0.4/0.6/0.8 (since 2026-12-06; before: 0.2/0.4/0.6): chosen by the maximin rule of
``benchmarks/tune_trajectories.py --round late`` over the tuning splits of three testbeds. Its first decision comes
after the point where a flow sampler's previews stop ranking against its finals (about 35% of T on the gm-flow
testbed, held out then; docs/findings.md). ``last = "finish"`` saves the deepest level's judge calls and holds the
mean best at budgets 20 and 64, but loses at budget 8, where those previews are a cheap filter among many siblings
(``--round tree-finish3`` over four tuning testbeds at budgets 8, 20, 64): not the default. ``widen = 8`` (since
2026-12-07): chosen by both cost models' rule over the four tuning testbeds at budgets 8, 20 and 64 (``--round
tree-widen2``), where every fixed width or root width tried was vetoed on one of them (``tree-shape``,
``tree-shape2``); ``probe`` decides sooner and gains more at budget 20 but is vetoed on gm-sharp. ``root_power``
below 1 (fewer fresh roots beyond budget 8) gained at budget 20 on digits and gm-flow and read lower on gm-flow at
budget 64, on the tuning splits of two task sets; the two cost models' rules disagreed (``--round tree-root``): not
the default. ``root_size = "measured"`` (the budget-8 tree's roots first, more only while more roots are expected to
raise the best root preview more per step than more leaves the best leaf under the best root) opened nearly every
root on digits and gm-easy, late, and none on gm-flow, and lost on digits at budget 64 on task set 2's tuning split
(``--round tree-root-measured``): not the default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field

from eacps.agreement import agreement_mean
from eacps.hookspecs import hookimpl
from eacps.params import Params, ScheduleFractions
from eacps.recipe import Recipe
from eacps.screening import ScreenParams, on_path, screen_of
from eacps.strategy import SamplerSchedule, Strategy
from eacps.types import Result


class TreeSearchParams(Params):
    added: ClassVar[dict[str, Any]] = {"last": "preview", "widen": 0, "agree": 0.5,  # as before they existed
                                       "probe": False, "root_power": 1.0, "root_size": "fixed"}
    levels: ScheduleFractions = Field(default_factory=lambda: [0.4, 0.6, 0.8],
                                      description="node depths as fractions of the schedule, increasing, in (0, 1)")
    root_width: float = Field(1.5, gt=0, description="fresh seeds at the root, as a multiple of the budget B (at "
                              "B = 8 when root_power is not 1)")
    root_power: float = Field(1.0, gt=0, le=1, description="how the root's fresh seeds grow with the budget: "
                              "root_width·8·(B/8)^root_power (1: in proportion to B; below 1 a larger budget "
                              "goes more to the subtrees of the best roots)")
    root_size: Literal["fixed", "measured"] = Field(
        "fixed", description="the root's fresh seeds: all of them (fixed), or first those of the budget-8 tree "
        "(root_width·8) and another wave of them only while the best root's subtree is expected to rise less per "
        "step from more of its leaves than the best root preview from more roots (measured; at most the fixed count)")
    width: int = Field(4, ge=1, description="children per node below the root")
    widen: int = Field(8, ge=0, description="children per node of the two deepest levels (whose children are "
                       "ranked by the deepest previews or are finals) once the search has seen the deepest previews "
                       "rank their own finals (posterior mean correlation at least agree); at most width (0): never")
    agree: float = Field(0.5, ge=-1, le=1, description="the posterior mean correlation of the deepest level's "
                         "previews with their finals at which nodes widen (widen)")
    probe: bool = Field(False, description="with widen: finish the first child of several deepest nodes before their "
                        "siblings until five pairs decide, while the budget left could still pay for wide nodes")
    theta: float = Field(1.0, gt=0, le=math.pi / 2, description="angle of a branching child's move")
    move: Literal["renoise", "pcn"] = Field("renoise", description="a branching child: renoise its parent's state "
                                            "(shares the prefix; changes the sampler) or pcn its root noise "
                                            "(recomputes the prefix; keeps the sampler's distribution exactly)")
    wave: int = Field(8, ge=1, description="expansions chosen together before their values are known")
    backup: Literal["max", "none"] = Field("max", description="a node's value: best of its subtree, or its own")
    value_model: ScreenParams | None = Field(None, description="screen nodes with a value model (eacps.screening): "
                                             "a node that cannot beat the best leaf is not grown")
    last: Literal["preview", "finish"] = Field(
        "preview", description="a node of the deepest level is valued by its judged preview (preview) or by "
        "finishing its own trajectory (finish: no preview, its first leaf is asked with it and its final's potential "
        "is its value; one potential evaluation fewer per node there)")


#: the budget at which ``root_power`` leaves the root's width at ``root_width``·B (the smallest budget issue 18 names)
ROOT_ANCHOR = 8

#: values a population needs before ``root_size = "measured"`` fits it (the root's previews, the best root's leaves)
ROOT_FIT = 3

#: (preview, final) pairs of the deepest level that ``probe`` gathers before it lets the tree branch there
PROBE_PAIRS = 5


@dataclass
class Node:
    recipe: Recipe | None  # None: the root
    depth: int  # 0: root; len(levels) + 1: a leaf (finished image)
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    value: float | None = None  # own potential; None while pending or failed
    pending: bool = True
    best: float = -math.inf  # backed-up value
    pruned: bool = False  # the value model settled it: not grown
    x: list[float] | None = None  # what the value model reads of it (a judged preview; None without features)
    finished: bool = False  # never asked (``last = "finish"``): valued by its first child, its own path finished
    cost: int = 0  # the model calls it was charged when added (its own, not its prefix's)

    def backup(self, how: str) -> None:
        node = self
        while node is not None:
            kids = [c.best for c in node.children] if how == "max" else []
            node.best = max([node.value if node.value is not None else -math.inf, *kids])
            node = node.parent


class TreeSearch(Strategy):
    name = "tree-search"
    ask_ahead = True  # a wave is fixed when chosen; the next one waits for every result
    counts_steps = True
    Params = TreeSearchParams

    requires: ClassVar[frozenset[str]] = frozenset({"stepping"})

    def needs(self) -> frozenset[str]:
        """Paths need stepping; ``pcn`` children are noise-space recipes too."""
        return frozenset({"stepping", "noise_recipes"} if self.params.move == "pcn" else {"stepping"})

    def __init__(self, params: TreeSearchParams | None = None, *, budget: int = 20, seed: int = 0) -> None:
        super().__init__(params, budget=budget, seed=seed)
        self.root = Node(None, 0, pending=False)
        self.points: list[int] = []
        self.nodes: dict[Recipe, Node] = {}
        self.queue: list[Recipe] = []
        self.screen = screen_of(self.params.value_model)
        self.best_leaf: float | None = None
        self.ever_pruned: set[Recipe] = set()
        self.agreement: float | None = None  # posterior mean of the deepest previews' agreement with their finals
        self.widened_at: int | None = None  # the steps spent when nodes first widened
        self.pairs = 0  # (preview, final) pairs of the deepest level behind the agreement
        # fresh seeds the root may have now: all of them (fixed), or from the budget-8 tree's up (measured)
        self.root_open = self.roots if self.params.root_size == "fixed" else \
            min(self.roots, max(1, round(self.params.root_width * ROOT_ANCHOR)))
        self.root_decisions: list[dict[str, Any]] = []  # measured: each wave's comparison that opened roots or not

    @property
    def roots(self) -> int:
        """Fresh seeds at the root: ``root_width``·B, or with ``root_power`` below 1 anchored there at B = 8."""
        p = self.params
        if p.root_power == 1:  # exactly as before root_power existed
            return max(1, round(p.root_width * self.budget))
        return max(1, round(p.root_width * ROOT_ANCHOR * (self.budget / ROOT_ANCHOR) ** p.root_power))

    @property
    def leaf_depth(self) -> int:
        return len(self.points) + 1

    def _width(self, node: Node) -> int:
        if node.depth == 0:
            return self.root_open
        if node.depth >= len(self.points) - 1 and self._wide():  # children ranked by measured previews, or finals
            return self.params.widen
        return self.params.width

    def _probing(self, node: Node) -> bool:
        """Choosing a deepest-level node to grow while ``probe`` gathers (preview, final) pairs: fewer than
        ``PROBE_PAIRS``, and enough budget left for the missing pairs' finals and one node widened there."""
        if not self.params.probe or not self._widens or node.depth != len(self.points) - 1 or \
                self.pairs >= PROBE_PAIRS:
            return False
        last = self.full_steps - self.points[-1]  # a deepest node's final
        above = self.full_steps - self.points[-2] if len(self.points) > 1 else last  # a wide node's new child, finished
        return self.steps_left >= (PROBE_PAIRS - self.pairs) * last + (self.params.widen - self.params.width) * above

    def _wide(self) -> bool:
        return self._widens and self.agreement is not None and self.agreement >= self.params.agree

    @property
    def _widens(self) -> bool:
        """Can nodes widen at all (``widen`` above ``width``)?"""
        return self.params.widen > self.params.width

    def _measure_agreement(self) -> None:
        """(preview, final) pairs of the deepest level: each node there and the final of its own trajectory (its
        first child, which continues it); their posterior mean correlation decides whether nodes widen."""
        level = len(self.points)
        pairs = [(n.value, n.children[0].value) for n in self.nodes.values()
                 if n.depth == level and not n.finished and n.value is not None and n.children
                 and not n.children[0].pending and n.children[0].value is not None]
        self.agreement = agreement_mean(pairs)  # type: ignore[arg-type]
        self.pairs = len(pairs)
        if self._wide() and self.widened_at is None:
            self.widened_at = self.spent_steps

    def _until(self, depth: int) -> int | None:
        return self.points[depth - 1] if depth <= len(self.points) else None

    def _child(self, node: Node) -> Recipe:
        until = self._until(node.depth + 1)
        if node.recipe is None:
            return self.fresh_seeds(1)[0].with_until(until)
        if not node.children:  # the first child continues the node's own trajectory
            return node.recipe.with_until(until)
        if self.params.move == "pcn":  # the same path from a pCN neighbour of its root noise, recomputed from step 0
            return node.recipe.pcn(self.params.theta, self.local_seeds.next()).with_until(until)
        return node.recipe.branch(node.recipe.until, self.params.theta, self.local_seeds.next()).with_until(until)

    def _growable(self, node: Node) -> bool:
        """Can this subtree take another child now (a node that is not a leaf, not failed, not pending)?"""
        if node.depth >= self.leaf_depth or node.pending or node.pruned or (node.recipe is not None and
                                                                            node.value is None):
            return False
        return len(node.children) < self._width(node) or any(self._growable(c) for c in node.children)

    def _select(self) -> Node | None:
        """Walk down by value to the first node with room for a child (None: nothing can grow now)."""
        node = self.root
        while node is not None and len(node.children) >= self._width(node):
            options = [c for c in node.children if self._growable(c)]
            if self._probing(node):  # a deepest node's first child (its own final) before another's siblings
                options = [c for c in options if not c.children] or options
            node = max(options, key=lambda c: c.best) if options else None
        return node if node is not None and self._growable(node) else None

    def _step_at(self, depth: int) -> int:
        return 0 if depth == 0 else self.points[depth - 1] if depth <= len(self.points) else self.full_steps

    def _finishes(self, depth: int) -> bool:
        """Is a new node at ``depth`` asked as its own finished path (``last = "finish"``, the deepest level)?"""
        return self.params.last == "finish" and depth == len(self.points)

    def _reach(self, depth: int) -> int:
        """The model calls a new node at ``depth`` is computed to: its level, or the end when it finishes."""
        return self.full_steps if self._finishes(depth) else self._step_at(depth)

    def _cost(self, node: Node) -> int:
        """Model calls of a new child of ``node``: from its depth to the next (the prefix is shared, whether the
        child continues or branches by ``renoise``), or to the end for a child that finishes; a ``pcn`` sibling
        recomputes its path from step 0."""
        if self.params.move == "pcn" and node.children and node.depth > 0:
            return self._reach(node.depth + 1)
        return self._reach(node.depth + 1) - self._step_at(node.depth)

    def _next(self, left: int) -> Node | None:
        """The node to grow next, if its child fits in ``left`` steps. Anytime: until a leaf exists, a child that
        could not be finished with what would be left gives way to finishing the deepest best node."""
        node = self._select()
        if node is not None and not self._finished_any():
            depth = node.depth + 1
            if depth < self.leaf_depth and left - self._cost(node) < self.full_steps - self._reach(depth):
                node = self._deepest_best()
        if node is None or self._cost(node) > left:
            return None
        return node

    def _finished_any(self) -> bool:
        return any(n.depth == self.leaf_depth for n in self.nodes.values())

    def _deepest_best(self) -> Node | None:
        """The best evaluated node of the deepest level reached below the leaves (None while a node at that
        level or deeper is still pending: the wave ends and waits for its value)."""
        inner = [n for n in self.nodes.values() if 1 <= n.depth < self.leaf_depth]
        done = [n for n in inner if not n.pending and n.value is not None]
        if not done or any(n.pending and n.depth >= max(d.depth for d in done) for n in inner):
            return None
        return max(done, key=lambda n: (n.depth, n.value))

    def _wave(self) -> list[Recipe]:
        """Up to ``wave`` expansions chosen together from what is known now (a pending child fills its parent's
        width but cannot be descended into), so the recipes never depend on how the engine batches asks."""
        out: list[Recipe] = []
        left = self.steps_left
        while len(out) < self.params.wave:
            if (node := self._next(left)) is None:
                if out or not self._can_open(left):
                    break
                was, self.root_open = self.root_open, min(self.roots, self.root_open + self.params.wave)
                self.root_decisions.append({"steps": self.spent_steps, "was": was, "open": self.root_open,
                                            "why": "nothing else can grow"})
                continue
            recipe = self._child(node)
            cost = self._cost(node)
            left -= cost
            child = Node(recipe, node.depth + 1, node, finished=self._finishes(node.depth + 1), cost=cost)
            node.children.append(child)
            self.nodes[recipe] = child
            if child.finished:  # asked as its first leaf: its own path, finished
                recipe = recipe.with_until(None)
                leaf = Node(recipe, child.depth + 1, child)
                child.children.append(leaf)
                self.nodes[recipe] = leaf
            out.append(recipe)
        return out

    def _ask(self, n: int) -> list[Recipe]:
        if not self.points:  # the levels need T: placed at the first ask (after ``bind``)
            self.points = self.schedule_steps(self.params.levels)
        if not self.queue and not self.pending:
            self.queue = self._wave()
        out, self.queue = self.queue[:n], self.queue[n:]
        return out

    def _tell(self, results: Sequence[Result]) -> None:
        for r in results:
            node = self.nodes[r.recipe]
            node.pending = False
            node.value = r.potential if r.ok else None
            parent = node.parent
            if parent is not None and parent.finished and parent.children[0] is node:  # its own path's final
                parent.pending, parent.value = False, node.value
            node.backup(self.params.backup)
            if self.screen is not None and node.depth < self.leaf_depth and node.value is not None:
                node.x = self.screen.x(r, r.recipe.until, self.full_steps)  # type: ignore[arg-type]
            if self.screen is not None and node.depth == self.leaf_depth and node.value is not None:
                self._learn(node)
        if not self.pending and not self.queue:  # a wave is complete: widen or not, and screen
            if self._widens:
                self._measure_agreement()
            if self.params.root_size == "measured":
                self._size_root()
            if self.screen is not None:
                self._prune()

    def _can_open(self, left: int) -> bool:
        """Could the root take fresh seeds it has not opened yet, one of which fits in ``left`` steps?"""
        return self.root_open < self.roots and self._reach(1) <= left

    def _size_root(self) -> None:
        """``root_size = "measured"``, after a wave: open another wave of fresh seeds at the root when more roots are
        expected to raise the best root preview more per step than more leaves the best leaf under the best root.

        Each side is a normal model of the upper half of its values (``orderstats.upper_half``, as ``eacps.allocate``
        fits a condition, unshrunk: a best rises into the upper tail) and the expected improvement of its best from
        ``wave`` more draws, per model call: a root costs its first level's steps; a leaf under the best root what
        that subtree has spent per leaf so far (its shared prefixes included). Undecided, and so not opened,
        until both sides have ``ROOT_FIT`` values: the tree first grows under its best roots, which is where its
        winner comes from on every testbed measured (docs/findings.md, The tree-root round)."""
        if self.root_open >= self.roots or not self.root.children:
            return
        top = max(self.root.children, key=lambda c: c.best)
        below = self._below(top)
        previews = [c.value for c in self.root.children if c.value is not None]
        leaves = [n.value for n in below if n.depth == self.leaf_depth and n.value is not None]
        if len(previews) < ROOT_FIT or len(leaves) < ROOT_FIT:
            return
        from eacps.orderstats import expected_improvement_normal, upper_half  # scipy: only when measured

        k = self.params.wave

        def rise(ys: list[float]) -> float:  # of the best of ys, from ``wave`` more draws like them
            mu, ss = upper_half(ys)
            return expected_improvement_normal(mu, math.sqrt(ss / (len(ys) - 1)), max(ys), k)

        per_leaf = sum(n.cost for n in below) / len(leaves)
        root_rise = rise(previews) / (k * self._reach(1))  # type: ignore[arg-type]
        leaf_rise = rise(leaves) / (k * per_leaf)  # type: ignore[arg-type]
        was = self.root_open
        if root_rise > leaf_rise:
            self.root_open = min(self.roots, self.root_open + k)
        self.root_decisions.append({"steps": self.spent_steps, "was": was, "open": self.root_open,
                                    "root_rise": root_rise, "leaf_rise": leaf_rise})

    @staticmethod
    def _below(node: Node) -> list[Node]:
        """Every node of ``node``'s subtree but itself."""
        out, todo = [], list(node.children)
        while todo:
            n = todo.pop()
            out.append(n)
            todo.extend(n.children)
        return out

    def _features(self, node: Node) -> list[float] | None:
        return node.x

    def _learn(self, leaf: Node) -> None:
        """A finished leaf: (preview, final) pairs with its ancestors on its path, and the best judged final."""
        self.best_leaf = leaf.value if self.best_leaf is None else max(self.best_leaf, leaf.value)  # type: ignore
        node = leaf.parent
        while node is not None and node.recipe is not None:
            if node.value is not None and on_path(node.recipe, leaf.recipe):  # type: ignore[arg-type]
                self.screen.add(node.recipe, self._features(node), leaf.recipe, leaf.value)  # type: ignore
            node = node.parent

    def _prune(self) -> None:
        """Inner nodes whose predicted final cannot beat the best leaf (or the best lower bound) are not grown; decided
        again after every wave, and lifted when it would leave nothing to grow."""
        live = [n for n in self.nodes.values() if 1 <= n.depth < self.leaf_depth and not n.pending
                and n.value is not None]
        for node, drop in zip(live, self.screen.prune([self._features(n) for n in live], self.best_leaf),  # type: ignore
                              strict=True):
            node.pruned = drop
        if self._next(self.steps_left) is None:  # nothing to grow: lift the pruning if that lets the tree go on
            kept = [n for n in live if n.pruned]
            for node in kept:
                node.pruned = False
            if self._next(self.steps_left) is None:
                for node in kept:
                    node.pruned = True
        self.ever_pruned.update(n.recipe for n in live if n.pruned)
        self.screen.pruned = len(self.ever_pruned)  # type: ignore[union-attr]

    def _stop(self) -> dict[str, Any]:
        """A pure read: nothing asked yet, or a node that can still grow, is no reason to stop."""
        if not self.points or self.queue or self.pending or self.steps_left <= 0 or \
                self._next(self.steps_left) is not None or self._can_open(self.steps_left):
            return {}
        return {"tree": "nothing left to grow within the budget"}

    def sampler_schedule(self) -> SamplerSchedule | None:
        """A child below the root branches at its parent's level by ``theta``: a leaf may carry one branch per
        level. With ``move = "pcn"`` no path branches: every candidate is a sample of the generator's sampler."""
        if self.params.move == "pcn":
            return None
        steps = self.schedule_steps(self.params.levels)
        return SamplerSchedule(tuple(steps), (self.params.theta,) * len(steps))

    def _winner_root_rank(self) -> int | None:
        """The rank by preview among the roots (1: the best previewed) of the root the best leaf grew from; how
        often it is 1 says how much of the tree is a best-of-roots followed by a local search (None: no leaf yet)."""
        best = self.best  # the argmax over finished leaves
        if best is None:
            return None
        node = self.nodes[best.recipe]
        while node.parent is not None and node.parent.recipe is not None:
            node = node.parent
        if node.value is None:  # a root whose preview failed cannot have grown; a finished root is valued by it
            return None
        return 1 + sum(c.value is not None and c.value > node.value for c in self.root.children)

    def diagnostics(self) -> dict[str, Any]:
        per_depth = [0] * (self.leaf_depth + 1)
        for node in self.nodes.values():
            per_depth[node.depth] += 1
        out = {"nodes_per_depth": per_depth[1:], "level_steps": self.points,
               "winner_root_rank": self._winner_root_rank()}
        if self._widens:
            out["agreement"] = self.agreement
            out["agreement_pairs"] = self.pairs
            out["widened_at_steps"] = self.widened_at
        if self.params.root_size == "measured":
            out["roots"] = len(self.root.children)
            out["roots_opened_at_steps"] = [d["steps"] for d in self.root_decisions if d["open"] > d["was"]]
            out["root_decisions"] = len(self.root_decisions)
        if self.params.last == "finish":
            out["finished_unjudged"] = sum(n.finished for n in self.nodes.values())  # previews not asked
        return out if self.screen is None else {**out, "value_model": self.screen.diagnostics()}


@hookimpl
def register_strategies(register):
    register(TreeSearch)
