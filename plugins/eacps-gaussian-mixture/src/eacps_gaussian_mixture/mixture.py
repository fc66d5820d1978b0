"""The data distribution of the testbed: a Gaussian mixture whose denoiser E[x0 | x_t] is exact in closed form.

p(x0) = sum_k pi_k N(x0; mu_k, diag(s_k^2)) over D = C·H·W dimensions, uniform pi_k = 1/K. The means are
``separation · sigma / sqrt(2)`` times orthonormal directions when K <= D, so any two means lie ``separation``
component standard deviations apart; when K > D (gm-easy: 10 components in D = 4) they are random unit directions
and the pairwise distances vary (0.96 to 4.16 stds there at separation 3: some classes overlap). The stds are
``sigma`` (isotropic) or, with ``sigma_spread > 1``, ``sigma · sigma_spread^u`` per component and dimension
with u ~ U(-1, 1) (diagonal).

For a noisy state x_t = a·x0 + b·eps (eps ~ N(0, I)), component k gives x_t ~ N(a·mu_k, a^2 s_k^2 + b^2), so

* the posterior over components is softmax_k(log pi_k + log N(x_t; a·mu_k, a^2 s_k^2 + b^2)), and
* E[x0 | x_t, k] = mu_k + a·s_k^2 / (a^2 s_k^2 + b^2) · (x_t - a·mu_k);

E[x0 | x_t] is their posterior-weighted sum (``denoise``): a perfect diffusion model, no training. Everything is
float64 (a row's result does not depend on the rest of the batch beyond the last float64 bits).
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import cached_property, lru_cache

import numpy as np
import torch
from pydantic import Field, field_validator

from eacps import Condition, Params

MAX_DIM = 4 * 64 * 64


class MixtureParams(Params):
    """The mixture: the generator and every scorer of the testbed take these fields, and must agree on them
    (images carry a fingerprint of the mixture; a scorer refuses images of another mixture)."""

    shape: tuple[int, int, int] = Field((4, 16, 16), description="latent shape (channels, height, width); "
                                        "C·H·W at most 4·64·64")
    components: int = Field(10, ge=2, le=256, description="mixture components (one per class label)")
    separation: float = Field(3.0, gt=0.0, le=100.0, description="distance between any two component means, "
                              "in component standard deviations (exactly when components <= C·H·W; else the means "
                              "lie on random directions and distances vary)")
    sigma: float = Field(1.0, gt=0.0, le=10.0, description="component standard deviation")
    sigma_spread: float = Field(1.0, ge=1.0, le=10.0, description="1: isotropic components; > 1: diagonal, each "
                                "std sigma·sigma_spread^u with u ~ U(-1, 1) per component and dimension")
    mixture_seed: int = Field(0, ge=0, lt=2**32, description="seed of the means' directions and the stds")

    @field_validator("shape")
    @classmethod
    def _shape(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(n < 1 for n in v) or math.prod(v) > MAX_DIM:
            raise ValueError(f"shape must be 3 positive sizes with C·H·W <= {MAX_DIM} (4x64x64), got {list(v)}")
        return v


MIXTURE_FIELDS = tuple(MixtureParams.model_fields)


def mixture_spec(params: Params) -> dict:
    """The mixture fields of ``params`` (a generator's or a scorer's) as plain JSON."""
    return {k: v for k, v in params.model_dump(mode="json").items() if k in MIXTURE_FIELDS}


class Mixture:
    """Means (K, D), stds (K, D) and log weights (K,), float64 on CPU; built once per spec (``mixture``)."""

    def __init__(self, spec: dict) -> None:
        p = MixtureParams(**spec)
        self.spec = mixture_spec(p)
        self.shape = tuple(p.shape)
        self.dim = math.prod(p.shape)
        self.k = p.components
        gen = torch.Generator("cpu").manual_seed(p.mixture_seed)
        dirs = torch.randn(self.dim, self.k, generator=gen, dtype=torch.float64)
        # orthonormal columns (pairwise distances exactly separation·sigma) when K <= D, else random unit ones
        dirs = torch.linalg.qr(dirs).Q if self.k <= self.dim else dirs / dirs.norm(dim=0, keepdim=True)
        self.means = (p.separation * p.sigma / math.sqrt(2.0)) * dirs.T.contiguous()
        u = torch.rand(self.k, self.dim, generator=gen, dtype=torch.float64) * 2 - 1
        self.stds = p.sigma * p.sigma_spread ** u if p.sigma_spread > 1 else torch.full_like(u, p.sigma)
        self.log_weights = torch.full((self.k,), -math.log(self.k), dtype=torch.float64)
        #: the 16-bit image encoding covers [-range, range]: 8 stds beyond the largest mean coordinate
        self.range = float(self.means.abs().max() + 8 * self.stds.max())
        self.fingerprint = hashlib.sha256(json.dumps(self.spec, sort_keys=True).encode()).hexdigest()[:16]
        self._on: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(means, stds) on ``device``."""
        key = str(device)
        if key not in self._on:
            self._on[key] = (self.means.to(device), self.stds.to(device))
        return self._on[key]

    def component_log_lik(self, x: torch.Tensor, a: float, b: float) -> torch.Tensor:
        """(B, K): log N(x; a·mu_k, a^2 s_k^2 + b^2) for x of shape (B, D)."""
        mu, s = self.on(x.device)
        var = a * a * s * s + b * b  # (K, D)
        diff = x[:, None, :] - a * mu[None]  # (B, K, D)
        return -0.5 * ((diff * diff / var).sum(-1) + torch.log(var).sum(-1)[None] + self.dim * math.log(2 * math.pi))

    def posterior(self, x: torch.Tensor, a: float = 1.0, b: float = 0.0) -> torch.Tensor:
        """(B, K): p(component | x_t = x) at marginal coefficients (a, b); (1, 0) is the clean data."""
        return torch.softmax(self.component_log_lik(x, a, b) + self.log_weights.to(x.device), dim=1)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """(B,): log p(x) under the data distribution."""
        return torch.logsumexp(self.component_log_lik(x, 1.0, 0.0) + self.log_weights.to(x.device), dim=1)

    def denoise(self, x: torch.Tensor, a: float, b: float, label: int | None) -> torch.Tensor:
        """E[x0 | x_t = x] (B, D): under component ``label`` alone (conditional), or the whole mixture (None)."""
        mu, s = self.on(x.device)
        gain = a * s * s / (a * a * s * s + b * b)  # (K, D)
        if label is not None:
            return mu[label] + gain[label] * (x - a * mu[label])
        w = self.posterior(x, a, b)  # (B, K)
        per = mu[None] + gain[None] * (x[:, None, :] - a * mu[None])  # (B, K, D)
        return (w[:, :, None] * per).sum(1)

    def sample(self, n: int, seed: int, label: int | None = None) -> torch.Tensor:
        """``n`` exact draws (n, D) from the data (component ``label`` only, if given)."""
        gen = torch.Generator("cpu").manual_seed(seed)
        if label is None:
            ks = torch.randint(0, self.k, (n,), generator=gen)
        else:
            ks = torch.full((n,), int(label), dtype=torch.long)
        eps = torch.randn(n, self.dim, generator=gen, dtype=torch.float64)
        return self.means[ks] + self.stds[ks] * eps

    @cached_property
    def typical_log_density(self) -> tuple[float, float]:
        """Mean and std of log p(x) over the data (2048 exact draws, fixed seed): what a typical sample scores."""
        return _typical(json.dumps(self.spec, sort_keys=True))


