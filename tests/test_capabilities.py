"""eacps.capabilities: strategies declare what they need, generators what they offer, and the mismatch is one line
before any compute; a generator class's capabilities are read without instantiating it (from its flags, or from its
module's source without importing it)."""

from __future__ import annotations

from typing import ClassVar

import toy

from eacps import Generator, capabilities, plugins
from eacps.capabilities import DEPENDS, NO, UNKNOWN, YES, declared, describe, offered, problem, required
from eacps.strategies.best_of_n import BestOfN
from eacps.strategies.tree_search import TreeSearch


class SeedOnlyGen(toy.ToyGenerator):
    name = "seed-only"
    supports_noise_recipes = False


class Declares(toy.ToyGenerator):
    """A generator that says what it offers per instance."""

    name = "declares"

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({"stepping"})


class NeedsBoth:
    name = "needs-both"
    requires: ClassVar[frozenset[str]] = frozenset({"stepping", "noise_recipes"})


def test_offered_follows_the_instance_then_its_flags():
    assert offered(toy.ToyGenerator()) == {"noise_recipes"}  # stepping off in its params: the instance decides
    assert offered(toy.ToyGenerator(toy.ToyGeneratorParams(stepping=True))) == {"noise_recipes", "stepping"}
    assert offered(SeedOnlyGen()) == frozenset()
    assert offered(Declares()) == {"stepping"}  # declared capabilities win over the class flags

    class Flags:  # no ``capabilities``: the class flags and stepping_problem() alone
        supports_noise_recipes = False

        def stepping_problem(self):
            return None

    assert offered(Flags()) == {"stepping"}
    assert offered(object()) == {"noise_recipes"}  # the default of eacps.Generator; nothing steps unless it says so


def test_required_and_the_one_line_problem():
    assert required(BestOfN(budget=2)) == frozenset() and required(object()) == frozenset()
    assert required(TreeSearch(budget=2)) == {"stepping"}
    assert problem(BestOfN(budget=2), SeedOnlyGen()) is None
    assert problem(TreeSearch(budget=2), toy.ToyGenerator(toy.ToyGeneratorParams(stepping=True))) is None
    why = problem(NeedsBoth(), SeedOnlyGen())
    assert why == ("strategy 'needs-both' needs noise_recipes, stepping, which generator 'seed-only' does not offer "
                   "(it offers: none)")
    assert problem(NeedsBoth(), toy.ToyGenerator()).endswith("needs stepping, which generator 'toy' does not offer "
                                                             "(it offers: noise_recipes)")


def test_declared_from_the_class_without_instantiating_it():
    class Fixed(Generator):
        name = "fixed"
        supports_stepping = True

    class Prop(Fixed):
        @property
        def supports_noise_recipes(self) -> bool:  # type: ignore[override]
            return True

    assert declared(Fixed) == {"noise_recipes": YES, "stepping": YES}  # the flags, as the base class defaults them
    assert declared(SeedOnlyGen) == {"noise_recipes": NO, "stepping": DEPENDS}  # toy overrides stepping_problem
    assert declared(Prop) == {"noise_recipes": DEPENDS, "stepping": YES}  # a property: the instance decides
    assert declared(object) == {"noise_recipes": UNKNOWN, "stepping": UNKNOWN}


def test_describe_names_what_is_offered_in_one_short_line():
    assert describe({"noise_recipes": YES, "stepping": DEPENDS}) == "noise_recipes, stepping (depends on params)"
    assert describe({"noise_recipes": NO, "stepping": UNKNOWN}) == "stepping (unknown)"
    assert describe({"noise_recipes": NO, "stepping": NO}) == "-"
    assert set(capabilities.FLAGS) == set(capabilities.PROBLEMS) == capabilities.KNOWN


def test_declared_capabilities_read_from_source_match_the_class(toy_plugin):
    """A generator registered by reference ("module:Class") shows the capabilities its class declares without
    being imported: read from the class body, they equal the flags of the imported class."""
    reg = plugins.get_registry()
    for name in reg.names("generator"):
        cls = reg.get("generator", name)
        ref = f"{cls.__module__}:{cls.__qualname__}"
        assert capabilities.declared(ref) == capabilities.declared(cls), name
    assert capabilities.declared("no_such_module:Gen") == {"noise_recipes": "unknown", "stepping": "unknown"}

    class SeedOnly(toy.ToyGenerator):
        supports_noise_recipes = False

    assert capabilities.describe(capabilities.declared(SeedOnly)) == "stepping (depends on params)"


def test_declared_from_source_never_imports_the_module(tmp_path, monkeypatch):
    """A reference's class body is read, not run: a constant flag, a property, an overridden problem method, and the
    base class's defaults for a direct ``Generator`` (or ``Generator[Params]``) subclass."""
    import sys

    (tmp_path / "capsrc_mod.py").write_text(
        "raise RuntimeError('imported')\n"
        "class Plain(Generator[MyParams]):\n    pass\n"
        "class Img2Img(Generator):\n    supports_noise_recipes = False\n    supports_stepping: bool = True\n"
        "    def stepping_problem(self):\n        return None\n"
        "class Prop(Generator):\n    @property\n    def supports_noise_recipes(self):\n        return True\n"
        "class Sub(Plain):\n    supports_stepping = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert declared("capsrc_mod:Plain") == {"noise_recipes": YES, "stepping": NO}
    assert declared("capsrc_mod:Img2Img") == {"noise_recipes": NO, "stepping": DEPENDS}
    assert declared("capsrc_mod:Prop") == {"noise_recipes": DEPENDS, "stepping": NO}
    assert declared("capsrc_mod:Sub") == {"noise_recipes": UNKNOWN, "stepping": YES}  # an unknown base: unknown
    assert declared("capsrc_mod:Missing") == {"noise_recipes": UNKNOWN, "stepping": UNKNOWN}
    assert "capsrc_mod" not in sys.modules
