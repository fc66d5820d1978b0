"""Noise recipes: small, JSON-serializable descriptions that regenerate a candidate's noise exactly.

A recipe never stores a tensor. Its root is either one seed or a *subspace* (K basis seeds and
coefficients); a chain of noise-space moves may follow. ``steps`` (the denoising-step fidelity) is
part of the recipe because it is needed to regenerate the image exactly.

Materialization of a seed is ``torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed),
dtype=dtype)``, i.e. the same numbers diffusers draws for ``generator=torch.Generator("cpu")
.manual_seed(seed)`` at batch size 1 when ``shape`` includes the leading batch dimension of 1.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import torch

SEED_MAX = 2**32


def _check_seed(seed: int, what: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{what} must be an int, got {type(seed).__name__}")
    if not 0 <= seed < SEED_MAX:
        raise ValueError(f"{what} must be in [0, 2^32), got {seed}")
    return seed


def gaussian(seed: int, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The standard normal draw of ``seed``: exactly what diffusers' ``randn_tensor`` gives on CPU."""
    gen = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=dtype)


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
        xi = gaussian(self.seed, tuple(z.shape), torch.float32)
        return math.cos(self.theta) * z + math.sin(self.theta) * xi

    def to_json(self) -> dict[str, Any]:
        return {"op": "pcn", "theta": self.theta, "seed": self.seed}


MOVES: dict[str, type] = {"pcn": PCN}


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
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise ValueError(f"steps must be a positive int or None, got {self.steps!r}")

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_seed(cls, seed: int, steps: int | None = None) -> Recipe:
        return cls(seed=int(seed), steps=steps)

    def pcn(self, theta: float, seed: int) -> Recipe:
        """A child of this recipe one pCN step away."""
        return Recipe(self.seed, self.basis, self.coeffs, (*self.moves, PCN(float(theta), int(seed))), self.steps)

    def with_steps(self, steps: int | None) -> Recipe:
        return Recipe(self.seed, self.basis, self.coeffs, self.moves, steps)

    # -- properties ---------------------------------------------------------------------------
    @property
    def is_preview(self) -> bool:
        """A reduced-fidelity candidate (explicit ``steps``): scored, never returned as the best."""
        return self.steps is not None

    @property
    def is_seed_only(self) -> bool:
        """True when the noise is a plain seed draw (usable as ``generator=manual_seed(seed)``)."""
        return self.seed is not None and not self.moves

    # -- materialization ----------------------------------------------------------------------
    def noise(self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The exact initial noise, on CPU. Seed-only recipes are drawn directly in ``dtype`` (bit-equal
        to diffusers); composite recipes are computed in float32 and cast once at the end."""
        shape = tuple(int(s) for s in shape)
        if self.is_seed_only:
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
        return d

    @property
    def key(self) -> str:
        """Canonical JSON text: equal recipes have equal keys (floats round-trip exactly)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> Recipe:
        if isinstance(data, str):
            data = json.loads(data)
        unknown = set(data) - {"seed", "basis", "coeffs", "moves", "steps"}
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
        )

    def __str__(self) -> str:
        return self.key
