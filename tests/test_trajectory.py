"""``eacps.trajectory``: each row's origin travels with its state through select, concat, the branch move and
``moved``; a trajectory without one origin per row is refused; ``generate_paths`` refuses an ``advance`` that drops
or reorders them."""

from __future__ import annotations

import pytest
import torch
import toy

from eacps.recipe import Branch, Recipe
from eacps.stepping import StateCache, generate_paths
from eacps.trajectory import Trajectory, renoise
from eacps.types import Condition

R = [Recipe.from_seed(s) for s in (1, 2, 3)]


def batch() -> Trajectory:
    x = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 2, 2).clone()
    return Trajectory(x, x * 10, 2, 5, tuple(R))


def test_origins_follow_rows_through_select_concat_and_moved():
    t = batch()
    sel = t.select([2, 0])
    assert sel.origins == (R[2], R[0]) and torch.equal(sel.latents[:, 0, 0, 0], torch.tensor([2.0, 0.0]))
    both = Trajectory.concat([sel, t.select([1])])
    assert both.origins == (R[2], R[0], R[1]) and torch.equal(both.x0[:, 0, 0, 0], torch.tensor([20.0, 0.0, 10.0]))
    moved = both.moved(both.latents + 1, None, 4)
    assert moved.origins == both.origins and moved.step == 4 and moved.total == 5


def test_a_branch_keeps_each_rows_origin_and_changes_its_state():
    t = batch()
    out = renoise(t, (0.5, 0.5), [Branch(2, 0.7, s) for s in (4, 5, 6)])
    assert out.origins == t.origins and not torch.equal(out.latents, t.latents)


def test_one_origin_per_row_is_required():
    x = torch.zeros(2, 1)
    with pytest.raises(ValueError, match="needs one origin per row, got 1"):
        Trajectory(x, None, 0, 3, (R[0],))
    with pytest.raises(ValueError, match="different steps"):
        Trajectory.concat([Trajectory(x[:1], None, 0, 3, (R[0],)), Trajectory(x[:1], None, 1, 3, (R[1],))])


class _DropsOrigins(toy.ToyGenerator):
    def advance(self, traj, condition, until):
        out = super().advance(traj, condition, until)
        return Trajectory(out.latents, out.x0, out.step, out.total, tuple(reversed(out.origins)))


def test_generate_paths_refuses_an_advance_that_loses_the_rows_origins():
    cond = Condition("c")
    good = toy.ToyGenerator(toy.ToyGeneratorParams(stepping=True))
    assert len(generate_paths(good, R[:2], cond, cache=StateCache())) == 2
    bad = _DropsOrigins(toy.ToyGeneratorParams(stepping=True))
    with pytest.raises(RuntimeError, match="keep each row's origin"):
        generate_paths(bad, R[:2], cond, cache=StateCache())
