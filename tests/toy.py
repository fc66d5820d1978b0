"""A fast numpy-only plugin for core tests: a 'toy' generator and scorers, registered like any plugin."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from eacps import Condition, Generated, Generator, Params, Recipe, Scorer, hookimpl

#: the stepping toy's data mean (its images are sigmoid(MU + noise·T/10))
MU = torch.linspace(-1.0, 1.0, 16).reshape(1, 1, 4, 4)


class ToyGeneratorParams(Params):
    steps: int = Field(10, ge=1)
    sleep: float = Field(0.0, ge=0, description="seconds per batch (for kill/resume tests)")
    black_below: float | None = Field(None, description="images whose noise mean is below this are all black")
    fail_all: bool = False
    stepping: bool = Field(False, description="offer the stepping capability (start/advance/decode/marginal)")
    log: str | None = Field(None, description="append the key of every generated recipe to this file")
    pid_file: str | None = Field(None, description="write the generating process's pid here at each batch start")
    shift: bool = Field(False, description="noise x condition.extra['scale'] + extra['offset'] (conditions of "
                        "different difficulty, for allocation tests); stepping: the data mean is MU + extra['offset']")


class ToyGenerator(Generator):
    """image = sigmoid(noise * steps / 10): deterministic, 4x4x1, nearby noises give nearby images. With
    ``stepping = true`` it is a real (analytic) sampler, image = sigmoid(MU + noise * steps / 10) for a plain path."""

    name = "toy"
    Params = ToyGeneratorParams

    def __init__(self, params=None):
        super().__init__(params)
        self.calls = 0
        self.generated = 0

    def noise_shape(self, condition: Condition) -> tuple[int, ...]:
        return (1, 1, 4, 4)

    @property
    def default_steps(self) -> int:
        return self.params.steps

    def settings(self):
        return self.params.model_dump(exclude={"log", "sleep", "pid_file"})

    # stepping (with ``stepping = true``): an exact sampler for the data x0 = MU + s·eps (s = T/10, MU a fixed
    # pattern). Step k of T has the marginal x_k = a_k·x0 + b_k·eps with a_k = k/T, b_k = 1 - k/T; the model call at
    # step k predicts z = (x_k - a_k·MU)/(a_k·s + b_k), then x0 = MU + s·z, eps = z, and moves to
    # x_{k+1} = a_{k+1}·x0 + b_{k+1}·eps (DDIM): a plain path ends at MU + s·noise; a branch mixes other noise in.
    supports_stepping = True  # as configured: ``stepping_problem`` says whether this instance steps

    def stepping_problem(self):
        return None if self.params.stepping else "generator 'toy' has no stepping capability (params.stepping)"

    @staticmethod
    def coefficients(k: int, total: int) -> tuple[float, float]:
        return k / total, 1.0 - k / total

    def start(self, recipes, condition, *, steps=None):
        from eacps.trajectory import Trajectory

        return Trajectory(self.noises(recipes, condition), None, 0, steps or self.default_steps, tuple(recipes))

    def model_call(self, x, k: int, total: int, mu: torch.Tensor = MU):
        """One denoising step from x_k: (x_{k+1}, the clean prediction x0)."""
        s = total / 10.0
        a, b = self.coefficients(k, total)
        z = (x - a * mu) / (a * s + b)
        x0 = mu + s * z
        a1, b1 = self.coefficients(k + 1, total)
        return a1 * x0 + b1 * z, x0

    def data_mean(self, condition: Condition) -> torch.Tensor:
        """MU, moved by the condition's ``extra['offset']`` with ``shift = true`` (a condition-dependent model)."""
        return MU + float(condition.extra.get("offset", 0.0)) if self.params.shift else MU

    def advance(self, traj, condition, until):
        self.calls += 1
        x, x0, mu = traj.latents, traj.x0, self.data_mean(condition)
        for k in range(traj.step, until):
            x, x0 = self.model_call(x, k, traj.total, mu)
        return traj.moved(x, x0, until)

    def decode(self, latents, condition):
        self.generated += len(latents)
        return [Generated(np.transpose(torch.sigmoid(x).numpy(), (1, 2, 0)).astype(np.float32)) for x in latents]

    def marginal(self, traj):
        return self.coefficients(traj.step, traj.total)

    def generate(self, recipes: Sequence[Recipe], condition: Condition, *, steps: int | None = None):
        self.calls += 1
        if self.params.pid_file:
            import os

            tmp = f"{self.params.pid_file}.{os.getpid()}"
            with open(tmp, "w") as f:
                f.write(str(os.getpid()))
            os.replace(tmp, self.params.pid_file)
        if self.params.fail_all:
            raise RuntimeError("toy generator exploded")
        if self.params.sleep:
            time.sleep(self.params.sleep)
        self.check(recipes)
        z = self.noises([r.root for r in recipes], condition)
        if self.params.shift:
            z = z * float(condition.extra.get("scale", 1.0)) + float(condition.extra.get("offset", 0.0))
        steps = steps or self.default_steps
        if self.params.stepping:  # path recipes included
            out = self.generate_stepwise(recipes, condition, steps=steps)
        else:
            out = [Generated(np.transpose(img, (1, 2, 0)).astype(np.float32))
                   for img in torch.sigmoid(z * steps / 10.0).numpy()]
            self.generated += len(recipes)
        for i, g in enumerate(out):
            if self.params.black_below is not None and float(z[i].mean()) < self.params.black_below:
                g.image = np.zeros_like(g.image)
        if self.params.log:
            with open(self.params.log, "a") as f:
                f.writelines(f"{condition.id} {r.key}\n" for r in recipes)
        return out


