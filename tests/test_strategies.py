"""What the built-in strategies share: determinism under a seed whatever the batches, the base contract, and a test
file per strategy module. Each strategy's own behaviour is tested in tests/test_<module>.py."""

import pytest

from eacps import Recipe, Result, Status, StrategyError
from eacps.strategies.best_of_n import BestOfN
from eacps.strategies.eacps import EACPS
from eacps.strategies.zero_order import ZeroOrder


def objective(r: Recipe) -> float:
    """A fast stand-in potential of the recipe's noise."""
    return float(r.noise((1, 1, 4, 4)).flatten()[0])


def drive(strategy, f=objective, batch=8, fail=lambda r: False):
    """Run ``strategy`` to its end with ``Strategy.optimize``: ``f`` as potential, FAILED where ``fail``."""
    strategy.optimize(lambda r: Result(r, Status.FAILED, None, reason="x") if fail(r) else Result(r, Status.OK, f(r)),
                      batch_size=batch)
    return strategy


def test_strategies_are_deterministic_and_replayable():
    for make in (lambda: BestOfN(budget=20, seed=5), lambda: EACPS(budget=20, seed=5),
                 lambda: ZeroOrder(budget=20, seed=5)):
        a, b = drive(make(), batch=4), drive(make(), batch=7)
        assert [r.recipe for r in a.history] == [r.recipe for r in b.history]


def test_contract_violations_are_caught():
    s = BestOfN(budget=4, seed=0)
    with pytest.raises(StrategyError):
        s.tell([Result(Recipe.from_seed(1), Status.OK, 1.0)])
    rs = s.ask(10)
    assert len(rs) == 4 and s.ask(1) == []
    s.tell([Result(r, Status.OK, 0.0) for r in rs])
    assert s.stop() == {"budget": 4}


def test_every_strategy_module_has_its_test_file():
    from repo import ROOT

    modules = sorted(p.stem for p in (ROOT / "src" / "eacps" / "strategies").glob("*.py") if p.stem != "__init__")
    assert {"best_of_n", "eacps", "tree_search"} <= set(modules)  # the glob finds the strategies
    missing = [m for m in modules if not (ROOT / "tests" / f"test_{m}.py").is_file()]
    assert not missing, f"strategy modules without tests/test_<module>.py: {missing}"
