"""Scorers of the gaussian-mixture testbed, all batched, all in [0, 10], computed on the latent an image encodes.

* ``gm-consistency`` = 10 · p(class_label | x): the posterior probability of the asked component under the
  mixture (the write-up's consistency: does the image show what was asked).
* ``gm-realism``     = 10 · Phi(sharpness · (z - threshold)), z = (log p(x) - m) / s: the log-density under the
  data, standardized by its mean m and std s over exact data samples (with the defaults sharpness 1 and threshold
  0, a typical sample scores about 5, one std more likely 8.4).
* ``gm-identity``    = 10 · Phi(sharpness · (z - threshold)), z = -(d^2 - E d^2) / sd(d^2): closeness to the
  condition's reference point r = mu_c + s_c·g (g drawn from ``extra["reference_seed"]``), d^2 = ||(x - r) / s_c||^2,
  standardized by its exact mean D + ||g||^2 and std sqrt(2D + 4||g||^2) over samples of component c (typical: 5;
  x = r: 10).

Every scorer takes the mixture's fields (``MixtureParams``) and must be given the generator's: an image of
another mixture is refused (FAILED with the reason). ``value(x, condition)`` is the differentiable torch
version on flat latents (B, D), which ``eacps_gaussian_mixture.optimum`` ascends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property, lru_cache
from typing import Any, ClassVar, TypeVar

import torch
from pydantic import Field

from eacps import Condition, Image, Params, Scorer
from eacps.recipe import gaussian
from eacps_gaussian_mixture.mixture import Mixture, MixtureParams, component_of, decode_latents, mixture_of


def _phi(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))


PM = TypeVar("PM", bound=MixtureParams)


class _MixtureScorer(Scorer[PM]):
    Params: ClassVar[type[Params]] = MixtureParams

    @cached_property
    def mixture(self) -> Mixture:  # params are frozen: looked up once per scorer
        return mixture_of(self.params)

    def value(self, x: torch.Tensor, condition: Condition) -> torch.Tensor:
        """Scores (B,) in [0, 10] of flat latents x (B, D), float64, differentiable."""
        raise NotImplementedError

    def score(self, images: Sequence[Image], condition: Condition) -> list[float]:
        x = decode_latents(images, self.mixture)
        with torch.no_grad():
            return [float(v) for v in self.value(x, condition).clamp(0, 10)]


class SharpParams(MixtureParams):
    sharpness: float = Field(1.0, gt=0.0, le=100.0, description="reward sharpness: multiplies the standardized "
                             "value inside Phi (large: a step between poor and good)")
    threshold: float = Field(0.0, ge=-10.0, le=10.0, description="the standardized value that scores 5 (0: a "
                             "typical data sample; 2: only about 2% of samples score above 5)")

    def squash(self, z: torch.Tensor) -> torch.Tensor:
        """10 · Phi(sharpness · (z - threshold))."""
        return 10.0 * _phi(self.sharpness * (z - self.threshold))  # type: ignore[attr-defined]


class GMConsistency(_MixtureScorer[MixtureParams]):
    """10 x the posterior probability of ``condition.class_label`` under the mixture (requires class_label)."""

    name = "gm-consistency"
    requires = ("class_label",)

    def value(self, x: torch.Tensor, condition: Condition) -> torch.Tensor:
        c = component_of(condition, self.mixture.k)
        return 10.0 * self.mixture.posterior(x)[:, c]


class GMRealism(_MixtureScorer[SharpParams]):
    """10 · Phi(sharpness · (z - threshold)), z the log-density under the data standardized over exact data
    samples."""

    name = "gm-realism"
    Params = SharpParams

    def settings(self) -> dict[str, Any]:
        m, s = self.mixture.typical_log_density
        return {**super().settings(), "typical_log_density": [round(m, 9), round(s, 9)]}

    def value(self, x: torch.Tensor, condition: Condition) -> torch.Tensor:
        m, s = self.mixture.typical_log_density
        return self.params.squash((self.mixture.log_density(x) - m) / s)


def reference_point(condition: Condition, m: Mixture) -> tuple[torch.Tensor, torch.Tensor]:
    """(r, g): the condition's reference point r = mu_c + s_c·g (flat, float64) and its standard normal draw g
    from ``condition.extra["reference_seed"]`` (``eacps.recipe.gaussian``, the latent's shape)."""
    c = component_of(condition, m.k)
    seed = (condition.extra or {}).get("reference_seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"condition {condition.id!r}: gm-identity needs extra.reference_seed (an int in [0, 2^32)),"
                         f" got {seed!r}")
    g = _standard_normal(seed, m.shape)
    return m.means[c] + m.stds[c] * g, g


@lru_cache(maxsize=256)
def _standard_normal(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The flat float64 draw of ``seed`` (drawn once: ``value`` runs in every step of the optimum's ascent)."""
    return gaussian(seed, (1, *shape)).double().reshape(-1)


class GMIdentity(_MixtureScorer[SharpParams]):
    """Closeness to the condition's reference point in the component's own metric: 10 · Phi(sharpness · (z -
    threshold)), z minus the standardized squared distance (requires class_label and extra.reference_seed)."""

    name = "gm-identity"
    Params = SharpParams
    requires = ("class_label",)

    def check_condition(self, condition: Condition) -> None:
        super().check_condition(condition)
        reference_point(condition, self.mixture)

    def value(self, x: torch.Tensor, condition: Condition) -> torch.Tensor:
        m = self.mixture
        ref, g = reference_point(condition, m)
        s = m.stds[component_of(condition, m.k)]
        d2 = (((x - ref.to(x.device)) / s.to(x.device)) ** 2).sum(1)
        g2 = float((g * g).sum())
        z = (d2 - (m.dim + g2)) / math.sqrt(2 * m.dim + 4 * g2)
        return self.params.squash(-z)