@lru_cache(maxsize=16)
def _typical(spec_json: str) -> tuple[float, float]:
    m = mixture(spec_json)
    vals = torch.cat([m.log_density(m.sample(256, seed=1000 + i)) for i in range(8)])
    return float(vals.mean()), float(vals.std())


@lru_cache(maxsize=16)
def mixture(spec_json: str) -> Mixture:
    """The mixture of a spec (JSON of ``mixture_spec``), built once."""
    return Mixture(json.loads(spec_json))


def mixture_of(params: Params) -> Mixture:
    return mixture(json.dumps(mixture_spec(params), sort_keys=True))


# -- the image encoding: the latent, losslessly through the core's 8-bit images ---------------------------
def encode(latents: torch.Tensor, m: Mixture) -> torch.Tensor:
    """(B, C, H, W) latents -> float32 images (B, 2H + 1, C·W, 1) in [0, 1] whose pixels are multiples of 1/255.

    Each coordinate is clipped to [-range, range] and quantized to 16 bits (a step of 2·range/65535, about
    2.4e-4 sigma): the top H rows hold the high bytes (channels side by side: a picture of the latent), the next
    H rows the low bytes, the last row the mixture's fingerprint. The core stores and scores 8-bit images, and
    these survive that exactly, so scorers read back the latent (``decode_latents``)."""
    b, c, h, w = latents.shape
    r = m.range
    q = torch.round(((latents.double() + r) / (2 * r)).clamp(0, 1) * 65535).to(torch.int64)
    panel = q.permute(0, 2, 1, 3).reshape(b, h, c * w)
    header = torch.zeros(b, 1, c * w, dtype=torch.int64, device=q.device)
    fp = list(bytes.fromhex(m.fingerprint))[: c * w]
    header[:, 0, : len(fp)] = torch.tensor(fp, dtype=torch.int64, device=q.device)
    img = torch.cat([panel // 256, panel % 256, header], dim=1)
    return (img.to(torch.float32) / 255.0)[..., None].cpu()


def decode_latents(images, m: Mixture) -> torch.Tensor:
    """Images of ``encode`` -> latents (B, D) float64; ValueError for an image of another shape or mixture."""
    import numpy as np

    c, h, w = m.shape
    want = (2 * h + 1, c * w, 1)
    out = []
    fp = np.frombuffer(bytes.fromhex(m.fingerprint), dtype=np.uint8)[: c * w]
    for i, im in enumerate(images):
        a = np.asarray(im, dtype=np.float32)
        if a.shape != want:
            raise ValueError(f"image {i}: shape {a.shape} is not a gaussian-mixture latent of shape {list(m.shape)} "
                             f"(expected {want})")
        if not np.isfinite(a).all():
            raise ValueError(f"image {i}: NaN/inf pixels")
        u8 = np.round(np.clip(a[..., 0], 0, 1) * 255).astype(np.int64)
        if not np.array_equal(u8[2 * h, : len(fp)], fp):
            raise ValueError(f"image {i} was made with another mixture than this scorer's (give the scorer the "
                             "generator's shape, components, separation, sigma, sigma_spread and mixture_seed)")
        q = u8[:h] * 256 + u8[h: 2 * h]
        out.append(q.reshape(h, c, w).transpose(1, 0, 2).reshape(-1))
    if not out:
        return torch.zeros((0, m.dim), dtype=torch.float64)
    q = torch.from_numpy(np.stack(out)).double()
    return q / 65535 * (2 * m.range) - m.range


def component_of(condition: Condition, k: int) -> int:
    """``condition.class_label`` as a component index in 0..k-1, or a clear ValueError."""
    label = condition.class_label
    if label is None:
        raise ValueError(f"condition {condition.id!r}: the gaussian-mixture testbed needs class_label "
                         f"(a component, an int in 0..{k - 1})")
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) < k:
        raise ValueError(f"condition {condition.id!r}: class_label must be an int in 0..{k - 1} (the mixture has "
                         f"{k} components), got {label!r}")
    return int(label)
