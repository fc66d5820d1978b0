"""eacps testbed on scikit-learn's 8x8 digits: a tiny class-conditional diffusion model and three scorers.

Everything runs on a CPU and offline. ``tasks(n, seed)`` gives conditions; ``reference_image(idx)`` a
held-out exemplar. The generator and scorers are registered through the ``eacps`` entry point.
"""

from eacps_digits.data import held_out_indices, reference_image
from eacps_digits.tasks import tasks

__all__ = ["held_out_indices", "reference_image", "tasks"]
