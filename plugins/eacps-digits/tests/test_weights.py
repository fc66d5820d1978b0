from __future__ import annotations

import json

import pytest
import torch
from eacps_digits import data
from eacps_digits.models import (
    CLASSIFIER_FILE,
    UNET_FILE,
    WEIGHTS_DIR,
    load_classifier,
    load_unet,
    sha256_file,
    weights,
)
from safetensors.torch import load_file


def test_weights_are_safetensors_only():
    files = [p for p in WEIGHTS_DIR.rglob("*") if p.is_file()]
    suffixes = {p.suffix for p in files}
    assert suffixes <= {".json", ".safetensors"}, suffixes
    for p in files:
        if p.suffix == ".safetensors":
            assert len(load_file(str(p))) > 0


def test_sha256_matches_training_record_and_fingerprint(gen):
    meta = json.loads((WEIGHTS_DIR / "training.json").read_text())
    assert sha256_file(WEIGHTS_DIR / UNET_FILE) == meta["unet_sha256"]
    assert sha256_file(WEIGHTS_DIR / CLASSIFIER_FILE) == meta["classifier_sha256"]
    assert gen.settings()["unet_sha256"] == meta["unet_sha256"]


def test_weights_were_trained_on_this_split_and_data():
    meta = weights().training()
    assert meta["split_sha256"] == data.split_sha256()
    assert meta["data_sha256"] == data.data_sha256()


def test_loaded_models_match_the_files():
    unet = load_unet()
    sd = load_file(str(WEIGHTS_DIR / UNET_FILE))
    for k, v in unet.state_dict().items():
        assert torch.equal(v, sd[k]), k
    clf = load_classifier()
    sd = load_file(str(WEIGHTS_DIR / CLASSIFIER_FILE))
    assert set(clf.state_dict()) == set(sd)
    for k, v in clf.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_missing_weights_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"eacps_digits\.train"):
        weights(tmp_path)


def test_split_is_disjoint_stratified_and_about_20_percent():
    train, held = data.split()
    _, y = data.all_digits()
    assert len(set(train) & set(held)) == 0
    assert len(train) + len(held) == len(y)
    for c in range(10):
        frac = (y[held] == c).sum() / (y == c).sum()
        assert 0.18 < frac < 0.22
