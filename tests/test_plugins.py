import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from eacps import Condition, Recipe, Scorer, Strategy, hookimpl, plugins
from eacps.plugins import UnknownPluginError, build_registry


class ThirdPartyStrategy(Strategy):
    name = "third-party"

    def _ask(self, n):
        return self.fresh_seeds(n)


def _module(name, **hooks):
    mod = types.ModuleType(name)
    for k, v in hooks.items():
        setattr(mod, k, hookimpl(v))
    sys.modules[name] = mod
    return mod


class FakeDist:
    def __init__(self, name):
        self.name = name
        self.metadata = {"Name": name}


def fake_entry_points(monkeypatch, eps):
    """Fake the `eacps` entry-point group, as pluggy's own tests fake distributions."""
    real = importlib.metadata.entry_points

    def entry_points(**kw):
        if kw.get("group") == "eacps":
            return [importlib.metadata.EntryPoint(n, v, "eacps") for n, v, _ in eps]
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    dists = {n: d for n, _, d in eps}
    monkeypatch.setattr(importlib.metadata.EntryPoint, "dist", property(lambda self: FakeDist(dists[self.name])),
                        raising=False)


@pytest.fixture
def third_party(monkeypatch):
    _module("tp_good", register_strategies=lambda register: register(ThirdPartyStrategy))
    _module("tp_dup", register_strategies=lambda register: register(type("Dup", (ThirdPartyStrategy,),
                                                                              {"name": "eacps"})))
    _module("tp_raises", register_scorers=lambda register: (_ for _ in ()).throw(RuntimeError("hook boom")))
    fake_entry_points(monkeypatch, [
        ("good", "tp_good", "eacps-good"),
        ("dup", "tp_dup", "eacps-dup"),
        ("broken", "tp_missing_module", "eacps-broken"),
        ("raises", "tp_raises", "eacps-raises"),
    ])
    yield
    for m in ("tp_good", "tp_dup", "tp_raises"):
        sys.modules.pop(m, None)


