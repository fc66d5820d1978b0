import hashlib
import json
import socket
from pathlib import Path

import configs
import pytest
from runs import candidates, count, one_line_error, rows, run_config, toy_config

from eacps import Status
from eacps.commands.cli import main


def write(tmp_path: Path, cfg: dict) -> Path:
    return configs.write(tmp_path / "cfg.toml", cfg)


def test_run_show_report(tmp_path, toy_plugin, capsys):
    cfg = write(tmp_path, configs.toy())
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert (count(out, role="prior"), count(out, role="search"), count(out)) == (2, 40, 42)
    assert main(["show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "a/eacps/b20/s0" in text and "b/eacps/b20/s0" in text
    assert (out / "report.html").exists()
    assert main(["report", str(out), "--output", str(tmp_path / "r.html")]) == 0
    assert 'id="summary"' in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("edits, expected", [
    ({"search.strategy": "nope"},
     "search.strategy: unknown strategy 'nope'; known: adaptive, best-of-n, branched-best-of-n, eacps"),
    ({"search.budget": -1}, "search.budget: Input should be greater than or equal to 1 (got -1)"),
    ({"search.budget": "ten"}, "search.budget: Input should be a valid integer"),
    ({"search.params": {"warp": 1}}, "search.params.warp: unknown parameter; allowed: k_global, m, k_local, "
                                     "neighborhood"),
    ({"search.params": {"neighborhood": "far"}},
     "search.params.neighborhood: must be one of 'seed-offset' or 'pcn' (got 'far')"),
    ({"potential.criteria.realism.weight": 0.0, "potential.criteria.consistency.weight": 0.0},
     "weights are all zero"),
    ({"potential.criteria.consistency.scorer": "nope"},
     "potential.criteria.consistency.scorer: unknown scorer 'nope'"),
    ({"conditions.0": {"id": "a", "reference": "missing.png"}}, "conditions.0.reference: cannot read image"),
    ({"generator.params": {"steps": 0}}, "generator.params.steps: Input should be greater than or equal to 1 (got 0)"),
    ({"colour": "red"}, "colour: unknown field"),
    ({"potential.criteria.consistency.colour": "red"}, "potential.criteria.consistency.colour: unknown field"),
    ({"conditions.1.id": "a"}, "condition ids must be unique; repeated: a"),
    ({"search.strategy": "adaptive", "search.params": {"strategy": "eacps", "params": {"warp": 1}}},
     "error: search.params.params.warp: unknown parameter; allowed: k_global"),
    ({"search.strategy": "adaptive", "search.params": {"strategy": "nope"}},
     "error: search.params.strategy: unknown strategy 'nope'; known: adaptive"),
    ({"search.strategy": "adaptive", "search.params": {"strategy": "adaptive"}},
     "error: search.params.strategy: adaptive cannot wrap itself"),
    ({"search.strategy": "adaptive", "search.params": {"strategy": "fk-steering"}},
     "error: search.params.strategy: adaptive cannot wrap 'fk-steering', which spends denoising steps"),
])
def test_config_errors_are_one_line_with_exit_2(tmp_path, toy_plugin, capsys, edits, expected):
    cfg = configs.toy()
    for where, value in edits.items():
        cfg = configs.edit(cfg, where, value)
    assert cfg != configs.toy()
    assert main(["run", str(write(tmp_path, cfg)), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert expected in err, err
    assert not (tmp_path / "run").exists()


def test_scorer_requirements_are_checked_before_any_compute(tmp_path, toy_plugin, capsys):
    cfg = configs.edit(configs.toy(), "potential.criteria.consistency.scorer", "toy-needs-prompt")
    cfg = configs.edit(cfg, "conditions.1", {"id": "b"})  # no prompt
    assert main(["run", str(write(tmp_path, cfg)), "--out", str(tmp_path / "run")]) == 2
    assert "conditions.1 ('b'): lacks prompt, required by scorer 'toy-needs-prompt'" in capsys.readouterr().err


def test_a_bad_config_writes_nothing_to_an_existing_run(tmp_path, toy_plugin, capsys):
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path, configs.toy())), "--out", str(out), "--quiet"]) == 0
    digest = hashlib.sha256((out / "store.sqlite").read_bytes()).hexdigest()
    listing = sorted(p.name for p in out.rglob("*"))
    for budget in (-3, 32):
        assert main(["run", str(write(tmp_path, configs.toy(budget=budget))), "--out", str(out), "--quiet"]) == 2
    assert "holds a run of a different config" in capsys.readouterr().err
    assert hashlib.sha256((out / "store.sqlite").read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in out.rglob("*")) == listing


