"""Promise 7: listing plugins runs no plugin code beyond import; a plugin that raises on import or registers a
duplicate name is reported by name and the rest keep working; ``EACPS_LOAD_PLUGINS`` limits what loads.

Three throwaway distributions are built and installed with pip (no index, no network) into a temporary
``--target`` directory that only the test's ``eacps plugins`` processes see (``PYTHONPATH``): installing
into the shared virtualenv would show the broken plugins to every other eacps process on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

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
        "import sys; from eacps.cli import main; main(['plugins', '--json']); print('=====', flush=True);"
        " sys.exit(main(['plugins']))"
    )
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    js, text = p.stdout.split("=====\n")
    return json.loads(js), text


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