def test_third_party_plugin_found_through_entry_points(third_party, monkeypatch):
    monkeypatch.delenv("EACPS_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    reg = build_registry()
    e = reg.entries["strategy"]["third-party"]
    assert e.cls is ThirdPartyStrategy and e.distribution == "eacps-good" and e.plugin == "good"
    assert reg.entries["strategy"]["eacps"].distribution == "eacps"  # built-ins are plugins too
    # every broken plugin is reported by name, the rest keep working
    text = "\n".join(reg.problems)
    assert "'broken' (eacps-broken) failed to load: ModuleNotFoundError" in text
    assert "'dup': strategy name 'eacps' is already registered by 'eacps.strategies.eacps'" in text
    assert "'raises': register_scorers raised RuntimeError: hook boom" in text
    assert reg.entries["strategy"]["eacps"].cls.__module__ == "eacps.strategies.eacps"


def test_autoload_can_be_disabled_or_limited(third_party, monkeypatch):
    monkeypatch.setenv("EACPS_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = build_registry()
    assert "third-party" not in reg.names("strategy") and not reg.problems
    assert {"best-of-n", "eacps", "zero-order"} <= set(reg.names("strategy"))
    monkeypatch.delenv("EACPS_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("EACPS_LOAD_PLUGINS", "eacps-good")
    reg = build_registry()
    assert "third-party" in reg.names("strategy") and not reg.problems


def test_unknown_names_list_the_known_ones():
    with pytest.raises(UnknownPluginError, match=r"unknown strategy 'nope'; known: .*best-of-n.*eacps"):
        build_registry(autoload=False).get("strategy", "nope")


def test_in_process_plugins_register_and_unregister():
    mod = _module("tp_inproc", register_strategies=lambda register: register(ThirdPartyStrategy))
    plugins.register_plugin(mod)
    try:
        assert plugins.get("strategy", "third-party") is ThirdPartyStrategy
    finally:
        plugins.unregister_plugin(mod)
    with pytest.raises(UnknownPluginError):
        plugins.get("strategy", "third-party")


# -- one test per hook: an in-process plugin registers through it, the registry (or CLI) uses it ---------------------
def _through_hook(hook: str, kind: str, key: str, obj, **kw):
    """Register ``obj`` with an in-process plugin implementing ``hook``; return what the registry holds."""
    mod = _module(f"tp_{hook}", **{hook: lambda register: register(obj, **kw)})
    plugins.register_plugin(mod)
    try:
        entry = plugins.get_registry().entries[kind][key]
        assert entry.distribution == "(registered in process)" and entry.plugin == f"tp_{hook}"
        got = plugins.get(kind, key)
    finally:
        plugins.unregister_plugin(mod)
        sys.modules.pop(f"tp_{hook}", None)
    with pytest.raises(UnknownPluginError):
        plugins.get(kind, key)
    return got


def test_hook_register_strategies():
    cls = _through_hook("register_strategies", "strategy", "third-party", ThirdPartyStrategy)
    assert cls is ThirdPartyStrategy
    s = cls(budget=3, seed=0)
    assert s.optimize(lambda r: 1.0).potential == 1.0 and len(s.history) == 3


def test_hook_register_scorers():
    class Brightness(Scorer):
        name = "tp-brightness"

        def score(self, images, condition):
            return [10.0 * float(np.mean(im)) for im in images]

    cls = _through_hook("register_scorers", "scorer", "tp-brightness", Brightness)
    assert cls().score([np.full((2, 2, 1), 0.5, np.float32)], Condition("c")) == [5.0]


def test_hook_register_generators(toy_plugin):
    cls = _through_hook("register_generators", "generator", "toy-again", type("ToyAgain", (toy_plugin.ToyGenerator,),
                                                                              {"name": "toy-again"}))
    out = cls().generate([Recipe.from_seed(0)], Condition("c"))
    assert out[0].image.shape == (4, 4, 1)


def test_hook_register_value_models():
    from eacps.screening import Screen, ScreenParams
    from eacps.testing import value_pairs
    from eacps.value_model import BayesRidge

    cls = _through_hook("register_value_models", "value_model", "tp-ridge", type("TpRidge", (BayesRidge,),
                                                                                 {"name": "tp-ridge"}))
    assert issubclass(cls, BayesRidge) and cls.name == "tp-ridge"
    mod = _module("tp_vm", register_value_models=lambda register: register(cls))
    plugins.register_plugin(mod)
    try:  # a strategy's value_model names it, and the screen fits it
        screen = Screen(ScreenParams(model="tp-ridge"))
        X, y = value_pairs(40)
        for i, (x, v) in enumerate(zip(X, y, strict=True)):
            screen.add(Recipe(seed=i, until=2), x, Recipe(seed=i), float(v))
        assert isinstance(screen.model, cls) and screen.trusted()
    finally:
        plugins.unregister_plugin(mod)
        sys.modules.pop("tp_vm", None)


def test_hook_register_executors():
    from eacps.engine.executor import InlineExecutor

    cls = _through_hook("register_executors", "executor", "tp-inline", type("TpInline", (InlineExecutor,),
                                                                            {"name": "tp-inline"}))
    assert issubclass(cls, InlineExecutor) and cls.name == "tp-inline"


def test_hook_register_task_sets():
    def tasks(n: int, seed: int = 0):
        return [Condition(f"tp{seed}-{i}", prompt="p") for i in range(n)]

    fn = _through_hook("register_task_sets", "tasks", "tp-tasks", tasks, name="tp-tasks")
    assert [c.id for c in fn(2, seed=1)] == ["tp1-0", "tp1-1"]


def test_hook_register_commands(capsys):
    import click

    from eacps.commands.cli import main

    @click.command("tp-hello", help="say hello")
    @click.argument("name")
    def hello(name):
        click.echo(f"hello {name}")

    mod = _module("tp_commands", register_commands=lambda register: register(hello))
    plugins.register_plugin(mod)
    try:
        assert main(["tp-hello", "world"]) == 0
        assert capsys.readouterr().out == "hello world\n"
    finally:
        plugins.unregister_plugin(mod)
        sys.modules.pop("tp_commands", None)


def test_register_hooks_each_add_their_kind(toy_plugin):
    # register_strategies (built-ins), register_scorers and register_generators (the toy plugin)
    reg = plugins.get_registry()
    assert reg.entries["generator"]["toy"].distribution == "(registered in process)"
    assert "toy-pixel" in reg.names("scorer") and "eacps" in reg.names("strategy")


# -- laziness: listing plugins and refusing a config import no model library (issue 21) ------------------------------
HEAVY = ("torch", "diffusers", "transformers", "nevergrad", "optuna", "ray", "scipy")
_PROBE = f"""
import json, sys
from eacps.commands.cli import main
code = main(sys.argv[1:])
print(json.dumps({{"code": code, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}), file=sys.stderr)
"""


def _probe(*argv: str, cwd: Path | None = None) -> dict:
    import json
    import subprocess

    proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=300)
    return {**json.loads(proc.stderr.strip().splitlines()[-1]), "err": proc.stderr, "out": proc.stdout}


@pytest.mark.parametrize("argv", [["--help"], ["plugins"], ["plugins", "--json"]], ids=" ".join)
def test_listing_commands_import_no_model_library(argv):
    got = _probe(*argv)
    assert got["code"] == 0 and got["heavy"] == [], got["heavy"]
    if argv == ["plugins"]:  # every installed plugin is still listed, by name, without importing it
        assert all(n in got["out"] for n in ("diffusers", "vlm", "clip-text", "nevergrad", "optuna", "digits"))


def test_a_config_error_is_one_line_before_any_model_library_is_imported(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((Path(__file__).parents[1] / "examples" / "digits.toml").read_text()
                   .replace('strategy = "eacps"', 'strategy = "eacp"', 1))
    assert 'strategy = "eacp"' in bad.read_text()
    got = _probe("run", str(bad), "--out", str(tmp_path / "run"))
    assert got["code"] == 2 and got["heavy"] == []
    assert "unknown strategy 'eacp'; did you mean 'eacps'?" in got["err"]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_laziness_probe_can_fail():
    """Using a plugin imports its module (the probe above would see torch)."""
    code = ("import sys; from eacps import plugins; plugins.get('generator', 'diffusers'); "
            "plugins.get('strategy', 'nevergrad'); print('torch' in sys.modules, 'nevergrad' in sys.modules)")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]


def test_registration_by_reference_imports_on_first_use(monkeypatch):
    _module("tp_lazy_host", register_strategies=lambda register: register("tp_lazy_target:ThirdPartyStrategy",
                                                                              name="third-party"))
    target = types.ModuleType("tp_lazy_target")
    target.ThirdPartyStrategy = ThirdPartyStrategy
    imported = []
    real_import = importlib.import_module

    def spy(name, *a):
        imported.append(name)
        return target if name == "tp_lazy_target" else real_import(name, *a)

    monkeypatch.setattr(importlib, "import_module", spy)
    reg = build_registry([sys.modules["tp_lazy_host"]], autoload=False)
    try:
        assert "third-party" in reg.names("strategy") and "tp_lazy_target" not in imported
        assert not reg.entries["strategy"]["third-party"].loaded
        assert reg.get("strategy", "third-party") is ThirdPartyStrategy and "tp_lazy_target" in imported
    finally:
        sys.modules.pop("tp_lazy_host", None)


# -- did you mean (issue 21) -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, typo, meant", [("strategy", "best-of", "best-of-n"), ("strategy", "tree_search",
                         "tree-search"), ("executor", "locl", "local")])
