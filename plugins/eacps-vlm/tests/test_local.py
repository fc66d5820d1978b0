"""The ``vlm`` scorer on tiny random LLaVA and Idefics3 (SmolVLM) checkpoints loaded through the real
``from_pretrained`` path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from eacps_vlm import JudgeError, VLMScorer
from eacps_vlm.criteria import build_prompt, resolve
from eacps_vlm.images import to_pil

from eacps.plugins import build_registry
from eacps.types import Condition

from .conftest import build_tiny_vlm

COND = Condition(id="c0", prompt="a red cube on a table")
MODEL_CLASS = {"llava": "LlavaForConditionalGeneration", "idefics3": "Idefics3ForConditionalGeneration"}
#: what the answer starts with after the generation prompt: the SmolVLM-style template ends in "Assistant:"
#: and its tokenizer splits " 7" into a space token and "7", so the score is read after the space
PREFIX = {"llava": "", "idefics3": " "}


def images(n: int, seed: int = 0, shape=(40, 36, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(shape, dtype=np.float32) for _ in range(n)]


def scorer(path, **kw) -> VLMScorer:
    kw = {"min_score_mass": 0.0, "device": "cpu", "dtype": "float32", **kw}
    return VLMScorer(VLMScorer.Params(model=str(path), **kw))


def hand_logits(s: VLMScorer, image: np.ndarray, suffix: str = "", prefix: str = "") -> torch.Tensor:
    """Next-token logits after the chat prompt (+ suffix), from a direct forward of one unpadded prompt."""
    parts = build_prompt(resolve("consistency", COND), COND, image, answer="integer")
    content = [{"type": "image"} if k == "image" else {"type": "text", "text": v} for k, v in parts]
    text = s.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    enc = s.processor(text=[text + prefix + suffix], images=[[to_pil(image)]], return_tensors="pt")
    with torch.no_grad():
        return s.model(**enc).logits[0, -1].double()


def test_expected_score_matches_hand_computation_when_10_is_two_tokens(any_vlm):
    arch, path = any_vlm
    s = scorer(path)
    imgs = images(3)
    got = s.score(imgs, COND)
    assert type(s.model).__name__ == MODEL_CLASS[arch]  # loaded through AutoModelForImageTextToText
    assert s.answer_prefix == PREFIX[arch]
    tok = s.processor.tokenizer
    digit_ids = tok.convert_tokens_to_ids([str(d) for d in range(10)])
    assert tok.encode("10", add_special_tokens=False) == [digit_ids[1], digit_ids[0]]
    for img, value in zip(imgs, got, strict=True):
        p = torch.softmax(hand_logits(s, img, prefix=PREFIX[arch])[digit_ids], dim=0)
        after_one = hand_logits(s, img, suffix="1", prefix=PREFIX[arch])
        q = torch.softmax(after_one, dim=0)[digit_ids[0]]  # P("0" | ..., "1")
        expected = sum(v * p[v] for v in range(10)) - p[1] + p[1] * (1 - q) + 10 * p[1] * q
        assert isinstance(value, float)
        assert value == pytest.approx(float(expected), abs=1e-4)
        assert value != pytest.approx(float(sum(v * p[v] for v in range(10))), abs=1e-6)  # the 10-split matters
    assert len({round(v, 6) for v in got}) == 3  # the images change the score


def test_expected_score_with_a_single_10_token(any_vlm_ten):
    arch, path = any_vlm_ten
    s = scorer(path)
    img = images(1, seed=5)[0]
    (value,) = s.score([img], COND)
    tok = s.processor.tokenizer
    ids = tok.convert_tokens_to_ids([str(v) for v in range(11)])
    assert len(set(ids)) == 11 and tok.unk_token_id not in ids
    p = torch.softmax(hand_logits(s, img, prefix=PREFIX[arch])[ids], dim=0)
    assert value == pytest.approx(float(sum(v * p[v] for v in range(11))), abs=1e-4)


def test_score_is_read_after_a_space_the_tokenizer_splits_off(tiny_idefics3, tiny_vlm):
    """SmolVLM answers "Assistant:" with " 7" = a space token then "7": at "Assistant:" the model puts its
    mass on the space, so reading the score there would be off-format; the scorer reads it after the space."""
    s = scorer(tiny_idefics3)
    s.load()
    assert s.answer_prefix == " " and scorer(tiny_vlm).load() is None
    tok = s.processor.tokenizer
    space = tok.encode(" ", add_special_tokens=False)
    assert len(space) == 1 and tok.encode(": 7", add_special_tokens=False)[-2:] == [*space, *s.tokens.ids[7]]
    img = images(1, seed=6)[0]
    digits = [i for v in range(10) for i in s.tokens.ids[v]]
    at_colon = torch.softmax(hand_logits(s, img), dim=0)  # right after "Assistant:"
    after_space = torch.softmax(hand_logits(s, img, prefix=" "), dim=0)
    mass_colon, mass_space = float(at_colon[digits].sum()), float(after_space[digits].sum())
    assert float(at_colon[space[0]]) > 100 * mass_colon  # the model answers with a space first
    assert mass_space > 10 * mass_colon
    gate = math.sqrt(mass_colon * mass_space)
    (value,) = scorer(tiny_idefics3, min_score_mass=gate).score([img], COND)
    assert isinstance(value, float)
    plain = scorer(tiny_idefics3, min_score_mass=gate)
    plain.load()
    plain.answer_prefix = ""  # what the scorer did before: read the token after "Assistant:"
    (off,) = plain.score([img], COND)
    assert isinstance(off, JudgeError) and off.kind == "off-format"


def test_padded_batch_equals_one_by_one(any_vlm):
    arch, path = any_vlm
    s = scorer(path)
    # different sizes: Idefics3 splits them into different numbers of tiles (5, 3, 5), padded per batch
    imgs = [images(1, seed=2 + i, shape=shape)[0] for i, shape in enumerate([(40, 36, 3), (20, 60, 3), (64, 64, 3)])]
    texts = ["short", "a much longer custom instruction about the image " * 3, "medium length text here"]
    prompts = [[("text", t), ("image", im)] for t, im in zip(texts, imgs, strict=True)]
    s.load()
    batched = s._score_batch(prompts)
    single = [s._score_batch([p])[0] for p in prompts]
    assert batched == pytest.approx(single, abs=1e-4)
    assert s.score(imgs, COND) == pytest.approx(scorer(path, batch_size=1).score(imgs, COND), abs=1e-4)
    assert len({round(v, 6) for v in batched}) == 3
    if arch == "idefics3":
        enc = s.encode(prompts)
        assert enc["pixel_values"].shape[:2] == (3, 5) and enc["pixel_attention_mask"][1, 3:].sum() == 0


def test_identity_shows_reference_and_candidate(any_vlm):
    arch, path = any_vlm
    s = scorer(path, criterion="identity")
    assert s.requires == ("reference",)
    ref = images(1, seed=9)[0]
    cond = Condition(id="c1", reference=ref)
    imgs = images(2, seed=3)
    parts = build_prompt(resolve("identity", cond), cond, imgs[0], answer="integer")
    s.load()
    enc = s.encode([parts])
    if arch == "llava":
        assert enc["pixel_values"].shape[0] == 2  # reference + candidate in one prompt
    else:  # one row of 2 images x (2x2 tiles + the global image)
        assert enc["pixel_values"].shape[:2] == (1, 10)
        assert (enc["input_ids"] == s.processor.tokenizer.convert_tokens_to_ids("<global-img>")).sum() == 2
    values = s.score(imgs, cond)
    assert all(isinstance(v, float) and 0 <= v <= 10 for v in values)
    # the reference is really read: another reference moves the score
    other = s.score(imgs, Condition(id="c2", reference=images(1, seed=10)[0]))
    assert other != pytest.approx(values, abs=1e-6)
    missing = s.score(imgs, Condition(id="c3"))
    assert all(isinstance(v, JudgeError) and v.kind == "missing-input" for v in missing)


def test_consistency_uses_prior_and_custom_criterion(any_vlm):
    tiny_vlm = any_vlm[1]
    prior = images(1, seed=11)[0]
    img = images(1, seed=12)
    plain = scorer(tiny_vlm).score(img, COND)
    with_prior = scorer(tiny_vlm).score(img, COND.with_prior(prior))
    no_prior = scorer(tiny_vlm, use_prior=False).score(img, COND.with_prior(prior))
    assert with_prior != pytest.approx(plain, abs=1e-6)
    assert no_prior == pytest.approx(plain, abs=1e-6)
    custom = scorer(tiny_vlm, criterion="custom", prompt="Is there a cube? {prompt}").score(img, COND)
    assert isinstance(custom[0], float)
    with pytest.raises(ValueError, match="needs a prompt"):
        scorer(tiny_vlm, criterion="custom")
    assert isinstance(scorer(tiny_vlm).score(img, Condition(id="np"))[0], JudgeError)  # no prompt, no prior


def test_off_format_answers_fail_instead_of_scoring(tiny_vlm):
    s = scorer(tiny_vlm, min_score_mass=0.99)
    out = s.score(images(2), COND)
    assert all(isinstance(v, JudgeError) and v.kind == "off-format" for v in out)
    assert "next-token probability" in str(out[0])
    assert s.stats.failure_rate == 1.0 and s.stats.failed["off-format"] == 2


def test_grayscale_and_rgba_inputs(any_vlm):
    s = scorer(any_vlm[1])
    gray = images(1, seed=4, shape=(40, 36, 1))[0]
    rgba = np.concatenate([np.repeat(gray, 3, axis=2), np.ones_like(gray)], axis=2)
    a, b, c = s.score([gray, np.repeat(gray, 3, axis=2), rgba], COND)
    assert a == pytest.approx(b, abs=1e-6) and b == pytest.approx(c, abs=1e-6)


def test_loading_is_safetensors_only_and_no_remote_code(tiny_vlm, tmp_path, monkeypatch):
    import transformers

    bin_only = build_tiny_vlm(tmp_path / "bin", safetensors=False)
    assert not list(bin_only.glob("*.safetensors")) and (bin_only / "pytorch_model.bin").is_file()
    with pytest.raises(ValueError, match="pickled"):
        scorer(bin_only).score(images(1), COND)

    seen: dict = {}
    original = transformers.AutoModelForImageTextToText.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", spy)
    scorer(tiny_vlm).load()
    assert seen["use_safetensors"] is True and seen["trust_remote_code"] is False
    assert seen["dtype"] == torch.float32


def test_settings_track_weights_and_prompts_not_runtime(tiny_vlm, tmp_path):
    a = scorer(tiny_vlm)
    assert a.fingerprint() == scorer(tiny_vlm, batch_size=7, device="cuda:3").fingerprint()
    assert a.fingerprint() != scorer(tiny_vlm, criterion="realism").fingerprint()
    assert a.settings()["prompt_version"] and a.settings()["weights"] and a.settings()["reader_version"] == "2"
    other = build_tiny_vlm(tmp_path / "other", seed=3)
    assert scorer(other).settings()["weights"] != a.settings()["weights"]


def test_registered_as_a_plugin():
    reg = build_registry()
    for name in ("vlm", "openai-judge"):
        entry = reg.entries["scorer"][name]
        assert entry.distribution == "eacps-vlm"
    assert reg.get("scorer", "vlm") is VLMScorer
    assert not [p for p in reg.problems if "eacps-vlm" in p]
    assert math.isfinite(VLMScorer.Params().min_score_mass)
