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
    ("leaves", {"params", "recipe", "types", "errors", "versions", "orderstats", "hookspecs", "cost", "tables",
                "capabilities", "trees", "tomlw", "agreement"}),
    ("interfaces", {"generator", "scorer", "strategy", "stepping", "trajectory", "plugins", "noise_space",
                    "value_model"}),
    ("potential/store", {"potential", "store", "config", "allocation_log"}),
    ("engine parts", {"strategies", "testing", "screening", "engine"}),
    ("api", {"api", "allocate"}),
    ("analysis", {"analysis"}),
    ("cli", {"__main__", "__init__", "commands"}),
]
LAYER_OF = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}
PLUGIN_PACKAGES = {p.name for p in (ROOT / "plugins").glob("*/src/*") if (p / "__init__.py").exists()}


def modules() -> dict[str, Path]:
    """``eacps`` module name (first component after ``eacps.``; the package itself is ``__init__``) -> file."""
    return {str(f.relative_to(SRC).with_suffix("")).replace("/", "."): f for f in sorted(SRC.rglob("*.py"))}


def layer_key(module: str) -> str:
    """A module in a folder has the folder's layer (``engine.planner`` -> ``engine``, ``strategies.eacps``
    -> ``strategies``); a top-level module its own entry; ``__init__`` stays."""
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
    f.write_text("def f():\n    from eacps.engine.engine import Engine\n    import eacps_digits\n")
    found = imports(f)
    assert found == [(2, "eacps.engine.engine"), (3, "eacps_digits")]
    assert LAYER_OF[target_layer("eacps.engine.engine")] > LAYER_OF["store"]
    assert target_layer("eacps.Engine") == "__init__"  # a re-export counts as the package (the top layer)


@pytest.mark.parametrize("module", ["eacps.store", "eacps.analysis.summary", "eacps.analysis.report"])
def test_reading_a_store_imports_no_torch(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'eacps.engine.engine') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"{module} imports {out.strip()}"


# -- no import cycles, no private access across objects ---------------------------------------------------
def packages() -> list[Path]:
    """The core package and every plugin distribution's package."""
    found = [p for pattern in ("plugins/*/src/*", "strategies/*/src/*") for p in sorted(ROOT.glob(pattern))
             if (p / "__init__.py").exists()]
    return [SRC, *found]