def test_plugins_command_lists_distributions(toy_plugin, capsys):
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    kinds = {(p["kind"], p["name"]): p["distribution"] for p in data["plugins"]}
    assert kinds[("strategy", "eacps")] == "eacps"
    assert kinds[("generator", "toy")] == "(registered in process)"
    caps = {(p["kind"], p["name"]): p.get("capabilities") for p in data["plugins"]}
    assert caps[("generator", "digits")] == {"noise_recipes": "yes", "stepping": "yes"}
    assert caps[("generator", "toy")] == {"noise_recipes": "yes", "stepping": "depends on params"}  # params decide
    assert caps[("generator", "diffusers")] == {"noise_recipes": "depends on params", "stepping": "depends on params"}
    assert caps[("strategy", "eacps")] is None and caps[("tasks", "digits")] is None  # generators only
    assert main(["plugins"]) == 0
    rows = {line.split()[1]: line for line in capsys.readouterr().out.splitlines() if line.startswith("generator")}
    assert rows["digits"].endswith("noise_recipes, stepping")
    assert rows["toy"].endswith("noise_recipes, stepping (depends on params)")


def test_help_mentions_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "run", "show", "report", "compare", "landscape", "plugins", "generate"):
        assert f"\n  {cmd} " in out, cmd
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("eacps ")


@pytest.mark.parametrize("argv, expected", [
    (["nope"], "No such command 'nope'"),
    (["run"], "run: Missing argument 'CONFIG'"),
    (["demo", "--tasks", "0"], "demo: Invalid value for '--tasks': 0 is not in the range x>=1"),
    (["demo", "--budget", "-3"], "demo: Invalid value for '--budget': -3 is not in the range x>=1"),
    (["show", "--colour"], "show: No such option '--colour'"),
])
def test_usage_errors_are_one_line_with_exit_2(tmp_path, monkeypatch, capsys, argv, expected):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("eacps: error: ") and expected in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written (demo's default --out is ./eacps-demo)


def test_register_commands_adds_a_plugin_command(tmp_path, capsys):
    """A plugin adds a subcommand through the hook (both forms: the register callback and the click group);
    it is listed by --help and runs; a plugin command cannot replace a built-in one."""
    import types

    import click

    from eacps import hookimpl, plugins

    @click.command("hello", help="say hello")
    @click.argument("name")
    def hello(name):
        click.echo(f"hello {name}")

    def group_form(cli):
        @cli.command("shout", help="shout")
        def shout():
            click.echo("HEY")

    mod = types.ModuleType("eacps_test_commands")
    mod.register_commands = hookimpl(lambda register: (register(hello), register(click.Command("run"))))
    mod2 = types.ModuleType("eacps_test_commands_group")
    mod2.register_commands = hookimpl(group_form)
    plugins.register_plugin(mod)
    plugins.register_plugin(mod2)
    try:
        assert main(["hello", "world"]) == 0
        assert capsys.readouterr().out == "hello world\n"
        assert main(["shout"]) == 0 and capsys.readouterr().out == "HEY\n"
        assert main(["--help"]) == 0
        out = capsys.readouterr().out
        assert "hello" in out and "say hello" in out and "shout" in out
        assert main(["plugins"]) == 0
        assert "command name 'run' is already taken; ignored" in capsys.readouterr().out
        cfg = write(tmp_path, {"nonsense": 1})
        assert main(["run", str(cfg)]) == 2  # still the built-in run
        assert "generator: Field required" in capsys.readouterr().err
    finally:
        plugins.unregister_plugin(mod)
        plugins.unregister_plugin(mod2)


def test_register_task_sets_gives_conditions_to_configs(tmp_path, toy_plugin):
    cfg = configs.toy()
    del cfg["conditions"]
    cfg["tasks"] = {"name": "toy", "n": 3}
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path, cfg)), "--out", str(out), "--quiet"]) == 0
    conds = {c.condition for c in candidates(out)}
    assert conds == {"toy0-0", "toy0-1", "toy0-2"}


