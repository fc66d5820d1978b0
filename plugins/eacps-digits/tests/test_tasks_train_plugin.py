from __future__ import annotations

import numpy as np
import pytest
import torch
from eacps_digits import data, reference_image, tasks
from eacps_digits.train import train
from safetensors.torch import load_file

from eacps import Generator, Scorer
from eacps.plugins import build_registry


def test_tasks_shape_and_determinism():
    ts = tasks(25, seed=3)
    assert len(ts) == 25
    held = set(data.held_out_indices().tolist())
    for i, t in enumerate(ts):
        idx = t.extra["reference_index"]
        assert t.class_label == i % 10
        assert data.reference_label(idx) == t.class_label
        assert idx in held
        assert t.id == f"digit{i % 10}-ref{idx}"
        assert t.reference.shape == (8, 8, 1) and t.reference.dtype == np.float32
        assert np.array_equal(t.reference, reference_image(idx))
        assert t.reference_path is None
    assert len({t.id for t in ts}) == 25
    assert [t.id for t in tasks(25, seed=3)] == [t.id for t in ts]
    assert [t.id for t in tasks(25, seed=4)] != [t.id for t in ts]


@pytest.mark.slow  # three short trainings (about 10 CPU-seconds)
def test_short_training_is_deterministic(tmp_path):
    metas = [train(tmp_path / name, iterations=5, classifier_epochs=1, log=lambda *_: None) for name in ("a", "b")]
    assert metas[0]["unet_sha256"] == metas[1]["unet_sha256"]
    assert metas[0]["classifier_sha256"] == metas[1]["classifier_sha256"]
    for f in ("unet/diffusion_pytorch_model.safetensors", "classifier.safetensors"):
        a, b = load_file(str(tmp_path / "a" / f)), load_file(str(tmp_path / "b" / f))
        assert set(a) == set(b)
        assert all(torch.equal(a[k], b[k]) for k in a)
    # and training actually moved the weights away from another seed's
    c = train(tmp_path / "c", iterations=5, classifier_epochs=1, seed=1, log=lambda *_: None)
    assert c["unet_sha256"] != metas[0]["unet_sha256"]


def test_found_through_entry_points():
    reg = build_registry(autoload=True)
    gen_cls = reg.get("generator", "digits")
    assert issubclass(gen_cls, Generator)
    assert reg.entries["generator"]["digits"].distribution == "eacps-digits"
    for name in ("digits-consistency", "digits-realism", "digits-identity"):
        assert issubclass(reg.get("scorer", name), Scorer)
    assert not [p for p in reg.problems if "digits" in p]
