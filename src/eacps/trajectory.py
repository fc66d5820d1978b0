"""The stepping interface's state: ``Trajectory`` (a batch of denoising states) and its moves.

A stepping generator (``eacps.Generator.supports_stepping``) returns and takes trajectories; the core moves
them (``select``, ``concat``, the ``renoise`` branch move) and ``eacps.stepping.generate_paths`` drives them.
This module depends on nothing of the generator interface or of the stepping algorithm, so both import it.

Every row carries its identity, ``origins[i]``: the recipe the row was started from (``Generator.start``'s
recipe). It travels with the state through ``select``, ``concat``, a branch move and ``advance`` (use
``Trajectory.moved``), so a generator that needs per-row facts beyond the tensors (a stochastic scheduler's
noise stream, seeded from the recipe) reads them from the recipe, never from the tensors' bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch

from eacps.recipe import Branch, Recipe, gaussian
from eacps.types import Condition, Generated


@dataclass(frozen=True)
class Trajectory:
    """A batch of denoising states at the same step: ``latents`` is x_k (after ``step`` model calls out of
    ``total``), ``x0`` the clean-latent prediction of the last model call (None at step 0), ``origins`` each
    row's identity (the recipe it started from; a branched row keeps its parent's)."""

    latents: torch.Tensor
    x0: torch.Tensor | None
    step: int
    total: int
    origins: tuple[Recipe, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.origins, tuple):
            object.__setattr__(self, "origins", tuple(self.origins))
        if len(self.origins) != int(self.latents.shape[0]):
            raise ValueError(f"a trajectory of {int(self.latents.shape[0])} rows needs one origin per row, "
                             f"got {len(self.origins)}")
        if self.x0 is not None and self.x0.shape[0] != self.latents.shape[0]:
            raise ValueError(f"x0 has {self.x0.shape[0]} rows, latents {self.latents.shape[0]}")

    def __len__(self) -> int:
        return int(self.latents.shape[0])

    def moved(self, latents: torch.Tensor, x0: torch.Tensor | None, step: int) -> Trajectory:
        """The same rows (same origins, same schedule) at a new state: what ``advance`` returns."""
        return Trajectory(latents, x0, step, self.total, self.origins)

    def select(self, idx: Sequence[int]) -> Trajectory:
        rows = list(idx)
        index = torch.as_tensor(rows, dtype=torch.long, device=self.latents.device)
        x0 = None if self.x0 is None else self.x0.index_select(0, index)
        return Trajectory(self.latents.index_select(0, index), x0, self.step, self.total,
                          tuple(self.origins[i] for i in rows))

    @staticmethod
    def concat(parts: Sequence[Trajectory]) -> Trajectory:
        if not parts:
            raise ValueError("cannot concatenate no trajectories")
        steps = {(p.step, p.total) for p in parts}
        if len(steps) != 1:
            raise ValueError(f"cannot batch trajectories at different steps: {sorted(steps)}")
        step, total = steps.pop()
        x0s = [p.x0 for p in parts]
        x0 = None if any(x is None for x in x0s) else torch.cat([x for x in x0s if x is not None])
        return Trajectory(torch.cat([p.latents for p in parts]), x0, step, total,
                          tuple(o for p in parts for o in p.origins))


class Stepping(Protocol):
    """What ``eacps.stepping`` needs of a generator that steps (``eacps.Generator`` with ``supports_stepping``)."""

    name: Any  # a class attribute on every generator

    @property
    def default_steps(self) -> int: ...

    def fingerprint(self) -> str: ...

    def start(self, recipes: Sequence[Recipe], condition: Condition, *, steps: int | None = None) -> Trajectory: ...

    def advance(self, traj: Trajectory, condition: Condition, until: int) -> Trajectory: ...

    def decode(self, latents: torch.Tensor, condition: Condition) -> list[Generated]: ...

    def marginal(self, traj: Trajectory) -> tuple[float, float]: ...


def renoise(traj: Trajectory, coeffs: tuple[float, float], moves: Sequence[Branch]) -> Trajectory:
    """Apply one ``renoise`` branch per trajectory (see ``eacps.recipe.Branch``), in float32, on CPU-drawn
    noise so the move is the same on every device. Each row keeps its origin."""
    if traj.x0 is None:
        raise ValueError("a branch needs a clean prediction: branch after at least one model call")
    a, b = coeffs
    if not (math.isfinite(a) and math.isfinite(b) and b > 0):
        raise ValueError(f"cannot branch at step {traj.step}: marginal coefficients a={a}, b={b}")
    x = traj.latents.float()
    x0 = traj.x0.float()
    eps = (x - a * x0) / b
    shape = (1, *x.shape[1:])
    xi = torch.cat([gaussian(m.seed, shape) for m in moves]).to(x.device)
    cos = torch.tensor([math.cos(m.theta) for m in moves], device=x.device).view(-1, *[1] * (x.dim() - 1))
    sin = torch.tensor([math.sin(m.theta) for m in moves], device=x.device).view(-1, *[1] * (x.dim() - 1))
    out = a * x0 + b * (cos * eps + sin * xi)
    return replace(traj, latents=out.to(traj.latents.dtype))


__all__ = ["Stepping", "Trajectory", "renoise"]
