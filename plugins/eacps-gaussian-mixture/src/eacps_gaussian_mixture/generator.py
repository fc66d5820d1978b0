"""The ``gaussian-mixture`` generator: exact class-conditional sampling of the mixture (DDIM or rectified flow).

Both samplers are one update with the exact clean prediction x0_hat = E[x0 | x_t] (``Mixture.denoise``) and the
implied noise eps_hat = (x_t - a_t·x0_hat) / b_t:  x_s = a_s·x0_hat + b_s·eps_hat, from t = 1 to t = 0 in ``steps``
equal steps of t. ``ddim`` is DDIM (eta = 0) on the variance-preserving cosine schedule a = cos(pi t / 2),
b = sin(pi t / 2); ``flow`` is the Euler sampler of rectified flow, a = 1 - t, b = t (its Euler step is exactly
this update). Both start exactly from the initial noise (a = 0 at t = 1). With ``guidance`` w the clean
prediction is uncond + w·(cond - uncond) (the exact unconditional and conditional denoisers; w = 1: conditional).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from eacps import Condition, Generated, Generator, Recipe
from eacps.trajectory import Trajectory
from eacps_gaussian_mixture.mixture import (
    Mixture,
    MixtureParams,
    component_of,
    decode_latents,
    encode,
    mixture_of,
    mixture_spec,
)


class GaussianMixtureParams(MixtureParams):
    steps: int = Field(50, ge=1, le=1000, description="sampler steps when a recipe does not set its own")
    sampler: Literal["ddim", "flow"] = Field("ddim", description="ddim: DDIM (eta = 0), VP cosine schedule; "
                                             "flow: rectified flow, Euler")
    guidance: float = Field(1.0, ge=0.0, le=20.0, description="guidance scale; 1.0 = the exact conditional model")
    device: str = Field("cpu", description="torch device of the sampler (cpu, cuda, cuda:N, mps)")


class GaussianMixtureGenerator(Generator[GaussianMixtureParams]):
    """A perfect diffusion model of a Gaussian mixture (``eacps_gaussian_mixture.mixture``): no weights, no
    training, exact denoiser. Batched, float64, steps (``eacps.stepping``); images are the 16-bit encoding of the
    final latent (``mixture.encode``), which the testbed's scorers read back exactly."""

    name = "gaussian-mixture"
    Params = GaussianMixtureParams
    supports_stepping = True

    def __init__(self, params: GaussianMixtureParams | None = None) -> None:
        super().__init__(params)
        p = self.params
        self.mixture: Mixture = mixture_of(p)
        self._device = torch.device(p.device)

    def check_condition(self, condition: Condition) -> None:
        component_of(condition, self.mixture.k)

    def noise_shape(self, condition: Condition) -> tuple[int, ...]:
        return (1, *self.mixture.shape)

    @property
    def default_steps(self) -> int:
        return self.params.steps

    def settings(self) -> dict[str, Any]:
        p = self.params
        return {"mixture": mixture_spec(p), "steps": p.steps, "sampler": p.sampler, "guidance": p.guidance,
                "dtype": "float64"}

    # -- the schedule -------------------------------------------------------------------------------
    def coefficients(self, step: int, total: int) -> tuple[float, float]:
        """(a, b) of the marginal x = a·x0 + b·eps after ``step`` of ``total`` sampler steps (t = 1 - step/total)."""
        t = 1.0 - step / total
        if self.params.sampler == "flow":
            return 1.0 - t, t
        return math.cos(math.pi * t / 2), math.sin(math.pi * t / 2)

    def clean_prediction(self, x: torch.Tensor, a: float, b: float, label: int) -> torch.Tensor:
        """The (guided) exact E[x0 | x_t = x] for rows of x (B, D)."""
        w = float(self.params.guidance)
        cond = self.mixture.denoise(x, a, b, label)
        if w == 1.0:
            return cond
        uncond = self.mixture.denoise(x, a, b, None)
        return uncond + w * (cond - uncond)

    def sample_flat(self, x: torch.Tensor, label: int, start: int, until: int, total: int
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sampler steps ``start .. until - 1`` on flat states (B, D): (x_until, the last clean prediction).
        Differentiable (``optimum`` runs it under autograd)."""
        x0 = None
        for i in range(start, until):
            a, b = self.coefficients(i, total)
            a2, b2 = self.coefficients(i + 1, total)
            x0 = self.clean_prediction(x, a, b, label)
            eps = (x - a * x0) / b
            x = a2 * x0 + b2 * eps
        return x, x0

    # -- stepping: start / advance / decode / marginal (eacps.stepping) ---------------------------------
    def start(self, recipes: Sequence[Recipe], condition: Condition, *, steps: int | None = None) -> Trajectory:
        component_of(condition, self.mixture.k)
        total = int(steps) if steps is not None else self.default_steps
        if total < 1:
            raise ValueError(f"steps must be >= 1, got {total}")
        x = self.noises(recipes, condition).to(self._device, torch.float64)
        return Trajectory(x, None, 0, total, tuple(recipes))

    @torch.inference_mode()
    def advance(self, traj: Trajectory, condition: Condition, until: int) -> Trajectory:
        if not traj.step <= until <= traj.total:
            raise ValueError(f"advance from step {traj.step} to {until} is outside 0..{traj.total}")
        label = component_of(condition, self.mixture.k)
        shape = traj.latents.shape
        x, x0 = self.sample_flat(traj.latents.reshape(shape[0], -1).double(), label, traj.step, until, traj.total)
        if x0 is None:
            return traj
        return traj.moved(x.reshape(shape), x0.reshape(shape), until)

    def decode(self, latents: torch.Tensor, condition: Condition) -> list[Generated]:
        images = encode(latents, self.mixture).numpy()
        return [Generated(np.ascontiguousarray(img)) for img in images]

    # -- preview features for value models (eacps.screening) -------------------------------------------
    def feature_source(self) -> str:
        return "gaussian-mixture-x0/pool2x2/1"

    def preview_features(self, images: Sequence[np.ndarray], condition: Condition) -> np.ndarray:
        """The preview's latent (the clean prediction x0, read back exactly from its image), each channel averaged
        over a 2x2 grid of blocks: C·4 values (a dimension of 1 is not split)."""
        c, h, w = self.mixture.shape
        x = decode_latents(images, self.mixture).numpy().reshape(-1, c, h, w)
        gh, gw = min(2, h), min(2, w)
        rows = np.array_split(np.arange(h), gh)
        cols = np.array_split(np.arange(w), gw)
        blocks = [x[:, :, r][:, :, :, q].mean(axis=(2, 3)) for r in rows for q in cols]  # each (B, C)
        return np.stack(blocks, axis=2).reshape(len(x), c * gh * gw)

    def marginal(self, traj: Trajectory) -> tuple[float, float]:
        """After k steps the state is x_k = a_k·x0_hat + b_k·eps_hat exactly, (a_k, b_k) at t = 1 - k/T."""
        if not 1 <= traj.step < traj.total:
            raise ValueError(f"no branch at step {traj.step} of {traj.total}")
        return self.coefficients(traj.step, traj.total)

    def generate(self, recipes: Sequence[Recipe], condition: Condition, *, steps: int | None = None) -> list[Generated]:
        component_of(condition, self.mixture.k)
        self.check(recipes)
        if not recipes:
            return []
        return self.generate_stepwise(recipes, condition, steps=steps)

    # -- the known optimum (eacps_gaussian_mixture.optimum) ---------------------------------------------
    def optimum(self, condition: Condition, potential: Any) -> float | None:
        """The highest ``potential`` reachable for ``condition`` (see ``eacps_gaussian_mixture.optimum``), or
        None when the potential has a criterion this testbed cannot differentiate."""
        from eacps_gaussian_mixture.optimum import optimum

        return optimum(self, condition, potential)
