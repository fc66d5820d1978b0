"""Promise 8: only safetensors load by default; a pickle checkpoint whose unpickling would create a canary file
is refused (``eacps run`` exits 2 with one line) and the canary stays absent; ``trust_remote_code`` is off
unless the config turns it on.

The pickles are live: after each refusal the test unpickles the same file itself and the canary appears.
"""

from __future__ import annotations

import pytest
import safetensors.torch
import torch
from runs import toy_config, vlm_test_helpers

from eacps import plugins
from eacps.commands.cli import main


class Canary:
    """Unpickling this object creates ``path`` (what a malicious checkpoint would do, harmlessly)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def poison(weights, canary) -> None:
    """Rewrite the pickled state dict ``weights`` with a canary object inside."""
    state = torch.load(weights, weights_only=True)
    state["zz_canary"] = Canary(str(canary))
    torch.save(state, weights)


@pytest.fixture(autouse=True)
def only_our_plugins(monkeypatch):
    """Only the plugins under test load (a throwaway plugin another process installs must not add lines)."""
    monkeypatch.setenv("EACPS_LOAD_PLUGINS", "eacps-diffusers,eacps-vlm,eacps-clip")
    plugins.reset()
    yield
    plugins.reset()


def refused(tmp_path, capsys, cfg, canary, field: str) -> tuple[str, list[str]]:
    """``eacps run`` refuses: exit 2, one eacps line naming ``field`` (the last line), no traceback, no run
    directory, no canary. Returns that line and the other stderr lines (from the model library)."""
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert "Traceback" not in "\n".join(lines)
    ours = [ln for ln in lines if ln.startswith("eacps:")]
    assert len(ours) == 1 and lines[-1] == ours[0] and ours[0].startswith(f"eacps: error: {field}"), lines
    assert not canary.exists()  # nothing was unpickled
    assert not (out / "store.sqlite").exists()
    return ours[0], lines[:-1]


def pickled_sd(tmp_path):
    """A tiny Stable Diffusion folder saved as pickles only, the UNet's weights holding a canary."""
    from eacps_diffusers.tiny import tiny_pipeline

    model, canary = tmp_path / "sd-pickle", tmp_path / "CANARY-diffusers"
    tiny_pipeline("sd").save_pretrained(model, safe_serialization=False)
    for st in model.rglob("*.safetensors"):  # transformers always writes safetensors: make every file a pickle
        torch.save(safetensors.torch.load_file(st), st.with_name("pytorch_model.bin"))
        st.unlink()
    bait = model / "unet" / "diffusion_pytorch_model.bin"
    poison(bait, canary)
    assert not list(model.rglob("*.safetensors")) and len(list(model.rglob("*.bin"))) >= 3
    params = {"model": str(model), "steps": 2, "height": 32, "width": 32, "device": "cpu", "dtype": "float32"}
    return toy_config(tmp_path, generator="diffusers", gen_params=params), bait, canary


def test_pickled_diffusers_pipeline_is_refused(tmp_path, toy_plugin, capsys, figures):
    cfg, bait, canary = pickled_sd(tmp_path)
    err, noise = refused(tmp_path, capsys, cfg, canary, "generator.params: diffusers cannot load its model")
    assert "allow_pickle_weights" in err  # the line says how to opt in
    with pytest.raises(Exception):  # noqa: B017 - torch's own default (weights_only) refuses it too
        torch.load(bait)
    assert not canary.exists()
    torch.load(bait, weights_only=False)  # the bait is live
    assert canary.exists()
    figures("8-checkpoints", pickles_refused=1, canaries_created=0, library_stderr_lines=len(noise))


def test_diffusers_refusal_is_the_only_stderr_line(tmp_path, toy_plugin, capsys):
    cfg, _, canary = pickled_sd(tmp_path)
    _, noise = refused(tmp_path, capsys, cfg, canary, "generator.params: diffusers cannot load its model")
    assert noise == []


def test_pickled_vlm_is_refused(tmp_path, toy_plugin, capsys, figures):
    model, canary = tmp_path / "vlm-pickle", tmp_path / "CANARY-vlm"
    vlm_test_helpers().build_tiny_vlm(model, safetensors=False)
    bait = model / "pytorch_model.bin"
    poison(bait, canary)
    assert not list(model.glob("*.safetensors"))
    params = {"model": str(model), "device": "cpu", "dtype": "float32"}
    cfg = toy_config(tmp_path, scorer="vlm", scorer_params=params)
    err, noise = refused(
        tmp_path, capsys, cfg, canary, "potential.criteria.consistency.params: vlm cannot load its model"
    )
    assert "safetensors" in err and noise == []
    torch.load(bait, weights_only=False)
    assert canary.exists()
    figures("8-checkpoints", pickles_refused=1, canaries_created=0)


class Stop(RuntimeError):
    pass


@pytest.fixture
def spy(monkeypatch):
    """Records the kwargs of every model loader's ``from_pretrained``; processors load as a stub, models stop the
    run (so the run is refused, exit 2, right after the call)."""
    import diffusers
    import transformers

    calls: list[tuple[str, dict]] = []

    def model(name):
        def from_pretrained(path, **kw):
            calls.append((name, kw))
            raise Stop("spy: stop here")

        return staticmethod(from_pretrained)

    def processor(path, **kw):
        calls.append(("AutoProcessor", kw))
        return object()

    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained", model("DiffusionPipeline"))
    monkeypatch.setattr(
        transformers.AutoModelForImageTextToText, "from_pretrained", model("AutoModelForImageTextToText")
    )
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", model("AutoModel"))
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", staticmethod(processor))
    return calls


# local_files_only = false: the spy hub ids are in no cache, and a hub id missing from the cache with downloads off
# is refused before from_pretrained is called (the spy stands in for the hub)
LOADERS = {  # loader -> (toy_config kwargs, the params that get the extra keys, the from_pretrained calls it makes)
    "diffusers": (dict(generator="diffusers"), "gen_params", {"model": "spy/sd", "local_files_only": False},
                  ["DiffusionPipeline"]),
    "vlm": (dict(scorer="vlm"), "scorer_params", {"model": "spy/vlm", "device": "cpu", "local_files_only": False},
            ["AutoProcessor", "AutoModelForImageTextToText"]),
    "clip-text": (dict(scorer="clip-text"), "scorer_params", {"model": "spy/clip", "device": "cpu",
                                                              "local_files_only": False},
                  ["AutoProcessor", "AutoModel"]),
}


@pytest.mark.parametrize("loader", list(LOADERS))
def test_trust_remote_code_only_when_the_config_says_so(tmp_path, toy_plugin, capsys, spy, figures, loader):
    kwargs, which, params, expect = LOADERS[loader]
    for extra, trusted in (({}, False), ({"trust_remote_code": False}, False), ({"trust_remote_code": True}, True)):
        spy.clear()
        cfg = toy_config(tmp_path, **kwargs, **{which: {**params, **extra}})
        assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 2
        assert "spy: stop here" in capsys.readouterr().err
        assert [name for name, _ in spy] == expect
        for name, kw in spy:
            assert kw["trust_remote_code"] is trusted, (name, extra, kw)
            if name != "AutoProcessor":
                assert kw["use_safetensors"] is True, (name, kw)  # weights: safetensors only
    figures("8-checkpoints", trust_remote_code_checks=3 * len(expect))