def import_graph(package: Path, *, lazy: bool) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports: at module level and under ``if TYPE_CHECKING:``
    always, inside functions too when ``lazy``. ``from pkg import name`` is an edge to ``pkg.name`` when that
    is a module, else to ``pkg`` (a re-export runs the package's ``__init__``)."""
    mods = {}
    for f in sorted(package.rglob("*.py")):
        parts = [package.name, *f.relative_to(package).with_suffix("").parts]
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    def nodes(tree: ast.AST):
        for node in ast.iter_child_nodes(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and not lazy:
                continue
            yield node
            yield from nodes(node)

    graph: dict[str, set[str]] = {}
    for mod, f in mods.items():
        here = mod.split(".") if f.name == "__init__.py" else mod.split(".")[:-1]
        targets: list[str | None] = []
        for node in nodes(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                targets += [owner(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                parent = here[: len(here) - node.level + 1] if node.level else []
                base = ".".join([*parent, node.module or ""]).strip(".")
                subs = [f"{base}.{a.name}" for a in node.names]
                targets += [s for s in subs if s in mods]
                if any(s not in mods for s in subs):
                    targets.append(owner(base))
        graph[mod] = {t for t in targets if t is not None and t != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            if comp:
                out.append(sorted([v, *comp]))

    for v in graph:
        if v not in index:
            visit(v)
    return out


#: cycles closed only by an import inside a function, still to be removed: eacps.api dispatches a config with an
#: ``allocation`` to eacps.allocate, which builds on eacps.api. The test fails once it is gone (then drop it here).
KNOWN_LAZY_CYCLES = [["eacps.allocate", "eacps.api"]]


@pytest.mark.parametrize("package", packages(), ids=lambda p: p.name)
def test_no_import_cycle_counting_type_checking_imports(package):
    found = cycles(import_graph(package, lazy=False))
    assert not found, f"{package.name}: import cycles (module level and TYPE_CHECKING imports): {found}"


def test_no_import_cycle_counting_imports_inside_functions():
    found = [c for p in packages() for c in cycles(import_graph(p, lazy=True))]
    assert found == KNOWN_LAZY_CYCLES, f"import cycles (imports inside functions included): {found}"


def test_the_cycle_check_sees_type_checking_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n")
    (pkg / "b.py").write_text("from . import c\n")
    (pkg / "c.py").write_text("def f():\n    from pkg import a\n")
    assert cycles(import_graph(pkg, lazy=False)) == []
    assert cycles(import_graph(pkg, lazy=True)) == [["pkg.a", "pkg.b", "pkg.c"]]
    (pkg / "c.py").write_text("import pkg.a\n")
    assert cycles(import_graph(pkg, lazy=False)) == [["pkg.a", "pkg.b", "pkg.c"]]


#: ``_private`` members read on another object that are allowed, each for a reason: ``os._exit`` is the
#: documented stdlib call that ends a forked child without running the parent's handlers; the diffusers pipelines'
#: own helpers, which the stepping loop must call exactly as the pipelines' ``__call__`` does to give the same image
#: (``_execution_device``: diffusers' device rule under CPU offload).
PRIVATE_ALLOWED = {
    "os._exit",
    "pipe._execution_device", "pipe._get_add_time_ids", "pipe._prepare_latent_image_ids", "pipe._unpack_latents",
    "type(pipe)._pack_latents",
}


def private_reads(path: Path) -> list[tuple[int, str]]:
    """(line, expression) for every ``x._name`` where ``x`` is not ``self``/``cls`` (dunders excepted); the
    object is shown by its last name (``self.pipe._x`` -> ``pipe._x``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id in ("self", "cls"):
            continue
        if isinstance(value, ast.Attribute):
            owner = value.attr
        elif isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "type":
            owner = "type(" + ast.unparse(value.args[0]).split(".")[-1] + ")"
        else:
            owner = ast.unparse(value)
        out.append((node.lineno, f"{owner}.{node.attr}"))
    return out


def test_no_code_reads_another_objects_private_members():
    bad = [f"{f.relative_to(ROOT)}:{line}: {expr}" for p in packages() for f in sorted(p.rglob("*.py"))
           for line, expr in private_reads(f) if expr not in PRIVATE_ALLOWED]
    assert not bad, "\n".join(bad)


def test_the_private_check_sees_reads_on_other_objects(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("class A:\n    def f(self, o):\n        return self._a, o._b, self.gen._c, cls._d, x.__len__\n")
    assert private_reads(f) == [(3, "o._b"), (3, "gen._c")]


# -- tests by module ------------------------------------------------------------------------------------------
#: subpackages whose modules are checked elsewhere (each strategy has its own test file, by its own check)
UNTESTED_FOLDERS = {"strategies"}


def core_modules_without_tests(src: Path, tests: Path) -> list[str]:
    """Core modules (``src`` and its subpackages but ``UNTESTED_FOLDERS``; not ``__init__``/``__main__``) that lack
    ``tests/test_<name>.py``."""
    folders = [src, *sorted(p.parent for p in src.glob("*/__init__.py") if p.parent.name not in UNTESTED_FOLDERS)]
    return [str(f.relative_to(src)) for folder in folders for f in sorted(folder.glob("*.py"))
            if f.stem not in ("__init__", "__main__") and not (tests / f"test_{f.stem}.py").exists()]


def test_every_core_module_has_its_test_file():
    """``src/eacps/<folder>/<name>.py`` -> ``tests/test_<name>.py`` (a module in a folder by its own name:
    ``engine/engine.py`` is tested in ``tests/test_engine.py``)."""
    missing = core_modules_without_tests(SRC, ROOT / "tests")
    assert not missing, f"add tests/test_<module>.py of what each module promises: {missing}"


def test_the_test_file_check_sees_a_module_without_tests(tmp_path):
    src, tests = tmp_path / "src", tmp_path / "tests"
    for f in ("__init__.py", "__main__.py", "a.py", "engine/__init__.py", "engine/b.py", "strategies/__init__.py",
              "strategies/c.py", "static/d.py"):
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        (src / f).write_text("")
    tests.mkdir()
    (tests / "test_a.py").write_text("")
    assert core_modules_without_tests(src, tests) == ["engine/b.py"]
