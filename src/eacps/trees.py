"""The trees a trajectory search grows, read back from its path recipes (no torch: usable on any store), and
``PathLedger``, which charges a search for the model calls its paths need beyond prefixes it already paid for.

Every path recipe names its ancestry (root noise, branch moves, where it stops), so the tree of a search is a
function of its recipes in the order asked: a candidate's parent is the earlier candidate of the same search
that shares the longest prefix of model calls with it (on ties, one whose path ends where theirs part, then
the latest), and a fresh trajectory is a root. The scheduler stores each candidate's link (``parent``: the
seq of its parent in the search, from the search's ``PathLedger``); ``parent_links`` recomputes them from
recipes alone (the same rule; stores from before the column) and ``tree_lines`` draws them as text for
``eacps show --tree``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from eacps.recipe import Recipe


def stop_of(recipe: Recipe, total: int) -> int:
    """Model calls on ``recipe``'s path: its ``until``, else the whole schedule ``total``."""
    return total if recipe.until is None else recipe.until


_FAR = 1 << 30  # a path without ``until`` or without a next branch: unbounded here (the schedule caps it)


class PathLedger:
    """What a search has asked, as a set of paths (in ask order): a new path is charged the model calls beyond the
    longest prefix it shares with any path already charged (a shared prefix is charged once), and its parent is
    that path (on ties, one whose path ends where theirs part, then the latest). ``total`` is the full schedule T
    (needed to charge, not to link).

    Linear in the paths asked: paths are indexed by each prefix of their branch lists (root noise + the first k
    branches), and within such a group by how far they follow that prefix's trajectory (their ``until`` or next
    branch step, whichever is first). A path shares the most calls with the paths of the deepest group it belongs
    to (a deeper common branch list means strictly more shared calls), so finding its parent reads one group's
    few distinct depths rather than every earlier path (``Recipe.shared_calls``, the rule, pairwise)."""

    def __init__(self, total: int | None = None) -> None:
        self.total = total
        self.recipes: list[Recipe] = []
        self.parents: list[int | None] = []  # per path, in ask order: its parent's index (= seq), or None
        self.charges: list[int] = []  # per path charged (``charge``), in ask order: the model calls charged
        # a prefix (root noise, then one branch at a time) as a number: (root fields) or (prefix id, branch) -> id
        self._ids: dict[tuple, int] = {}
        # prefix id -> {depth a path follows that prefix to: [latest index, latest index whose path ends there]}
        self._groups: list[dict[int, list[int | None]]] = []

    def _prefixes(self, recipe: Recipe, known: list[int] | None = None, create: bool = False) -> list[int]:
        """The ids of ``recipe``'s prefixes (root noise + its first k branches, k = 0, 1, ...) that some recorded
        path has (all of them, made as needed, with ``create``); ``known``: the first ones, already looked up."""
        out: list[int] = list(known or ())
        # ``recipe.root``'s fields (``Recipe.root`` itself builds and validates a Recipe: 2.5x slower links)
        key: tuple = (recipe.seed, recipe.basis, recipe.coeffs, recipe.moves, recipe.steps)
        for k in range(len(out), len(recipe.branches) + 1):
            if k:
                key = (out[-1], recipe.branches[k - 1])
            pid = self._ids.get(key)
            if pid is None:
                if not create:
                    break
                pid = self._ids[key] = len(self._groups)
                self._groups.append({})
            out.append(pid)
        return out

    @staticmethod
    def _reach(recipe: Recipe, k: int) -> int:
        """How far ``recipe`` follows the trajectory of its first ``k`` branches: its next branch or its end."""
        nxt = recipe.branches[k].step if k < len(recipe.branches) else _FAR
        return min(nxt, stop_of(recipe, _FAR))

    def _nearest(self, recipe: Recipe, ids: list[int] | None = None) -> tuple[int | None, int]:
        """The parent of ``recipe`` among the paths so far, and the model calls they share (0: none); ``ids``: its
        known prefixes (``_prefixes``)."""
        ids = self._prefixes(recipe) if ids is None else ids
        if not ids:
            return None, 0
        group, reach = self._groups[ids[-1]], self._reach(recipe, len(ids) - 1)  # the deepest shared prefix
        farthest = max(group)
        shared = min(reach, farthest)  # a path reaching as far as ours shares all of it; else the farthest
        latest, ending = group.get(shared, (None, None))
        if ending is not None:  # a true ancestor: its path ends where theirs part (latest such)
            return ending, shared
        if shared == reach:  # the latest of the paths reaching at least as far
            latest = max(j for d, (j, _) in group.items() if d >= reach)  # type: ignore[type-var]
        return latest, shared

    def _cost(self, recipe: Recipe, shared: int) -> int:
        if self.total is None and recipe.until is None and recipe.steps is None:
            raise ValueError("PathLedger(total=T) is needed to charge a path that runs to the end")
        stop = stop_of(recipe, recipe.steps or self.total)  # type: ignore[arg-type]
        return stop - min(shared, stop)

    def link(self, recipe: Recipe) -> int | None:
        """Record ``recipe`` as asked; its parent's index (or None)."""
        ids = self._prefixes(recipe)
        parent, _ = self._nearest(recipe, ids)
        self._record(recipe, parent, ids)
        return parent

    def charge(self, recipe: Recipe) -> int:
        """Record ``recipe`` as asked; the model calls to charge for it (also kept in ``charges``)."""
        ids = self._prefixes(recipe)
        parent, shared = self._nearest(recipe, ids)
        cost = self._cost(recipe, shared)
        self._record(recipe, parent, ids)
        self.charges.append(cost)
        return cost

    def peek(self, recipe: Recipe) -> int:
        """What ``charge`` would return, without recording the path."""
        return self._cost(recipe, self._nearest(recipe)[1])

    def _record(self, recipe: Recipe, parent: int | None, ids: list[int]) -> None:
        j, m = len(self.recipes), len(recipe.branches)
        for k, pid in enumerate(self._prefixes(recipe, ids, create=True)):
            slot = self._groups[pid].setdefault(self._reach(recipe, k), [None, None])
            slot[0] = j
            if k == m and recipe.until is not None:  # its path ends at this depth of this group
                slot[1] = j
        self.recipes.append(recipe)
        self.parents.append(parent)