def test_an_unreadable_model_path_is_a_config_error(tmp_path, toy_plugin, capsys):
    cfg = configs.edit(configs.toy(), "generator", {"name": "diffusers",
                                                    "params": {"model": f"{tmp_path}/no-such-model"}})
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path, cfg)), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eacps: error: generator.params: diffusers cannot load its model") and "\n" not in err
    assert not out.exists()


def test_img2img_steps_that_run_no_denoising_step_are_a_config_error(tmp_path, toy_plugin, capsys):
    """int(steps x strength) = 0 img2img steps is refused before any compute (it used to FAIL every candidate
    with a reshape error from inside the VAE)."""
    import numpy as np
    from eacps_diffusers.tiny import tiny_pipeline
    from PIL import Image

    tiny_pipeline("sd-img2img").save_pretrained(tmp_path / "model", safe_serialization=True)
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(tmp_path / "ref.png")
    params = {"model": str(tmp_path / "model"), "pipeline_class": "StableDiffusionImg2ImgPipeline", "steps": 1,
              "device": "cpu", "call_kwargs": {"strength": 0.6}}
    cfg = configs.edit(configs.toy(), "generator", {"name": "diffusers", "params": params})
    cfg = configs.edit(cfg, "conditions.0.reference", "ref.png")
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path, cfg)), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' own warnings
    assert err == ("eacps: error: generator.params.steps: StableDiffusionImg2ImgPipeline runs int(steps x strength) "
                   "= int(1 x 0.6) = 0 denoising steps; use steps >= 2 or a larger call_kwargs.strength")
    assert not out.exists()


def test_digits_conditions_are_checked_before_any_compute(tmp_path, capsys):
    cfg = configs.digits("eacps", 20, criteria=("identity",))
    del cfg["search"]
    cfg = configs.edit(cfg, "conditions.0", {"id": "no-label", "extra": {"reference_index": 59}})
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path, cfg)), "--out", str(out)]) == 2
    assert "conditions.0 ('no-label'): condition 'no-label': the digits testbed needs class_label" in \
        capsys.readouterr().err
    cfg = configs.edit(cfg, "conditions.0", {"id": "no-label", "class_label": 3})  # no reference
    assert main(["run", str(write(tmp_path, cfg)), "--out", str(out)]) == 2
    assert "conditions.0 ('no-label')" in capsys.readouterr().err and not out.exists()


def test_the_documented_example_config_runs(tmp_path):
    example = Path(__file__).parents[1] / "examples" / "digits.toml"
    assert main(["run", str(example), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert sum(c.status is Status.OK for c in candidates(tmp_path / "run", role="search")) == 40


def test_standardized_criteria_from_config(tmp_path, toy_plugin):
    cfg = configs.edit(configs.toy(), "potential.criteria.realism.calibration", {"kind": "standardize"})
    cfg = configs.edit(cfg, "potential.calibration_samples", 5)
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path, cfg)), "--out", str(out), "--quiet"]) == 0
    assert count(out, role="calibration") == 2 * 5
    assert sum(c.status is Status.OK for c in candidates(out, role="search")) == 40


def test_cost_model_configured_and_measured(tmp_path, toy_plugin, capsys):
    from eacps.analysis.summary import summarize_store
    from eacps.store import read_only

    cfg = configs.edit(configs.toy(), "cost", {"seconds_per_step": 0.01,
                                               "seconds_per_call": {"realism": 0.1, "consistency": 0.2}})
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path, cfg)), "--out", str(out), "--quiet"]) == 0
    assert "cost model: config" in capsys.readouterr().out
    store = read_only(out)
    summary = summarize_store(store)
    c = summary["strategies"]["eacps"]["cost_per_search"]
    assert c["steps"] == 200 and c["scorer_calls"] == {"realism": 20, "consistency": 20}
    assert c["seconds"] == pytest.approx(200 * 0.01 + 20 * 0.1 + 20 * 0.2)
    units = store.get_meta("unit_costs")  # measured as well, whatever the config says
    store.close()
    # every computed candidate counts, the two priors included
    assert units["steps"] == 2 * (200 + 10) and units["calls"] == {"realism": 42, "consistency": 42}
    # without [cost], the figure comes from the measured unit costs
    out2 = tmp_path / "run2"
    assert main(["run", str(write(tmp_path, configs.toy())), "--out", str(out2), "--quiet"]) == 0
    store = read_only(out2)
    s2 = summarize_store(store)
    store.close()
    assert s2["cost_model"]["kind"] == "measured" and s2["cost_model"]["seconds_per_step"] > 0
    assert s2["strategies"]["eacps"]["cost_per_search"]["seconds"] > 0


