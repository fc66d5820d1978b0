"""The closed-form denoiser against Monte Carlo posterior means, the samplers against the mixture's known
marginals, and the lossless image encoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eacps_gaussian_mixture.generator import GaussianMixtureGenerator
from eacps_gaussian_mixture.mixture import Mixture, MixtureParams, decode_latents, encode, mixture_spec

from eacps import Condition, Recipe
from eacps.store import quantize

SMALL = {"shape": (1, 1, 2), "components": 3, "separation": 2.5, "sigma": 0.8, "sigma_spread": 2.0}


def mix(**kw) -> Mixture:
    return Mixture(mixture_spec(MixtureParams(**{**SMALL, **kw})))


def mc_posterior_mean(x0: torch.Tensor, xt: torch.Tensor, a: float, b: float) -> tuple[torch.Tensor, torch.Tensor]:
    """E[x0 | x_t] by self-normalized importance weighting over exact draws x0 (the prior): weights
    N(x_t; a x0_i, b^2 I); and a standard error per coordinate."""
    logw = -((xt[:, None, :] - a * x0[None]) ** 2).sum(-1) / (2 * b * b)  # (Q, N)
    w = torch.softmax(logw, dim=1)
    mean = w @ x0
    ess = 1.0 / (w * w).sum(1)
    var = w @ (x0 * x0) - mean * mean
    return mean, (var / ess[:, None]).sqrt()


@pytest.mark.parametrize("t", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("label", [None, 1])
def test_closed_form_denoiser_equals_the_monte_carlo_posterior_mean(t, label):
    m = mix()
    a, b = float(np.cos(np.pi * t / 2)), float(np.sin(np.pi * t / 2))
    x0 = m.sample(200_000, seed=1, label=label)
    noise = torch.randn(6, m.dim, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    queries = a * m.sample(6, seed=2, label=label) + b * noise
    mc, se = mc_posterior_mean(x0, queries, a, b)
    exact = m.denoise(queries, a, b, label)
    z = ((exact - mc) / se).abs()
    assert z.max() < 5.0, (exact, mc, se)
    # and the denoiser is not trivially close: it moved the queries a real distance
    assert (exact - queries / max(a, 1e-9)).abs().max() > 0.1


def test_denoiser_limits():
    m = mix()
    x = torch.randn(5, m.dim, dtype=torch.float64)
    assert torch.allclose(m.denoise(x, 1.0, 0.0, None), x)  # no noise: x0 = x
    prior_mean = m.means.mean(0)
    assert torch.allclose(m.denoise(x, 0.0, 1.0, None), prior_mean.expand_as(x))  # pure noise: the prior mean
    assert torch.allclose(m.denoise(x, 0.0, 1.0, 2), m.means[2].expand_as(x))


def test_posterior_and_density_match_a_direct_computation():
    from scipy import stats

    m = mix()
    x = m.sample(7, seed=5)
    dens = np.stack([stats.multivariate_normal(m.means[k].numpy(), np.diag(m.stds[k].numpy() ** 2)).pdf(x.numpy())
                     for k in range(m.k)], axis=1) / m.k
    assert np.allclose(m.log_density(x).numpy(), np.log(dens.sum(1)))
    assert np.allclose(m.posterior(x).numpy(), dens / dens.sum(1, keepdims=True))


def test_means_are_separated_as_asked():
    m = Mixture(mixture_spec(MixtureParams(shape=(2, 4, 4), components=5, separation=3.0, sigma=0.5)))
    d = torch.cdist(m.means, m.means)
    off = d[~torch.eye(5, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, 1.5))  # separation x sigma
    assert torch.equal(m.stds, torch.full_like(m.stds, 0.5))


@pytest.mark.parametrize("sampler", ["ddim", "flow"])
def test_sampler_follows_the_conditional_marginals(sampler):
    """x_k of class c has the marginal N(a_k mu_c, a_k^2 s_c^2 + b_k^2) at every noise level."""
    spec = {"shape": (1, 4, 4), "components": 4, "separation": 4.0, "sigma": 0.7, "sigma_spread": 1.5}
    gen = GaussianMixtureGenerator(GaussianMixtureGenerator.Params(**spec, sampler=sampler, steps=200))
    m, c = gen.mixture, 2
    cond = Condition("c", class_label=c)
    traj = gen.start([Recipe.from_seed(s) for s in range(4000)], cond)
    for k in (50, 100, 150, 200):
        traj = gen.advance(traj, cond, k)
        a, b = gen.coefficients(k, 200)
        x = traj.latents.reshape(len(traj), -1)
        var = a * a * m.stds[c] ** 2 + b * b
        z_mean = (x.mean(0) - a * m.means[c]) / (var / len(x)).sqrt()
        assert z_mean.abs().max() < 4.5, (k, z_mean)
        ratio = x.var(0) / var  # 4000 samples: sd of a variance ratio about 0.022
        assert (ratio - 1).abs().max() < 0.1 and abs(float(ratio.mean()) - 1) < 0.03, (k, ratio)


@pytest.mark.parametrize("sampler", ["ddim", "flow"])
def test_unconditional_sampler_puts_the_right_mass_on_each_component(sampler):
    """guidance 0 samples the whole mixture: at every noise level each component holds 1/K of the posterior mass."""
    spec = {"shape": (1, 2, 2), "components": 3, "separation": 5.0, "sigma": 0.6}
    gen = GaussianMixtureGenerator(GaussianMixtureGenerator.Params(**spec, sampler=sampler, steps=100, guidance=0.0))
    cond = Condition("c", class_label=0)  # ignored at guidance 0
    traj = gen.start([Recipe.from_seed(s) for s in range(3000)], cond)
    for k in (25, 60, 100):
        traj = gen.advance(traj, cond, k)
        a, b = gen.coefficients(k, 100)
        mass = gen.mixture.posterior(traj.latents.reshape(len(traj), -1), a, b).mean(0)
        assert torch.allclose(mass, torch.full_like(mass, 1 / 3), atol=0.035), (k, mass)
    final = gen.mixture.posterior(traj.latents.reshape(len(traj), -1)).argmax(1)
    counts = torch.bincount(final, minlength=3) / len(final)
    assert torch.allclose(counts, torch.full_like(counts, 1 / 3), atol=0.035), counts


def test_guidance_sharpens_the_class():
    spec = {"shape": (1, 4, 4), "components": 4, "separation": 1.5}
    cond = Condition("c", class_label=1)
    recipes = [Recipe.from_seed(s) for s in range(300)]
    post = {}
    for w in (1.0, 3.0):
        gen = GaussianMixtureGenerator(GaussianMixtureGenerator.Params(**spec, guidance=w))
        x = gen.advance(gen.start(recipes, cond), cond, gen.default_steps).latents.reshape(300, -1)
        post[w] = float(gen.mixture.posterior(x)[:, 1].mean())
    assert post[3.0] > post[1.0] + 0.05, post


def test_image_encoding_is_lossless_through_8_bit_quantization():
    m = mix(shape=(4, 8, 8), components=4)
    x = torch.randn(3, 4, 8, 8, dtype=torch.float64) * 2
    images = encode(x, m).numpy()
    assert images.shape == (3, 17, 32, 1) and images.dtype == np.float32
    back = decode_latents([quantize(im) for im in images], m).reshape(3, 4, 8, 8)
    assert (back - x).abs().max() <= 2 * m.range / 65535  # one 16-bit step
    other = mix(shape=(4, 8, 8), components=4, separation=2.0)
    with pytest.raises(ValueError, match="another mixture"):
        decode_latents([images[0]], other)
    with pytest.raises(ValueError, match="shape"):
        decode_latents([np.zeros((8, 8, 1), np.float32)], m)


def test_shape_is_bounded():
    with pytest.raises(ValueError, match="4x64x64"):
        MixtureParams(shape=(4, 64, 65))
    MixtureParams(shape=(4, 64, 64))


@pytest.mark.slow  # builds the D = 16384 mixture (about 9 CPU-seconds)
@pytest.mark.parametrize("sampler", ["ddim", "flow"])
def test_the_largest_latent_samples_steps_and_scores(sampler):
    """At the largest shape, 4x64x64 (D = 16384): advancing in pieces is ``generate`` bit for bit, the image holds
    the latent to one 16-bit step, and the scorers read it (consistency: the class posterior of that latent)."""
    from eacps_gaussian_mixture import tasks
    from eacps_gaussian_mixture.scorers import GMConsistency, GMIdentity, GMRealism

    spec = {"shape": (4, 64, 64)}
    gen = GaussianMixtureGenerator(GaussianMixtureGenerator.Params(**spec, sampler=sampler, steps=6))
    cond = tasks(3)[2]
    recipes = [Recipe.from_seed(s) for s in (0, 1)]
    images = [quantize(g.image) for g in gen.generate(recipes, cond)]
    assert images[0].shape == (129, 256, 1)
    traj = gen.start(recipes, cond)
    for until in (1, 4, 6):
        traj = gen.advance(traj, cond, until)
    assert all(np.array_equal(quantize(g.image), im) for g, im in zip(gen.decode(traj.latents, cond), images,
                                                                       strict=True))
    back = decode_latents(images, gen.mixture)
    assert (back - traj.latents.reshape(2, -1)).abs().max() <= 2 * gen.mixture.range / 65535
    consistency = GMConsistency(GMConsistency.Params(**spec)).score(images, cond)
    exact = 10 * gen.mixture.posterior(traj.latents.reshape(2, -1))[:, cond.class_label]
    assert np.allclose(consistency, exact.numpy(), atol=1e-3), (consistency, exact)
    for scorer in (GMRealism(GMRealism.Params(**spec)), GMIdentity(GMIdentity.Params(**spec))):
        assert all(0 <= v <= 10 for v in scorer.score(images, cond))