def charged_steps(recipes: Sequence[Recipe], total: int) -> list[int]:
    """Each recipe's charged denoising steps, in ask order (what ``PathLedger`` charged the search)."""
    ledger = PathLedger(total)
    return [ledger.charge(r) for r in recipes]


def parent_links(recipes: Sequence[Recipe]) -> list[int | None]:
    """For each recipe (in ask order) the index of its parent, or None for a fresh trajectory."""
    ledger = PathLedger()
    return [ledger.link(r) for r in recipes]


def break_cycles(parents: list[int | None]) -> list[list[int]]:
    """Cut every cycle of a parent list in place (its first node becomes a root); the cycles found, in order.
    Links derived from recipes never loop; stored ones may (a damaged or edited store)."""
    state = [0] * len(parents)  # 0: not seen, 1: on the current chain, 2: done
    cycles = []
    for start in range(len(parents)):
        chain, i = [], start
        while i is not None and state[i] == 0:
            state[i] = 1
            chain.append(i)
            i = parents[i]
        if i is not None and state[i] == 1:  # the chain came back to itself
            cyc = chain[chain.index(i):]
            cycles.append(_rotate(cyc))
            parents[min(cyc)] = None
        for j in chain:
            state[j] = 2
    return cycles


def _rotate(cyc: list[int]) -> list[int]:
    """A cycle read from its first node, following children to parents."""
    k = cyc.index(min(cyc))
    return cyc[k:] + cyc[:k]


def _label(c: Any) -> str:
    r: Recipe = c.recipe
    where = f"step {r.until}" if r.until is not None else "final"
    move = f" ⤷ renoise@{r.branches[-1].step} θ={r.branches[-1].theta:.2f}" if r.branches else ""
    value = "FAILED" if c.potential is None else f"U={c.potential:.2f}"
    return f"{where}{move} {value}" + ("" if r.branches else f" (seed {r.seed})")


def tree_lines(cands: Sequence[Any], *, best: Any = None, max_lines: int = 200) -> list[str]:
    """Text drawing of the tree of one search's candidates (objects with ``recipe`` and ``potential``)."""
    seqs = {getattr(c, "seq", i): i for i, c in enumerate(cands)}
    stored = [getattr(c, "parent", None) for c in cands]
    derived = parent_links([c.recipe for c in cands])
    # the stored link (a seq) where there is one, else the one derived from the recipes
    parents = [seqs.get(s) if s is not None else d for s, d in zip(stored, derived, strict=True)]
    cycles = break_cycles(parents)
    kids: dict[int | None, list[int]] = defaultdict(list)
    for i, p in enumerate(parents):
        kids[p].append(i)
    lines: list[str] = []

    def walk(i: int, prefix: str, last: bool) -> None:
        if len(lines) >= max_lines:
            return
        mark = " ★" if best is not None and cands[i].recipe == best.recipe else ""
        lines.append(f"{prefix}{'└─ ' if last else '├─ '}{_label(cands[i])}{mark}")
        for n, k in enumerate(kids[i]):
            walk(k, prefix + ("   " if last else "│  "), n == len(kids[i]) - 1)

    if cycles:  # a damaged or edited store: said, and every node still drawn
        seq = [getattr(c, "seq", i) for i, c in enumerate(cands)]
        shown = "; ".join(" → ".join(f"seq {seq[i]}" for i in [*cyc, cyc[0]]) for cyc in cycles[:3])
        lines.append(f"! {len(cycles)} cycle{'s' if len(cycles) > 1 else ''} in the stored parent links ({shown}"
                     f"{'; …' if len(cycles) > 3 else ''}): each drawn from its first node")
    for n, i in enumerate(kids[None]):
        walk(i, "", n == len(kids[None]) - 1)
    if len(lines) >= max_lines:
        lines.append(f"… ({len(cands)} nodes; first {max_lines} lines shown)")
    return lines
