"""best-of-N: N independent random seeds, keep the argmax."""

from __future__ import annotations

from eacps.hookspecs import hookimpl
from eacps.recipe import Recipe
from eacps.strategy import Strategy


class BestOfN(Strategy):
    """N independent random seeds (N = the budget). Every ask can run ahead: no result is needed."""

    name = "best-of-n"
    ask_ahead = True

    def _ask(self, n: int) -> list[Recipe]:
        return self.fresh_seeds(n)


@hookimpl
def register_strategies(register):
    register(BestOfN)
