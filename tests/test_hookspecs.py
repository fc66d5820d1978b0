"""eacps.hookspecs: the hooks of the plugin system. Each is documented (docstring and a section of docs/plugins.md) and
has a test function ``test_hook_<hook>``; each receives a ``register`` callback; the markers belong to the ``eacps``
project, and a hook implementation may take fewer arguments than its spec."""

from __future__ import annotations

import ast
import inspect
import sys
import types
from pathlib import Path

import click

from eacps import hookimpl, hookspecs, plugins


def _hookspecs() -> list[str]:
    return [n for n, f in vars(hookspecs).items() if hasattr(f, "eacps_spec")]


def _test_functions(paths) -> set[str]:
    """Names of the test functions (module level or in a class) defined in ``paths``; comments do not count."""
    names: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in tree.body:
            body = node.body if isinstance(node, ast.ClassDef) else [node]
            names |= {f.name for f in body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}
    return names


def test_every_hook_is_documented_and_has_a_test():
    """As datasette does: each hookspec has a docstring, a section in docs/plugins.md and a test *function*
    named ``test_hook_<hook>`` (a comment or a substring elsewhere does not count)."""
    specs = _hookspecs()
    assert set(plugins.HOOKS.values()) <= set(specs) and "register_commands" in specs
    tests = _test_functions(Path(__file__).parent.glob("test_*.py"))
    docs = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    for hook in specs:
        spec = getattr(hookspecs, hook)
        assert spec.__doc__ and len(spec.__doc__) > 20
        assert f"## {hook}" in docs, f"docs/plugins.md lacks a section for {hook}"
        assert f"test_hook_{hook}" in tests, f"no test function test_hook_{hook} in tests/"


def test_the_hook_test_rule_can_fail(tmp_path):
    """A hook mentioned only in a comment, a string or a nested helper has no test."""
    (tmp_path / "test_x.py").write_text(
        "# test_hook_register_widgets\n"
        "NOTE = 'test_hook_register_widgets'\n"
        "def test_other():\n    def test_hook_register_widgets():\n        pass\n"
        "class TestA:\n    def test_hook_register_gadgets(self):\n        pass\n")
    found = _test_functions([tmp_path / "test_x.py"])
    assert "test_hook_register_widgets" not in found and "test_hook_register_gadgets" in found


def test_every_hook_receives_a_register_callback():
    """A plugin is three lines: every spec takes ``register`` first (``register_commands`` also the click group)."""
    for hook in _hookspecs():
        args = list(inspect.signature(getattr(hookspecs, hook)).parameters)
        assert args[0] == "register", hook
        assert args == (["register", "cli"] if hook == "register_commands" else ["register"]), hook
    assert set(plugins.HOOKS.values()) | {"register_commands", "register_demo_presets",
                                          "register_generate_backends"} == set(_hookspecs())


def test_the_markers_belong_to_the_eacps_project():
    from eacps import hookimpl as exported

    assert exported is hookspecs.hookimpl and hookspecs.hookimpl.project_name == "eacps"
    assert hookspecs.hookspec.project_name == "eacps" == plugins.GROUP  # the entry-point group of third parties


def test_an_implementation_may_take_fewer_arguments_than_its_spec(capsys):
    """``register_commands`` implemented with ``cli`` alone adds its command through the group's decorator."""
    from eacps.commands.cli import main

    def register_commands(cli):
        @cli.command("tp-cli-only", help="added with @cli.command()")
        def cli_only():
            click.echo("from the group")

    mod = types.ModuleType("tp_cli_only")
    mod.register_commands = hookimpl(register_commands)
    sys.modules["tp_cli_only"] = mod
    plugins.register_plugin(mod)
    try:
        assert main(["tp-cli-only"]) == 0
        assert capsys.readouterr().out == "from the group\n"
    finally:
        plugins.unregister_plugin(mod)
        sys.modules.pop("tp_cli_only", None)
