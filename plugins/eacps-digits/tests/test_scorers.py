from __future__ import annotations

import numpy as np
import pytest
from eacps_digits import data, reference_image
from eacps_digits.scorers import DigitsRealism

from eacps import Condition

HELD = data.held_out_indices()
X, Y = data.all_digits()


def test_scores_in_range_and_batched(scorers):
    rng = np.random.default_rng(0)
    imgs = [X[i] for i in HELD[:30]] + [rng.random((8, 8, 1), dtype=np.float32) for _ in range(10)]
    cond = Condition(id="t", class_label=4, reference=X[HELD[0]])
    for name, sc in scorers.items():
        v = np.asarray(sc.score(imgs, cond), dtype=float)
        assert v.shape == (40,), name
        assert np.all((v >= 0) & (v <= 10)), name
        single = [sc.score([im], cond)[0] for im in imgs[:5]]
        assert np.allclose(v[:5], single, atol=1e-5), name


def test_consistency_high_for_true_class(scorers):
    sc = scorers["consistency"]
    own, other = [], []
    for c in range(10):
        imgs = [X[i] for i in HELD[Y[HELD] == c]]
        own.extend(sc.score(imgs, Condition(id="c", class_label=c)))
        other.extend(sc.score(imgs, Condition(id="o", class_label=(c + 1) % 10)))
    assert np.mean(own) > 9.0
    assert np.mean(other) < 0.5


def test_identity_self_is_max(scorers):
    sc = scorers["identity"]
    ref_idx = int(data.held_out_indices(7)[0])
    cond = Condition(id="r", class_label=7, reference=reference_image(ref_idx))
    same_class = [X[i] for i in data.held_out_indices(7)[1:]]
    other_class = [X[i] for i in data.held_out_indices(2)]
    s_self = sc.score([reference_image(ref_idx)], cond)[0]
    s_same = np.asarray(sc.score(same_class, cond))
    s_other = np.asarray(sc.score(other_class, cond))
    assert s_self > 9.99
    assert s_self > s_same.max()
    assert s_same.mean() > s_other.mean() + 3


def test_identity_reference_index_fallback(scorers):
    sc = scorers["identity"]
    idx = int(HELD[3])
    imgs = [X[i] for i in HELD[:6]]
    a = sc.score(imgs, Condition(id="a", reference=reference_image(idx)))
    b = sc.score(imgs, Condition(id="b", extra={"reference_index": idx}))
    assert np.allclose(a, b)
    assert b[3] > 9.99


def test_identity_needs_a_reference(scorers):
    with pytest.raises(ValueError, match="reference"):
        scorers["identity"].score([X[0]], Condition(id="none", class_label=1))
    with pytest.raises(ValueError, match="training digit"):
        reference_image(int(data.split()[0][0]))


def test_consistency_needs_class_label(scorers):
    with pytest.raises(ValueError, match="class_label"):
        scorers["consistency"].score([X[0]], Condition(id="none"))


def test_realism_real_above_noise(scorers):
    sc = scorers["realism"]
    rng = np.random.default_rng(1)
    real = np.asarray(sc.score([X[i] for i in HELD[:50]], Condition(id="r")))
    noise = np.asarray(sc.score([rng.random((8, 8, 1), dtype=np.float32) for _ in range(50)], Condition(id="n")))
    blank = sc.score([np.zeros((8, 8, 1), np.float32)], Condition(id="b"))[0]
    assert real.mean() > 2.0
    assert real.min() > noise.max()
    assert blank < real.mean()
    train_digit = sc.score([X[data.split()[0][0]]], Condition(id="t"))[0]
    assert train_digit > 3.0  # the digit itself is one of its neighbours


def test_realism_k_must_match_calibration():
    with pytest.raises(ValueError, match="calibrated"):
        DigitsRealism(DigitsRealism.Params(k=5)).score([X[0]], Condition(id="k"))


def test_bad_image_shape(scorers):
    with pytest.raises(ValueError, match="shape"):
        scorers["realism"].score([np.zeros((16, 16, 3), np.float32)], Condition(id="s"))


def test_settings_carry_weights_hash(scorers):
    for sc in scorers.values():
        assert len(sc.settings()["classifier_sha256"]) == 64
    assert DigitsRealism(DigitsRealism.Params(tau_scale=2.0)).fingerprint() != scorers["realism"].fingerprint()
