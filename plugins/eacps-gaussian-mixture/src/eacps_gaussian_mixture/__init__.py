"""eacps testbed with an exact diffusion model: a Gaussian mixture whose denoiser E[x0 | x_t] is closed-form.

No weights, no training, no download: the ``gaussian-mixture`` generator samples the mixture exactly (DDIM or
rectified flow), three scorers mirror the write-up's criteria on the latent, and the generator knows the
highest potential reachable per condition (``optimum``), which ``eacps compare`` reports the gap to.
``tasks(n, seed)`` gives conditions.
"""

from eacps_gaussian_mixture.tasks import tasks

__all__ = ["tasks"]
