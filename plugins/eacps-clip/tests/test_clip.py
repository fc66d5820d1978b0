"""``clip-text`` and ``image-similarity`` on tiny random CLIP / DINOv2 checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eacps_clip import ClipTextScorer, ImageSimilarityScorer
from pydantic import ValidationError

from eacps.engine.checkpoints import to_pil
from eacps.plugins import build_registry
from eacps.potential import Calibration, Criterion, Potential
from eacps.types import Condition

from .conftest import build_tiny_clip, build_tiny_dinov2


def images(n: int, seed: int = 0, shape=(40, 36, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(shape, dtype=np.float32) for _ in range(n)]


def clip_text(path, **kw) -> ClipTextScorer:
    return ClipTextScorer(ClipTextScorer.Params(**{"model": str(path), "device": "cpu", "dtype": "float32", **kw}))


def similarity(path, **kw) -> ImageSimilarityScorer:
    kw = {"model": str(path), "device": "cpu", "dtype": "float32", **kw}
    return ImageSimilarityScorer(ImageSimilarityScorer.Params(**kw))


def hand_clip_cosines(s: ClipTextScorer, imgs, prompt: str) -> np.ndarray:
    enc = s.processor(text=[prompt], images=[to_pil(i) for i in imgs], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = s.model(**enc)
    return (out.logits_per_image[:, 0] / out.logits_per_image.new_tensor(s.model.logit_scale.exp().item())).numpy()


def test_one_calibration_per_criterion_from_the_scorers_default():
    """The scorers return raw cosines and declare their default calibration; the criterion applies it (one
    eacps.potential.Calibration, so a scorer's and a criterion's calibration can never be stacked)."""
    clipscore = Criterion("c", ClipTextScorer(), 1.0).calibration  # CLIPScore x 4 = 10 * max(c, 0), at most 10
    assert clipscore == Calibration(kind="affine", scale=10.0)
    assert [clipscore.apply(c) for c in (0.3, -0.2, 1.5)] == [pytest.approx(3.0), 0.0, 10.0]
    lin = Criterion("i", ImageSimilarityScorer(), 1.0).calibration
    assert lin == Calibration(kind="range", lo=0.0, hi=1.0) and lin.apply(0.25) == pytest.approx(2.5)
    own = Calibration(kind="range", lo=0.15, hi=0.40)
    assert Criterion("c", ClipTextScorer(), 1.0, own).calibration is own  # replaces the default, never on top
    for cls in (ClipTextScorer, ImageSimilarityScorer):
        with pytest.raises(ValidationError, match="calibration"):
            cls.Params(calibration={"kind": "range"})  # no second place to calibrate


def test_clip_text_matches_hand_cosines(tiny_clip):
    imgs = images(3)
    s = clip_text(tiny_clip, batch_size=2)
    cond = Condition(id="c", prompt="a red cube")
    got = s.score(imgs, cond)
    cos = hand_clip_cosines(s, imgs, "a red cube")
    assert got == pytest.approx(list(cos), abs=1e-5)  # raw cosines
    assert len({round(g, 5) for g in got}) == 3
    default = [o.potential for o in Potential([Criterion("consistency", s, 1.0)]).evaluate(imgs, cond)]
    assert default == pytest.approx([min(10.0, 10.0 * max(float(c), 0.0)) for c in cos], abs=1e-4)
    other = s.score(imgs, Condition(id="c", prompt="a dog"))
    assert other != pytest.approx(got, abs=1e-5)  # the prompt is really read


def test_tiny_tokenizer_uses_its_merges(tiny_clip):
    s = clip_text(tiny_clip)
    s.load()
    tok = s.processor.tokenizer
    assert tok.convert_ids_to_tokens(tok("a red cube").input_ids) == [
        "<|startoftext|>",
        "a</w>",
        "re",
        "d</w>",
        "cube</w>",
        "<|endoftext|>",
    ]


def test_clip_text_without_prompt_fails_each_candidate(tiny_clip):
    s = clip_text(tiny_clip)
    assert s.requires == ("prompt",)
    out = s.score(images(2), Condition(id="c"))
    assert all(isinstance(v, Exception) and "prompt" in str(v) for v in out)


def test_image_similarity_clip_backend(tiny_clip):
    s = similarity(tiny_clip)
    ref, *imgs = images(3, seed=1)
    out = s.score([ref, *imgs], Condition(id="c", reference=ref))
    assert s.backend == "clip"
    assert out[0] == pytest.approx(1.0, abs=1e-4)  # the reference itself
    with torch.no_grad():
        px = s.processor(images=[to_pil(i) for i in [ref, *imgs]], return_tensors="pt")["pixel_values"]
        f = torch.nn.functional.normalize(s.model.get_image_features(pixel_values=px).pooler_output, dim=-1)
    cos = (f @ f[0]).numpy()
    assert out == pytest.approx(list(cos), abs=1e-5)
    pot = Potential([Criterion("identity", s, 1.0)])  # the default calibration: range [0, 1] -> [0, 10]
    calibrated = [o.potential for o in pot.evaluate([ref, *imgs], Condition(id="c", reference=ref))]
    assert calibrated == pytest.approx([10 * min(1.0, max(0.0, c)) for c in cos], abs=1e-4)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_image_similarity_dinov2_backend(tiny_dinov2, pooling):
    s = similarity(tiny_dinov2, pooling=pooling)
    ref, *imgs = images(3, seed=2)
    out = s.score(imgs, Condition(id="c", reference=ref))
    assert s.backend == "dinov2"
    with torch.no_grad():
        px = s.processor(images=[to_pil(i) for i in [ref, *imgs]], return_tensors="pt")["pixel_values"]
        o = s.model(pixel_values=px)
        f = o.pooler_output if pooling == "cls" else o.last_hidden_state[:, 1:].mean(1)
        f = torch.nn.functional.normalize(f, dim=-1)
    cos = (f[1:] @ f[0]).numpy()
    assert out == pytest.approx(list(cos), abs=1e-5)
    with pytest.raises(ValueError, match="get_image_features"):
        similarity(tiny_dinov2, backend="clip").score(imgs, Condition(id="c", reference=ref))


def test_image_similarity_against_prior_and_missing_reference(tiny_dinov2):
    s = similarity(tiny_dinov2, against="prior")
    assert s.requires == ("prior",)
    prior, img = images(2, seed=3)
    (v,) = s.score([prior], Condition(id="c").with_prior(prior))
    assert v == pytest.approx(1.0, abs=1e-4)
    (missing,) = similarity(tiny_dinov2).score([img], Condition(id="c"))
    assert isinstance(missing, Exception) and "reference" in str(missing)


def test_grayscale_input_equals_rgb(tiny_dinov2):
    s = similarity(tiny_dinov2)
    gray = images(1, seed=4, shape=(40, 36, 1))[0]
    ref = images(1, seed=5)[0]
    a, b = s.score([gray, np.repeat(gray, 3, axis=2)], Condition(id="c", reference=ref))
    assert a == pytest.approx(b, abs=1e-6)


def test_safetensors_only_and_settings(tiny_clip, tmp_path):
    bin_only = build_tiny_clip(tmp_path / "bin", safetensors=False)
    with pytest.raises(ValueError, match="pickled"):
        clip_text(bin_only).score(images(1), Condition(id="c", prompt="a cube"))
    a = clip_text(tiny_clip)
    assert a.fingerprint() == clip_text(tiny_clip, batch_size=3, device="cuda:1").fingerprint()
    other = build_tiny_dinov2(tmp_path / "dino", seed=7)
    assert similarity(other).settings()["weights"] != similarity(tiny_clip).settings()["weights"]


def test_registered_as_a_plugin():
    reg = build_registry()
    assert reg.get("scorer", "clip-text") is ClipTextScorer
    assert reg.get("scorer", "image-similarity") is ImageSimilarityScorer
    assert reg.entries["scorer"]["clip-text"].distribution == "eacps-clip"