class ToyScoreParams(Params):
    pixel: int = Field(0, ge=0, lt=16)


class ToyScorer(Scorer):
    """10 x the brightness of one pixel: a potential with a real tail over seeds."""

    name = "toy-pixel"
    Params = ToyScoreParams

    def score(self, images, condition):
        return [10.0 * float(img.reshape(-1)[self.params.pixel]) for img in images]


class ToyMeanScorer(Scorer):
    name = "toy-mean"

    def score(self, images, condition):
        return [10.0 * float(np.mean(img)) for img in images]


class BadParams(Params):
    value: str = "nan"
    every: int = Field(3, ge=1, description="misbehave on images whose first pixel bucket hits this")


class BadScorer(Scorer):
    """Returns a bad value for about 1 in ``every`` images (chosen by image content), else 5.0."""

    name = "toy-bad"
    Params = BadParams
    VALUES: ClassVar[dict] = {
        "nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"), "none": None, "string": "eight",
        "fraction": "8/10", "eleven": 11.0, "negative": -1.0, "exception": ValueError("judge refused")}

    def score(self, images, condition):
        out = []
        for img in images:
            bad = round(float(img.reshape(-1)[1]) * 1000) % self.params.every == 0
            if bad and self.params.value == "raise":
                raise RuntimeError("scorer crashed")
            out.append(self.VALUES[self.params.value] if bad else 5.0)
        return out


class NeedsPromptScorer(Scorer):
    name = "toy-needs-prompt"
    requires = ("prompt",)

    def score(self, images, condition):
        return [1.0 for _ in images]


@hookimpl
def register_generators(register):
    register(ToyGenerator)


@hookimpl
def register_scorers(register):
    register(ToyScorer)
    register(ToyMeanScorer)
    register(BadScorer)
    register(NeedsPromptScorer)


def toy_tasks(n: int, seed: int = 0) -> list[Condition]:
    return [Condition(f"toy{seed}-{i}", prompt=f"toy task {i}") for i in range(n)]


@hookimpl
def register_task_sets(register):
    register(toy_tasks, name="toy")
