"""from_pretrained on local folders: safetensors only, clear one-line errors, fingerprints, the plugin entry."""

from __future__ import annotations

import shutil
import time
from types import SimpleNamespace

import numpy as np
import pytest
import safetensors.torch
import torch
from diffusers import StableDiffusionPipeline
from eacps_diffusers import DiffusersGenerator, ModelLoadError
from eacps_diffusers.tiny import CALL_KWARGS, _clip_config, sd_components, tiny_pipeline
from pydantic import ValidationError
from transformers import CLIPTextModel

from eacps import Condition, Recipe, Status, plugins
from eacps.api import load_models
from eacps.config import ConfigError

COND = Condition(id="c", prompt="a photo of a cat")
BASE = dict(steps=2, height=32, width=32, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    pipe = tiny_pipeline("sd")
    folder = tmp_path_factory.mktemp("sd-tiny")
    pipe.save_pretrained(folder, safe_serialization=True)
    return pipe, folder


def test_from_pretrained_local_folder_matches_in_memory(saved):
    pipe, folder = saved
    gen = DiffusersGenerator(model=str(folder), **BASE)
    assert gen._pipe is None
    fp = gen.fingerprint()
    assert gen._pipe is None  # fingerprinting loads nothing
    assert gen.supports_stepping and gen.supports_noise_recipes and gen.black_level > 0
    assert gen._pipe is None  # nor do the class flags (the loaded pipeline's problems decide)
    (g,) = gen.generate([Recipe.from_seed(3)], COND)
    assert type(gen.pipe).__name__ == "StableDiffusionPipeline"
    (m,) = DiffusersGenerator.from_pipe(pipe, steps=2, height=32, width=32).generate([Recipe.from_seed(3)], COND)
    assert np.array_equal(g.image, m.image)
    assert gen.fingerprint() == fp  # stable across loading


def test_explicit_pipeline_class_and_scheduler_override(saved):
    _, folder = saved
    gen = DiffusersGenerator(
        model=str(folder), pipeline_class="StableDiffusionImg2ImgPipeline", scheduler="EulerDiscreteScheduler", **BASE
    )
    assert type(gen.pipe).__name__ == "StableDiffusionImg2ImgPipeline"
    assert type(gen.pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    assert gen.noise_recipes_problem() is not None and "noise_recipes" not in gen.capabilities
    with pytest.raises(ModelLoadError, match="unknown diffusers pipeline class"):
        _ = DiffusersGenerator(model=str(folder), pipeline_class="os.system", **BASE).pipe


def test_pickle_weights_are_refused_by_default(tmp_path):
    tiny_pipeline("sd").save_pretrained(tmp_path, safe_serialization=False)
    for st in tmp_path.rglob("*.safetensors"):  # transformers always writes safetensors: convert to a .bin
        torch.save(safetensors.torch.load_file(st), st.with_name("pytorch_model.bin"))
        st.unlink()
    assert not list(tmp_path.rglob("*.safetensors")) and list(tmp_path.rglob("*.bin"))
    with pytest.raises(ModelLoadError) as info:
        _ = DiffusersGenerator(model=str(tmp_path), **BASE).pipe
    msg = str(info.value)
    assert "\n" not in msg and "allow_pickle_weights" in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__
    allowed = DiffusersGenerator(model=str(tmp_path), allow_pickle_weights=True, **BASE)
    assert type(allowed.pipe).__name__ == "StableDiffusionPipeline"  # the explicit opt-in works


@pytest.mark.parametrize("model", ["nobody-here/no-such-model-eacps", "/nonexistent/eacps/model"])
def test_missing_model_is_a_quick_one_line_error(model):
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError) as info:
        _ = DiffusersGenerator(model=model, **BASE).pipe
    assert time.perf_counter() - t0 < 10
    msg = str(info.value)
    assert "\n" not in msg and model in msg


def test_download_hint_only_for_a_hub_id_missing_offline(saved, tmp_path):
    with pytest.raises(ModelLoadError, match=r"^params.model: 'nobody-here/no-such-model-eacps' is not in the Hugging "
                       r"Face cache and downloads are off \(local_files_only = true\); download it with: hf download "
                       r"nobody-here/no-such-model-eacps \("):
        _ = DiffusersGenerator(model="nobody-here/no-such-model-eacps", **BASE).pipe
    with pytest.raises(ModelLoadError) as info:
        _ = DiffusersGenerator(model="/nonexistent/eacps/model", **BASE).pipe
    assert "no such local folder" in str(info.value) and "download it" not in str(info.value)
    # a local folder with a damaged config: the cause, not advice to download
    _, folder = saved
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "unet" / "config.json").write_text("{broken")
    with pytest.raises(ModelLoadError) as info:
        _ = DiffusersGenerator(model=str(broken), **BASE).pipe
    msg = str(info.value)
    assert "\n" not in msg and "config.json" in msg and "download it" not in msg and "allow_pickle" not in msg
    # a local folder missing its weights (no .bin either): no advice to download or to accept pickles
    (broken / "unet" / "config.json").write_text((folder / "unet" / "config.json").read_text())
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelLoadError) as info:
        _ = DiffusersGenerator(model=str(broken), **BASE).pipe
    msg = str(info.value)
    assert "diffusion_pytorch_model.safetensors" in msg and "download it" not in msg and "allow_pickle" not in msg


