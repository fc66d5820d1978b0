import importlib.metadata
import sys
import types

import pytest

from eacps import Strategy, hookimpl, plugins
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


def test_every_hook_is_documented_and_tested():
    """As datasette does: each hookspec has a docstring and appears in the docs and in these tests."""
    from pathlib import Path

    from eacps import hookspecs

    here = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    docs = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    for hook in plugins.HOOKS.values():
        spec = getattr(hookspecs, hook)
        assert spec.__doc__ and len(spec.__doc__) > 20
        assert f"## {hook}" in docs, f"docs/plugins.md lacks a section for {hook}"
        assert hook in here


def test_register_hooks_each_add_their_kind(toy_plugin):
    # register_strategies (built-ins), register_scorers and register_generators (the toy plugin)
    reg = plugins.get_registry()
    assert reg.entries["generator"]["toy"].distribution == "(registered in process)"
    assert "toy-pixel" in reg.names("scorer") and "eacps" in reg.names("strategy")
