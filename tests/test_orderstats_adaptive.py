import math

import numpy as np
import pytest
from test_strategies import drive

from eacps import Result, Status
from eacps.orderstats import expected_max_empirical, expected_max_std_normal, writeup_approximation
from eacps.strategies.adaptive import Adaptive, AdaptiveParams
from eacps.strategies.eacps import EACPS


def test_exact_expected_maximum_matches_known_values_and_monte_carlo():
    # the values quoted in the write-up's correction note
    assert [round(expected_max_std_normal(n), 2) for n in (2, 4, 8, 20)] == [0.56, 1.03, 1.42, 1.87]
    assert expected_max_std_normal(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-9)  # closed form
    rng = np.random.default_rng(0)
    mc = rng.standard_normal((200_000, 20)).max(axis=1).mean()
    assert expected_max_std_normal(20) == pytest.approx(mc, abs=0.01)
    # the approximation overstates small-N gains
    assert writeup_approximation(0, 1, 2) - expected_max_std_normal(2) > 0.6


def test_empirical_expected_maximum():
    xs = [3.0, 1.0, 2.0]
    assert expected_max_empirical(xs, 1) == pytest.approx(2.0)
    assert expected_max_empirical(xs, 2) == pytest.approx(8 / 3)  # subsets {1,2},{1,3},{2,3}
    assert expected_max_empirical(xs, 3) == pytest.approx(3.0)
    assert expected_max_empirical(xs, 2.5) == pytest.approx((8 / 3 + 3) / 2)
    # beyond the sample size: draws with replacement, P(max=1)=1/81, P(2)=15/81, P(3)=65/81 for n=4
    assert expected_max_empirical(xs, 4) == pytest.approx((1 + 30 + 195) / 81)
    # unbiased: averaged over many samples of size 10, it matches the exact normal value for n = 4
    rng = np.random.default_rng(1)
    est = np.mean([expected_max_empirical(rng.standard_normal(10), 4) for _ in range(4000)])
    assert est == pytest.approx(expected_max_std_normal(4), abs=0.02)


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