def test_a_long_load_error_is_cut_once_and_keeps_its_hint():
    model = "/nonexistent/" + "x" * 400
    with pytest.raises(ModelLoadError) as info:
        _ = DiffusersGenerator(model=model, **BASE).pipe
    msg = str(info.value)
    assert "\n" not in msg and model in msg and msg.endswith("Please check the parameter.")  # cause uncut
    with pytest.raises(ConfigError) as cfg:
        load_models(DiffusersGenerator(model=model, **BASE), SimpleNamespace(criteria=[]))
    line = str(cfg.value)
    assert "\n" not in line and "(no such local folder)" in line and len(line) <= 400
    assert line.count("…") == 1 and line.endswith("…") and "..." not in line.replace("[...]", "")  # cut once


@pytest.fixture(scope="module")
def saved_sd3(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sd3-tiny")
    tiny_pipeline("sd3").save_pretrained(folder, safe_serialization=True)
    return folder


def test_component_overrides_load_sd3_without_t5(saved_sd3):
    kw = {**BASE, "call_kwargs": CALL_KWARGS["sd3"]}
    full = DiffusersGenerator(model=str(saved_sd3), **kw)
    no_t5 = DiffusersGenerator(model=str(saved_sd3), components={"text_encoder_3": None, "tokenizer_3": "none"}, **kw)
    assert no_t5.fingerprint() != full.fingerprint()
    assert no_t5.pipe.text_encoder_3 is None and no_t5.pipe.tokenizer_3 is None
    assert full.pipe.text_encoder_3 is not None
    (a,) = no_t5.generate([Recipe.from_seed(4)], COND)
    (b,) = full.generate([Recipe.from_seed(4)], COND)
    assert a.status is Status.OK and b.status is Status.OK
    assert not np.allclose(a.image, b.image, atol=1e-5)  # the T5 embeddings are zeros without it
    (again,) = DiffusersGenerator(model=str(saved_sd3), components={"text_encoder_3": "none", "tokenizer_3": None},
                                  **kw).generate([Recipe.from_seed(4)], COND)
    assert np.array_equal(a.image, again.image)


def test_component_overrides_refuse_unknown_names_and_values(saved_sd3):
    with pytest.raises(ModelLoadError) as info:
        _ = DiffusersGenerator(model=str(saved_sd3), components={"text_encoder_9": None}, **BASE).pipe
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("components: ['text_encoder_9']") and "text_encoder_3" in msg
    with pytest.raises(ValidationError, match="components"):
        DiffusersGenerator(model=str(saved_sd3), components={"vae": "other/vae"}, **BASE)
    with pytest.raises(ValueError, match="components: applies when loading"):
        DiffusersGenerator.from_pipe(tiny_pipeline("sd3"), components={"text_encoder_3": None})


def test_from_pipe_puts_training_modules_in_eval_mode_so_regeneration_is_exact():
    comps = dict(sd_components())
    torch.manual_seed(0)
    comps["text_encoder"] = CLIPTextModel(_clip_config(dropout=0.5, attention_dropout=0.5))
    pipe = StableDiffusionPipeline(**comps)
    pipe.set_progress_bar_config(disable=True)
    pipe.text_encoder.train()
    pipe.unet.train()
    gen = DiffusersGenerator.from_pipe(pipe, steps=2, height=32, width=32)
    assert not any(m.training for m in pipe.text_encoder.modules()) and not pipe.unet.training
    (a,) = gen.generate([Recipe.from_seed(2)], COND)
    pipe.text_encoder.train()  # switched back after wrapping (a notebook): generate puts it back
    (b,) = gen.generate([Recipe.from_seed(2)], COND)
    assert not pipe.text_encoder.training
    assert np.array_equal(a.image, b.image)
    # and the image is the eval-mode one: a fresh generator over the same weights gives the same pixels
    (c,) = DiffusersGenerator.from_pipe(pipe, steps=2, height=32, width=32).generate([Recipe.from_seed(2)], COND)
    assert np.array_equal(a.image, c.image)


def test_fingerprint_separates_setups():
    base = DiffusersGenerator(model="org/m", **BASE)
    same = DiffusersGenerator(model="org/m", **BASE)
    assert base.fingerprint() == same.fingerprint()
    variants = [
        dict(model="org/other"),
        dict(revision="abc123"),
        dict(dtype="float16"),
        dict(pipeline_class="StableDiffusionXLPipeline"),
        dict(steps=3),
        dict(guidance_scale=2.0),
        dict(height=64),
        dict(negative_prompt="ugly"),
        dict(call_kwargs={"eta": 0.5}),
        dict(scheduler="EulerDiscreteScheduler"),
    ]
    fps = {base.fingerprint()}
    for v in variants:
        fps.add(DiffusersGenerator(model=v.pop("model", "org/m"), **{**BASE, **v}).fingerprint())
    assert len(fps) == len(variants) + 1
    assert DiffusersGenerator(model="org/m", **{**BASE, "max_batch_size": 2}).fingerprint() == base.fingerprint()


def test_registered_through_the_entry_point():
    reg = plugins.build_registry(autoload=True)
    assert reg.get("generator", "diffusers") is DiffusersGenerator
    assert reg.entries["generator"]["diffusers"].distribution == "eacps-diffusers"
