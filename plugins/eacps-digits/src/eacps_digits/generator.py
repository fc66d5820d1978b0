"""The ``digits`` generator: class-conditional DDIM (eta = 0) sampling of 8x8 digits on CPU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field

from eacps import Condition, Generated, Generator, Params, Recipe
from eacps.trajectory import Trajectory
from eacps_digits.models import NULL_CLASS, load_unet, weights


def class_label_of(condition: Condition) -> int:
    """``condition.class_label`` as an int in 0..9, or a clear ValueError."""
    label = condition.class_label
    if label is None:
        raise ValueError(f"condition {condition.id!r}: the digits testbed needs class_label (an int in 0..9)")
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
        raise ValueError(f"condition {condition.id!r}: class_label must be an int in 0..9, got {label!r}")
    return int(label)


class DigitsParams(Params):
    steps: int = Field(15, ge=1, le=1000, description="DDIM steps when a recipe does not set its own")
    device: str = "cpu"
    guidance: float = Field(
        1.0, ge=0.0, description="classifier-free guidance scale; 1.0 = plain conditional sampling (one UNet pass)"
    )
    weights_dir: str | None = Field(None, description="weights directory; default: the weights shipped in the package")


class DigitsGenerator(Generator[DigitsParams]):
    """A tiny class-conditional diffusers ``UNet2DModel`` trained on 8x8 digits, sampled with ``DDIMScheduler``.

    eta = 0 and trailing timestep spacing: the initial noise alone determines the image. All recipes of a
    call go through one UNet call per step (two batches' worth when ``guidance != 1``). Output images are
    float32 (8, 8, 1) in [0, 1]. It can step (``eacps.stepping``): ``generate`` is start -> advance -> decode,
    path recipes (branches, previews) included (``generate_stepwise``).
    """

    name = "digits"
    Params = DigitsParams
    supports_stepping = True

    def __init__(self, params: DigitsParams | None = None) -> None:
        super().__init__(params)
        p = self.params
        self._weights = weights(p.weights_dir)
        self._device = torch.device(p.device)
        self._unet = load_unet(self._weights.root, p.device)
        self._sched_config = {**self._weights.scheduler_config(), "timestep_spacing": "trailing"}
        self._schedulers: dict[int, Any] = {}

    def check_condition(self, condition: Condition) -> None:
        class_label_of(condition)  # a clear ValueError before any compute

    def noise_shape(self, condition: Condition) -> tuple[int, ...]:
        return (1, 1, 8, 8)

    @property
    def default_steps(self) -> int:
        return self.params.steps

    def settings(self) -> dict[str, Any]:
        p = self.params
        return {
            "unet_sha256": self._weights.unet_sha256,
            "scheduler": "DDIMScheduler",
            "eta": 0.0,
            "scheduler_config": {k: v for k, v in sorted(self._sched_config.items()) if not k.startswith("_")},
            "steps": p.steps,
            "guidance": p.guidance,
        }

    def _scheduler(self, steps: int):
        from diffusers import DDIMScheduler

        if (sched := self._schedulers.get(steps)) is None:
            sched = DDIMScheduler.from_config(self._sched_config)
            sched.set_timesteps(steps)
            self._schedulers[steps] = sched  # DDIM's step() reads no per-call state: safe to share
        return sched

    # -- stepping: start / advance / decode / marginal (eacps.stepping) --------------------------------
    def start(self, recipes: Sequence[Recipe], condition: Condition, *, steps: int | None = None) -> Trajectory:
        class_label_of(condition)
        total = int(steps) if steps is not None else self.default_steps
        if total < 1:
            raise ValueError(f"steps must be >= 1, got {total}")
        x = self.noises(recipes, condition).to(self._device, torch.float32)
        return Trajectory(x * self._scheduler(total).init_noise_sigma, None, 0, total, tuple(recipes))

    @torch.inference_mode()
    def advance(self, traj: Trajectory, condition: Condition, until: int) -> Trajectory:
        if not traj.step <= until <= traj.total:
            raise ValueError(f"advance from step {traj.step} to {until} is outside 0..{traj.total}")
        label = class_label_of(condition)
        guidance = float(self.params.guidance)
        sched = self._scheduler(traj.total)
        x, x0 = traj.latents, traj.x0
        labels = torch.full((x.shape[0],), label, dtype=torch.long, device=self._device)
        if guidance != 1.0:
            labels = torch.cat([torch.full_like(labels, NULL_CLASS), labels])
        for t in sched.timesteps[traj.step:until]:
            tt = torch.full((labels.shape[0],), int(t), dtype=torch.long, device=self._device)
            inp = x if guidance == 1.0 else torch.cat([x, x])
            eps = self._unet(inp, tt, class_labels=labels).sample
            if guidance != 1.0:
                uncond, cond = eps.chunk(2)
                eps = uncond + guidance * (cond - uncond)
            out = sched.step(eps, t, x, eta=0.0)
            x, x0 = out.prev_sample, out.pred_original_sample
        return traj.moved(x, x0, until)

    def decode(self, latents: torch.Tensor, condition: Condition) -> list[Generated]:
        images = ((latents.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).to("cpu", torch.float32).numpy()
        return [Generated(np.ascontiguousarray(img)) for img in images]

    # -- preview features for value models (eacps.screening) -------------------------------------------
    def feature_source(self) -> str:
        return "digits-pixels/4x4/1"

    def preview_features(self, images: Sequence[np.ndarray], condition: Condition) -> np.ndarray:
        """The preview's pixels (its clean-image prediction), 2x2 average-pooled: 16 values in [0, 1]."""
        out = np.stack([np.asarray(im, dtype=np.float64).reshape(8, 8) for im in images]) if images else \
            np.zeros((0, 8, 8))
        return out.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(len(out), 16)

    def marginal(self, traj: Trajectory) -> tuple[float, float]:
        """DDIM (eta = 0) wrote x_k with the cumulative alpha of the previous step's ``prev_timestep``:
        x_k = sqrt(abar)·x0_hat + sqrt(1 - abar)·eps_hat exactly."""
        if not 1 <= traj.step < traj.total:
            raise ValueError(f"no branch at step {traj.step} of {traj.total}")
        sched = self._scheduler(traj.total)
        prev_t = int(sched.timesteps[traj.step - 1]) - sched.config.num_train_timesteps // sched.num_inference_steps
        abar = float(sched.alphas_cumprod[prev_t]) if prev_t >= 0 else float(sched.final_alpha_cumprod)
        return abar**0.5, (1.0 - abar) ** 0.5

    def generate(self, recipes: Sequence[Recipe], condition: Condition, *, steps: int | None = None) -> list[Generated]:
        class_label_of(condition)
        self.check(recipes)
        if not recipes:
            return []
        return self.generate_stepwise(recipes, condition, steps=steps)
