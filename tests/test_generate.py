"""``eacps generate``: one search from a prompt, end to end on the digits testbed, and its bad-input rules."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import configs
import numpy as np
import pytest
import toy
from PIL import Image

from eacps import hookimpl, plugins
from eacps.analysis.summary import load_searches
from eacps.commands.cli import main
from eacps.commands.generate import (
    RECOMMENDED,
    STEPPING,
    GenerateRequest,
    build_config,
    check_model_name,
    default_strategy,
    reproduction,
)
from eacps.config import ConfigError
from eacps.recipe import Recipe
from eacps.store import read_only
from eacps.tomlw import dumps


def _line(out: str, prefix: str) -> str:
    return next(x for x in out.splitlines() if x.startswith(prefix))


def test_generate_digits_then_run_the_saved_config(tmp_path, capsys, monkeypatch):
    """generate writes the winner and a config; ``eacps run`` on that config finds the same winner."""
    monkeypatch.chdir(tmp_path)
    rc = main(["generate", "3", "--model", "digits", "--budget", "8", "-o", "best.png", "--save-config", "g.toml",
               "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0, out
    potential = float(_line(out, "best potential").split()[2])
    recipe = Recipe.from_json(_line(out, "recipe: ").removeprefix("recipe: "))
    scores = dict(kv.split()[:2] for kv in _line(out, "sub-scores: ").removeprefix("sub-scores: ").split(", "))
    assert set(scores) == {"consistency", "realism", "identity"}
    assert 0 < potential <= 65
    best = np.asarray(Image.open("best.png"))
    assert best.shape == (8, 8) and best.max() > 0

    cfg = tomllib.loads(Path("g.toml").read_text())
    assert cfg["generator"]["name"] == "digits" and cfg["conditions"][0]["class_label"] == 3
    assert cfg["search"]["budget"] == 8
    assert cfg["search"]["strategy"] == "tree-search"  # digits can step: the measured-best default
    assert _line(out, "strategy: ") == "strategy: tree-search"

    assert main(["run", "g.toml", "--out", "run", "--quiet"]) == 0
    capsys.readouterr()
    store = read_only(tmp_path / "run")
    try:
        (rec,) = load_searches(store)
    finally:
        store.close()
    assert rec.strategy == "tree-search" and len(rec.candidates) >= 8  # tree-search also stores its previews
    assert rec.best.recipe == recipe
    assert rec.best.potential == pytest.approx(potential, abs=5e-4)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "run" / rec.best.image_path)), best)


@pytest.mark.parametrize(
    "args, names",
    [
        (["cat", "--model", "digits"], "PROMPT"),
        (["3", "--model", "digits", "--judge", "some/vlm"], "--judge"),
        (["a cat", "--model", "no/such-model-here"], "--model"),
        (["a cat", "--model", "x", "--reference", "missing.png"], "--reference"),
        (["a cat", "--model", "x", "--judge-url", "http://127.0.0.1:{port}/v1", "--judge", "m"], "--judge-url"),
        (["a cat", "--model", "x", "--judge-url", "http://127.0.0.1:{port}/v1", "--judge", "m",
          "--judge-key-env", "EACPS_TEST_UNSET_KEY"], "--judge-key-env"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, monkeypatch, args, names):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-0123456789")
    monkeypatch.delenv("EACPS_TEST_UNSET_KEY", raising=False)
    args = [a.format(port=configs.unused_port()) for a in args]
    rc = main(["generate", *args, "-o", "best.png", "--save-config", "g.toml", "--run-dir", "run", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"eacps: error: {names}"), err
    assert "sk-test-secret" not in out + err
    assert list(tmp_path.iterdir()) == []


def test_the_saved_toml_round_trips_every_field(tmp_path):
    """The TOML writer keeps every value of a diffusers + openai-judge + reference config."""
    ref = tmp_path / "ref.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(ref)
    req = GenerateRequest('a "quoted" cat\\dog', "stabilityai/sdxl", judge="qwen", judge_url="http://h:1/v1",
                          reference=str(ref), prior=True, budget=12, steps=4, strategy="best-of-n")
    cfg = build_config(req)
    assert tomllib.loads(dumps(cfg, header="two\nlines")) == json.loads(json.dumps(cfg))
    crit = cfg["potential"]["criteria"]
    assert set(crit) == {"consistency", "realism", "identity"}
    assert {c["scorer"] for c in crit.values()} == {"openai-judge"}
    assert all(c["params"]["use_prior"] and c["params"]["api_key_env"] == "OPENAI_API_KEY" for c in crit.values())
    no_ref = build_config(GenerateRequest("a cat", "m"))
    assert set(no_ref["potential"]["criteria"]) == {"consistency", "realism"}
    assert no_ref["potential"]["criteria"]["realism"]["scorer"] == "vlm"


def test_reproduction_lines_only_for_seed_only_diffusers_winners():
    cfg = build_config(GenerateRequest("a cat", "some/model", steps=4))
    lines = reproduction(cfg, Recipe.from_seed(1234))
    assert len(lines) == 2
    assert "from_pretrained('some/model')" in lines[0]
    assert 'torch.Generator("cpu").manual_seed(1234)' in lines[1] and "'a cat'" in lines[1]
    assert "num_inference_steps=4" in lines[1]
    assert reproduction(cfg, Recipe.from_seed(1).pcn(0.3, 7)) == []
    assert reproduction(build_config(GenerateRequest("3", "digits")), Recipe.from_seed(1)) == []


class BrightnessJudge:
    """A fake OpenAI-compatible judge on 127.0.0.1: the score is the candidate image's mean brightness x 10, so
    the winner depends on the images; every request is recorded (with its headers)."""

    def __init__(self) -> None:
        import base64
        import io
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict] = []
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                judge.requests.append({"body": req, "auth": self.headers.get("Authorization")})
                url = [p["image_url"]["url"] for p in req["messages"][-1]["content"] if p["type"] == "image_url"][-1]
                img = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))), dtype=np.float32)
                answer = json.dumps({"explanation": "x", "score": int(np.rint(10 * img.mean() / 255))})
                body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
                                   "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": answer}}],
                                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


def test_generate_diffusers_with_an_http_judge_and_the_two_lines_reproduce_it(tmp_path, capsys, monkeypatch):
    """A real (tiny) diffusers model folder judged over HTTP; the printed plain-diffusers lines give best.png."""
    tiny = pytest.importorskip("eacps_diffusers.tiny")
    pytest.importorskip("eacps_vlm")
    import torch
    from diffusers import DiffusionPipeline

    model = tmp_path / "tiny-sd"
    tiny.tiny_pipeline("sd").save_pretrained(model)
    secret = "sk-never-print-me-0123456789"
    monkeypatch.setenv("EACPS_JUDGE_KEY", secret)
    judge = BrightnessJudge()
    try:
        rc = main(["generate", "a red cat", "--model", str(model), "--judge-url", judge.url, "--judge", "fake",
                   "--judge-key-env", "EACPS_JUDGE_KEY", "--strategy", "best-of-n", "--budget", "4", "--steps", "2",
                   "-o", str(tmp_path / "best.png"), "--save-config", str(tmp_path / "g.toml"),
                   "--run-dir", str(tmp_path / "run"), "--quiet"])
    finally:
        judge.httpd.shutdown()
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert {r["auth"] for r in judge.requests} == {f"Bearer {secret}"}  # the key reached the server, and only it
    assert len(judge.requests) == 2 * 5  # consistency and realism for the prior and 4 candidates
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".toml", ".sqlite", ".json", ".png")]
    assert all(secret.encode() not in p.read_bytes() for p in files) and secret not in out + err
    lines = out.split("reproduce in plain diffusers:\n", 1)[1].splitlines()[:2]
    ns = {"DiffusionPipeline": DiffusionPipeline, "torch": torch, "device": "cpu"}
    exec("\n".join(x.strip() for x in lines), ns)
    plain = np.asarray(ns["image"].convert("RGB"), dtype=np.int16)
    best = np.asarray(Image.open(tmp_path / "best.png").convert("RGB"), dtype=np.int16)
    assert plain.shape == best.shape and np.abs(plain - best).max() <= 1


# -- the default strategy follows the generator's capabilities -------------------------------------------------------
class SteppingToyParams(toy.ToyGeneratorParams):
    stepping: bool = True


class SteppingToy(toy.ToyGenerator):
    """The toy generator with stepping on by default: a generator whose stepping its class cannot declare (a
    property of the instance, like diffusers' scheduler-dependent one)."""

    name = "toy-stepping"
    Params = SteppingToyParams


class ToyPresets:
    """Demo presets on the toy generators (``--model toy`` / ``--model toy-stepping``)."""

    @hookimpl
    def register_generators(self, register):
        register(SteppingToy)

    @hookimpl
    def register_demo_presets(self, register):
        crit = {"realism": ("toy-pixel", 4.0), "consistency": ("toy-mean", 1.0)}
        register(plugins.DemoPreset(name="toy", generator="toy", criteria=crit, tasks="toy"))
        register(plugins.DemoPreset(name="toy-stepping", generator="toy-stepping", criteria=crit, tasks="toy"))


@pytest.fixture
def toy_presets(toy_plugin):
    presets = ToyPresets()
    plugins.register_plugin(presets)
    try:
        yield
    finally:
        plugins.unregister_plugin(presets)


def test_default_strategy_from_the_generators_declared_capabilities(toy_presets):
    """digits declares stepping: tree-search from the config alone; --strategy still wins; a generator whose
    stepping depends on its instance gets annealed pCN EACPS until it is loaded (no model is loaded here)."""
    assert STEPPING[0] == "tree-search" and RECOMMENDED[0] == "eacps"
    digits = build_config(GenerateRequest("3", "digits"))["search"]
    assert (digits["strategy"], digits["params"]) == STEPPING
    assert build_config(GenerateRequest("3", "digits", strategy="best-of-n"))["search"]["strategy"] == "best-of-n"
    assert default_strategy("digits") == STEPPING
    assert default_strategy("toy") == RECOMMENDED  # depends on params: decided after loading
    assert default_strategy(toy.ToyGenerator()) == RECOMMENDED
    assert default_strategy(toy.ToyGenerator(toy.ToyGeneratorParams(stepping=True))) == STEPPING


@pytest.mark.parametrize("model, expected", [("toy", "eacps"), ("toy-stepping", "tree-search")])
def test_generate_decides_after_loading_when_the_class_cannot_tell(tmp_path, capsys, toy_presets, model, expected):
    """The toy generator without stepping runs annealed pCN EACPS; with stepping (known only once the instance
    exists) tree-search; the saved config and the run store name the strategy that ran."""
    rc = main(["generate", "toy task 1", "--model", model, "--budget", "8", "-o", str(tmp_path / "b.png"),
               "--save-config", str(tmp_path / "g.toml"), "--run-dir", str(tmp_path / "run"), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert _line(out, "strategy: ") == f"strategy: {expected}"
    saved = tomllib.loads((tmp_path / "g.toml").read_text())["search"]
    assert saved["strategy"] == expected
    assert saved["params"] == (RECOMMENDED[1] if expected == "eacps" else {})
    store = read_only(tmp_path / "run")
    try:
        assert store.get_meta("config")["search"]["strategy"] == expected
        (rec,) = load_searches(store)
    finally:
        store.close()
    assert rec.strategy == expected
    assert len(rec.candidates) == 8 if expected == "eacps" else len(rec.candidates) > 8  # tree previews are rows


@pytest.mark.parametrize("model", ["toy-stepping", "digits"])
def test_a_one_step_schedule_defaults_to_a_strategy_that_runs_on_it(tmp_path, capsys, toy_presets, model):
    """tree-search needs >= 2 steps: with --steps 1 the default is annealed pCN EACPS, whether the stepping is
    known from the class (digits: it was a --steps error) or only once loaded (a traceback)."""
    rc = main(["generate", "toy task 1" if model != "digits" else "3", "--model", model, "--steps", "1",
               "--budget", "8", "-o", str(tmp_path / "b.png"), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert _line(out, "strategy: ") == "strategy: eacps"


def test_dry_run_validates_what_would_load_and_says_the_strategy_is_decided_then(tmp_path, capsys, toy_presets):
    """A budget annealed EACPS refuses but the run accepts (best-of-n holds the place until the model is loaded):
    the dry run accepts it too, and says the strategy is decided once the model is loaded."""
    rc = main(["generate", "toy task 1", "--model", "toy", "--budget", "3", "--dry-run"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "strategy: decided once the model is loaded" in out


def test_a_plugin_that_fails_when_first_used_is_one_line(tmp_path, capsys, toy_plugin):
    class Broken:
        @hookimpl
        def register_task_sets(self, register):
            register("no_such_module_xyz:tasks", name="broken")

        @hookimpl
        def register_demo_presets(self, register):
            register(plugins.DemoPreset(name="broken", generator="toy", criteria={"realism": ("toy-pixel", 1.0)},
                                        tasks="broken"))

    broken = Broken()
    plugins.register_plugin(broken)
    try:
        rc = main(["generate", "1", "--model", "broken", "-o", str(tmp_path / "b.png"), "--quiet"])
    finally:
        plugins.unregister_plugin(broken)
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "no_such_module_xyz" in err and "Traceback" not in err


def test_generate_strategy_option_overrides_the_default(tmp_path, capsys, toy_presets):
    rc = main(["generate", "toy task 1", "--model", "toy-stepping", "--strategy", "best-of-n", "--budget", "4",
               "-o", str(tmp_path / "b.png"), "--save-config", str(tmp_path / "g.toml"), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert _line(out, "strategy: ") == "strategy: best-of-n"
    assert tomllib.loads((tmp_path / "g.toml").read_text())["search"]["strategy"] == "best-of-n"


def test_generate_help_names_the_default_rule():
    from click.testing import CliRunner

    from eacps.commands.cli import cli

    text = " ".join(CliRunner().invoke(cli, ["generate", "--help"]).output.split())
    assert "tree-search on a generator that can step" in text and "annealed pCN eacps" in text


def test_generate_on_a_stepping_diffusers_model_defaults_to_tree_search(tmp_path, capsys, monkeypatch):
    """A diffusers model's stepping depends on its pipeline and scheduler: decided once loaded (tiny SD, DDIM)."""
    tiny = pytest.importorskip("eacps_diffusers.tiny")
    pytest.importorskip("eacps_vlm")
    model = tmp_path / "tiny-sd"
    tiny.tiny_pipeline("sd").save_pretrained(model)
    assert build_config(GenerateRequest("a red cat", str(model)))["search"]["strategy"] == "eacps"  # not loaded yet
    monkeypatch.setenv("EACPS_JUDGE_KEY", "none")
    judge = BrightnessJudge()
    try:
        rc = main(["generate", "a red cat", "--model", str(model), "--judge-url", judge.url, "--judge", "fake",
                   "--judge-key-env", "EACPS_JUDGE_KEY", "--budget", "4", "--steps", "5", "-o", str(tmp_path / "b.png"),
                   "--save-config", str(tmp_path / "g.toml"), "--quiet"])
    finally:
        judge.httpd.shutdown()
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert _line(out, "strategy: ") == "strategy: tree-search"
    assert tomllib.loads((tmp_path / "g.toml").read_text())["search"]["strategy"] == "tree-search"


def test_hook_register_generate_backends(tmp_path, capsys, monkeypatch, toy_plugin):
    """``eacps generate`` builds a non-preset model's config only from what plugins register: a model family that
    accepts ``--model`` and judges (local, served); the core names no model, judge or plugin."""
    from eacps.plugins import Judge, ModelFamily

    family = ModelFamily(name="toy-models", generator="toy", accepts=lambda m: m.startswith("toy:"),
                         params=lambda m, dl: {"log": m.removeprefix("toy:"), "fail_all": dl},
                         described="a toy:NAME model")
    local = Judge(name="toy-judge", scorer="toy-pixel", remote=False, params=lambda c, req: {"criterion": c})

    class Plugin:
        @hookimpl
        def register_generate_backends(self, register):
            register(family)
            register(local)

    plugin = Plugin()
    monkeypatch.setenv("EACPS_DISABLE_PLUGIN_AUTOLOAD", "1")  # no eacps-diffusers, no eacps-vlm
    plugins.reset()
    try:
        req = GenerateRequest("a cat", "sd/xl", output=None)
        rc = main(["generate", "a cat", "--model", "org/model", "-o", str(tmp_path / "b.png"), "--quiet"])
        assert rc == 2 and "other models need a plugin that registers a model family: install eacps-diffusers" in \
            capsys.readouterr().err
        plugins.register_plugin(plugin)
        entries = plugins.get_registry().entries["generate"]
        assert {n: (e.cls, e.distribution) for n, e in entries.items()} == {
            "toy-models": (family, "(registered in process)"), "toy-judge": (local, "(registered in process)")}
        config = build_config(GenerateRequest("a cat", "toy:x", output=None, allow_download=True))
        assert config["generator"] == {"name": "toy", "params": {"log": "x", "fail_all": True}}
        assert config["potential"]["criteria"] == {"consistency": {"scorer": "toy-pixel", "params": {
            "criterion": "consistency"}}, "realism": {"scorer": "toy-pixel", "params": {"criterion": "realism"}}}
        with pytest.raises(ConfigError, match=r"--model: unknown model 'sd/xl'; known: \(no preset installed\), "
                           r"or a toy:NAME model"):
            check_model_name(req.model)
        rc = main(["generate", "a cat", "--model", "toy:x", "--judge-url", "http://127.0.0.1:9/v1", "--judge", "m",
                   "-o", str(tmp_path / "b.png"), "--quiet"])
        assert rc == 2 and "--judge-url: no plugin registers a judge served at --judge-url; install " in \
            capsys.readouterr().err
    finally:
        if plugin in plugins._extra:
            plugins.unregister_plugin(plugin)
        monkeypatch.delenv("EACPS_DISABLE_PLUGIN_AUTOLOAD")
        plugins.reset()


def test_the_installed_backends_build_the_diffusers_and_judge_configs():
    """eacps-diffusers and eacps-vlm register the model family and judges ``generate`` used to name itself."""
    local = build_config(GenerateRequest("a cat", "org/model", output=None, reference=None, steps=3))
    assert local["generator"] == {"name": "diffusers", "params": {"model": "org/model", "steps": 3}}
    assert local["potential"]["criteria"]["realism"] == {"scorer": "vlm", "params": {
        "criterion": "realism", "use_prior": False, "model": "Qwen/Qwen2.5-VL-7B-Instruct"}}
    served = build_config(GenerateRequest("a cat", "org/model", judge="m", judge_url="http://h:1/v1", output=None))
    assert served["potential"]["criteria"]["consistency"]["params"] == {
        "criterion": "consistency", "use_prior": False, "model": "m", "base_url": "http://h:1/v1",
        "api_key_env": "OPENAI_API_KEY"}
