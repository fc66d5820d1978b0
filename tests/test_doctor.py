"""``eacps doctor``: the machine screen, and exit code 1 when a config needs something missing."""

from __future__ import annotations

import platform

import configs
import torch

from eacps import hookimpl, plugins
from eacps.commands.cli import main
from eacps.commands.doctor import run_doctor


class BrokenPlugin:
    """A plugin whose hook raises: doctor must show it with the reason."""

    __name__ = "broken-test-plugin"

    @hookimpl
    def register_scorers(self, register):
        raise RuntimeError("weights folder vanished")


def test_machine_screen_lists_python_torch_plugins_and_failures():
    broken = BrokenPlugin()
    plugins.register_plugin(broken)
    try:
        code, text = run_doctor()
        reg = plugins.get_registry()
    finally:
        plugins.unregister_plugin(broken)
    assert code == 0
    assert f"python             {platform.python_version()}" in text
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
    assert f"{torch.__version__} ({build} build)" in text
    assert ("cuda:0" in text) == torch.cuda.is_available()
    for kind in plugins.HOOKS:
        for e in reg.entries[kind].values():
            assert f"{e.name} ({e.distribution})" in text
    assert "digits (eacps-digits) [offers noise_recipes, stepping]" in text  # read without loading the model
    assert "broken-test-plugin" in text and "weights folder vanished" in text
    assert "HF cache" in text and "offline mode" in text


def test_config_needs(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("EACPS_DOCTOR_KEY", raising=False)
    model = tmp_path / "my-sdxl"
    model.mkdir()
    (tmp_path / "ref.png").write_bytes(b"")
    good = {
        "generator": {"name": "diffusers", "params": {"model": str(model)}},
        "potential": {"criteria": {"realism": {"scorer": "digits-realism"}}},
        "conditions": [{"id": "a", "prompt": "a cat", "reference": "ref.png"}],
    }
    configs.write(tmp_path / "good.toml", good)
    code, text = run_doctor(str(tmp_path / "good.toml"))
    assert code == 0 and "nothing missing" in text and f"{model}: found" in text

    bad = {
        "generator": {"name": "diffusers", "params": {"model": str(tmp_path / "no-such-model")}},
        "potential": {"criteria": {
            "consistency": {"scorer": "openai-judge", "params": {"base_url": f"http://127.0.0.1:{configs.unused_port()}/v1",
                                                                 "api_key_env": "EACPS_DOCTOR_KEY"}},
            "realism": {"scorer": "no-such-scorer"},
        }},
        "conditions": [{"id": "a", "prompt": "a cat", "reference": "missing.png"}],
    }
    configs.write(tmp_path / "bad.toml", bad)
    assert main(["doctor", str(tmp_path / "bad.toml")]) == 1
    out = capsys.readouterr().out
    missing = [line for line in out.splitlines() if line.startswith("missing: ")]
    assert len(missing) == 5, missing
    assert any("no-such-model" in m and m.startswith("missing: generator:") for m in missing)
    assert any("EACPS_DOCTOR_KEY" in m for m in missing)
    assert any("cannot reach" in m for m in missing)
    assert any("no-such-scorer" in m and "known:" in m for m in missing)
    assert any("conditions.0.reference" in m for m in missing)


def test_an_invalid_config_is_missing_not_a_crash(tmp_path):
    configs.write(tmp_path / "c.toml", {"generator": {"name": "digits", "bogus": 1}})
    code, text = run_doctor(str(tmp_path / "c.toml"))
    assert code == 1 and "missing: " in text