def test_preview_potential_cascade_from_config(tmp_path, toy_plugin):
    cfg = configs.edit(configs.toy(strategy="multi-fidelity"), "generator.params", {"stepping": True})
    cfg = configs.edit(cfg, "preview_potential", {"criteria": {"cheap": {"scorer": "toy-mean", "weight": 1.0}}})
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path, cfg)), "--out", str(out), "--quiet"]) == 0
    searched = candidates(out, role="search")
    previews = [c.scores for c in searched if c.recipe.is_preview]
    finals = [c.scores for c in searched if not c.recipe.is_preview]
    assert previews and all(set(s) == {"cheap"} for s in previews)  # screened by the cheap scorer only
    assert finals and all(set(s) == {"realism", "consistency"} for s in finals)


@pytest.mark.parametrize("raised, code, text", [
    ("ctrl-c", 130, "interrupted; rerun the same command to resume"),
    ("sigterm", 143, "interrupted by SIGTERM"),
])
def test_an_interrupted_command_is_one_line_with_its_exit_code(capsys, raised, code, text):
    import signal
    import types

    import click

    from eacps import hookimpl, plugins
    from eacps.errors import Interrupted

    @click.command("stop")
    def stop():
        raise KeyboardInterrupt if raised == "ctrl-c" else Interrupted(signal.SIGTERM)

    mod = types.ModuleType("eacps_test_stop")
    mod.register_commands = hookimpl(lambda register: register(stop))
    plugins.register_plugin(mod)
    try:
        assert main(["stop"]) == code
    finally:
        plugins.unregister_plugin(mod)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("eacps: error: ") and text in err, repr(err)