def test_unknown_names_suggest_the_closest(kind, typo, meant):
    with pytest.raises(UnknownPluginError) as exc:
        build_registry(autoload=False).get(kind, typo)
    assert f"did you mean {meant!r}?" in str(exc.value) and "known:" in str(exc.value)


def test_no_suggestion_for_a_name_like_none():
    with pytest.raises(UnknownPluginError) as exc:
        build_registry(autoload=False).get("strategy", "qqqqqqq")
    assert "did you mean" not in str(exc.value) and "unknown strategy 'qqqqqqq'; known: " in str(exc.value)


# -- plugins that exit or are interrupted at import are named, the command goes on (issue 23) ------------------------
@pytest.fixture
def rude_plugins(monkeypatch):
    monkeypatch.delenv("EACPS_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("EACPS_LOAD_PLUGINS", raising=False)

    rude = {"exits": SystemExit(3), "interrupts": KeyboardInterrupt()}
    _module("tp_good2", register_strategies=lambda register: register(ThirdPartyStrategy))
    fake_entry_points(monkeypatch, [("exits", "tp_exits", "eacps-exits"), ("interrupts", "tp_interrupts",
                                                                           "eacps-interrupts"),
                                    ("good", "tp_good2", "eacps-good")])
    real_load = importlib.metadata.EntryPoint.load

    def load(self):
        if self.name in rude:
            raise rude[self.name]
        return real_load(self)

    monkeypatch.setattr(importlib.metadata.EntryPoint, "load", load)
    plugins.reset()
    yield
    plugins.reset()
    sys.modules.pop("tp_good2", None)


def test_a_plugin_exiting_or_interrupted_at_import_is_named(rude_plugins):
    reg = build_registry()
    text = "\n".join(reg.problems)
    assert "plugin 'exits' (eacps-exits) failed to load: it called sys.exit(3)" in text
    assert "plugin 'interrupts' (eacps-interrupts) failed to load: it raised KeyboardInterrupt" in text
    assert "third-party" in reg.names("strategy")  # the others keep working


@pytest.mark.parametrize("command", ["plugins", "doctor"])
def test_plugins_and_doctor_go_on_past_a_plugin_that_exits(rude_plugins, capsys, command):
    from eacps.commands.cli import main

    assert main([command]) == 0
    out = capsys.readouterr().out
    assert "'exits' (eacps-exits) failed to load: it called sys.exit(3)" in out
    assert "'interrupts' (eacps-interrupts) failed to load: it raised KeyboardInterrupt" in out
    assert "third-party" in out and "interrupted" not in out.replace("it raised KeyboardInterrupt", "")


def test_a_hook_or_a_lazy_module_that_exits_is_named(tmp_path):
    def exits(register):
        raise SystemExit(4)

    _module("tp_hook_exits", register_scorers=exits,
            register_strategies=lambda register: register("tp_import_exits:X", name="exits-on-import"))
    code = "import sys\nsys.exit(5)\n"
    spec_dir = tmp_path
    (spec_dir / "tp_import_exits.py").write_text(code)
    sys.path.insert(0, str(spec_dir))
    try:
        reg = build_registry([sys.modules["tp_hook_exits"]], autoload=False)
        assert "plugin 'tp_hook_exits': register_scorers called sys.exit(4)" in reg.problems
        with pytest.raises(plugins.PluginLoadError, match=r"strategy 'exits-on-import' \(plugin 'tp_hook_exits'.*"
                           r"tp_import_exits:X: it called sys.exit\(5\)"):
            reg.get("strategy", "exits-on-import")
    finally:
        sys.path.remove(str(spec_dir))
        sys.modules.pop("tp_hook_exits", None)
        sys.modules.pop("tp_import_exits", None)


def test_generate_unknown_model_suggests_the_preset_before_any_import(tmp_path):
    got = _probe("generate", "3", "--model", "digit", "-o", str(tmp_path / "best.png"), "--quiet")
    assert got["code"] == 2 and got["heavy"] == [], got["err"]
    assert "--model: unknown model 'digit'; did you mean 'digits'? known: digits" in got["err"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("old, new, message", [
    ('name = "digits"', 'name = "digit"', "generator.name: unknown generator 'digit'; did you mean 'digits'?"),
    ('scorer = "digits-realism"', 'scorer = "digits-realsm"',
     "potential.criteria.realism.scorer: unknown scorer 'digits-realsm'; did you mean 'digits-realism'?"),
])
def test_a_config_naming_an_unknown_plugin_suggests_the_closest(tmp_path, old, new, message):
    text = (Path(__file__).parents[1] / "examples" / "digits.toml").read_text()
    assert old in text
    (tmp_path / "bad.toml").write_text(text.replace(old, new, 1))
    got = _probe("run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "run"))
    assert got["code"] == 2 and got["heavy"] == [] and message in got["err"], got["err"]


# -- promise 7: listing plugins runs no plugin code (moved from tests/reliability/test_07_plugins.py) ----------------
# Promise 7: listing plugins runs no plugin code beyond import; a plugin that raises on import or registers a
# duplicate name is reported by name and the rest keep working; ``EACPS_LOAD_PLUGINS`` limits what loads.
#
# Three throwaway distributions are built and installed with pip (no index, no network) into a temporary
# ``--target`` directory that only the test's ``eacps plugins`` processes see (``PYTHONPATH``): installing
# into the shared virtualenv would show the broken plugins to every other eacps process on the machine.


PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"

[project.entry-points.eacps]
{ep} = "{pkg}"

[tool.setuptools]
packages = ["{pkg}"]
"""

CANARY = '''
"""Every method eacps could call writes a canary file; importing and registering must call none."""
import os
from pathlib import Path

from eacps import Generator, Scorer, Strategy, hookimpl

DIR = Path(os.environ["EACPS_REL_CANARY_DIR"])


def touch(what):
    (DIR / what).write_text("plugin code ran")


class Canary(Scorer):
    name = "rel-canary"

    def __init__(self, params=None):
        touch("scorer.__init__")
        super().__init__(params)

    def load(self):
        touch("scorer.load")

    def settings(self):
        touch("scorer.settings")
        return {}

    def score(self, images, condition):
        touch("scorer.score")
        return [5.0] * len(images)


class CanaryGenerator(Generator):
    name = "rel-canary-gen"

    def __init__(self, params=None):
        touch("generator.__init__")
        super().__init__(params)

    def load(self):
        touch("generator.load")

    def noise_shape(self, condition):
        touch("generator.noise_shape")
        return (1, 1, 2, 2)

    @property
    def default_steps(self):
        touch("generator.default_steps")
        return 1

    def settings(self):
        touch("generator.settings")
        return {}

    def generate(self, recipes, condition, *, steps=None):
        touch("generator.generate")
        return []


class CanaryStrategy(Strategy):
    name = "rel-canary-strategy"

    def __init__(self, *args, **kwargs):
        touch("strategy.__init__")
        super().__init__(*args, **kwargs)

    def _ask(self, n):
        touch("strategy.ask")
        return self.fresh_seeds(n)


@hookimpl
def register_scorers(register):
    register(Canary)


@hookimpl
def register_generators(register):
    register(CanaryGenerator)


@hookimpl
def register_strategies(register):
    register(CanaryStrategy)
'''

BROKEN = """
raise RuntimeError("rel-broken refuses to import")
"""

DUP = """
from eacps import Scorer, hookimpl


class Dup(Scorer):
    name = "rel-canary"  # taken by eacps-rel-canary (registered first: entry points load by name)

    def score(self, images, condition):
        return [0.0] * len(images)


class Own(Dup):
    name = "rel-dup-own"


@hookimpl
def register_scorers(register):
    register(Dup)
    register(Own)
"""

DISTS = {  # distribution -> (entry point, package, module source)
    "eacps-rel-canary": ("relcanary", "rel_canary", CANARY),
    "eacps-rel-broken": ("relbroken", "rel_broken", BROKEN),
    "eacps-rel-dup": ("reldup", "rel_dup", DUP),
}


def eacps_plugins(site: Path, canaries: Path, allow: str | None) -> tuple[dict, str]:
    """``eacps plugins --json`` and ``eacps plugins`` in fresh processes that see ``site``."""
    env = {k: v for k, v in os.environ.items() if k not in ("EACPS_LOAD_PLUGINS", "EACPS_DISABLE_PLUGIN_AUTOLOAD")}
    env.update(PYTHONPATH=str(site), EACPS_REL_CANARY_DIR=str(canaries))
    if allow is not None:
        env["EACPS_LOAD_PLUGINS"] = allow
    script = (
        "import sys; from eacps.commands.cli import main; main(['plugins', '--json']); print('=====', flush=True);"
        " sys.exit(main(['plugins']))"
    )
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    js, text = p.stdout.split("=====\n")
    return json.loads(js), text


@pytest.mark.slow
def test_listing_runs_no_plugin_code_broken_plugins_named_allow_list(tmp_path, figures):
    src, site, canaries = tmp_path / "src", tmp_path / "site", tmp_path / "canaries"
    canaries.mkdir()
    for dist, (ep, pkg, code) in DISTS.items():
        (src / dist / pkg).mkdir(parents=True)
        (src / dist / "pyproject.toml").write_text(PYPROJECT.format(dist=dist, ep=ep, pkg=pkg))
        (src / dist / pkg / "__init__.py").write_text(textwrap.dedent(code))
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    try:
        p = subprocess.run(
            [*pip, "--target", str(site), *(str(src / d) for d in DISTS)], capture_output=True, text=True, timeout=180
        )
        assert p.returncode == 0, p.stderr[-2000:]
        assert {d.name.split("-")[0] for d in site.glob("*.dist-info")} == {
            "eacps_rel_canary",
            "eacps_rel_broken",
            "eacps_rel_dup",
        }

        # everything installed loads: the canary plugin is listed, nothing of it ran, the broken ones are named
        js, text = eacps_plugins(site, canaries, None)
        listed = {(e["kind"], e["name"]): e["distribution"] for e in js["plugins"]}
        for kind, name in (
            ("scorer", "rel-canary"),
            ("generator", "rel-canary-gen"),
            ("strategy", "rel-canary-strategy"),
        ):
            assert listed[(kind, name)] == "eacps-rel-canary"
            assert name in text
        assert listed[("scorer", "rel-dup-own")] == "eacps-rel-dup"  # the duplicate's plugin keeps its other name
        assert listed[("generator", "digits")] == "eacps-digits"  # the other installed plugins keep working
        assert listed[("strategy", "eacps")] == "eacps"
        problems = "\n".join(js["problems"])
        broken = "plugin 'relbroken' (eacps-rel-broken) failed to load: RuntimeError: rel-broken refuses to import"
        dup = "plugin 'reldup': scorer name 'rel-canary' is already registered by 'relcanary'; ignored"
        assert broken in problems and dup in problems, problems
        assert f"problem: {broken}" in text and f"problem: {dup}" in text  # the human listing names them too
        assert list(canaries.iterdir()) == []  # no __init__, load, settings, score, generate, ask ran

        # the allow-list: only the named plugin (by entry-point or distribution name) loads
        for allow in ("relcanary", "eacps-rel-canary"):
            js, text = eacps_plugins(site, canaries, allow)
            dists = {e["distribution"] for e in js["plugins"]}
            assert dists == {"eacps", "eacps-rel-canary"}, dists
            assert js["problems"] == [] and "problem:" not in text and "relbroken" not in text
        js, _ = eacps_plugins(site, canaries, "relbroken")  # asking for the broken one only reports it
        assert {e["distribution"] for e in js["plugins"]} == {"eacps"}
        assert js["problems"] == [broken]
        assert list(canaries.iterdir()) == []

        # the canaries are live: instantiating the scorer (what a run does) writes one
        env = {**os.environ, "PYTHONPATH": str(site), "EACPS_REL_CANARY_DIR": str(canaries)}
        subprocess.run([sys.executable, "-c", "import rel_canary; rel_canary.Canary()"], env=env, check=True)
        assert [c.name for c in canaries.iterdir()] == ["scorer.__init__"]
    finally:
        shutil.rmtree(site, ignore_errors=True)  # the "uninstall": nothing was installed anywhere else
    figures("7-plugins", listings=5, throwaway_distributions=3, canaries_touched=0, problems_named=2)
