"""The import graph keeps the layering: leaves -> interfaces -> potential/store -> engine parts -> api ->
analysis -> cli. A module may import its own layer or lower ones, never a higher one (lazy imports inside
functions and ``TYPE_CHECKING`` imports included); the core imports no plugin distribution; reading a store
imports no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "eacps"

LAYERS: list[tuple[str, set[str]]] = [
    ("leaves", {"params", "recipe", "types", "errors", "versions", "stats", "orderstats", "hookspecs", "cost",
                "tables", "capabilities", "trees", "tomlw", "progress"}),
    ("interfaces", {"generator", "scorer", "strategy", "stepping", "plugins", "checkpoints", "noise_space"}),
    ("potential/store", {"potential", "store", "config", "allocation_log"}),
    ("engine parts", {"batch", "meter", "planner", "calibrator", "executor", "scheduler", "engine", "strategies",
                      "testing"}),
    ("api", {"api", "allocate"}),
    ("analysis", {"summary", "compare", "landscape", "step_landscape", "report", "demo", "generate", "doctor",
                  "serve"}),
    ("cli", {"cli", "__main__", "__init__"}),
]
LAYER_OF = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}
PLUGIN_PACKAGES = {p.name for p in (ROOT / "plugins").glob("*/src/*") if (p / "__init__.py").exists()}


def modules() -> dict[str, Path]:
    """``eacps`` module name (first component after ``eacps.``; the package itself is ``__init__``) -> file."""
    return {str(f.relative_to(SRC).with_suffix("")).replace("/", "."): f for f in sorted(SRC.rglob("*.py"))}


def layer_key(module: str) -> str:
    """``strategies.eacps`` -> ``strategies``; ``__init__`` stays."""
    return module.split(".")[0]


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every ``eacps``/plugin import in the file, wherever it is."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "eacps":  # from eacps import X: X is a submodule or a re-export of the package
                out += [(node.lineno, f"eacps.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def target_layer(imported: str) -> str | None:
    parts = imported.split(".")
    if parts[0] != "eacps":
        return None
    if len(parts) == 1:
        return "__init__"
    name = parts[1]
    return name if name in LAYER_OF else "__init__"  # a name re-exported by the package: the package's layer


def test_every_core_module_has_a_layer():
    missing = sorted({layer_key(m) for m in modules()} - set(LAYER_OF))
    assert not missing, f"assign these modules a layer in tests/test_architecture.py: {missing}"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    bad = []
    for mod, path in modules().items():
        mine = LAYER_OF[layer_key(mod)]
        for line, imported in imports(path):
            target = target_layer(imported)
            if target is not None and LAYER_OF[target] > mine:
                bad.append(f"src/eacps/{path.relative_to(SRC)}:{line}: {LAYERS[mine][0]} module {mod!r} imports "
                           f"{imported!r} ({LAYERS[LAYER_OF[target]][0]})")
    assert not bad, "\n".join(bad)


def test_the_core_imports_no_plugin_distribution():
    assert {"eacps_digits", "eacps_diffusers", "eacps_ray"} <= PLUGIN_PACKAGES  # the check sees the plugins
    bad = [f"src/eacps/{path.relative_to(SRC)}:{line}: imports {imported!r}" for path in modules().values()
           for line, imported in imports(path) if imported.split(".")[0] in PLUGIN_PACKAGES]
    assert not bad, "\n".join(bad)


def test_the_checks_catch_violations(tmp_path):
    """The graph is read from real source: an upward import and a plugin import are both found."""
    f = tmp_path / "bad.py"
    f.write_text("def f():\n    from eacps.engine import Engine\n    import eacps_digits\n")
    found = imports(f)
    assert found == [(2, "eacps.engine"), (3, "eacps_digits")]
    assert LAYER_OF[target_layer("eacps.engine")] > LAYER_OF["store"]
    assert target_layer("eacps.Engine") == "__init__"  # a re-export counts as the package (the top layer)


@pytest.mark.parametrize("module", ["eacps.store", "eacps.summary", "eacps.report"])
def test_reading_a_store_imports_no_torch(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'eacps.engine') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"{module} imports {out.strip()}"