# -- eacps check, generate --dry-run, one download policy (issue 21) -------------------------------------------------
SDXL = "stabilityai/stable-diffusion-xl-base-1.0"


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    """No weights anywhere: an empty Hugging Face cache, offline."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_generate_dry_run_writes_a_config_that_check_accepts_without_weights(tmp_path, capsys, monkeypatch,
                                                                             empty_hf_cache):
    monkeypatch.chdir(tmp_path)
    rc = main(["generate", "a lighthouse at dusk", "--model", SDXL, "--dry-run", "--save-config", "x.toml"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert f"hf download {SDXL}" in out and "hf download Qwen/Qwen2.5-VL-7B-Instruct" in out
    assert "size unknown offline" in out and "nothing loaded" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf-cache", "x.toml"]  # no image, no store
    assert list(empty_hf_cache.iterdir()) == []  # nothing fetched
    assert main(["check", "x.toml"]) == 0
    out = capsys.readouterr().out
    assert f"x.toml is valid; before it runs, provide: model {SDXL}, model Qwen/Qwen2.5-VL-7B-Instruct" in out


def test_dry_run_of_a_served_judge_contacts_nothing(tmp_path, capsys, monkeypatch, empty_hf_cache):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EACPS_TEST_UNSET_KEY", raising=False)
    args = ["generate", "a red fox", "--model", "black-forest-labs/FLUX.1-schnell", "--steps", "4", "--judge-url",
            f"http://127.0.0.1:{configs.unused_port()}/v1", "--judge", "qwen", "--judge-key-env",
            "EACPS_TEST_UNSET_KEY"]
    assert main([*args, "--dry-run"]) == 0
    assert "not contacted" in capsys.readouterr().out
    assert main(args) == 2  # for real, the unset key is refused first
    assert "EACPS_TEST_UNSET_KEY is not set" in capsys.readouterr().err


def test_check_validates_plugins_params_and_capabilities_in_one_line(tmp_path, capsys):
    base = configs.digits("eacps", 20)
    assert main(["check", str(write(tmp_path, base))]) == 0
    assert "every model and file it names is here" in capsys.readouterr().out
    for edits, message in [
        ({"generator.params": {"stepz": 3}}, "generator.params.stepz: unknown parameter"),
        ({"potential.criteria.realism.scorer": "digits-realsm"}, "did you mean 'digits-realism'?"),
        ({"search.params": {"k_global": 0}}, "search.params.k_global"),
    ]:
        cfg = base
        for path, value in edits.items():
            cfg = configs.edit(cfg, path, value)
        assert main(["check", str(write(tmp_path, cfg))]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("eacps: error: ") and message in err and "\n" not in err, err


def test_check_names_a_strategy_the_generator_cannot_serve(tmp_path, capsys, toy_plugin):
    cfg = configs.toy(strategy="fk-steering", budget=4)
    assert main(["check", str(write(tmp_path, cfg))]) == 2
    err = capsys.readouterr().err
    assert "search.strategy: strategy 'fk-steering' needs stepping, which generator 'toy' does not offer" in err


def test_one_download_policy_for_generator_and_scorers():
    """Generators and model-loading scorers default to local files only; --allow-download lifts it for both."""
    from eacps_clip import ClipTextParams, ImageSimilarityParams
    from eacps_diffusers import DiffusersParams
    from eacps_vlm import VLMParams

    from eacps.commands.generate import GenerateRequest, build_config

    for params in (DiffusersParams(model="a/b"), VLMParams(), ClipTextParams(), ImageSimilarityParams()):
        assert params.local_files_only is True, type(params).__name__
    for allow in (False, True):
        cfg = build_config(GenerateRequest("a cat", SDXL, allow_download=allow))
        flags = [cfg["generator"]["params"].get("local_files_only", True)] + [
            c["params"].get("local_files_only", True) for c in cfg["potential"]["criteria"].values()]
        assert flags == [not allow] * 3


def test_a_model_not_downloaded_is_one_uncut_line_with_the_hf_download_command(tmp_path, capsys, monkeypatch,
                                                                              empty_hf_cache):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "a lighthouse", "--model", SDXL, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "…" not in err and err.count("cannot load") == 0, err
    assert err.endswith("or local_files_only = false in the config)") and f"with: hf download {SDXL} (" in err
    assert "--allow-download" in err


def test_a_scorer_model_not_downloaded_names_its_criterion(tmp_path, capsys, empty_hf_cache):
    cfg = configs.edit(configs.digits("best-of-n", 2), "potential.criteria.realism",
                       {"scorer": "clip-text", "params": {"model": "openai/clip-vit-base-patch32", "device": "cpu"}})
    cfg = configs.edit(cfg, "conditions.0.prompt", "a three")
    assert main(["run", str(write(tmp_path, cfg)), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eacps: error: potential.criteria.realism.params.model: 'openai/clip-vit-base-patch32' is "
                          "not in the Hugging Face cache") and "hf download openai/clip-vit-base-patch32 (" in err
    assert not (tmp_path / "run").exists()


# -- promise 20: a run that cannot produce anything (moved from tests/reliability/test_20_failed_runs.py) ------------
# Promise 20: a run that cannot produce anything says so. A run whose every candidate FAILED exits 1 with one
# line (not 0 with an empty table); a judge without its API key, or whose endpoint cannot be reached, is a
# configuration error (exit 2, one line) before the first batch: nothing is generated, nothing written.


def test_every_candidate_failed_exits_1(tmp_path, toy_plugin, capsys, figures):
    cfg = toy_config(tmp_path, gen_params={"fail_all": True}, strategy="best-of-n", budget=6)
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert any("every candidate FAILED" in line for line in err) and not any("Traceback" in x for x in err)
    got = rows(out, "status, reason")
    assert len(got) == 2 * (1 + 6) and all(s == "FAILED" and "toy generator exploded" in r for s, r in got)
    figures("20-failed-runs", all_failed_runs=1, exit_code_1=1, candidates_checked=len(got))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the with block ends: nothing listens there


def test_a_judge_without_key_or_endpoint_is_refused_before_the_first_batch(tmp_path, toy_plugin, capsys,
                                                                           monkeypatch, figures):
    monkeypatch.delenv("EACPS_REL_MISSING_KEY", raising=False)
    monkeypatch.setenv("EACPS_REL_KEY", "k-not-secret")
    log = tmp_path / "gen.log"
    cases = {
        "missing key": ({"api_key_env": "EACPS_REL_MISSING_KEY", "max_retries": 0},
                        "openai-judge is not ready: RuntimeError: openai-judge: environment variable "
                        "EACPS_REL_MISSING_KEY is not set"),
        "unreachable": ({"base_url": f"http://127.0.0.1:{_closed_port()}/v1", "api_key_env": "EACPS_REL_KEY",
                         "timeout": 2.0, "max_retries": 0},
                        "openai-judge is not ready: RuntimeError: openai-judge: cannot reach http://127.0.0.1:"),
    }
    for i, (params, expect) in enumerate(cases.values()):
        cfg = toy_config(tmp_path, f"cfg{i}.toml", gen_params={"log": str(log)}, scorer="openai-judge",
                         scorer_params=params, strategy="best-of-n", budget=6)
        out = tmp_path / f"run{i}"
        assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("eacps: error: potential.criteria.consistency.params: "), err
        assert expect in err and "k-not-secret" not in err, err
        assert not out.exists() and not log.exists()  # nothing written, nothing generated
    figures("20-failed-runs", judges_refused_before_compute=len(cases), candidates_generated=0)


# -- one-line errors and exit codes of eacps run (moved from tests/test_cli_defects.py) ------------------------------
DIGITS = {
    "generator": {"name": "digits", "params": {"steps": 15}},
    "potential": {"criteria": {"identity": {"scorer": "digits-identity"}}},
    "search": {"strategy": "best-of-n", "budget": 2, "batch_size": 2},
    "conditions": [{"id": "three", "class_label": 3, "extra": {"reference_index": 59}}],
}


@pytest.mark.parametrize("path, value, expected", [
    ("conditions.0.extra.reference_index", "abc", "conditions.0 ('three'): reference index must be an int, got str"),
    ("generator.params.device", "cuda:7", "generator.params.device: no such device 'cuda:7'"),
    ("generator.params.device", "cuda:x", "generator.params.device: no such device 'cuda:x'"),
])
def test_plugin_input_errors_are_one_line(tmp_path, capsys, path, value, expected):
    assert run_config(configs.write(tmp_path / "c.toml", configs.edit(DIGITS, path, value)), tmp_path / "run") == 2
    assert expected in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_out_pointing_at_a_file_is_one_line(tmp_path, toy_plugin, capsys):
    f = tmp_path / "file"
    f.write_text("mine")
    cfg = configs.write(tmp_path / "c.toml", configs.toy())
    for argv in (["run", str(cfg), "--out", str(f)], ["demo", "--out", str(f)],
                 ["landscape", str(tmp_path / "c.toml"), "--out", str(f)]):
        assert main(argv) == 2
        assert "Invalid value for '--out'" in one_line_error(capsys) and f.read_text() == "mine"


def test_output_is_the_default_run_directory(tmp_path, toy_plugin, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfgs").mkdir()
    cfg = configs.write(tmp_path / "cfgs" / "c.toml", {**configs.toy(budget=4), "output": "my-run"})
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert (tmp_path / "cfgs" / "my-run" / "store.sqlite").exists() and not (tmp_path / "runs").exists()


def test_every_candidate_failed_exits_1_and_prints_the_table(tmp_path, toy_plugin, capsys):
    out = tmp_path / "run"
    cfg = configs.edit(configs.toy(budget=4), "generator.params", {"fail_all": True})
    assert run_config(configs.write(tmp_path / "c.toml", cfg), out) == 1
    captured = capsys.readouterr()
    assert "every candidate FAILED" in captured.err and captured.err.count("\n") == 1
    assert "100.0%" in captured.out  # the table is still printed
