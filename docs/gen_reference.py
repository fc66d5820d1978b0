"""Generate docs/reference.md (config and plugin parameters), docs/cli.md (every ``--help``) and
docs/packages/*.md (each plugin distribution's README, in the site).

The first two are generated from the code: the pydantic models of ``eacps.config`` and each registered
plugin's ``Params``, and the click commands of ``eacps.commands.cli``; the package pages are the READMEs under
``plugins/`` with their links made relative to the site. ``tests/test_docs.py`` fails
when the committed pages differ from what this script writes.

    python docs/gen_reference.py          # rewrite both pages
    python docs/gen_reference.py --check  # exit 1 if either page is stale

Only plugins shipped in this repository (the ``eacps`` distribution and every distribution under
``plugins/``) are documented, so a third-party plugin installed in the environment
does not change the pages; a repository distribution that is not installed is an error.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: click wraps help to the terminal width; the pages (and the test) use this one.
COLUMNS = "100"


def repo_distributions() -> list[str]:
    """Names of the distributions this repository ships."""
    names = ["eacps"]
    for pp in sorted(ROOT.glob("plugins/*/pyproject.toml")):
        names.append(tomllib.loads(pp.read_text())["project"]["name"])
    return names


def type_str(tp: Any) -> str:
    """A readable type: ``int | None``, ``"a" | "b"``, ``list[int]``, ``Calibration``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is type(None):
        return "None"
    if tp is typing.Any:
        return "Any"
    if origin is typing.Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_str(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else type_str(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(tp, "__name__", str(tp))


def default_str(f: FieldInfo) -> str:
    if f.is_required():
        return "(required)"
    value = f.default_factory() if f.default_factory is not None else f.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        value = value.model_dump()
    return f"`{value!r}`"


def constraints_str(f: FieldInfo) -> str:
    out = []
    for m in f.metadata:
        for attr, sym in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("min_length", "min length")):
            v = getattr(m, attr, None)
            if v is not None:
                out.append(f"{sym} {v}")
    return ", ".join(out)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def model_table(model: type[BaseModel]) -> str:
    if not model.model_fields:
        return "No parameters.\n"
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        t = type_str(f.annotation)
        c = constraints_str(f)
        if c:
            t += f" ({c})"
        rows.append(f"| `{name}` | {cell(t)} | {cell(default_str(f))} | {cell(f.description or '')} |")
    return "\n".join(rows) + "\n"


def first_line(doc: str | None) -> str:
    doc = (doc or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ").strip() if doc else ""


CONFIG_SECTIONS = [  # (heading, model name in eacps.config / eacps.potential, text)
    (
        "Top level",
        "RunConfig",
        "The whole TOML file. Give `conditions` or `tasks` (or both); `[search]` or "
        "`[[searches]]` (not both; neither means one default `[search]`).",
    ),
    (
        "`[generator]`",
        "GeneratorConfig",
        "`params` are validated against the generator's own parameters (see [Generators](#generators)).",
    ),
    (
        "`[potential]`",
        "PotentialConfig",
        "U(x) = Σ w_k·v_k(x). Criteria named `consistency`, `realism` and "
        "`identity` get the reference weights 1.0 / 4.0 / 1.5 unless `weight` is set; any other name needs a weight.",
    ),
    (
        "`[potential.criteria.NAME]`",
        "CriterionConfig",
        "One criterion: a registered scorer, its weight and parameters (see [Scorers](#scorers)).",
    ),
    (
        "`calibration`",
        "Calibration",
        "Maps a scorer's raw value into [0, 10]: `none` (the value must already be "
        "in range), `affine` (`scale·raw + offset`, clipped) or `range` (`10·clip((raw − lo)/(hi − lo), 0, 1)`).",
    ),
    (
        "`[search]` / `[[searches]]`",
        "SearchConfig",
        "`params` are validated against the strategy's own parameters (see [Strategies](#strategies)).",
    ),
    (
        "`[allocation]`",
        "AllocationConfig",
        "One total budget over every condition instead of the same budget for each (`eacps.search_all`, "
        "see [Budgets across conditions](concepts.md#budgets-across-conditions)); each search's `budget` is then the "
        "default budget per condition of the total.",
    ),
    (
        "`[[conditions]]`",
        "ConditionConfig",
        "One task. `extra` is passed to generators and scorers as "
        "`condition.extra` (the digits testbed reads `reference_index`).",
    ),
    ("`tasks`", "TasksConfig", 'Conditions from a registered task set, e.g. `tasks = { name = "digits", n = 10 }`.'),
    ("`[executor]`", "ExecutorConfig", "Where batches are generated and scored (see [Executors](#executors))."),
]

PLUGIN_KINDS = [
    ("strategy", "Strategies"),
    ("scorer", "Scorers"),
    ("generator", "Generators"),
    ("executor", "Executors"),
    ("tasks", "Task sets"),
]


def reference_markdown() -> str:
    from eacps import config, plugins, potential

    dists = repo_distributions()
    reg = plugins.build_registry(autoload=True)
    loaded = {e.distribution for kind in plugins.HOOKS for e in reg.entries[kind].values()}
    missing = [d for d in dists if d not in loaded]
    if missing:
        raise SystemExit(
            f"gen_reference: distributions of this repository are not installed or failed to load: "
            f"{', '.join(missing)} (problems: {reg.problems}); run `make setup`"
        )
    out = [
        "<!-- generated by docs/gen_reference.py from the pydantic models; do not edit -->",
        "# Configuration reference",
        "",
        "A run is described by a TOML file (`eacps run CONFIG.toml`; `examples/digits.toml` is a documented "
        "example). Every table is a pydantic model that forbids unknown fields: a mistake is reported in one "
        "line naming the field, the bad value and what is allowed, and the command exits with code 2 before "
        "any compute.",
        "",
        "## Config file",
        "",
    ]
    for heading, model_name, text in CONFIG_SECTIONS:
        model = getattr(config, model_name, None) or getattr(potential, model_name)
        out += [f"### {heading}", "", text, "", model_table(model)]
    out += [
        "## Plugins",
        "",
        "Every plugin shipped in this repository, with the parameters its `params` table accepts. "
        "`eacps plugins` lists what is installed in your environment.",
        "",
    ]
    for kind, title in PLUGIN_KINDS:
        out += [f"### {title}", ""]
        entries = sorted(
            (e for e in reg.entries[kind].values() if e.distribution in dists),
            key=lambda e: (dists.index(e.distribution), e.name),
        )
        if not entries:
            out += ["None registered.", ""]
        for e in entries:
            out += [f"#### `{e.name}`", "", f"Distribution `{e.distribution}`, plugin module `{e.plugin}`.", ""]
            doc = first_line(e.cls.__doc__)
            if doc:
                out += [doc, ""]
            params = getattr(e.cls, "Params", None)
            if params is not None:
                out += [model_table(params)]
    return "\n".join(out).rstrip() + "\n"


def subcommands() -> dict[str, object]:
    """Every command of ``eacps`` (click commands), by name."""
    from eacps.commands.cli import commands

    return commands()


def cli_markdown() -> str:
    from eacps.commands.cli import help_text

    out = [
        "<!-- generated by docs/gen_reference.py from eacps.commands.cli; do not edit -->",
        "# Command line",
        "",
        "Every command is a thin layer over the Python API. Errors are one line on stderr "
        "(`eacps: error: FIELD: ...`). Exit codes: 0 done; 1 the run failed (a filesystem error such as a full "
        "disk, or every candidate FAILED); 2 a config or usage error, or a run directory that cannot be used as it "
        "is (damaged store, missing images, another config's results), with nothing written; 130 (143 on SIGTERM) "
        "interrupted, resumed by running the same command again. A plugin adds commands with the "
        "`register_commands` hook (see the plugin guide). The help texts below are `eacps COMMAND --help`.",
        "",
        "## eacps",
        "",
        "```text",
        help_text(None, int(COLUMNS)).rstrip(),
        "```",
        "",
    ]
    for name in subcommands():
        out += [f"## eacps {name}", "", "```text", help_text(name, int(COLUMNS)).rstrip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def help_blocks(markdown: str) -> dict[str, str]:
    """``{command: help text}`` of a generated cli.md (used by the test)."""
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"^## (eacps(?: \S+)?)\n\n```text\n(.*?)\n```", markdown, flags=re.S | re.M)
    }


def package_readmes() -> dict[str, Path]:
    """``{page name under docs/: README}`` of every plugin and strategy distribution of the repository."""
    readmes = sorted(ROOT.glob("plugins/*/README.md"))
    return {f"packages/{p.parent.name}.md": p for p in readmes}


def _site_link(readme: Path, target: str) -> str | None:
    """A README's relative link as seen from docs/packages/ (None: a repository file the site does not hold)."""
    path, _, anchor = target.partition("#")
    resolved = (readme.parent / path).resolve()
    if resolved == ROOT / "README.md":
        site = "../index.md"
    elif resolved.is_relative_to(DOCS):
        site = "../" + resolved.relative_to(DOCS).as_posix()
    else:
        return None
    return site + (f"#{anchor}" if anchor else "")


def package_markdown(readme: Path) -> str:
    """The README as a site page: relative links point into the site, other repository paths become code."""

    def link(m: re.Match[str]) -> str:
        text, target = m.group(1), m.group(2)
        if re.match(r"[a-z]+:|#", target):
            return m.group(0)
        site = _site_link(readme, target)
        return f"[{text}]({site})" if site is not None else f"{text} (`{readme.parent.relative_to(ROOT) / target}`)"

    rel = readme.relative_to(ROOT).as_posix()
    body = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", link, readme.read_text())
    return f"<!-- generated from {rel} by docs/gen_reference.py: edit that README -->\n{body}"


PAGES = {"reference.md": reference_markdown, "cli.md": cli_markdown,
         **{name: (lambda p=p: package_markdown(p)) for name, p in package_readmes().items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when a committed page is stale")
    args = ap.parse_args(argv)
    stale = []
    for name, fn in PAGES.items():
        text = fn()
        path = DOCS / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"stale: {', '.join(stale)}; run `python docs/gen_reference.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
