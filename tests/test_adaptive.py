"""The ``adaptive`` strategy (eacps.strategies.adaptive): it wraps a strategy built for it, stops when the predicted
gain of doubling the sample is small, ignores failures, and names a bad inner parameter in one line."""

import pytest
from test_strategies import drive

from eacps import Result, Status
from eacps.strategies.adaptive import Adaptive, AdaptiveParams
from eacps.strategies.eacps import EACPS


def test_adaptive_stops_when_the_predicted_gain_is_small():
    flat = drive(Adaptive(AdaptiveParams(min_gain=0.05, min_samples=8), budget=64, seed=0), f=lambda r: 5.0, batch=8)
    assert len(flat.history) == 8 and flat.stop()["predicted_gain"] == 0.0
    # a wide spread of potentials: doubling still pays, so it uses the whole budget
    wide = drive(Adaptive(AdaptiveParams(min_gain=0.05), budget=32, seed=0),
                 f=lambda r: 10 * float(r.noise((1, 1, 2, 2))[0, 0, 0, 0]), batch=8)
    assert len(wide.history) == 32 and "budget" in wide.stop()


def test_adaptive_wraps_any_strategy_and_ignores_failures():
    s = Adaptive(AdaptiveParams(strategy="eacps", min_gain=100.0, min_samples=4), budget=20, seed=1,
                 inner=EACPS(budget=20, seed=1))
    rs = s.ask(8)
    assert rs == EACPS(budget=20, seed=1).ask(8)  # the wrapped strategy's own asks
    s.tell([Result(r, Status.FAILED, None, reason="x") if i < 5 else Result(r, Status.OK, float(i))
            for i, r in enumerate(rs)])
    assert s.predicted_gain is None  # only 3 OK results: the rule waits for min_samples
    with pytest.raises(ValueError, match=r"^params\.strategy: adaptive cannot wrap itself"):
        Adaptive(AdaptiveParams(strategy="adaptive"), budget=8, inner=Adaptive(budget=8))


def test_adaptive_receives_its_inner_strategy_built():
    """Whoever builds strategies by name builds the wrapped one (``eacps.config.inner_strategy``); adaptive itself
    imports neither the registry nor the config module, and refuses an inner strategy its params do not name."""
    import ast
    from pathlib import Path

    from eacps.api import make_strategy
    from eacps.strategies import adaptive

    tree = ast.parse(Path(adaptive.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not imported & {"eacps.plugins", "eacps.config", "eacps.api"}, imported
    built = make_strategy("adaptive", {"strategy": "eacps", "params": {"k_global": 6}}, budget=12, seed=3)
    assert isinstance(built.inner, EACPS) and built.inner.params.k_global == 6
    assert (built.inner.budget, built.inner.seed) == (12, 3)
    assert built.ask(4) == EACPS(EACPS.Params(k_global=6), budget=12, seed=3).ask(4)
    assert Adaptive(budget=5).inner.name == "best-of-n"  # the default needs no builder
    with pytest.raises(ValueError, match=r"adaptive wraps 'eacps' \(params.strategy\): pass it built, as inner="):
        Adaptive(AdaptiveParams(strategy="eacps"), budget=8)
    with pytest.raises(ValueError, match=r"params\.strategy is 'best-of-n' but the inner strategy passed is 'eacps'"):
        Adaptive(budget=8, inner=EACPS(budget=8))
    with pytest.raises(ValueError, match="budget is 9, adaptive's 8"):
        Adaptive(AdaptiveParams(strategy="eacps"), budget=8, inner=EACPS(budget=9))


def test_adaptive_names_a_bad_inner_parameter_in_one_line():
    """Built outside a config entry, adaptive names fields relative to its own entry; built from a config entry,
    the entry comes first."""
    from eacps.api import make_strategy
    from eacps.config import ConfigError, create

    with pytest.raises(ConfigError, match=r"^params\.params\.theta: .*got 'x'") as exc:
        create("strategy", "adaptive", {"strategy": "eacps", "params": {"theta": "x"}}, budget=8)
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match=r"^params\.params\.nope: unknown parameter; allowed: k_global"):
        create("strategy", "adaptive", {"strategy": "eacps", "params": {"nope": 1}}, budget=8)
    with pytest.raises(ValueError, match=r"^params\.strategy: unknown strategy 'nah'; known: "):
        create("strategy", "adaptive", {"strategy": "nah"}, budget=8)
    with pytest.raises(ConfigError, match=r"^params\.strategy: adaptive cannot wrap 'fk-steering'"):
        make_strategy(Adaptive, {"strategy": "fk-steering"}, budget=8)  # a class, built with its inner entry
    with pytest.raises(ConfigError, match=r"^search\.params\.params\.nope: unknown parameter"):
        make_strategy("adaptive", {"strategy": "eacps", "params": {"nope": 1}}, budget=8)
