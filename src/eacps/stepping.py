"""Generation as a resumable process: trajectories that start, advance, preview, branch and finish.

A generator with the stepping capability (``Generator.supports_stepping``) implements four small methods:

* ``start(recipes, condition, steps=None) -> Trajectory``: the initial states (step 0), exactly the noise
  ``generate`` would start from;
* ``advance(traj, condition, until) -> Trajectory``: model calls ``traj.step .. until - 1`` for the whole batch,
  keeping in ``traj.x0`` the model's prediction of the clean latent from the last call;
* ``decode(latents, condition) -> list[Generated]``: latents to images (previews decode ``traj.x0``, finals
  ``traj.latents`` at step ``T``);
* ``marginal(traj) -> (a, b)``: the scheduler's marginal ``x_k = a·x0 + b·eps`` at the current step, with
  which the core applies branch moves generically (``renoise``), so a generator never implements branching.

``Trajectory`` and ``renoise`` live in the interface module ``eacps.trajectory`` (re-exported here); every row
carries its identity (``Trajectory.origins``, the recipe it started from) through select, concat, branch and
advance, so a generator never needs to recognise a state by its tensors.

``generate_paths`` runs path recipes (``Recipe.branches`` / ``Recipe.until``) through these methods, batching
every trajectory that sits at the same step, and reusing states already computed in a bounded
``StateCache`` (a shared prefix is computed once). ``eacps.trees.PathLedger`` charges a search for the model
calls its paths need beyond the prefixes it already paid for, whatever happens to be cached: charged cost
depends only on what the search asked, so it is the same on a resumed run.

A stepping generator's ``generate`` computes path recipes exactly as ``generate_paths`` does (through
``Generator.generate_stepwise``, or ``route_paths`` when it has its own call for plain recipes), so
``generator.generate([result.best.recipe], condition)`` regenerates the winner of any strategy; a generator that
cannot step refuses them in ``check``.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from eacps.recipe import Branch, Recipe
from eacps.trajectory import Stepping, Trajectory, renoise
from eacps.trees import stop_of
from eacps.types import Condition, Generated


def _node(scope: str, recipe: Recipe, k: int, *, before_branch: bool = False) -> str:
    """Cache key of ``recipe``'s state after ``k`` model calls: every branch at steps < k applied, and the one
    at step k too unless ``before_branch``."""
    done = [b for b in recipe.branches if b.step < k or (b.step == k and not before_branch)]
    return f"{scope}|{recipe.root.key}|{k}|" + json.dumps([b.to_json() for b in done], sort_keys=True)


class StateCache:
    """A bounded LRU of single-trajectory states, keyed by condition and path prefix (root noise, schedule,
    branches, step). A state is kept at every branch point (before and after the move) and wherever a path
    stops, so a later path continuing or branching from there starts from it instead of step 0."""

    def __init__(self, max_states: int = 1024) -> None:
        self.max_states = max_states
        self._states: OrderedDict[str, Trajectory] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def put(self, key: str, state: Trajectory) -> None:
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > self.max_states:
            self._states.popitem(last=False)

    def get(self, key: str) -> Trajectory | None:
        hit = self._states.get(key)
        if hit is not None:
            self._states.move_to_end(key)
        return hit

    def deepest(self, scope: str, recipe: Recipe, limit: int) -> tuple[Trajectory, bool] | None:
        """The cached state of ``recipe``'s path at the largest step <= ``limit``, and whether the branch at
        that step (if any) is still to be applied."""
        branch_steps = {b.step for b in recipe.branches}
        for k in range(limit, 0, -1):
            if (hit := self.get(_node(scope, recipe, k))) is not None:
                return hit, False
            if k in branch_steps and (hit := self.get(_node(scope, recipe, k, before_branch=True))) is not None:
                return hit, True
        return None


@dataclass
class _Lane:
    """One recipe being computed: its path, where it stops, its current single state, and whether the branch
    at the current step has been applied."""

    recipe: Recipe
    stop: int
    state: Trajectory | None = None
    pending: bool = False

    @property
    def step(self) -> int:
        return self.state.step  # type: ignore[union-attr]

    def next_event(self) -> int:
        """The next step at which this lane pauses: a branch point or its stop."""
        return min([b.step for b in self.recipe.branches if b.step > self.step] + [self.stop])

    def move_at(self, k: int) -> Branch | None:
        return next((b for b in self.recipe.branches if b.step == k), None)


def scope_of(generator: Stepping, condition: Condition) -> str:
    """What a cached state depends on besides its path: the generator's settings and the condition."""
    text = json.dumps([generator.fingerprint(), condition.describe()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def generate_paths(generator: Stepping, recipes: Sequence[Recipe], condition: Condition, *,
                   steps: int | None = None, cache: StateCache | None = None) -> list[Generated]:
    """Compute path recipes with a stepping generator: previews for recipes with ``until``, final images for
    the others. Trajectories at the same step advance together; prefixes found in ``cache`` are not recomputed.
    """
    cache = cache if cache is not None else StateCache()
    total = int(steps) if steps is not None else generator.default_steps
    for r in recipes:
        r.check_schedule(total)
    scope = scope_of(generator, condition)
    lanes = [_Lane(r, stop_of(r, total)) for r in recipes]
    fresh = []
    for i, lane in enumerate(lanes):
        hit = cache.deepest(scope, lane.recipe, lane.stop)
        if hit is None:
            fresh.append(i)
        else:
            lane.state, lane.pending = hit
    if fresh:
        start = generator.start([lanes[i].recipe.root for i in fresh], condition, steps=total)
        for j, i in enumerate(fresh):
            lanes[i].state = start.select([j])
    while True:
        _branch_due(generator, lanes, scope, cache)
        active = [ln for ln in lanes if ln.step < ln.stop]
        if not active:
            break
        _advance_lowest(generator, active, condition, scope, cache)
    return _decode(generator, lanes, condition)


def route_paths(generator: Stepping, recipes: Sequence[Recipe], condition: Condition,
                plain: Callable[[list[Recipe]], Sequence[Generated]], *, steps: int | None = None,
                cache: StateCache | None = None) -> list[Generated]:
    """Outputs in order: plain recipes through ``plain`` (a generator's own whole call, e.g. a pipeline), path
    recipes through ``generate_paths``. What a stepping generator's ``generate`` calls so that it follows every
    recipe whole; ``plain`` is called once, with the plain recipes, and only when there are some."""
    paths = [i for i, r in enumerate(recipes) if r.is_path]
    if not paths:
        return list(plain(list(recipes)))
    out: list[Generated | None] = [None] * len(recipes)
    computed = generate_paths(generator, [recipes[i] for i in paths], condition, steps=steps, cache=cache)
    rest = [i for i, r in enumerate(recipes) if not r.is_path]
    if rest:
        for i, g in zip(rest, plain([recipes[i] for i in rest]), strict=True):
            out[i] = g
    for i, g in zip(paths, computed, strict=True):
        out[i] = g
    return out  # type: ignore[return-value]


def _branch_due(generator: Stepping, lanes: list[_Lane], scope: str, cache: StateCache) -> None:
    """Apply the branch moves due at each lane's current step (batched per step)."""
    due = [ln for ln in lanes if ln.pending]
    for k in sorted({ln.step for ln in due}):
        group = [ln for ln in due if ln.step == k]
        states = Trajectory.concat([ln.state for ln in group])  # type: ignore[misc]
        sub = renoise(states, generator.marginal(states), [ln.move_at(k) for ln in group])  # type: ignore[misc]
        for j, ln in enumerate(group):
            ln.state, ln.pending = sub.select([j]), False
            cache.put(_node(scope, ln.recipe, k), ln.state)


def _advance_lowest(generator: Stepping, active: list[_Lane], condition: Condition, scope: str,
                    cache: StateCache) -> None:
    """Advance the lanes at the lowest step together, to the next step where any of them (or another lane
    waiting further on, which they may then join) must pause."""
    k = min(ln.step for ln in active)
    group = [ln for ln in active if ln.step == k]
    target = min([ln.next_event() for ln in group] + [ln.step for ln in active if ln.step > k])
    states = Trajectory.concat([ln.state for ln in group])  # type: ignore[misc]
    batch = generator.advance(states, condition, target)
    if batch.step != target or len(batch) != len(group):
        raise RuntimeError(f"generator {generator.name!r}: advance of {len(group)} states to step {target} "
                           f"returned {len(batch)} at step {batch.step}")
    if batch.origins != states.origins:
        raise RuntimeError(f"generator {generator.name!r}: advance must keep each row's origin (return "
                           "traj.moved(latents, x0, until))")
    for j, ln in enumerate(group):
        ln.state = batch.select([j])
        ln.pending = ln.move_at(target) is not None
        if ln.pending or target == ln.stop:  # a branch point or a stop: a state worth keeping
            cache.put(_node(scope, ln.recipe, target, before_branch=True), ln.state)


def _decode(generator: Stepping, lanes: list[_Lane], condition: Condition) -> list[Generated]:
    """Previews decode the clean prediction; finished trajectories their final latents (one call each)."""
    out: list[Generated | None] = [None] * len(lanes)
    for final in (False, True):
        idx = [i for i, ln in enumerate(lanes) if (ln.recipe.until is None) == final]
        if not idx:
            continue
        if final:
            latents = torch.cat([lanes[i].state.latents for i in idx])  # type: ignore[union-attr]
        else:
            latents = torch.cat([lanes[i].state.x0 for i in idx])  # type: ignore[union-attr,misc]
        for i, g in zip(idx, generator.decode(latents, condition), strict=True):
            out[i] = g
    return out  # type: ignore[return-value]
