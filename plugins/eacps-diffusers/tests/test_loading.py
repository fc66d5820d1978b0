"""from_pretrained on local folders: safetensors only, clear one-line errors, fingerprints, the plugin entry."""

from __future__ import annotations

import time

import numpy as np
import pytest
import safetensors.torch
import torch
from eacps_diffusers import DiffusersGenerator, ModelLoadError
from eacps_diffusers.tiny import tiny_pipeline

from eacps import Condition, Recipe, plugins

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
    assert gen.supports_noise_recipes is False
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
    assert "\n" not in msg and model in msg and "local_files_only" in msg


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
