"""The documentation: builds with ``mkdocs build --strict``, documents every hook, and the generated
CLI and configuration references match the code."""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eacps import hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _gen():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def hook_names() -> list[str]:
    return [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "eacps_spec")]


def test_there_are_hooks_to_document():
    assert {"register_strategies", "register_scorers", "register_generators"} <= set(hook_names())


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_a_section_in_the_plugin_guide(hook):
    text = (DOCS / "plugins.md").read_text()
    m = re.search(rf"^## {re.escape(hook)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert m, f"docs/plugins.md has no '## {hook}' section: document the hook there"
    assert f"`{hook}(register)`" in m.group(1), f"the '## {hook}' section must show the call `{hook}(register)`"


def test_reference_pages_are_up_to_date():
    gen = _gen()
    for name, fn in gen.PAGES.items():
        assert (DOCS / name).read_text() == fn(), f"docs/{name} is stale: run `python docs/gen_reference.py`"


def test_reference_covers_every_config_field_and_builtin_strategy_param():
    from eacps import config
    from eacps.strategies.eacps import EACPSParams

    text = (DOCS / "reference.md").read_text()
    for model in (config.RunConfig, config.SearchConfig, config.ConditionConfig, config.TasksConfig, EACPSParams):
        for field in model.model_fields:
            assert f"| `{field}` |" in text, f"{model.__name__}.{field} is missing from docs/reference.md"


def test_cli_help_in_docs_matches_the_command():
    gen = _gen()
    blocks = gen.help_blocks((DOCS / "cli.md").read_text())
    commands = ["eacps"] + [f"eacps {c}" for c in gen.subcommands()]
    assert sorted(blocks) == sorted(commands)
    env = {**os.environ, "COLUMNS": gen.COLUMNS}
    eacps = Path(sys.executable).with_name("eacps")
    for cmd in ("eacps", "eacps demo", "eacps compare"):  # the real console script, end to end
        out = subprocess.run(
            [str(eacps), *cmd.split()[1:], "--help"], env=env, capture_output=True, text=True, check=True
        ).stdout
        assert out.rstrip() == blocks[cmd], f"`{cmd} --help` differs from docs/cli.md"


def test_mkdocs_build_strict(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    site = tmp_path / "site"
    for page in ("concepts", "cli", "reference", "plugins", "strategies", "findings", "notebooks", "getting-started"):
        assert (site / page / "index.html").exists(), page
    # every plugin distribution's README is a page of the site, its links pointing into the site
    readmes = [*ROOT.glob("plugins/*/README.md")]
    assert len(readmes) >= 8
    for readme in readmes:
        page = (site / "packages" / readme.parent.name / "index.html").read_text()
        assert readme.read_text().splitlines()[0].lstrip("# ") in page
        assert "../../README.md" not in page
    html = (site / "reference" / "index.html").read_text()
    assert "<table>" in html and 'id="strategies"' in html  # tables rendered, anchors used by other pages exist
    concepts = (site / "concepts" / "index.html").read_text()
    section = concepts.split('<h2 id="the-engines-parts"', 1)[1]
    diagram = re.search(r"<pre[^>]*>(?:<span></span>)?<code[^>]*>(.*?)</code></pre>", section, re.S)
    assert diagram is not None, "the engine's parts are drawn as a text diagram (readable offline, no script)"
    # the diagram names the parts as they are in the code: every eacps.<module> it mentions exists
    named = set(re.findall(r"eacps(?:\.\w+)+", diagram.group(1)))
    assert {"scheduler", "planner", "batch", "executor", "store", "meter", "calibrator"} <= {
        m.rsplit(".", 1)[1] for m in named}
    assert all(importlib.util.find_spec(m) is not None for m in named), named


def test_the_site_loads_nothing_from_another_host(tmp_path):
    """Every script, stylesheet and image of the built site is served from the site itself (it reads offline)."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"), "-d",
                    str(site)], check=True, capture_output=True, cwd=ROOT)
    remote = []
    for page in site.rglob("*.html"):
        for tag in re.findall(r"<(?:script|link|img)\b[^>]*>", page.read_text()):
            src = re.search(r'(?:src|href)="([^"]+)"', tag)
            if src and re.match(r"(https?:)?//", src.group(1)):
                remote.append(f"{page.relative_to(site)}: {src.group(1)}")
    assert not remote, remote


# -- the maps (docs/index.md, README, dotted names in the pages) stay true to the code ---------------------------
def _index_row(title: str) -> str:
    return next(line for line in (DOCS / "index.md").read_text().splitlines() if line.startswith(f"| [{title}]"))


def test_the_index_lists_every_hook():
    assert set(re.findall(r"`(register_\w+)`", _index_row("Writing plugins"))) == set(hook_names())


def test_the_index_lists_every_strategy_of_the_repository():
    from eacps import plugins

    reg = plugins.get_registry()
    listed = set(re.findall(r"`([\w-]+)`", _index_row("Strategy zoo")))
    builtin = {n for n, e in reg.entries["strategy"].items() if e.distribution == "eacps"}
    assert builtin <= listed, f"docs/index.md's strategy zoo lacks {sorted(builtin - listed)}"
    assert listed <= set(reg.entries["strategy"]), f"not registered: {sorted(listed - set(reg.entries['strategy']))}"


def dotted_names(text: str) -> list[str]:
    """Every ```eacps.module.Name``` (or ``...()``) cited in ``text``; file names (``eacps.py``) are not names."""
    return [m for m in re.findall(r"`(eacps(?:\.[A-Za-z_]\w*)+)(?:\(\))?`", text)
            if m.rsplit(".", 1)[1] not in ("py", "toml", "md")]


def cited_wrongly(ref: str) -> str | None:
    """Why ``eacps.a.b.Name`` does not name what it says (None when it does): the longest importable module prefix
    must hold the rest, and a class or function must be *defined* in the module cited, not only imported there."""
    parts = ref.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except ImportError:
            continue
    module = ".".join(parts[:i])
    for p in parts[i:]:
        if not hasattr(obj, p):
            return f"{module} has no {p!r}"
        obj = getattr(obj, p)
    defined = getattr(obj, "__module__", module)
    if i == len(parts) - 1 and module != "eacps" and (inspect.isclass(obj) or inspect.isfunction(obj)) \
            and defined != module:
        return f"defined in {defined}, not {module}"
    return None


def test_pages_cite_the_modules_that_define_what_they_name():
    pages = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]
    bad = [f"{p.relative_to(ROOT)}: {ref}: {why}" for p in pages for ref in dotted_names(p.read_text())
           if (why := cited_wrongly(ref)) is not None]
    assert not bad, "\n".join(bad)


def test_a_wrong_citation_is_caught():
    assert dotted_names("(`eacps.engine.engine.Cost`), `eacps.py`, `eacps.api.run_config()`") == [
        "eacps.engine.engine.Cost", "eacps.api.run_config"]
    # imported there only
    assert cited_wrongly("eacps.engine.engine.Cost") == "defined in eacps.engine.meter, not eacps.engine.engine"
    assert cited_wrongly("eacps.engine.meter.Nope") == "eacps.engine.meter has no 'Nope'"
    assert cited_wrongly("eacps.engine.meter.Cost") is None and cited_wrongly("eacps.Recipe") is None
