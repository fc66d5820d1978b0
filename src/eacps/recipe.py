"""Noise recipes: small, JSON-serializable descriptions that regenerate a candidate's noise exactly.

A recipe never stores a tensor. Its root is either one seed or a *subspace* (K basis seeds and
coefficients); a chain of noise-space moves may follow. ``steps`` (the denoising-step fidelity) is
part of the recipe because it is needed to regenerate the image exactly.

A recipe is also a *path* through the denoising chain (generators with the stepping capability, see
``eacps.stepping``): ``branches`` is an ordered list of seeded moves applied to the intermediate state at a
given step (``Branch``), and ``until`` stops the trajectory after that many model calls and returns the
model's prediction of the clean image there (a preview). A final image regenerates exactly from its recipe
alone, through the same stepping code; two recipes with the same root and the same branches before step k
share their first k model calls.

Materialization of a seed is ``torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed),
dtype=dtype)``, i.e. the same numbers diffusers draws for ``generator=torch.Generator("cpu")
.manual_seed(seed)`` at batch size 1 when ``shape`` includes the leading batch dimension of 1.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where noise is drawn: reading a store needs no torch
    import torch

SEED_MAX = 2**32


def _check_seed(seed: int, what: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{what} must be an int, got {type(seed).__name__}")
    if not 0 <= seed < SEED_MAX:
        raise ValueError(f"{what} must be in [0, 2^32), got {seed}")
    return seed


def gaussian(seed: int, shape: tuple[int, ...], dtype: torch.dtype | None = None) -> torch.Tensor:
    """The standard normal draw of ``seed`` (float32 by default): exactly what diffusers' ``randn_tensor``
    gives on CPU."""
    import torch

    gen = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=dtype if dtype is not None else torch.float32)


@dataclass(frozen=True)
class PCN:
    """Preconditioned Crank–Nicolson move: ``z' = cos(theta)·z + sin(theta)·xi``, ``xi`` from ``seed``.

    It preserves the standard Gaussian (if z ~ N(0, I) then z' ~ N(0, I)), and ``cos(theta)`` is the
    correlation between parent and child noise, so small angles give truly local neighbours.
    """

    theta: float
    seed: int

    def __post_init__(self) -> None:
        _check_seed(self.seed, "pcn seed")
        if not (math.isfinite(self.theta) and 0.0 <= self.theta <= math.pi / 2):
            raise ValueError(f"pcn theta must be in [0, pi/2], got {self.theta}")

    def apply(self, z: torch.Tensor) -> torch.Tensor:
        xi = gaussian(self.seed, tuple(z.shape))
        return math.cos(self.theta) * z + math.sin(self.theta) * xi

    def to_json(self) -> dict[str, Any]:
        return {"op": "pcn", "theta": self.theta, "seed": self.seed}


MOVES: dict[str, type] = {"pcn": PCN}


@dataclass(frozen=True)
class Branch:
    """A seeded move applied to a trajectory's state after ``step`` model calls (``1 <= step < T``).

    ``renoise`` (the only op): with the generator's marginal ``x_k = a·x0 + b·eps`` at that step and the latest
    clean prediction ``x0_hat``, the implied noise ``eps_hat = (x_k - a·x0_hat)/b`` takes a pCN move,
    ``x_k' = a·x0_hat + b·(cos(theta)·eps_hat + sin(theta)·xi)`` with ``xi`` drawn from ``seed``. Small
    ``theta`` keeps the branch near its parent; ``theta = pi/2`` re-noises the prediction completely (the
    "denoise, re-noise, branch" move of search over paths). It is a seeded stochastic transition, so it
    branches deterministic (ODE) samplers too.
    """

    step: int
    theta: float
    seed: int
    op: str = "renoise"

    def __post_init__(self) -> None:
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 1:
            raise ValueError(f"branch step must be an int >= 1 (after at least one model call), got {self.step!r}")
        _check_seed(self.seed, "branch seed")
        if not (math.isfinite(self.theta) and 0.0 < self.theta <= math.pi / 2):
            raise ValueError(f"branch theta must be in (0, pi/2], got {self.theta}")
        if self.op != "renoise":
            raise ValueError(f"unknown branch op {self.op!r}; known: ['renoise']")

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "op": self.op, "theta": self.theta, "seed": self.seed}


@dataclass(frozen=True)
class Recipe:
    """How a candidate's initial noise is made. Frozen and hashable; ``key`` is its canonical JSON.

    Exactly one root: ``seed``, or ``basis`` + ``coeffs`` (the subspace
    ``z(a) = sum_i a_i z_i / ||a||_2``, which is exactly N(0, I) for any fixed non-zero ``a``).
    """

    seed: int | None = None
    basis: tuple[int, ...] = ()
    coeffs: tuple[float, ...] = ()
    moves: tuple[PCN, ...] = ()
    steps: int | None = None
    branches: tuple[Branch, ...] = ()
    until: int | None = None

    def __post_init__(self) -> None:
        if self.seed is not None:
            _check_seed(self.seed)
            if self.basis or self.coeffs:
                raise ValueError("a recipe has either a seed or a subspace (basis + coeffs), not both")
        else:
            if not self.basis:
                raise ValueError("a recipe needs a seed or a non-empty subspace basis")
            if len(self.basis) != len(self.coeffs):
                raise ValueError("subspace basis and coeffs must have the same length")
            for s in self.basis:
                _check_seed(s, "basis seed")
            norm = math.sqrt(sum(float(c) ** 2 for c in self.coeffs))
            if not (math.isfinite(norm) and norm > 0):
                raise ValueError("subspace coeffs must be finite and not all zero")
            object.__setattr__(self, "coeffs", tuple(float(c) for c in self.coeffs))
        object.__setattr__(self, "basis", tuple(self.basis))
        object.__setattr__(self, "moves", tuple(self.moves))
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int)
                                       or self.steps < 1):
            raise ValueError(f"steps must be a positive int or None, got {self.steps!r}")
        object.__setattr__(self, "branches", tuple(self.branches))
        for prev, nxt in zip(self.branches, self.branches[1:], strict=False):
            if nxt.step <= prev.step:
                raise ValueError(f"branch steps must be strictly increasing, got {prev.step} then {nxt.step}")
        if self.until is not None:
            if isinstance(self.until, bool) or not isinstance(self.until, int) or self.until < 1:
                raise ValueError(f"until must be an int >= 1 (model calls) or None, got {self.until!r}")
            if self.branches and self.branches[-1].step >= self.until:
                raise ValueError(f"a branch at step {self.branches[-1].step} is not before until={self.until}")
        total = self.steps
        if total is not None:
            self.check_schedule(total)

    def check_schedule(self, total: int) -> None:
        """Refuse branches or an ``until`` outside a schedule of ``total`` model calls (with the reason)."""
        for b in self.branches:
            if b.step >= total:
                raise ValueError(f"branch at step {b.step} is outside the schedule: it needs 1 <= step < {total}")
        if self.until is not None and self.until >= total:
            raise ValueError(f"until={self.until} is outside the schedule: a preview needs 1 <= until < {total} "
                             "(until=None finishes the trajectory)")
    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_seed(cls, seed: int, steps: int | None = None) -> Recipe:
        return cls(seed=int(seed), steps=steps)

    def pcn(self, theta: float, seed: int) -> Recipe:
        """A child of this recipe one pCN step away (on the initial noise)."""
        return replace(self, moves=(*self.moves, PCN(float(theta), int(seed))))

    def with_steps(self, steps: int | None) -> Recipe:
        return replace(self, steps=steps)

    def with_until(self, until: int | None) -> Recipe:
        """The same path stopped after ``until`` model calls (a preview), or finished (``None``)."""
        return replace(self, until=until)

    def branch(self, step: int, theta: float, seed: int) -> Recipe:
        """A child path: this path's trajectory, re-noised at ``step`` by a seeded move (see ``Branch``).
        ``until`` is cleared (the child runs to the end unless told otherwise)."""
        return replace(self, branches=(*self.branches, Branch(int(step), float(theta), int(seed))), until=None)

    def prefix_branches(self, k: int) -> tuple[Branch, ...]:
        """The branches applied before model call ``k`` (those at steps <= k)."""
        return tuple(b for b in self.branches if b.step <= k)

    def shared_calls(self, other: Recipe) -> int:
        """How many leading model calls this path and ``other`` share (same root noise, schedule and branches).

        Model call ``i`` sees every branch at steps <= i; two paths agree on call i when their branches at
        steps <= i agree. Bounded by each path's own length (``until``; ``None`` counts as unbounded here,
        the caller caps it by the schedule)."""
        if replace(self, branches=(), until=None) != replace(other, branches=(), until=None):
            return 0
        limit = min(x for x in (self.until, other.until, 1 << 30) if x is not None)
        mine, theirs = self.branches, other.branches
        n = 0
        while n < min(len(mine), len(theirs)) and mine[n] == theirs[n]:
            n += 1
        first_diff = min([b.step for b in (*mine[n:n + 1], *theirs[n:n + 1])], default=limit)
        return min(limit, first_diff)

    @property
    def root(self) -> Recipe:
        """The recipe's initial noise alone (no branches, no ``until``)."""
        return replace(self, branches=(), until=None)

    # -- properties ---------------------------------------------------------------------------
    @property
    def is_preview(self) -> bool:
        """A reduced-fidelity candidate (explicit ``steps``) or a partial trajectory (``until``): scored,
        never returned as the best."""
        return self.steps is not None or self.until is not None

    @property
    def is_path(self) -> bool:
        """Needs the stepping capability: it branches or stops part way."""
        return bool(self.branches) or self.until is not None

    @property
    def is_seed_only(self) -> bool:
        """True when the whole candidate is a plain seed draw run to the end (usable as
        ``generator=manual_seed(seed)`` in a plain pipeline call)."""
        return self.seed is not None and not self.moves and not self.branches and self.until is None

    def noise(self, shape: tuple[int, ...], dtype: torch.dtype | None = None) -> torch.Tensor:
        """The exact initial noise, on CPU. Seed-only recipes are drawn directly in ``dtype`` (float32 by
        default; bit-equal to diffusers); composite recipes are computed in float32 and cast once at the end."""
        import torch

        dtype = dtype if dtype is not None else torch.float32
        shape = tuple(int(s) for s in shape)
        if self.seed is not None and not self.moves:
            return gaussian(self.seed, shape, dtype)  # type: ignore[arg-type]
        if self.seed is not None:
            z = gaussian(self.seed, shape, torch.float32)
        else:
            norm = math.sqrt(sum(c * c for c in self.coeffs))
            z = torch.zeros(shape, dtype=torch.float32)
            for s, c in zip(self.basis, self.coeffs, strict=True):
                z += (c / norm) * gaussian(s, shape, torch.float32)
        for move in self.moves:
            z = move.apply(z)
        return z.to(dtype)

    # -- serialization ------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.seed is not None:
            d["seed"] = self.seed
        else:
            d["basis"] = list(self.basis)
            d["coeffs"] = list(self.coeffs)
        if self.moves:
            d["moves"] = [m.to_json() for m in self.moves]
        if self.steps is not None:
            d["steps"] = self.steps
        if self.branches:
            d["branches"] = [b.to_json() for b in self.branches]
        if self.until is not None:
            d["until"] = self.until
        return d

    @property
    def key(self) -> str:
        """Canonical JSON text: equal recipes have equal keys (floats round-trip exactly)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> Recipe:
        if isinstance(data, str):
            data = json.loads(data)
        unknown = set(data) - {"seed", "basis", "coeffs", "moves", "steps", "branches", "until"}
        if unknown:
            raise ValueError(f"unknown recipe fields: {sorted(unknown)}")
        moves = []
        for m in data.get("moves", []):
            m = dict(m)
            op = m.pop("op", None)
            if op not in MOVES:
                raise ValueError(f"unknown move op {op!r}; known: {sorted(MOVES)}")
            moves.append(MOVES[op](**m))
        return cls(
            seed=data.get("seed"),
            basis=tuple(data.get("basis", ())),
            coeffs=tuple(data.get("coeffs", ())),
            moves=tuple(moves),
            steps=data.get("steps"),
            branches=tuple(Branch(**b) for b in data.get("branches", ())),
            until=data.get("until"),
        )

    def __str__(self) -> str:
        return self.key
