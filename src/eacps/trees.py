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


class PathLedger:
    """What a search has asked, as a set of paths (in ask order): a new path is charged the model calls beyond the
    longest prefix it shares with any path already charged (a shared prefix is charged once), and its parent is
    that path (on ties, one whose path ends where theirs part, then the latest). ``total`` is the full schedule T
    (needed to charge, not to link)."""

    def __init__(self, total: int | None = None) -> None:
        self.total = total
        self.recipes: list[Recipe] = []
        self.parents: list[int | None] = []  # per path, in ask order: its parent's index (= seq), or None
        self.charges: list[int] = []  # per path charged (``charge``), in ask order: the model calls charged
        self._by_root: dict[Recipe, list[int]] = defaultdict(list)

    def _nearest(self, recipe: Recipe) -> tuple[int | None, int]:
        """The parent of ``recipe`` among the paths so far, and the model calls they share (0: none)."""
        best, key = None, (0, False, -1)
        for j in self._by_root[recipe.root]:
            n = recipe.shared_calls(self.recipes[j])
            k = (n, n == self.recipes[j].until, j)  # longest prefix, then a true ancestor, then the latest
            if n > 0 and k > key:
                best, key = j, k
        return best, key[0]

    def _cost(self, recipe: Recipe, shared: int) -> int:
        if self.total is None and recipe.until is None and recipe.steps is None:
            raise ValueError("PathLedger(total=T) is needed to charge a path that runs to the end")
        stop = stop_of(recipe, recipe.steps or self.total)  # type: ignore[arg-type]
        return stop - min(shared, stop)

    def link(self, recipe: Recipe) -> int | None:
        """Record ``recipe`` as asked; its parent's index (or None)."""
        parent, _ = self._nearest(recipe)
        self._record(recipe, parent)
        return parent

    def charge(self, recipe: Recipe) -> int:
        """Record ``recipe`` as asked; the model calls to charge for it (also kept in ``charges``)."""
        parent, shared = self._nearest(recipe)
        cost = self._cost(recipe, shared)
        self._record(recipe, parent)
        self.charges.append(cost)
        return cost

    def peek(self, recipe: Recipe) -> int:
        """What ``charge`` would return, without recording the path."""
        return self._cost(recipe, self._nearest(recipe)[1])

    def _record(self, recipe: Recipe, parent: int | None) -> None:
        self._by_root[recipe.root].append(len(self.recipes))
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

    for n, i in enumerate(kids[None]):
        walk(i, "", n == len(kids[None]) - 1)
    if len(lines) >= max_lines:
        lines.append(f"… ({len(cands)} nodes; first {max_lines} lines shown)")
    return lines
