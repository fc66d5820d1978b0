"""What the scorers mean: on exact data samples realism and identity are centred at 5 (the threshold moves the
centre), the reference point itself scores 10 on identity, consistency is the class posterior."""

from __future__ import annotations

import numpy as np
import torch
from eacps_gaussian_mixture import tasks
from eacps_gaussian_mixture.mixture import encode
from eacps_gaussian_mixture.scorers import GMConsistency, GMIdentity, GMRealism, reference_point

from eacps.store import quantize

SPEC = {"shape": (2, 8, 8), "components": 5, "separation": 2.0, "sigma_spread": 1.5}
COND = tasks(3, classes=5)[2]


def images(x: torch.Tensor, m) -> list[np.ndarray]:
    return [quantize(im) for im in encode(x.reshape(-1, *m.shape), m).numpy()]


def test_scores_on_exact_data_samples():
    realism = GMRealism(GMRealism.Params(**SPEC))
    m = realism.mixture
    data = images(m.sample(3000, seed=11), m)
    v = np.array(realism.score(data, COND))
    assert abs(v.mean() - 5.0) < 0.25, v.mean()  # a typical sample of the data scores 5
    strict = GMRealism(GMRealism.Params(**SPEC, threshold=2.0, sharpness=50.0))
    above = np.mean(np.array(strict.score(data, COND)) > 5)
    assert abs(above - 0.0228) < 0.012, above  # P(z > 2)

    identity = GMIdentity(GMIdentity.Params(**SPEC))
    own = images(m.sample(3000, seed=12, label=COND.class_label), m)
    assert abs(np.mean(identity.score(own, COND)) - 5.0) < 0.25
    ref, _ = reference_point(COND, m)
    assert identity.score(images(ref[None], m), COND)[0] > 9.999

    consistency = GMConsistency(GMConsistency.Params(**SPEC))
    x = m.sample(50, seed=13)
    got = np.array(consistency.score(images(x, m), COND))
    assert np.allclose(got, 10 * m.posterior(x)[:, COND.class_label].numpy(), atol=1e-3)
    assert got.min() < 1 and got.max() > 9  # samples of other classes score low, of its own high
