"""The trees a trajectory search grows, read back from its path recipes (no torch: usable on any store), and
``PathLedger``, which charges a search for the model calls its paths need beyond prefixes it already paid for.

Every path recipe names its ancestry (root noise, branch moves, where it stops), so the tree of a search is a
function of its recipes in the order asked: a candidate's parent is the earlier candidate of the same search
that shares the longest prefix of model calls with it (on ties, one whose path ends where theirs part, then
the latest), and a fresh trajectory is a root. The scheduler stores each candidate's link (``parent``: the
seq of its parent in the search, through ``Tree``); ``parent_links`` recomputes them from recipes alone (the same
rule; stores from before the column) and ``tree_lines`` draws them as text for ``eacps show --tree``.
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
    """What a search has paid for, as a set of paths: a new path is charged the model calls beyond the longest
    prefix it shares with any path already charged (a shared prefix is charged once)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._paid: dict[Recipe, list[Recipe]] = {}  # root -> paths charged

    def charge(self, recipe: Recipe) -> int:
        """Model calls to charge for ``recipe`` (and remember it as paid)."""
        stop = stop_of(recipe, recipe.steps or self.total)
        root = recipe.root.with_steps(recipe.steps)
        paths = self._paid.setdefault(root, [])
        shared = max((min(recipe.shared_calls(p), stop) for p in paths), default=0)
        paths.append(recipe)
        return stop - shared

    def peek(self, recipe: Recipe) -> int:
        """What ``charge`` would return, without remembering the path."""
        stop = stop_of(recipe, recipe.steps or self.total)
        paths = self._paid.get(recipe.root.with_steps(recipe.steps), [])
        return stop - max((min(recipe.shared_calls(p), stop) for p in paths), default=0)


def charged_steps(recipes: Sequence[Recipe], total: int) -> list[int]:
    """Each recipe's charged denoising steps, in ask order (what ``PathLedger`` charged the search)."""
    ledger = PathLedger(total)
    return [ledger.charge(r) for r in recipes]


class Tree:
    """Parent links of a search's recipes, added in ask order (the scheduler stores them with each candidate)."""

    def __init__(self) -> None:
        self.recipes: list[Recipe] = []
        self._by_root: dict[Recipe, list[int]] = defaultdict(list)

    def add(self, recipes: Sequence[Recipe]) -> list[int | None]:
        """The parent index (ask order, i.e. seq) of each new recipe, or None for a fresh trajectory."""
        out = []
        for r in recipes:
            best, key = None, (0, False, -1)
            for j in self._by_root[r.root]:
                n = r.shared_calls(self.recipes[j])
                # the longest shared prefix; among equals a true ancestor (a path that ends where they part),
                # then the latest
                k = (n, n == self.recipes[j].until, j)
                if n > 0 and k > key:
                    best, key = j, k
            out.append(best)
            self._by_root[r.root].append(len(self.recipes))
            self.recipes.append(r)
        return out


def parent_links(recipes: Sequence[Recipe]) -> list[int | None]:
    """For each recipe (in ask order) the index of its parent, or None for a fresh trajectory."""
    return Tree().add(recipes)


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
